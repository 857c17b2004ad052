"""Readiness checks: a small registry that every app adds its own checks to.

``/healthz`` (liveness) touches nothing: it answers as long as the process can serve a request.
``/readyz`` (readiness) runs every registered check and answers 503 when any fails, so a load
balancer or an orchestrator stops sending work to a node that cannot do it.

The configuration package registers what it owns (database, cache, Celery broker); an app
registers its own checks in a ``health`` module imported from its ``AppConfig.ready``
(``distribution.health``: bundle storage, the signing key, manifest expiry). The registry
imports no app, so the layering of the apps (docs/development.md) is unchanged.

Every check runs in its own thread under one deadline (``HASHSYNC_READYZ_TIMEOUT_SECONDS``):
a check that hangs (a broker that accepts the connection and never answers) is reported as
timed out instead of holding the probe. A check returns a short note on success and raises
``CheckFailed`` with a short reason on failure; any other exception is reported by its class
name only, because driver messages may name hosts, users or connection strings.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.db import connections

Check = Callable[[], str]

_checks: dict[str, Check] = {}
# Checks still running from an earlier probe (a driver stuck past the deadline): not started
# again until they return, so a hung dependency costs one thread, not one per probe.
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


class CheckFailed(Exception):
    """A check's failure, with a reason safe to show to anyone who can reach ``/readyz``."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float


def register(name: str) -> Callable[[Check], Check]:
    """Decorator: run ``check`` as part of readiness under ``name``. Registering a name again
    replaces the check (a module imported twice, or a test standing in for one)."""

    def decorate(check: Check) -> Check:
        _checks[name] = check
        return check

    return decorate


def registered() -> dict[str, Check]:
    return dict(_checks)


def _run_one(name: str, check: Check, results: dict[str, CheckResult]) -> None:
    started = time.monotonic()
    try:
        detail, ok = check(), True
    except CheckFailed as exc:
        detail, ok = str(exc), False
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}", False
    finally:
        # The thread is gone after this check: its database connections must not linger.
        connections.close_all()
        with _in_flight_lock:
            _in_flight.discard(name)
    results[name] = CheckResult(name, ok, detail, round(time.monotonic() - started, 3))


def run_checks(*, timeout: float | None = None) -> list[CheckResult]:
    """Run every registered check concurrently; a check still running at the deadline fails
    as ``timed out``. Results are in name order."""
    timeout = settings.HASHSYNC_READYZ_TIMEOUT_SECONDS if timeout is None else timeout
    results: dict[str, CheckResult] = {}
    threads = []
    for name, check in sorted(_checks.items()):
        with _in_flight_lock:
            if name in _in_flight:
                results[name] = CheckResult(
                    name, False, "still running since an earlier probe", 0.0
                )
                continue
            _in_flight.add(name)
        thread = threading.Thread(
            target=_run_one, args=(name, check, results), name=f"readyz-{name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        results.get(name) or CheckResult(name, False, f"timed out after {timeout:g} s", timeout)
        for name in sorted(_checks)
    ]


# --- The configuration's own checks ----------------------------------------------------------


@register("database")
def check_database() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


@register("cache")
def check_cache() -> str:
    # A write and a read back: pacing and bad-token counters need both.
    cache = caches["default"]
    key = f"hashsync:readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise CheckFailed("a value written to the cache could not be read back")
    cache.delete(key)
    return "ok"


@register("broker")
def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "no broker: tasks run in-process"
    from hashsync.celery import app

    timeout = settings.HASHSYNC_READYZ_TIMEOUT_SECONDS
    with app.connection_for_write(url=settings.CELERY_BROKER_URL, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        # Some transports connect lazily: open a channel, which talks to the broker.
        conn.default_channel  # noqa: B018
    return "ok"
