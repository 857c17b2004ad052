"""Fault tests (marker ``faults``, set by each module's ``pytestmark``): each starts its own
production-mode stack (``tests.faults.stack``) and breaks a part of it. Outside CI a machine
without the server binaries skips them loudly; in CI (CI=true) that fails the run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.faults.stack import Stack, missing_binaries, start_stack

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def stack() -> Iterator[Stack]:
    missing = missing_binaries()
    if missing:
        message = "the fault tests need " + ", ".join(missing)
        if IN_CI:
            pytest.fail(message + " — in CI nothing may be skipped", pytrace=False)
        pytest.skip(message)
    running = start_stack()
    try:
        yield running
    finally:
        running.stop()
        for process in (running.web, running.worker, running.beat):
            if "Traceback" in process.log() and os.environ.get("HASHSYNC_FAULTS_SHOW_LOGS"):
                print(f"--- {process.name} log ---\n{process.log()[-5000:]}")
