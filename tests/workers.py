"""A real Celery worker process for the services pass: Redis broker, the test's PostgreSQL
database, the test's media directory."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import connection

from hashsync.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


def redis_url_for_this_process() -> str:
    # Each xdist worker gets its own Redis database, so a Celery worker started by one test
    # process never takes a task meant for another test process's database.
    base = os.environ.get("HASHSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return f"{base}/{1 + index % 14}"


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] or "postgres"
    if s["PASSWORD"]:
        auth += f":{s['PASSWORD']}"
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextmanager
def celery_sending_to(broker: str, *, eager: bool = False) -> Iterator[None]:
    """Point this process's Celery producer at ``broker`` (or back to in-process execution),
    restoring the previous set-up afterwards. Celery caches its producer pool on the app, so
    it is dropped on both sides of the switch; kombu's process-global pools, keyed by broker
    URL, are left open for reuse."""
    saved = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)

    def drop_cached_pool() -> None:
        celery_app._pool = None  # type: ignore[attr-defined]
        celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]

    drop_cached_pool()
    celery_app.conf.update(task_always_eager=eager, broker_url=broker)
    try:
        yield
    finally:
        celery_app.conf.update(task_always_eager=saved[0], broker_url=saved[1])
        drop_cached_pool()


class Worker:
    def __init__(self, process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
        self.process = process
        self.lines = lines
        self.log: list[str] = []

    def wait_for_line(self, needle: str, timeout: float = 60.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.log.append(line)
            if needle in line:
                return
        raise AssertionError(f"worker never logged {needle!r}; log:\n" + "".join(self.log[-40:]))


@contextmanager
def celery_worker(
    *,
    media_root: Path | None = None,
    extra_env: dict[str, str] | None = None,
    fresh_broker: bool = True,
) -> Iterator[Worker]:
    """A worker sharing this test's database, broker, uploads, keys and bundle storage."""
    from django.conf import settings

    media_root = media_root or Path(settings.MEDIA_ROOT)
    bundles: Any = settings.STORAGES["bundles"]
    bundle_options = bundles["OPTIONS"]
    broker = redis_url_for_this_process()
    import redis

    if fresh_broker:  # no task left over from an earlier test (keep them to test redelivery)
        redis.Redis.from_url(broker).flushdb()
    env = {
        **os.environ,
        "HASHSYNC_ENV": "development",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "HASHSYNC_MEDIA_ROOT": str(media_root),
        "HASHSYNC_VAR_DIR": str(settings.VAR_DIR),
        "HASHSYNC_SIGNING_KEY_PATH": str(settings.HASHSYNC_SIGNING_KEY_PATH),
        "HASHSYNC_BUNDLE_ROOT": str(bundle_options["location"]),
        "HASHSYNC_RELEASE_DEBOUNCE_SECONDS": "0",
        "DB_CONN_MAX_AGE": "0",
        **(extra_env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hashsync",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    worker = Worker(process, lines)
    try:
        worker.wait_for_line("ready.")
        with celery_sending_to(broker):
            yield worker
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stdout.close()
