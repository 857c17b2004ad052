"""Helpers of the sync API tests: requests with a member token, what a request could write,
and the ``World`` of two members the ``world`` fixture (tests/sync/conftest.py) builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from distribution.models import Feed, FeedVersion
from members import services as member_services
from members import tokens
from members.models import Ack, ApiToken, Feedback, Holding, SyncClient
from tests.conftest import synthetic
from tests.factories import approved_entry

ALL_SCOPES = ("sync", "lookup", "feedback")
STAFF_PASSWORD = "synthetic-staff-password"
REASON = "synthetic test: this image is a landscape photo"


# --- helpers ------------------------------------------------------------------------------------


def _send(
    method: str, path: str, body: Any = None, *, token: str | None = None, **extra: Any
) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return getattr(APIClient(), method)(path, body, format="json", **headers, **extra)


def _content(response: Any) -> bytes:
    """The body of a plain or a streamed response. Reading a stream to its end closes it (the
    test client's wrapper does, as a WSGI server would); closing it again would send Django's
    request_finished with the handler that closes the test's database connection attached."""
    if not response.streaming:
        return bytes(response.content)
    return b"".join(response.streaming_content)


def _same_refusal(response: Any) -> tuple[int, str, str, Any]:
    """What a caller can learn from an error (the request id aside)."""
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"], error.get("details")


def _last_seq() -> int:
    last = AuditEvent.objects.order_by("-seq").first()
    return last.seq if last else 0


def _state() -> tuple[Any, ...]:
    """Everything a sync request could write, except a token's last use (``_last_used``)."""
    return (
        _last_seq(),
        Ack.objects.count(),
        Holding.objects.count(),
        Feedback.objects.count(),
        sorted(SyncClient.objects.values_list("pk", "digest_mismatch_at")),
    )


def _last_used() -> list[tuple[int, Any]]:
    return sorted(ApiToken.objects.values_list("pk", "last_used_at"))


def _listed(analyst: Any, reviewer: Any, algorithm: str) -> tuple[str, str]:
    """An approved entry with one synthetic hash: (algorithm, canonical value)."""
    value = synthetic(algorithm)
    approved_entry(analyst, reviewer, hashes=[{"algorithm": algorithm, "value": value}])
    return algorithm, value


def _issue(admin: Any, member: str, *, client: str = "edge-1", scopes: Any = ALL_SCOPES) -> str:
    _, secret = member_services.token_create(
        actor=admin, member_name=member, client_name=client, scopes=list(scopes)
    )
    return secret


def _token_row(secret: str) -> ApiToken:
    return ApiToken.objects.get(digest=tokens.digest(secret))


def _plan_path(feed: str, from_version: Any) -> str:
    return f"{reverse('sync-plan', kwargs={'name': feed})}?from_version={from_version}"


def _current(feed: Feed) -> FeedVersion:
    feed.refresh_from_db()
    return FeedVersion.objects.get(feed=feed, version=feed.version)


@dataclass(frozen=True)
class World:
    """Two members, alpha (md5 feed) and beta (sha1 feed), each with a client and a token with
    every scope, and three hashes listed only in each one's feed."""

    admin: Any
    feed_a: Feed
    feed_b: Feed
    token_a: str
    token_b: str
    a_hashes: list[tuple[str, str]]
    b_hashes: list[tuple[str, str]]
    bundle_a: str
    bundle_b: str


Call = tuple[str, Any]  # path, body


def _ack_call(w: World) -> Call:
    current = _current(w.feed_a)
    body = {"version": current.version, "state_digest": current.state_digest}
    return reverse("sync-ack", kwargs={"name": w.feed_a.name}), body


def _lookup_call(w: World) -> Call:
    algorithm, value = w.a_hashes[0]
    return reverse("sync-lookup"), {"hashes": [{"algorithm": algorithm, "value": value}]}


def _match_call(w: World) -> Call:
    algorithm, value = w.a_hashes[0]
    return reverse("sync-match"), {"hashes": [{"algorithm": algorithm, "value": value}]}


def _feedback_call(w: World) -> Call:
    algorithm, value = w.a_hashes[0]
    body = {"algorithm": algorithm, "value": value, "kind": "false_positive", "reason": REASON}
    return reverse("sync-feedback"), body
