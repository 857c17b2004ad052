"""Request ids: every request carries one, every log line and audit event names it."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hashsync_request_id", default=None
)
# A caller-supplied id is accepted only if it is short and plain, so it cannot smuggle
# anything into logs or the audit trail.
# \Z, not $: "$" also matches before a trailing newline, which then broke the response header.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}\Z")


# The request being served, for log lines that name its actor (hashsync.logs); never read to
# decide anything.
_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "hashsync_request", default=None
)


def current_request_id() -> str | None:
    return _request_id.get()


def current_request() -> HttpRequest | None:
    return _request.get()


def bind_request_id(value: str | None) -> contextvars.Token[str | None]:
    """Bind a request id outside HTTP (a Celery task, a management command); only a plain,
    short id is kept, as for HTTP requests."""
    return _request_id.set(value if value and _ACCEPTABLE_ID.match(value) else None)


def unbind_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


class RequestIdMiddleware:
    header = "HTTP_X_REQUEST_ID"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.META.get(self.header, "")
        request_id = supplied if _ACCEPTABLE_ID.match(supplied) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        request_token = _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(request_token)
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True
