"""Store on each feed whether it can carry PhotoDNA hashes, so that entitlement is one query
(``members.selectors.entitlements_in_force``). Existing feeds are judged by the same rule as new
ones, ``FeedFilter.carries_photodna``: a feed's filter never changes, so neither does this."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

from distribution.feeds import FeedFilter


def backfill(apps: Any, schema_editor: Any) -> None:
    Feed = apps.get_model("distribution", "Feed")
    feeds = Feed.objects.using(schema_editor.connection.alias)
    for feed in feeds.all():
        feeds.filter(pk=feed.pk).update(carries_photodna=FeedFilter.of(feed).carries_photodna)


class Migration(migrations.Migration):
    dependencies = [
        ("distribution", "0002_feed_entry_covering_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="feed",
            name="carries_photodna",
            field=models.BooleanField(default=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
