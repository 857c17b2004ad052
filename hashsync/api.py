"""The one place where errors become HTTP responses.

Every error leaving the API is ``{"error": {"code": str, "message": str, "details": ...}}``
with a stable ``code``. Unexpected exceptions are logged (with the request id, never the body)
and answered with a generic ``internal_error`` so nothing internal leaks.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import set_rollback

from hashsync.errors import DomainError
from hashsync.middleware import current_request_id
from hashsync.outages import error_details, log_outage, outage_of, retry_after

logger = logging.getLogger(__name__)

_DRF_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
    (exceptions.ParseError, "malformed_request"),
    (exceptions.ValidationError, "invalid_input"),
]


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    # ``details`` is always there, so a client never has to test for it: an object, empty when
    # there is nothing more to say (docs/api.md, "Errors").
    body: dict[str, Any] = {"code": code, "message": message, "details": details or {}}
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return {"error": body}


def _validation_message(detail: Any) -> str:
    """A one-line summary of a DRF validation error, naming the first offending field."""
    if isinstance(detail, dict):
        for field, problems in detail.items():
            inner = _validation_message(problems)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _validation_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(
            error_body(exc.code, exc.message, exc.details),
            status=exc.http_status,
            headers=exc.headers,
        )
    if isinstance(exc, SuspiciousOperation):
        # Raised while reading the body (over DATA_UPLOAD_MAX_MEMORY_SIZE, too many form
        # fields): the client's fault, so a 4xx, never the generic 500 below.
        set_rollback()
        if isinstance(exc, RequestDataTooBig):
            return Response(
                error_body("request_too_large", "The request body is larger than accepted."),
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        return Response(
            error_body("bad_request", "The request could not be understood."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "error")
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        if isinstance(exc, exceptions.ValidationError):
            return Response(
                error_body(code, _validation_message(exc.detail), exc.detail),
                status=exc.status_code,
                headers=headers,
            )
        return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)
    service = outage_of(exc)
    if service is not None:
        # Not a bug: a service is down. 503 with Retry-After tells a client to come back,
        # where a 500 would leave it (or a reviewer) guessing whether anything happened.
        set_rollback()
        log_outage(service, exc, type(context.get("view")).__name__)
        return Response(
            error_body(*error_details(service)),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(retry_after())},
        )
    set_rollback()
    logger.exception("Unhandled error in API view %s", type(context.get("view")).__name__)
    return Response(
        error_body("internal_error", "The server failed to handle this request; it was logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


# Django-level handlers, for requests that never reach a DRF view (unknown URLs, CSRF, …).
@csrf_exempt
def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "No such URL."), status=404)


def json_400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body("bad_request", "The request could not be understood."), status=400
    )


def json_403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("permission_denied", "Forbidden."), status=403)


def json_500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body("internal_error", "The server failed to handle this request; it was logged."),
        status=500,
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF failures on API paths answer JSON; a page says what happened and what to do (the
    usual cause is a form left open across a sign-out or an expired session), and that
    nothing was changed. (Django logs the reason on ``django.security.csrf``.)"""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(
                "csrf_failed",
                "CSRF check failed. API clients should authenticate with a personal API token "
                "('Authorization: Bearer hsp_…') rather than a session cookie, or send the "
                "X-CSRFToken header.",
            ),
            status=403,
        )
    return render(
        request,
        "error.html",
        {
            "title": "This form has expired",
            "message": "Nothing was changed. The page it came from is out of date — usually "
            "because you signed out or your session ended meanwhile. Go back, reload the page "
            "and send the form again.",
        },
        status=403,
    )


class BinaryContentNegotiation(BaseContentNegotiation):
    """For views that answer bytes (bundles) on success and JSON errors otherwise: a client
    that asks for ``application/octet-stream`` only must not get 406 before the view runs.
    Errors are still rendered as JSON, whatever the Accept header says."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type
