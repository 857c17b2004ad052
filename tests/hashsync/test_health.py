"""/healthz and /readyz: liveness touches nothing; readiness names each check, and each one
failing on its own turns the answer into 503 with Retry-After naming it."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from distribution import releases, services
from distribution.models import Manifest
from distribution.tasks import manifest_resign_task
from hashsync import health
from hashsync.roles import MEMBER_ADMIN
from tests.hashsync.test_metrics import sample, scrape
from tests.utils import assert_error

# The checks run in their own threads with their own database connections: what a test sets
# up must be committed to be seen, and what a check writes must not outlive the test.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _audit_rows_removed_before_flush(transactional_db: None) -> Iterator[None]:
    """SQLite's flush deletes row by row, which the audit trail's triggers refuse: remove the
    events a test wrote with the triggers off first (as tests/browser/conftest.py does)."""
    yield
    if connections["default"].vendor == "sqlite":
        from audit.models import AuditEvent
        from tests.audit.tampering import append_only_triggers_off

        with append_only_triggers_off():
            AuditEvent.objects.all().delete()


ALL_CHECKS = {"database", "cache", "broker", "bundle_storage", "signing_key", "manifests"}


def _closed_port() -> int:
    # Bound and closed again: nothing listens there, so a connection is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def published(make_user: Callable[..., Any]) -> str:
    """A feed with a signed manifest (and the development keys that signed it)."""
    owner = make_user(MEMBER_ADMIN, "feed-owner")
    services.feed_create(actor=owner, name="world", algorithms=["md5"])
    releases.release_cut()  # already cut after the feed's commit unless that was deferred
    assert Manifest.objects.filter(feed__name="world").exists()
    return "world"


def _ready(client: Any) -> dict[str, Any]:
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    return body


def _not_ready(client: Any, failing: str) -> dict[str, Any]:
    """Asserts the answer is 503 naming exactly ``failing``; returns its checks."""
    response = client.get("/readyz")
    error = assert_error(response, 503, "not_ready")
    assert response["Retry-After"].isdigit()
    assert failing in error["message"]
    checks = response.json()["checks"]
    assert set(checks) == ALL_CHECKS
    assert {name for name, check in checks.items() if not check["ok"]} == {failing}
    return checks


def test_healthz_answers_without_touching_the_database(
    client: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_stays_up_while_the_database_is_down(client: Any, broken_database: None) -> None:
    assert client.get("/healthz").status_code == 200


def test_readyz_is_200_with_every_check_named_when_all_pass(client: Any, published: str) -> None:
    checks = _ready(client)["checks"]
    assert set(checks) == ALL_CHECKS
    assert all(check["ok"] for check in checks.values())


def test_readyz_needs_no_credentials_and_is_not_cached(client: Any, published: str) -> None:
    response = client.get("/readyz", HTTP_AUTHORIZATION="Bearer hsk_not-a-token")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


@pytest.fixture
def broken_database() -> Iterator[None]:
    """New connections of the default alias fail (a nonexistent file on SQLite, a closed
    port on PostgreSQL); the test's own open connection is untouched."""
    settings_dict = connections.settings["default"]
    saved = dict(settings_dict)
    if connections["default"].vendor == "sqlite":
        settings_dict["NAME"] = "/nonexistent/hashsync-readyz/db.sqlite3"
    else:
        settings_dict["PORT"] = str(_closed_port())
        settings_dict["PASSWORD"] = "readyz-secret-password"
    try:
        yield
    finally:
        settings_dict.clear()
        settings_dict.update(saved)


def test_readyz_fails_on_the_database(client: Any, published: str, broken_database: None) -> None:
    # The signing key and manifest checks also read the database: both fail with it.
    response = client.get("/readyz")
    assert_error(response, 503, "not_ready")
    checks = response.json()["checks"]
    assert not checks["database"]["ok"]
    assert checks["cache"]["ok"] and checks["bundle_storage"]["ok"]
    assert "readyz-secret-password" not in response.content.decode()


def test_readyz_fails_on_a_cache_at_a_closed_port(client: Any, published: str) -> None:
    location = f"redis://:cache-secret-password@127.0.0.1:{_closed_port()}/0"
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": location,
            }
        }
    ):
        response_checks = _not_ready(client, "cache")
    assert "cache-secret-password" not in str(response_checks)


def test_readyz_fails_on_a_broker_at_a_closed_port(client: Any, published: str) -> None:
    url = f"redis://:broker-secret-password@127.0.0.1:{_closed_port()}/0"
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL=url):
        checks = _not_ready(client, "broker")
    assert "broker-secret-password" not in str(checks)


def test_readyz_fails_when_bundle_storage_cannot_write(
    client: Any, published: str, settings: Any, tmp_path: Path
) -> None:
    # A regular file where the directory should be: every write fails, as on a full or
    # read-only disk.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.STORAGES = {
        **settings.STORAGES,
        "bundles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker / "bundles")},
        },
    }
    _not_ready(client, "bundle_storage")


def test_readyz_fails_without_the_signing_key(
    client: Any, published: str, settings: Any, tmp_path: Path
) -> None:
    settings.HASHSYNC_SIGNING_KEY_PATH = tmp_path / "missing" / "signing.key"
    checks = _not_ready(client, "signing_key")
    assert "No online signing key" in checks["signing_key"]["detail"]


def test_readyz_fails_on_a_manifest_near_expiry(client: Any, published: str) -> None:
    Manifest.objects.update(expires_at=timezone.now() + dt.timedelta(hours=1))
    checks = _not_ready(client, "manifests")
    assert published in checks["manifests"]["detail"]


def test_beat_stopped_for_hours_turns_readyz_red_and_the_documented_resign_turns_it_green(
    client: Any, published: str
) -> None:
    """Beat re-signs hourly; had it been stopped long enough for the newest manifest to come
    within the re-sign horizon, /readyz names the feed, the alert's series
    (deploy/prometheus/alerts.yml, HashsyncManifestNearExpiry: under 12 h) is below its
    threshold, and the task the alert tells the operator to call puts both right."""
    before = Manifest.objects.count()
    Manifest.objects.update(expires_at=timezone.now() + dt.timedelta(hours=2))
    checks = _not_ready(client, "manifests")
    assert published in checks["manifests"]["detail"]
    assert (sample(scrape(client), "hashsync_manifest_expiry_seconds") or 0) < 12 * 3600

    manifest_resign_task.apply().get()

    assert Manifest.objects.count() == before + 1
    _ready(client)
    expiry = sample(scrape(client), "hashsync_manifest_expiry_seconds")
    assert expiry is not None and expiry > 12 * 3600


def test_readyz_ignores_a_manifest_older_than_the_feeds_newest(client: Any, published: str) -> None:
    newest = Manifest.objects.order_by("-id").first()
    assert newest is not None
    Manifest.objects.exclude(pk=newest.pk).update(expires_at=timezone.now())
    _ready(client)


def test_a_check_that_hangs_is_reported_as_timed_out(client: Any, settings: Any) -> None:
    settings.HASHSYNC_READYZ_TIMEOUT_SECONDS = 1
    release = threading.Event()
    calls = []

    def hangs() -> str:
        calls.append(1)
        release.wait(30)
        return "ok"

    health.register("hangs")(hangs)
    try:
        results = {r.name: r for r in health.run_checks()}
        again = {r.name: r for r in health.run_checks()}
    finally:
        release.set()
        del health._checks["hangs"]
    assert not results["hangs"].ok
    assert "timed out" in results["hangs"].detail
    # The next probe does not start a second thread on the hung dependency.
    assert not again["hangs"].ok
    assert "still running" in again["hangs"].detail
    assert len(calls) == 1


def test_an_unexpected_exception_is_reported_by_its_class_only() -> None:
    def leaks() -> str:
        raise RuntimeError("postgres://user:secret@db/hashsync")

    health.register("leaks")(leaks)
    try:
        results = {r.name: r for r in health.run_checks()}
    finally:
        del health._checks["leaks"]
    assert results["leaks"].detail == "RuntimeError"


@pytest.mark.services
def test_readyz_passes_with_redis_as_cache_and_broker(client: Any, published: str) -> None:
    url = os.environ.get("HASHSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    with override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
        },
        CELERY_TASK_ALWAYS_EAGER=False,
        CELERY_BROKER_URL=url,
    ):
        checks = _ready(client)["checks"]
    assert checks["broker"]["detail"] == "ok"
