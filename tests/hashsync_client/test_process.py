"""The client as a process: killed with SIGKILL in the middle of applying a delta, and
``watch`` stopped cleanly by SIGTERM. Run through ``python -m hashsync_client`` with the token
in the environment, as a member would run it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from hashsync_client.api import HashsyncClient
from hashsync_client.apply import STALL_ENV
from hashsync_client.config import Config, save_config
from tests.hashsync_client.conftest import FEED, assert_holds, changed
from tests.hashsync_client.fakeserver import FakeHashsync, synthetic_entries
from tests.utils import wait_for


def run_client(
    config: Config, tmp_path: Path, token: str, *args: str, **env: str
) -> subprocess.Popen[str]:
    path = tmp_path / "config.json"
    if not path.exists():
        save_config(config, path)
    environment = {**os.environ, "HASHSYNC_TOKEN": token, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "hashsync_client", "--config", str(path), *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored_version(config: Config) -> int | None:
    try:
        with sqlite3.connect(f"file:{config.store_path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT version FROM feeds WHERE name = ?", (FEED,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def test_sigkill_in_the_middle_of_applying_a_delta_leaves_the_previous_version(
    config: Config, server: FakeHashsync, tmp_path: Path
):
    first = synthetic_entries(3000, seed=21)
    server.publish(FEED, first)
    with HashsyncClient(config, token=server.token) as client:
        assert client.sync(retries=0).ok
    # A big delta (>1 apply batch) so rows are being written when the process dies.
    second = changed(first, seed=22, add=12_000, regrade=500, remove=500)
    server.publish(FEED, second, snapshot=False)
    marker = tmp_path / "applying"

    process = run_client(
        config, tmp_path, server.token, "sync", "--no-progress", **{STALL_ENV: str(marker)}
    )
    try:
        wait_for(marker.exists, timeout=60, what="the client to be inside the apply")
    finally:
        process.kill()  # SIGKILL
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    with HashsyncClient(config, token=server.token) as client:
        assert_holds(client, 1, first)  # previous version, intact (integrity_check ok)
        report = client.sync(retries=0)
        assert report.ok, report.errors()
        assert_holds(client, 2, second)


def test_watch_syncs_and_stops_cleanly_on_sigterm(
    config: Config, server: FakeHashsync, tmp_path: Path
):
    entries = synthetic_entries(50, seed=31)
    server.publish(FEED, entries)

    process = run_client(config, tmp_path, server.token, "watch", "--interval", "3600")
    try:
        wait_for(lambda: stored_version(config) == 1, timeout=60, what="the first sync")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    assert "stopped" in stderr
    assert server.token not in stderr
    with HashsyncClient(config, token=server.token) as client:
        assert_holds(client, 1, entries)
