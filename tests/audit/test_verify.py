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
    assert report.events_checked == history[-1].seq
    assert (report.head_seq, report.head_digest) == (history[-1].seq, history[-1].digest)


# --- Tampering is detected --------------------------------------------------------------------


def _change_after_json(history: list[AuditEvent]) -> int:
    target = history[3]  # the rejection
    AuditEvent.objects.filter(pk=target.pk).update(after={"status": "approved"})
    return target.seq


def _delete_last(history: list[AuditEvent]) -> int:
    target = history[-1]
    AuditEvent.objects.filter(pk=target.pk).delete()
    return target.seq


def _insert_rechained(history: list[AuditEvent]) -> int:
    # Make room at position 2 (highest first: seq is unique) and insert a forged event that
    # links correctly to its predecessor. The forgery itself is consistent; the first row that
    # no longer checks out is the genuine event moved up behind it.
    for event in reversed(history[2:]):
        AuditEvent.objects.filter(pk=event.pk).update(seq=event.seq + 1)
    forged_event(seq=history[2].seq, prev_digest=history[1].digest)
    return history[2].seq + 1


def _rewrite_last_with_valid_digest(history: list[AuditEvent]) -> int:
    last = AuditEvent.objects.get(pk=history[-1].pk)
    last.reason = "rewritten"
    AuditEvent.objects.filter(pk=last.pk).update(reason=last.reason, digest=digest_of(last))
    return last.seq


def _append_without_advancing_head(history: list[AuditEvent]) -> int:
    # INSERT is allowed, so this needs no trigger bypass: a chained event appended without
    # taking the chain-head lock (the head still names the previous last event).
    return forged_event(seq=history[-1].seq + 1, prev_digest=history[-1].digest).seq


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (change_reason, "was altered"),
        (_change_after_json, "was altered"),
        (delete_middle, "is missing"),
        (_delete_last, "removed from the end"),
        (_insert_rechained, "does not link to the event before it"),
        (_rewrite_last_with_valid_digest, "chain head"),
        (_append_without_advancing_head, "chain head"),
    ],
    ids=[
        "changed-reason",
        "changed-after-json",
        "deleted-middle-event",
        "deleted-last-event",
        "rechained-insertion",
        "last-event-rewritten-with-valid-digest",
        "appended-without-advancing-head",
    ],
)
def test_verify_chain_names_the_first_tampered_event(
    history, tamper: Callable[[list[AuditEvent]], int], problem: str
):
    with append_only_triggers_off():
        first_bad = tamper(history)

    report = verify_chain()

    assert not report.ok
    assert report.first_bad_seq == first_bad
    assert problem in report.problem
    assert f"#{first_bad}" in report.problem
    assert report.events_checked == first_bad - 1
