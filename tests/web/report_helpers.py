"""Several weeks of synthetic history for the report charts: entries proposed, approved,
regraded and retracted, releases cut, and their timestamps moved back by whole weeks.

Only non-audit tables are back-dated (changes, proposals, releases, feed versions, bundles):
audit rows are append-only and keep the time they were written."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from distribution import releases
from distribution.models import BundleObject, Feed, FeedVersion, Release
from distribution.services import feed_create
from hashlist import services
from hashlist.models import Change, Proposal
from members.models import Holding, SyncClient
from tests.factories import approved_entry, member_with_token


def _move_back(
    *,
    since_change: int,
    since_proposal: int,
    since_release: int,
    by: dt.timedelta,
    wait: dt.timedelta,
) -> None:
    proposals = Proposal.objects.filter(pk__gt=since_proposal).order_by("pk")
    for n, proposal in enumerate(proposals):
        # Some proposals wait longer than others, so the median and the 90th percentile differ.
        created = proposal.created_at - by - dt.timedelta(hours=n * n)
        reviewed = proposal.reviewed_at - by + wait if proposal.reviewed_at else None
        Proposal.objects.filter(pk=proposal.pk).update(created_at=created, reviewed_at=reviewed)
    for change in Change.objects.filter(pk__gt=since_change):
        Change.objects.filter(pk=change.pk).update(approved_at=change.approved_at - by + wait)
    # Releases cut in this step: by the test (release_cut) or by the cut each approval asks
    # for after commit (which runs at once when tasks run eagerly, as in the browser tests).
    for release in Release.objects.filter(version__gt=since_release):
        moved = release.created_at - by + wait
        Release.objects.filter(pk=release.pk).update(created_at=moved)
        versions = FeedVersion.objects.filter(version=release.version)
        versions.update(created_at=moved)
        for version in versions:
            BundleObject.objects.filter(
                sha256__in=[version.delta_sha256, version.snapshot_sha256]
            ).update(created_at=moved)


def build_history(analyst: Any, reviewer: Any, admin: Any, *, weeks: int = 5) -> dict[str, Any]:
    """``weeks`` weeks of curation and releases, one release a week, the oldest ``weeks - 1``
    weeks ago: more entries each week, a regrade and a retraction some weeks. Returns the
    feeds and the releases."""
    feed_create(actor=admin, name="md5-all", algorithms=["md5"])
    feed_create(actor=admin, name="sha1-category-a", algorithms=["sha1"], categories=["A"])
    entries: list[Any] = []
    for index, weeks_ago in enumerate(range(weeks - 1, -1, -1)):
        last_change = Change.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        last_proposal = Proposal.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        last_release = Release.objects.order_by("-version").values_list("version", flat=True)
        since_release = last_release.first() or 0
        for _ in range(2 + index):
            hashes = [
                {"algorithm": "md5", "value": _hash("md5")},
                {"algorithm": "sha1", "value": _hash("sha1")},
            ]
            entries.append(approved_entry(analyst, reviewer, hashes=hashes))
        if index % 2 == 1:
            regrade = services.proposal_regrade(
                actor=analyst,
                entry_id=entries[0].pk,
                grading={"category": "B" if entries[0].category == "A" else "A"},
            )
            services.proposal_approve(actor=reviewer, proposal_id=regrade.pk)
            entries[0].refresh_from_db()
        if index == weeks - 2:
            retract = services.proposal_retract(
                actor=analyst, entry_id=entries[1].pk, reason="synthetic: found to be wrong"
            )
            services.proposal_approve(actor=reviewer, proposal_id=retract.pk)
        releases.release_cut()
        _move_back(
            since_change=last_change,
            since_proposal=last_proposal,
            since_release=since_release,
            by=dt.timedelta(weeks=weeks_ago, days=1),
            wait=dt.timedelta(hours=2 + 3 * index),
        )
    return {"feeds": list(Feed.objects.order_by("name")), "releases": list(Release.objects.all())}


def build_fleet(admin: Any, feed: Feed) -> list[SyncClient]:
    """Four clients of active members: current, one version behind for 30 minutes, several
    versions behind for days, and one that never acknowledged."""
    now = timezone.now()
    versions = list(FeedVersion.objects.filter(feed=feed).order_by("version"))
    clients = []
    for name, held, since in (
        ("current", versions[-1], None),
        ("recent", versions[-2], dt.timedelta(minutes=30)),
        ("stale", versions[0], dt.timedelta(days=3)),
        ("silent", None, None),
    ):
        member, _token = member_with_token(admin, name=f"member-{name}", feeds=(feed.name,))
        client = SyncClient.objects.get(member=member)
        clients.append(client)
        if held is None:
            continue
        Holding.objects.create(
            client=client,
            feed=feed,
            version=held.version,
            state_digest=held.state_digest,
            digest_matches=True,
            acked_at=now,
        )
        if since is not None:
            # The first version the client lacks was published ``since`` ago.
            FeedVersion.objects.filter(feed=feed, version__gt=held.version).filter(
                version=FeedVersion.objects.filter(feed=feed, version__gt=held.version)
                .order_by("version")
                .values("version")[:1]
            ).update(created_at=now - since)
    return clients


def _hash(algorithm: str) -> str:
    from tests.conftest import synthetic

    return synthetic(algorithm)
