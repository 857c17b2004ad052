"""Going on after the database was restored from a backup (docs/operations.md, "Restore").

A restored database remembers fewer releases than members hold: their clients refuse any
feed whose newest version is older than the one they hold (a rollback), and a version number
handed out a second time would name a different list. So the server does not go on from where
the backup left it: every active feed is published afresh, as a snapshot of the list as
restored, at a version above every one members may hold. Clients at any version take that
snapshot — a version they never saw, reached by a snapshot, is a gap the manifest chain allows
(``hashsync_client.plan.chain``) — and drop what the backup did not have: approvals made after
it, which reviewers propose again from their records or the audit export.
"""

from __future__ import annotations

from django.db import transaction

from audit.services import audit_record
from distribution.models import Feed, FeedEntry, Release
from distribution.releases.cutter import release_cut
from distribution.releases.lock import lock_release_state


class ResumeRefused(ValueError):
    """``above`` would hand out a version number again, or there is nothing to publish."""


def release_resume(*, above: int) -> Release:
    """Publish every active feed afresh at version ``above + 1`` (a snapshot of its membership
    rebuilt from the entries, its manifest naming the feed's newest one here), with any approved
    change not yet released. ``above``: the newest version any member may hold (more is
    harmless: skipped numbers cost nothing). ``ResumeRefused`` if it is below the last version
    this database released, or no feed is active."""
    with transaction.atomic():
        state = lock_release_state()
        if above < state.last_version:
            raise ResumeRefused(
                f"--above {above} is below version {state.last_version}, which this database "
                f"already released: give the newest version any member may hold (at least "
                f"{state.last_version})."
            )
        feeds = Feed.objects.filter(active=True)
        names = list(feeds.order_by("id").values_list("name", flat=True))
        if not names:
            raise ResumeRefused("No active feed to publish.")
        state.last_version = above
        state.save(update_fields=["last_version"])
        # The cutter publishes a feed without a membership as a new one: the whole list, as a
        # snapshot with no delta, at the next version.
        FeedEntry.objects.filter(feed__in=feeds).delete()
        feeds.update(populated_at=None)
        release = release_cut()
        assert release is not None  # every active feed is published
        audit_record(
            actor=None,
            action="release.resumed",
            object_type="release",
            object_id=release.version,
            after={"above": above, "feeds": names},
            reason="published afresh above every version members may hold (database restored)",
        )
    return release
