"""Domain errors: each has a stable machine-readable code and a message a person can act on.

Services raise these; ``hashsync.api.exception_handler`` is the one place that turns them into
HTTP responses, so every API error has the same JSON shape.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        # Extra response headers (WWW-Authenticate on 401, Retry-After on 429).
        self.headers = headers or {}


class InvalidInput(DomainError):
    code = "invalid_input"
    http_status = 400


class PermissionDenied(DomainError):
    code = "permission_denied"
    http_status = 403


class FourEyesViolation(PermissionDenied):
    code = "four_eyes_violation"


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class NotAuthenticated(DomainError):
    code = "authentication_failed"
    http_status = 401

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(
            message, code=code, headers={"WWW-Authenticate": 'Bearer realm="hashsync"'}
        )


class RateLimited(DomainError):
    """429 with ``Retry-After`` (whole seconds, at least 1)."""

    code = "throttled"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(
            message,
            code=code,
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
