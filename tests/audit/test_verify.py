"""``verify_chain`` passes a genuine history and names the first event that was changed,
removed, inserted or appended behind the chain head's back. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from audit.chain import digest_of
from audit.models import AuditEvent
from audit.verify import verify_chain
from tests.audit.tampering import (
    append_only_triggers_off,
    change_reason,
    delete_middle,
    forged_event,
)

pytestmark = pytest.mark.django_db


def test_chain_verifies_on_a_clean_history(history):
    report = verify_chain()
    assert report.ok, report.problem
    assert report.first_bad_seq is None
    assert report.events_checked == history[-1].lane_seq
    assert (report.head_seq, report.head_digest) == (history[-1].lane_seq, history[-1].digest)
    assert [lane.lane for lane in report.lanes] == [0]


# --- Tampering is detected --------------------------------------------------------------------
# Each tamper returns (the global seq of the event where the break shows, or None when the lane
# has no event there; the lane position the break is reported at).


def _change_reason(history: list[AuditEvent]) -> tuple[int | None, int]:
    change_reason(history)
    return history[2].seq, history[2].lane_seq


def _change_after_json(history: list[AuditEvent]) -> tuple[int | None, int]:
    target = history[3]  # the rejection
    AuditEvent.objects.filter(pk=target.pk).update(after={"status": "approved"})
    return target.seq, target.lane_seq


def _delete_middle(history: list[AuditEvent]) -> tuple[int | None, int]:
    delete_middle(history)
    # Reported at the missing position; the link goes to the next event present.
    return history[3].seq, history[2].lane_seq


def _delete_last(history: list[AuditEvent]) -> tuple[int | None, int]:
    target = history[-1]
    AuditEvent.objects.filter(pk=target.pk).delete()
    return history[-2].seq, target.lane_seq


def _insert_rechained(history: list[AuditEvent]) -> tuple[int | None, int]:
    # Make room at position 2 (highest first: lane_seq is unique) and insert a forged event
    # that links correctly to its predecessor. The forgery itself is consistent; the first row
    # that no longer checks out is the genuine event moved up behind it.
    for event in reversed(history[2:]):
        AuditEvent.objects.filter(pk=event.pk).update(lane_seq=event.lane_seq + 1)
    forged_event(
        seq=history[-1].seq + 1000, prev_digest=history[1].digest, lane_seq=history[2].lane_seq
    )
    return history[2].seq, history[2].lane_seq + 1


def _reorder(history: list[AuditEvent]) -> tuple[int | None, int]:
    # Swap two events' places in the lane: the walk meets the later one where the earlier one
    # was, and it does not link there (before its digest, which covers lane_seq, is checked).
    a, b = history[2], history[3]
    AuditEvent.objects.filter(pk=b.pk).update(lane_seq=10_000)
    AuditEvent.objects.filter(pk=a.pk).update(lane_seq=b.lane_seq)
    AuditEvent.objects.filter(pk=b.pk).update(lane_seq=a.lane_seq)
    return b.seq, a.lane_seq


def _rewrite_last_with_valid_digest(history: list[AuditEvent]) -> tuple[int | None, int]:
    last = AuditEvent.objects.get(pk=history[-1].pk)
    last.reason = "rewritten"
    AuditEvent.objects.filter(pk=last.pk).update(reason=last.reason, digest=digest_of(last))
    return last.seq, last.lane_seq


def _append_without_advancing_head(history: list[AuditEvent]) -> tuple[int | None, int]:
    # INSERT is allowed, so this needs no trigger bypass: a chained event appended without
    # taking the lane head's lock (the head still names the previous last event).
    forged = forged_event(seq=history[-1].seq + 1000, prev_digest=history[-1].digest)
    return forged.seq, forged.lane_seq


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_change_reason, "was altered"),
        (_change_after_json, "was altered"),
        (_delete_middle, "is missing"),
        (_delete_last, "removed from the end"),
        (_insert_rechained, "does not link to the event before it"),
        (_reorder, "does not link to the event before it"),
        (_rewrite_last_with_valid_digest, "its head records"),
        (_append_without_advancing_head, "beyond its head"),
    ],
    ids=[
        "changed-reason",
        "changed-after-json",
        "deleted-middle-event",
        "deleted-last-event",
        "rechained-insertion",
        "reordered",
        "last-event-rewritten-with-valid-digest",
        "appended-without-advancing-head",
    ],
)
def test_verify_chain_names_the_first_tampered_event(
    history, tamper: Callable[[list[AuditEvent]], tuple[int | None, int]], problem: str
):
    with append_only_triggers_off():
        first_bad_seq, first_bad_lane_seq = tamper(history)

    report = verify_chain()

    assert not report.ok
    assert report.first_bad_lane == 0
    assert report.first_bad_seq == first_bad_seq
    assert problem in report.problem
    [lane] = report.lanes
    assert lane.first_bad_lane_seq == first_bad_lane_seq
    assert report.events_checked == min(first_bad_lane_seq, len(history) + 1) - 1
