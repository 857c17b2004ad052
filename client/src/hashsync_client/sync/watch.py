"""The ``watch`` loop: sync, wait, repeat, paced by the server and backing off on failure."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from hashsync_client.errors import AuthError, ClientError
from hashsync_client.sync.report import SyncReport
from hashsync_client.sync.syncer import Syncer

logger = logging.getLogger(__name__)


def watch(
    syncer: Syncer,
    *,
    stop: threading.Event,
    interval: float,
    on_cycle: Callable[[SyncReport], None] | None = None,
    make_syncer: Callable[[], Syncer] | None = None,
) -> None:
    """Sync, wait, repeat until ``stop`` is set (SIGTERM). After a success the wait is the
    configured interval (never below the server's poll interval) plus up to 20% jitter;
    after a failure it backs off exponentially, and never shorter than a ``Retry-After``.
    Closes the syncer's connection when it returns."""
    failures = 0
    backoff = syncer.backoff
    try:
        while not stop.is_set():
            report = syncer.sync_all()
            if on_cycle is not None:
                on_cycle(report)
            floor = float(report.poll_interval or 0)
            if report.ok:
                failures = 0
                delay = backoff.jitter(max(interval, floor))
            else:
                failures += 1
                delay = max(backoff.delay(failures - 1), floor, report.retry_after or 0.0)
                logger.info("next attempt in %.0f s", delay)
                auth_failed = any(isinstance(e, AuthError) for e in report.errors())
                if make_syncer is not None and auth_failed:
                    # Perhaps the operator replaced the token: read it again for next time.
                    with contextlib.suppress(ClientError):
                        replacement = make_syncer()
                        syncer.api.close()
                        syncer = replacement
            if stop.wait(delay):
                break
    finally:
        syncer.api.close()
