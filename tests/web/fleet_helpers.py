"""A small fleet for the fleet and dispute pages: one feed with four releases (the third
retracts an entry) and five members whose clients are current, behind, stale (missed the
retraction), mismatched and never acked. Built through the services (curation, the release
cutter, the ack the sync API records). Synthetic hashes only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from distribution import releases
from distribution.models import Feed, FeedVersion, Release
from hashlist import services
from hashlist.models import Entry
from members.models import ApiToken
from sync import services as sync_services
from sync.auth import MemberPrincipal
from tests.factories import approved_entry, member_with_token

FEED = "md5-all"
WRONG_DIGEST = "0" * 64


@dataclass
class Fleet:
    entries: list[Entry] = field(default_factory=list)
    retraction: Release | None = None
    newest: Release | None = None


def ack(member: str, version: int, *, digest: str | None = None, feed: str = FEED) -> None:
    """The member's client acknowledges ``version`` of the feed (with the server's digest
    unless told otherwise), as the sync API records it."""
    token = ApiToken.objects.select_related("client__member").get(client__member__name=member)
    feed_obj = Feed.objects.get(name=feed)
    published = FeedVersion.objects.get(feed=feed_obj, version=version)
    sync_services.ack_record(
        principal=MemberPrincipal(token),
        feed=feed_obj,
        version=version,
        state_digest=digest or published.state_digest,
    )


def published_ago(version: int, age: dt.timedelta) -> None:
    """Pretend the feed's ``version`` was published ``age`` ago (for behind-in-time)."""
    when = timezone.now() - age
    FeedVersion.objects.filter(version=version).update(created_at=when)
    Release.objects.filter(version=version).update(created_at=when)


def _cut() -> Release:
    """Cut a release of what waits; where approvals cut their own release at once (the
    browser tests' eager tasks), the newest one is it."""
    release = releases.release_cut()
    return release or Release.objects.order_by("-version").first()  # type: ignore[return-value]


def build_fleet(analyst: Any, reviewer: Any, admin: Any) -> Fleet:
    """In the page tests the releases are 1 (two entries), 2 (a third), 3 (the first
    retracted) and 4 (a fourth); with eager tasks each approval is a release of its own."""
    world = Fleet()
    Feed.objects.create(name=FEED, algorithms=["md5"])
    world.entries = [approved_entry(analyst, reviewer), approved_entry(analyst, reviewer)]
    first = _cut()
    world.entries.append(approved_entry(analyst, reviewer))
    second = _cut()
    retract = services.proposal_retract(
        actor=analyst, entry_id=world.entries[0].pk, reason="synthetic: wrongly listed"
    )
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)
    world.retraction = _cut()
    world.entries.append(approved_entry(analyst, reviewer))
    world.newest = _cut()
    assert first.version < second.version < world.retraction.version < world.newest.version

    for name in ("acme", "globex", "initech", "umbrella", "hooli"):
        member_with_token(admin, name=name, feeds=(FEED,))
    for release in Release.objects.filter(version__lt=world.retraction.version):
        published_ago(release.version, dt.timedelta(days=9))
    published_ago(world.retraction.version, dt.timedelta(days=3))
    published_ago(world.newest.version, dt.timedelta(hours=2))
    ack("acme", world.newest.version)  # current
    ack("globex", world.retraction.version)  # behind by one version, for two hours
    ack("initech", second.version)  # stale: lacks the three-day-old retraction
    ack("umbrella", world.newest.version, digest=WRONG_DIGEST)  # not the published list
    # hooli never acks.
    return world


def dispute(member: str, entry: Entry, *, reason: str = "synthetic: this is our own logo") -> Any:
    """The member's client disputes one of the entry's hashes, as the sync API records it."""
    token = ApiToken.objects.select_related("client__member").get(client__member__name=member)
    listed = entry.hashes.first()
    assert listed is not None
    return sync_services.feedback_create(
        principal=MemberPrincipal(token),
        algorithm=listed.algorithm,
        value=bytes(listed.value).hex(),
        kind="false_positive",
        reason=reason,
    )
