"""Snapshots: a snapshot plus later deltas is the next snapshot; building is idempotent;
the policy that says when one is due."""

from __future__ import annotations

import pytest

from distribution import releases
from distribution.models import Feed, FeedVersion, Manifest
from hashlist import services
from hashsync_client.format import Op
from hashsync_client.lthash import LtHash16, element
from tests.distribution.releases.conftest import bundle_records, latest_manifest, make_feed
from tests.factories import approved_entry

pytestmark = pytest.mark.django_db


def test_snapshot_plus_later_deltas_equals_the_next_snapshot(analyst, reviewer):
    feed = make_feed()
    for _ in range(3):
        approved_entry(analyst, reviewer)
    releases.release_cut()
    first = releases.snapshot_build(feed_id=feed.pk)
    assert first is not None
    held = {(r.algorithm, r.value): r.grading for r in bundle_records(first.snapshot_sha256)}

    retracted = approved_entry(analyst, reviewer)
    releases.release_cut()
    proposal = services.proposal_retract(actor=analyst, entry_id=retracted.pk, reason="synthetic")
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    approved_entry(analyst, reviewer)
    releases.release_cut()

    for fv in FeedVersion.objects.filter(feed=feed, version__gt=first.version).order_by("version"):
        for r in bundle_records(fv.delta_sha256):
            if r.op == Op.UPSERT:
                held[(r.algorithm, r.value)] = r.grading
            else:
                del held[(r.algorithm, r.value)]
    second = releases.snapshot_build(feed_id=feed.pk)
    assert second is not None
    rebuilt = {(r.algorithm, r.value): r.grading for r in bundle_records(second.snapshot_sha256)}
    assert rebuilt == held
    digest = LtHash16()
    digest.add(element(a, v, g) for (a, v), g in held.items())
    assert digest.hexdigest() == second.state_digest == latest_manifest(feed)["state_digest"]
    assert latest_manifest(feed)["snapshot"]["sha256"] == second.snapshot_sha256


def test_snapshot_build_is_idempotent(analyst, reviewer):
    feed = make_feed()
    approved_entry(analyst, reviewer)
    releases.release_cut()
    assert releases.snapshot_build(feed_id=feed.pk) is not None
    manifests = Manifest.objects.count()
    assert releases.snapshot_build(feed_id=feed.pk) is None
    assert Manifest.objects.count() == manifests


def _versions(feed: Feed, *sizes: tuple[str, int]) -> None:
    """Feed versions 1, 2, … with a snapshot or a delta of the given size each."""
    for version, (kind, size) in enumerate(sizes, start=1):
        FeedVersion.objects.create(
            feed=feed,
            version=version,
            previous_version=version - 1 or None,
            entry_count=1,
            state_digest="0" * 64,
            **{f"{kind}_sha256": f"{version:064x}", f"{kind}_size": size},
        )


@pytest.fixture
def feed() -> Feed:
    return Feed.objects.create(name="policy")


def test_no_snapshot_is_due_for_a_feed_without_versions(feed):
    assert not releases.snapshot_due(feed, force=True)


def test_no_snapshot_is_due_when_the_current_version_has_one(feed):
    _versions(feed, ("snapshot", 1000), ("delta", 900), ("snapshot", 1100))
    assert not releases.snapshot_due(feed, force=True)


def test_a_snapshot_is_due_when_deltas_outweigh_half_the_last_one(feed):
    _versions(feed, ("snapshot", 1000), ("delta", 300), ("delta", 201))
    assert releases.snapshot_due(feed)


def test_a_snapshot_is_not_due_while_deltas_stay_under_half_the_last_one(feed):
    _versions(feed, ("snapshot", 1000), ("delta", 300), ("delta", 200))
    assert not releases.snapshot_due(feed)
    assert releases.snapshot_due(feed, force=True)
