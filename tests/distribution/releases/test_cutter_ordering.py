"""Releases never skip a change or release one twice, whatever order approvals commit in
(PostgreSQL, real concurrent transactions)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from distribution import releases
from distribution.models import Feed, FeedEntry, FeedVersion, Release
from hashlist import services
from hashlist.models import Change
from hashsync.roles import ANALYST, REVIEWER
from hashsync_client.format import Op
from hashsync_client.lthash import LtHash16, element
from tests.distribution.releases.conftest import bundle_records
from tests.factories import propose_entry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TIMEOUT = 30


@pytest.fixture(autouse=True)
def _cuts_only_when_the_test_says(monkeypatch: pytest.MonkeyPatch) -> None:
    # Approvals normally ask for a cut on commit; here the test decides when cuts run.
    monkeypatch.setattr("distribution.tasks.schedule_release_cut", lambda: None)


def _apply_deltas(feed: Feed) -> dict:
    held: dict = {}
    for fv in FeedVersion.objects.filter(feed=feed).order_by("version"):
        for record in bundle_records(fv.delta_sha256) if fv.delta_sha256 else []:
            if record.op == Op.UPSERT:
                held[(record.algorithm, record.value)] = record.grading
            else:
                del held[(record.algorithm, record.value)]
    return held


def test_a_change_committing_after_a_later_one_is_released_next_not_skipped(make_user):
    analyst, reviewer = make_user(ANALYST), make_user(REVIEWER)
    Feed.objects.create(name="all")
    releases.release_cut()
    early, late = propose_entry(analyst), propose_entry(analyst)
    approved, commit_now, failure = threading.Event(), threading.Event(), []

    def approve_early_but_commit_late() -> None:
        # The window being tested: an approval has written its change-log row (taking the lower
        # id) and has not committed yet. (A full approval would also take the audit-chain lock
        # here, which would make the later approval wait; bulk-import approvals write thousands
        # of change rows before that point, so the window is real.)
        try:
            with transaction.atomic():
                # Marked approved first, as proposal_approve does: the database refuses a
                # change of a proposal that is not (hashlist migration 0005).
                services._mark_reviewed(early, actor=reviewer, status="approved", reason="")
                services._apply(early, approved_at=timezone.now())
                approved.set()
                assert commit_now.wait(TIMEOUT)
        except BaseException as exc:  # surfaced by the main thread
            failure.append(exc)
            approved.set()
        finally:
            connection.close()

    thread = threading.Thread(target=approve_early_but_commit_late)
    thread.start()
    assert approved.wait(TIMEOUT) and not failure
    services.proposal_approve(actor=reviewer, proposal_id=late.pk)  # commits first

    first = releases.release_cut()  # runs while the early change is still uncommitted
    commit_now.set()
    thread.join(TIMEOUT)
    assert not failure
    second = releases.release_cut()

    assert first is not None and second is not None
    assert (first.version, second.version) == (first.version, first.version + 1)
    early_change = Change.objects.get(proposal=early)
    late_change = Change.objects.get(proposal=late)
    assert early_change.pk < late_change.pk  # ids follow approval, not commit, order
    assert late_change.release == first.version
    assert early_change.release == second.version
    assert releases.release_cut() is None  # nothing left, nothing released twice

    feed = Feed.objects.get(name="all")
    held = _apply_deltas(feed)
    members = {
        (m.algorithm, bytes(m.value)): m.grading for m in FeedEntry.objects.filter(feed=feed)
    }
    assert held == members and len(held) == 2
    digest = LtHash16()
    digest.add(element(a, v, g) for (a, v), g in held.items())
    assert (
        digest.hexdigest() == FeedVersion.objects.filter(feed=feed).latest("version").state_digest
    )


def test_concurrent_cuts_hand_out_each_version_once(make_user):
    analyst, reviewer = make_user(ANALYST), make_user(REVIEWER)
    Feed.objects.create(name="all")
    releases.release_cut()
    for _ in range(5):
        services.proposal_approve(actor=reviewer, proposal_id=propose_entry(analyst).pk)
    start, results, failures = threading.Barrier(3, timeout=TIMEOUT), [], []

    def cut() -> None:
        try:
            start.wait()
            results.append(releases.release_cut())
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=cut) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)

    assert not failures
    made: list[Any] = [r for r in results if r is not None]
    assert len(made) == 1 and made[0].change_count == 5
    assert Release.objects.filter(version=made[0].version).count() == 1
    assert not Change.objects.filter(release__isnull=True).exists()
