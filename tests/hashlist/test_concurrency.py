"""Real concurrency on PostgreSQL: threads with their own database connections race on the
same proposal, hash, entry and audit chain, released together by a barrier.

PostgreSQL only: the tests commit, and the flush after each test must remove audit rows, which
PostgreSQL's TRUNCATE does and SQLite's DELETE (refused by the append-only triggers) cannot.
Users come from ``make_user``, which re-creates the role groups the flush removed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, transaction

from audit import verify
from audit.models import AuditEvent
from audit.verify import verify_chain
from hashlist import services
from hashlist.models import Change, Entry, Hash, Proposal, ProposalStatus
from hashsync.errors import Conflict
from hashsync.roles import ANALYST, REVIEWER
from tests.conftest import synthetic
from tests.factories import approved_entry, propose_entry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TIMEOUT = 30  # seconds; generous, only reached when something deadlocks


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread and connection, all released at the same moment.

    Returns, per call in order, its result or the domain error code it raised. Any other
    exception fails the test.
    """
    barrier = threading.Barrier(len(calls), timeout=TIMEOUT)

    def run(call: Callable[[], Any]) -> Any:
        try:
            barrier.wait()
            try:
                return call()
            except Conflict as exc:
                return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(run, call) for call in calls]
        return [future.result(timeout=TIMEOUT) for future in futures]


def approve(reviewer: Any, proposal: Proposal) -> Callable[[], str]:
    def call() -> str:
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk, reason="race")
        return "approved"

    return call


def approvals_of(proposal: Proposal) -> int:
    return AuditEvent.objects.filter(
        action="proposal.approve", object_type="proposal", object_id=str(proposal.pk)
    ).count()


def test_two_reviewers_approving_one_proposal_at_once_yields_one_approval(make_user):
    analyst, first, second = make_user(ANALYST), make_user(REVIEWER), make_user(REVIEWER)
    proposal = propose_entry(analyst)

    outcomes = race(approve(first, proposal), approve(second, proposal))

    assert sorted(outcomes) == ["approved", "proposal_not_pending"]
    proposal.refresh_from_db()
    winner = first if outcomes[0] == "approved" else second
    assert proposal.status == ProposalStatus.APPROVED
    assert proposal.reviewer_id == winner.pk
    assert Change.objects.filter(proposal=proposal).count() == 1
    assert Entry.objects.count() == 1
    assert approvals_of(proposal) == 1
    assert verify_chain().ok


def test_two_proposals_of_one_hash_approved_at_once_put_it_on_one_entry_only(make_user):
    analyst, analyst2 = make_user(ANALYST), make_user(ANALYST)
    first_reviewer, second_reviewer = make_user(REVIEWER), make_user(REVIEWER)
    shared = {"algorithm": "sha256", "value": synthetic("sha256")}
    # Each proposal also carries a hash of its own, which must not survive a failed approval.
    one = propose_entry(analyst, hashes=[shared, {"algorithm": "md5", "value": synthetic("md5")}])
    two = propose_entry(analyst2, hashes=[shared, {"algorithm": "md5", "value": synthetic("md5")}])

    outcomes = race(approve(first_reviewer, one), approve(second_reviewer, two))

    assert sorted(outcomes) == ["approved", "hash_exists"]
    winner, loser = (one, two) if outcomes[0] == "approved" else (two, one)
    winner.refresh_from_db()
    loser.refresh_from_db()
    assert Hash.objects.filter(algorithm="sha256").count() == 1
    assert Hash.objects.get(algorithm="sha256").entry_id == winner.entry_id
    # Nothing of the losing approval is left: no entry, no hash, no change, no event.
    assert Entry.objects.count() == 1
    assert Hash.objects.count() == 2
    assert Change.objects.count() == 1
    assert loser.status == ProposalStatus.PENDING
    assert (loser.entry_id, loser.reviewer_id) == (None, None)
    assert approvals_of(winner) == 1
    assert approvals_of(loser) == 0
    assert verify_chain().ok


def test_two_regrades_of_one_entry_approved_at_once_leave_the_second_stale(make_user):
    analyst, analyst2 = make_user(ANALYST), make_user(ANALYST)
    first_reviewer, second_reviewer = make_user(REVIEWER), make_user(REVIEWER)
    entry = approved_entry(analyst, first_reviewer)
    to_b = services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "B"})
    to_c = services.proposal_regrade(actor=analyst2, entry_id=entry.pk, grading={"category": "C"})

    outcomes = race(approve(first_reviewer, to_b), approve(second_reviewer, to_c))

    assert sorted(outcomes) == ["approved", "proposal_stale"]
    winner, loser = (to_b, to_c) if outcomes[0] == "approved" else (to_c, to_b)
    entry.refresh_from_db()
    loser.refresh_from_db()
    assert entry.category == winner.payload["grading"]["category"]
    assert entry.revision == 2
    assert list(Change.objects.filter(entry=entry).values_list("kind", "proposal_id")) == [
        ("create", entry.proposals.get(kind="create").pk),
        ("regrade", winner.pk),
    ]
    assert loser.status == ProposalStatus.PENDING
    assert approvals_of(loser) == 0
    assert verify_chain().ok


def test_concurrent_audited_actions_keep_the_chain_intact_and_gapless(make_user):
    threads, per_thread = 8, 5
    analysts = [make_user(ANALYST) for _ in range(threads)]
    start = AuditEvent.objects.count()

    def work(analyst: Any) -> Callable[[], int]:
        def call() -> int:
            for _ in range(per_thread):
                propose_entry(analyst)
                # An event written in a transaction that then rolls back takes its seq with it.
                with pytest.raises(RuntimeError), transaction.atomic():
                    propose_entry(analyst)
                    raise RuntimeError("rolled back")
            return per_thread

        return call

    outcomes = race(*(work(analyst) for analyst in analysts))

    assert outcomes == [per_thread] * threads
    total = start + threads * per_thread
    # Staff events share lane 0: gapless there. The global seq comes from a sequence, which
    # keeps the rolled-back appends' numbers: it only orders.
    events = list(AuditEvent.objects.order_by("seq").values_list("lane", "lane_seq"))
    assert events == [(0, n) for n in range(1, total + 1)]
    report = verify_chain()
    assert report.ok, report.problem
    assert report.events_checked == report.head_seq == total
    assert Proposal.objects.count() == threads * per_thread


def test_verify_chain_stays_intact_while_events_are_appended_during_the_walk(
    make_user, monkeypatch
):
    analyst = make_user(ANALYST)
    propose_entry(analyst)
    walk = verify._lane_events

    def append_from_another_connection() -> None:
        try:
            propose_entry(analyst)
        finally:
            connection.close()

    def walk_after_a_concurrent_append(*args: Any, **kwargs: Any) -> Any:
        # The verifier has read the chain head; another request appends and commits now.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(append_from_another_connection).result(timeout=TIMEOUT)
        yield from walk(*args, **kwargs)

    monkeypatch.setattr(verify, "_lane_events", walk_after_a_concurrent_append)
    report = verify_chain()
    monkeypatch.undo()

    assert report.ok, report.problem
    assert AuditEvent.objects.count() == 2
    assert verify_chain().head_seq == 2
