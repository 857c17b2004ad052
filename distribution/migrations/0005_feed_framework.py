"""A feed names the grading framework it delivers classes in, and may filter on those classes.

Every existing feed is in the UK framework (bundle format 1, as before) with no class filter,
and its published state reflects the UK rules of version 1 (seeded by hashlist 0007): nothing
is re-published. docs/grading.md, "Feeds in a framework"."""

from __future__ import annotations

from django.db import migrations, models


def existing_feeds_at_uk_v1(apps, schema_editor):  # type: ignore[no-untyped-def]
    Feed = apps.get_model("distribution", "Feed")
    Feed.objects.filter(populated_at__isnull=False).update(framework_version=1)


class Migration(migrations.Migration):
    dependencies = [
        ("distribution", "0004_release_cut_seconds"),
        ("hashlist", "0007_entry_facts_frameworks"),
    ]

    operations = [
        migrations.AddField(
            model_name="feed",
            name="framework",
            field=models.SlugField(default="uk", max_length=32),
        ),
        migrations.AddField(
            model_name="feed",
            name="classes",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="feed",
            name="framework_version",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(existing_feeds_at_uk_v1, migrations.RunPython.noop),
    ]
