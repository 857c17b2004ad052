"""Publication's side of the change-log hook: an approval schedules a cut after it commits."""

from __future__ import annotations

from typing import Any

from distribution import tasks
from hashlist import services
from tests.factories import propose_entry


def test_approval_schedules_a_release_cut_once_it_commits(
    analyst, reviewer, settings, monkeypatch, django_capture_on_commit_callbacks
):
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.release_cut_task, "apply_async", lambda **kw: sent.append(kw))
    proposal = propose_entry(analyst)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    assert sent == []  # nothing is sent before the approval commits

    for callback in callbacks:
        callback()
    assert sent == [{"countdown": settings.HASHSYNC_RELEASE_DEBOUNCE_SECONDS}]


def test_in_process_tasks_log_no_broker_warning_or_per_task_line(
    analyst, reviewer, caplog, django_capture_on_commit_callbacks
):
    # The embedded default has no broker: kombu used to warn "No hostname was supplied" on
    # every approval, and every in-process task logged a "succeeded" line.
    proposal = propose_entry(analyst)

    with caplog.at_level("INFO"), django_capture_on_commit_callbacks(execute=True):
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)

    assert not [r for r in caplog.records if r.name.startswith(("kombu", "celery.app.trace"))]
    assert any("Release" in r.getMessage() for r in caplog.records)  # the cut did run
