"""The release cutter: versions, feed deltas, state digests, a new feed's first publication."""

from __future__ import annotations

import logging

import pytest

from audit.models import AuditEvent
from distribution import releases
from distribution.models import FeedEntry, FeedVersion, Release
from distribution.releases import cutter
from distribution.releases.cutter import WITHHELD
from hashlist import services
from hashlist.models import Change
from hashsync_client.format import ALGORITHM_IDS, Op, decode_grading, encode_grading
from hashsync_client.lthash import LtHash16
from tests.conftest import synthetic
from tests.distribution.releases.conftest import (
    bundle_records,
    latest_manifest,
    make_feed,
    member_digest,
)
from tests.factories import approved_entry
from tests.hashlist.change_tampering import (
    approval_triggers_dropped,
    forged_after,
    insert_change_sql,
    pending_hash_addition,
)

pytestmark = pytest.mark.django_db


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


def test_grading_codes_round_trip():
    code = encode_grading("B", "14-15", True, "A2", "video")
    assert tuple(decode_grading(code)) == ("B", "14-15", True, "A2", "video")
    assert ALGORITHM_IDS["md5"] == 1


# --- The cutter checks approval again -----------------------------------------------------------


def test_an_unapproved_change_is_withheld_logged_and_audited_once_and_blocks_nothing(
    analyst, reviewer, caplog
):
    """Someone who can alter the schema dropped the approval triggers and inserted a change for
    a pending proposal: it is not released, the approved changes around it are."""
    feed = make_feed()
    entry, pending, md5 = pending_hash_addition(analyst, reviewer)
    releases.release_cut()  # the entry's creation
    with approval_triggers_dropped():
        forged = insert_change_sql(
            entry_id=entry.pk, proposal_id=pending.pk, after=forged_after(entry, md5)
        )
    approved_entry(analyst, reviewer)  # a genuine change after the forged one

    with caplog.at_level(logging.WARNING, logger="distribution.releases.cutter"):
        # One change per cut: the withheld one, lower in id, must not take the slot.
        first = releases.release_cut(max_changes=1)
        second = releases.release_cut(max_changes=1)

    assert first is not None and first.change_count == 1
    assert Change.objects.filter(release__isnull=True).get().pk == forged
    assert not FeedEntry.objects.filter(feed=feed, value=bytes.fromhex(md5)).exists()
    assert second is None  # nothing left that may be released; not a loop of empty cuts
    withheld = AuditEvent.objects.filter(action=WITHHELD, object_id=str(forged))
    assert [(e.object_type, e.after["proposal"]) for e in withheld] == [("change", pending.pk)]
    [warning] = [
        r for r in caplog.records if r.name == cutter.__name__ and r.levelno == logging.WARNING
    ]
    assert f"Change {forged} " in warning.getMessage()
    assert md5 not in caplog.text and md5.upper() not in caplog.text


def test_the_change_limit_never_splits_one_proposal_across_releases(analyst, reviewer):
    make_feed()
    first = approved_entry(analyst, reviewer)
    # Two more entries whose changes belong to the first entry's proposal: one proposal with
    # three changes, as a bulk import has.
    more = [approved_entry(analyst, reviewer), approved_entry(analyst, reviewer)]
    unit = Change.objects.get(entry=first).proposal_id
    Change.objects.filter(entry__in=more).update(proposal_id=unit)
    last = approved_entry(analyst, reviewer)

    release = releases.release_cut(max_changes=1)
    following = releases.release_cut(max_changes=1)

    assert release is not None and release.change_count == 3
    assert set(Change.objects.filter(proposal_id=unit).values_list("release", flat=True)) == {
        release.version
    }
    assert following is not None and Change.objects.get(entry=last).release == following.version
