"""Outages (``hashsync.outages``): an unreachable database, cache or broker answers 503 with
``Retry-After``, never 500; pacing and budgets fail open, the bad-token check fails closed; an
approval survives a broker that is down when its release cut is sent.

The cache here is a Redis client pointed at a port nothing listens on: a real connection
refused, not a mock. The restarts of real servers are in tests/faults/."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError
from django.test import RequestFactory, override_settings
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError

from distribution.models import FeedVersion
from hashlist.models import Change
from hashsync import outages, views
from tests.factories import approved_entry
from tests.sync.helpers import World, _plan_path, _send
from tests.utils import assert_error
from tests.workers import celery_sending_to

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cache_down() -> Iterator[None]:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    dead = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    with override_settings(CACHES=dead):
        yield


def test_member_keeps_syncing_while_the_cache_is_down(world: World, settings: Any, cache_down):
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 60
    path = _plan_path(world.feed_a.name, 0)

    first = _send("get", path, token=world.token_a)
    again = _send("get", path, token=world.token_a)

    assert first.status_code == 200, first.content[:300]
    # Pacing still holds, counted in this process while Redis is away.
    assert_error(again, 429, "poll_too_soon")


def test_bad_token_check_fails_closed_while_the_cache_is_down(world: World, cache_down):
    path = _plan_path(world.feed_a.name, 0)
    wrong = world.token_a[:-4] + ("aaaa" if not world.token_a.endswith("aaaa") else "bbbb")

    response = _send("get", path, token=wrong)

    error = assert_error(response, 503, "service_unavailable")
    assert error["details"] == {"service": "cache"}
    assert int(response["Retry-After"]) >= 1


def test_approval_is_kept_when_the_broker_is_down_at_commit(
    analyst: Any, reviewer: Any, django_capture_on_commit_callbacks: Any, caplog: Any
):
    broker = f"redis://127.0.0.1:{_closed_port()}/0"
    with celery_sending_to(broker), django_capture_on_commit_callbacks(execute=True):
        approved_entry(analyst, reviewer, hashes=[{"algorithm": "md5", "value": "ab" * 16}])

    assert Change.objects.filter(release__isnull=True).exists()  # waits for beat's cut
    assert not FeedVersion.objects.exists()
    assert "beat's periodic cut" in caplog.text


@pytest.mark.parametrize(
    ("exc", "service"),
    [
        (OperationalError("connection refused"), "database"),
        (RedisConnectionError("refused"), "cache"),
        (BrokerError("refused"), "broker"),
        (ValueError("a bug"), None),
    ],
)
def test_errors_are_told_apart_from_outages(exc: Exception, service: str | None):
    assert outages.outage_of(exc) == service


def test_broker_error_wrapping_redis_is_the_broker():
    try:
        try:
            raise RedisConnectionError("refused")
        except RedisConnectionError as inner:
            raise BrokerError("cannot publish") from inner
    except BrokerError as exc:
        assert outages.outage_of(exc) == "broker"


def test_a_middleware_meeting_an_outage_answers_the_503_page_not_500():
    request = RequestFactory().get("/review/")
    try:
        raise OperationalError("the database system is shutting down")
    except OperationalError:
        response = views.error_500(request)

    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert b"Temporarily unavailable" in response.content
    assert b"Traceback" not in response.content


def test_an_api_path_meeting_an_outage_outside_a_view_answers_json():
    request = RequestFactory().get("/api/v1/sync/feeds/")
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        response = views.error_500(request)

    assert response.status_code == 503
    error = json.loads(response.content)["error"]
    assert (error["code"], error["details"]) == ("service_unavailable", {"service": "database"})


def test_a_bug_still_answers_500():
    request = RequestFactory().get("/api/v1/sync/feeds/")
    try:
        raise ValueError("a bug")
    except ValueError:
        response = views.error_500(request)

    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "internal_error"
