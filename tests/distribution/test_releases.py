"""The release cutter: versions, feed deltas, state digests, manifests, snapshots."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.utils import timezone

from distribution import keys, releases
from distribution.models import Feed, FeedEntry, FeedVersion, Manifest, Release
from distribution.storage import open_object
from hashlist import services
from hashlist.models import Change
from hashsync_client.format import ALGORITHM_IDS, Op, decode_grading, encode_grading, read_bundle
from hashsync_client.lthash import LtHash16, element
from hashsync_client.signing import parse_keyring_unverified, verify_keyring_chain, verify_manifest
from tests.conftest import synthetic
from tests.factories import approved_entry

pytestmark = pytest.mark.django_db


def make_feed(name: str = "all", **filters: Any) -> Feed:
    feed = Feed.objects.create(name=name, **filters)
    releases.release_cut()  # publishes the new feed (empty or not)
    feed.refresh_from_db()
    return feed


def trusted_keyring():
    envelopes = keys.keyring_envelopes()
    first = parse_keyring_unverified(envelopes[0])
    return verify_keyring_chain(envelopes, pinned_root_keyids=first.root_keyids, now=timezone.now())


def latest_manifest(feed: Feed) -> dict:
    row = Manifest.objects.filter(feed=feed).order_by("-id").first()
    assert row is not None
    return verify_manifest(
        bytes(row.envelope), keyring=trusted_keyring(), now=timezone.now(), feed=feed.name
    )


def bundle_records(sha256: str) -> list:
    with open_object(sha256) as handle:
        _, records = read_bundle(handle)
        return list(records)


def member_digest(feed: Feed) -> str:
    digest = LtHash16()
    digest.add(
        element(m.algorithm, bytes(m.value), m.grading) for m in FeedEntry.objects.filter(feed=feed)
    )
    return digest.hexdigest()


def test_an_approved_entry_is_published_in_the_next_release(analyst, reviewer):
    feed = make_feed()
    md5 = synthetic("md5")
    entry = approved_entry(analyst, reviewer, hashes=[{"algorithm": "md5", "value": md5}])

    release = releases.release_cut()

    assert release is not None and release.change_count == 1
    assert Change.objects.get(entry=entry).release == release.version
    feed.refresh_from_db()
    assert feed.version == release.version and feed.entry_count == 1
    manifest = latest_manifest(feed)
    assert manifest["version"] == release.version
    assert manifest["state_digest"] == member_digest(feed)
    assert manifest["state_digest"] == LtHash16(bytes(feed.lthash)).hexdigest()
    [record] = bundle_records(manifest["delta"]["sha256"])
    assert (record.algorithm, record.value.hex(), record.op) == ("md5", md5, Op.UPSERT)
    assert decode_grading(record.grading).category == "A"


def test_a_cut_with_nothing_to_release_does_nothing():
    make_feed()
    before = Release.objects.count()
    assert releases.release_cut() is None
    assert Release.objects.count() == before


def test_removals_carry_the_reason(analyst, reviewer):
    feed = make_feed("cat-a", categories=["A"])
    regraded = approved_entry(analyst, reviewer, category="A")
    retracted = approved_entry(analyst, reviewer, category="A")
    two = [
        {"algorithm": "md5", "value": synthetic("md5")},
        {"algorithm": "sha1", "value": synthetic("sha1")},
    ]
    trimmed = approved_entry(analyst, reviewer, category="A", hashes=two)
    releases.release_cut()

    for proposal in (
        services.proposal_regrade(actor=analyst, entry_id=regraded.pk, grading={"category": "B"}),
        services.proposal_retract(actor=analyst, entry_id=retracted.pk, reason="synthetic test"),
        services.proposal_remove_hash(
            actor=analyst,
            entry_id=trimmed.pk,
            algorithm="sha1",
            value=two[1]["value"],
            comment="synthetic test",
        ),
    ):
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    releases.release_cut()

    manifest = latest_manifest(feed)
    reasons = {r.value.hex(): r.op for r in bundle_records(manifest["delta"]["sha256"])}
    assert reasons == {
        bytes(regraded.hashes.get().value).hex(): Op.REGRADED_OUT,
        bytes(retracted.hashes.get().value).hex(): Op.RETRACTED,
        two[1]["value"]: Op.HASH_REMOVED,
    }
    feed.refresh_from_db()
    assert feed.entry_count == manifest["entry_count"] == 1
    assert manifest["state_digest"] == member_digest(feed)


def test_changes_that_cancel_out_in_one_release_publish_nothing_for_the_feed(analyst, reviewer):
    feed = make_feed()
    version_before = feed.version
    entry = approved_entry(analyst, reviewer)
    retract = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="synthetic")
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)

    release = releases.release_cut()

    assert release is not None and release.change_count == 2
    feed.refresh_from_db()
    assert feed.version == version_before  # nothing net changed for this feed
    assert not FeedVersion.objects.filter(feed=feed, version=release.version).exists()


def test_a_regrade_within_a_feed_is_an_upsert_with_the_new_grading(analyst, reviewer):
    feed = make_feed()
    entry = approved_entry(analyst, reviewer, category="A")
    releases.release_cut()
    regrade = services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "C"})
    services.proposal_approve(actor=reviewer, proposal_id=regrade.pk)
    releases.release_cut()

    [record] = bundle_records(latest_manifest(feed)["delta"]["sha256"])
    assert record.op == Op.UPSERT
    assert decode_grading(record.grading).category == "C"


def test_feed_filters_select_algorithms_and_gradings(analyst, reviewer):
    pdq_feed = make_feed("pdq-baseline", algorithms=["pdq"], baseline_only=True)
    hashes = [
        {"algorithm": "pdq", "value": synthetic("pdq")},
        {"algorithm": "md5", "value": synthetic("md5")},
    ]
    approved_entry(analyst, reviewer, hashes=hashes, baseline=True)
    approved_entry(
        analyst, reviewer, hashes=[{"algorithm": "pdq", "value": synthetic("pdq")}], baseline=False
    )
    releases.release_cut()

    [record] = bundle_records(latest_manifest(pdq_feed)["delta"]["sha256"])
    assert (record.algorithm, record.value.hex()) == ("pdq", hashes[0]["value"])


def test_a_new_feed_is_published_with_a_snapshot_of_the_existing_list(analyst, reviewer):
    entries = [approved_entry(analyst, reviewer) for _ in range(3)]
    releases.release_cut()

    feed = make_feed("late")

    assert feed.entry_count == 3
    manifest = latest_manifest(feed)
    assert manifest["delta"] is None
    snapshot = bundle_records(manifest["snapshot"]["sha256"])
    assert sorted(r.value for r in snapshot) == sorted(bytes(e.hashes.get().value) for e in entries)
    assert manifest["state_digest"] == member_digest(feed)


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


def test_manifests_of_a_feed_form_a_chain(analyst, reviewer):
    feed = make_feed()
    for _ in range(2):
        approved_entry(analyst, reviewer)
        releases.release_cut()
    rows = list(Manifest.objects.filter(feed=feed).order_by("id"))
    assert len(rows) == 3
    assert rows[0].previous_sha256 == ""
    for earlier, later in itertools.pairwise(rows):
        assert later.previous_sha256 == earlier.sha256


def test_resigning_renews_only_manifests_close_to_expiry(analyst, reviewer, settings):
    feed = make_feed()
    approved_entry(analyst, reviewer)
    releases.release_cut()
    assert releases.manifest_resign() == []
    later = timezone.now() + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS - 1)
    assert releases.manifest_resign(now=later) == [feed.name]
    newest = Manifest.objects.filter(feed=feed).order_by("-id").first()
    assert newest is not None and newest.issued_at == later


def test_grading_codes_round_trip():
    code = encode_grading("B", "14-15", True, "A2", "video")
    assert tuple(decode_grading(code)) == ("B", "14-15", True, "A2", "video")
    assert ALGORITHM_IDS["md5"] == 1
