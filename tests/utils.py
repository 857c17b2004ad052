from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from audit.models import AuditEvent

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds.
    For waiting on another process (a Celery worker) — never for timing assertions."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def assert_error(response: Any, status: int, *codes: str) -> dict[str, Any]:
    """The response is a JSON error with ``status`` and one of ``codes``; returns the error."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if codes:
        assert error["code"] in codes, error
    return error


def last_audit_event() -> AuditEvent | None:
    """The newest event on the audit trail, or None before the first."""
    return AuditEvent.objects.order_by("-seq").first()


def last_audit_seq() -> int:
    """The newest event's sequence number, 0 before the first: take it before an action, then
    ``audit_events_since`` it to see exactly what the action recorded."""
    last = last_audit_event()
    return last.seq if last else 0


def audit_events_since(seq: int) -> list[AuditEvent]:
    """The events appended after ``seq``, in chain order."""
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq"))
