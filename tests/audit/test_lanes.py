"""Audit lanes: member clients' events go to their own lanes, each a gapless chain with its own
head; lane 0's anchors commit to the member lanes' heads; ``verify_chain`` walks every lane and
names each lane's first break — including a member lane cut short behind its head's back.
Runs on SQLite and PostgreSQL (the concurrency test: PostgreSQL only)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, transaction

from audit import selectors
from audit.chain import digest_of
from audit.models import AuditChainHead, AuditEvent
from audit.services import ANCHOR, audit_anchor, audit_record, member_lane
from audit.verify import verify_chain
from tests.audit.tampering import append_only_triggers_off

LANES = 4
# Clients 1 and 5 share lane 2, client 2 has lane 3 (1 + id mod 4).
CLIENTS = (1, 2, 5)


@pytest.fixture(autouse=True)
def four_lanes(settings: Any) -> None:
    settings.HASHSYNC_AUDIT_LANES = LANES


def member_event(client_id: int, n: int = 0) -> AuditEvent:
    with transaction.atomic():
        return audit_record(
            actor=None,
            actor_label=f"member:acme/edge-{client_id}",
            client_id=client_id,
            action="sync.plan",
            object_type="feed",
            object_id=1,
            after={"feed": "md5-all", "version": n, "token": "hs_abcdefgh"},
        )


def staff_event(n: int = 0) -> AuditEvent:
    with transaction.atomic():
        return audit_record(actor=None, action="test.staff", object_type="test", object_id=n)


@pytest.fixture
def fleet(db: None) -> dict[int, list[AuditEvent]]:
    """Staff and member events interleaved; the member events per lane, in lane order."""
    lanes: dict[int, list[AuditEvent]] = {}
    staff_event()
    for n in range(4):
        for client in CLIENTS:
            event = member_event(client, n)
            lanes.setdefault(event.lane, []).append(event)
        staff_event(n)
    return lanes


def lane_of(fleet: dict[int, list[AuditEvent]], lane: int = 2) -> list[AuditEvent]:
    return fleet[lane]


@pytest.mark.django_db
def test_member_events_go_to_their_clients_lanes_and_staff_events_to_lane_0(fleet):
    assert [member_lane(c) for c in CLIENTS] == [2, 3, 2]
    assert sorted(fleet) == [2, 3]
    for events in fleet.values():
        assert [e.lane_seq for e in events] == list(range(1, len(events) + 1))
        assert all(e.format == 2 for e in events)
        assert events[1].prev_digest == events[0].digest
    staff = list(AuditEvent.objects.filter(lane=0).order_by("lane_seq"))
    assert [e.lane_seq for e in staff] == [1, 2, 3, 4, 5]
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert len(set(seqs)) == len(seqs) == 17
    assert selectors.trail_length() == 17


@pytest.mark.django_db
def test_verify_walks_every_lane(fleet):
    report = verify_chain()

    assert report.ok, report.problem
    assert [(lane.lane, lane.events_checked) for lane in report.lanes] == [(0, 5), (2, 8), (3, 4)]
    assert report.events_checked == 17
    assert all(lane.ok for lane in report.lanes)
    assert report.lanes[1].head_digest == fleet[2][-1].digest


@pytest.mark.django_db
def test_an_anchor_records_every_member_lane_head_once(fleet):
    anchor = audit_anchor()

    assert anchor is not None and anchor.lane == 0 and anchor.action == ANCHOR
    assert anchor.after == {
        "lanes": [[lane, len(events), events[-1].digest] for lane, events in sorted(fleet.items())]
    }
    assert audit_anchor() is None  # nothing moved: the trail does not grow
    member_event(2)
    assert audit_anchor() is not None
    assert verify_chain().ok


# --- Tampering in a member lane ---------------------------------------------------------------


def _edit(lane: list[AuditEvent]) -> int:
    AuditEvent.objects.filter(pk=lane[3].pk).update(reason="edited")
    return lane[3].lane_seq


def _delete_middle(lane: list[AuditEvent]) -> int:
    AuditEvent.objects.filter(pk=lane[3].pk).delete()
    return lane[3].lane_seq


def _reorder(lane: list[AuditEvent]) -> int:
    a, b = lane[3], lane[4]
    AuditEvent.objects.filter(pk=b.pk).update(lane_seq=10_000)
    AuditEvent.objects.filter(pk=a.pk).update(lane_seq=b.lane_seq)
    AuditEvent.objects.filter(pk=b.pk).update(lane_seq=a.lane_seq)
    return a.lane_seq


def _move_to_another_lane(lane: list[AuditEvent]) -> int:
    # Taken out of lane 2 and appended to lane 1 with its links intact: format 2 covers the
    # lane, so it breaks where it went, and lane 2 has a hole where it was.
    AuditEvent.objects.filter(pk=lane[-1].pk).update(lane=1, lane_seq=1)
    return lane[-1].lane_seq


def _delete_tail(lane: list[AuditEvent]) -> int:
    # The head row still names the deleted event.
    AuditEvent.objects.filter(pk=lane[-1].pk).delete()
    return lane[-1].lane_seq


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_edit, "was altered"),
        (_delete_middle, "is missing"),
        (_reorder, "does not link"),
        (_move_to_another_lane, "removed from the end"),
        (_delete_tail, "removed from the end"),
    ],
    ids=["edited", "deleted-middle", "reordered", "moved-lane", "deleted-tail"],
)
def test_tampering_in_a_member_lane_is_named_in_that_lane(fleet, tamper, problem):
    with append_only_triggers_off():
        bad = tamper(lane_of(fleet))

    report = verify_chain()

    assert not report.ok
    lanes = {lane.lane: lane for lane in report.lanes}
    assert problem in lanes[2].problem and lanes[2].problem.startswith("lane 2:")
    assert lanes[2].first_bad_lane_seq == bad
    assert lanes[0].ok and lanes[3].ok  # the other lanes still verify and are reported
    if tamper is _move_to_another_lane:
        # Lane 1 had no head: the moved event is walked there and does not link.
        assert report.first_bad_lane == 1 and "does not link" in lanes[1].problem
    else:
        assert report.first_bad_lane == 2 and report.problem.startswith("lane 2:")


def _cut_tail_and_rewind_head(events: list[AuditEvent], keep: int) -> None:
    """What someone with the application's rights (UPDATE on heads) and the table owner's
    (DELETE past the triggers) could do: drop a lane's tail and make its head agree."""
    with append_only_triggers_off():
        AuditEvent.objects.filter(pk__in=[e.pk for e in events[keep:]]).delete()
    AuditChainHead.objects.filter(lane=events[0].lane).update(
        seq=events[keep - 1].lane_seq, digest=events[keep - 1].digest
    )


@pytest.mark.django_db
def test_a_tail_cut_after_an_anchor_is_detected_even_with_the_head_rewound(fleet):
    anchor = audit_anchor()
    assert anchor is not None
    events = lane_of(fleet)

    _cut_tail_and_rewind_head(events, keep=5)

    report = verify_chain()
    assert not report.ok and report.first_bad_lane == 2
    assert f"the anchor #{anchor.seq} on lane 0 recorded #{len(events)}" in report.problem
    assert "removed from the end" in report.problem


@pytest.mark.django_db
def test_a_tail_cut_before_the_anchor_is_detected_by_the_head(fleet):
    events = lane_of(fleet)
    with append_only_triggers_off():
        AuditEvent.objects.filter(pk=events[-1].pk).delete()
    # The anchor after the cut commits to the head, which still names the deleted event.
    audit_anchor()

    report = verify_chain()
    assert not report.ok and report.first_bad_lane == 2
    assert "its head records" in report.problem or "anchor" in report.problem


@pytest.mark.django_db
def test_a_member_lane_rewritten_with_valid_digests_is_caught_by_its_anchor(fleet):
    anchor = audit_anchor()
    assert anchor is not None
    events = lane_of(fleet)
    # Rewrite the lane's second event and re-chain everything after it, head included: the
    # lane alone verifies, but the anchor on lane 0 recorded the old last digest.
    prev = events[0].digest
    with append_only_triggers_off():
        for event in events[1:]:
            row = AuditEvent.objects.get(pk=event.pk)
            row.prev_digest = prev
            if event.lane_seq == 2:
                row.reason = "rewritten"
            row.digest = digest_of(row)
            AuditEvent.objects.filter(pk=row.pk).update(
                prev_digest=row.prev_digest, reason=row.reason, digest=row.digest
            )
            prev = row.digest
    AuditChainHead.objects.filter(lane=2).update(digest=prev)

    report = verify_chain()
    assert not report.ok and report.first_bad_lane == 2
    assert "is not the event the anchor" in report.problem


@pytest.mark.django_db
def test_events_in_a_lane_whose_head_row_was_deleted_are_still_walked(fleet):
    AuditChainHead.objects.filter(lane=3).delete()

    report = verify_chain()
    assert not report.ok and report.first_bad_lane == 3
    assert "beyond its head" in report.problem


# --- Concurrency ------------------------------------------------------------------------------

TIMEOUT = 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_threads_appending_to_different_lanes_at_once_keep_every_lane_gapless():
    threads, per_thread = 8, 20
    barrier = threading.Barrier(threads, timeout=TIMEOUT)

    def work(client_id: int) -> int:
        try:
            barrier.wait()
            for n in range(per_thread):
                member_event(client_id, n)
                # A rolled-back append gives its lane_seq back (its seq stays used).
                with pytest.raises(RuntimeError), transaction.atomic():
                    member_event(client_id, n)
                    raise RuntimeError("rolled back")
                if n % 5 == 0:
                    staff_event(n)
            return per_thread
        finally:
            connection.close()

    # Clients 1..8 over 4 lanes: two threads share each lane, every lane has two writers.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(work, client) for client in range(1, threads + 1)]
        assert [f.result(timeout=TIMEOUT * 4) for f in futures] == [per_thread] * threads

    for lane in range(LANES + 1):
        positions = list(
            AuditEvent.objects.filter(lane=lane)
            .order_by("lane_seq")
            .values_list("lane_seq", flat=True)
        )
        expected = threads * per_thread // LANES if lane else threads * (per_thread // 5)
        assert positions == list(range(1, expected + 1)), lane
    report = verify_chain()
    assert report.ok, report.problem
    assert report.events_checked == selectors.trail_length() == AuditEvent.objects.count()


@pytest.mark.django_db
def test_beat_runs_the_anchor_task_which_anchors_the_lanes(fleet, settings):
    from audit.tasks import anchor_task
    from hashsync.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["audit-anchor"]
    assert entry["task"] == anchor_task.name == "audit.anchor"
    assert entry["schedule"] == float(settings.HASHSYNC_AUDIT_ANCHOR_SECONDS)
    assert "audit.anchor" in app.tasks

    anchor_task.apply().get()

    anchor = AuditEvent.objects.get(action=ANCHOR)
    assert [lane for lane, _, _ in anchor.after["lanes"]] == [2, 3]
