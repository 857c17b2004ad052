"""Fault tests (marker ``faults``, set by each module's ``pytestmark``): each starts its own
production-mode stack (``tests.faults.stack``) and breaks a part of it. Outside CI a machine
without the server binaries skips them loudly; in CI (CI=true) that fails the run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.faults.stack import DiskUnavailable, Stack, missing_binaries, start_stack

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _refuse(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " — in CI nothing may be skipped", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The stack; ``@pytest.mark.small_bundle_disk`` puts its bundle store on a 1 MiB tmpfs."""
    missing = missing_binaries()
    if missing:
        _refuse("the fault tests need " + ", ".join(missing))
    small = request.node.get_closest_marker("small_bundle_disk") is not None
    try:
        running = start_stack(small_bundle_disk=small)
    except DiskUnavailable as exc:
        _refuse(f"cannot mount a small tmpfs for the bundle store ({exc}); needs root")
        raise
    try:
        yield running
    finally:
        running.stop()
        for process in (running.web, running.worker, running.beat):
            if "Traceback" in process.log() and os.environ.get("HASHSYNC_FAULTS_SHOW_LOGS"):
                print(f"--- {process.name} log ---\n{process.log()[-5000:]}")
