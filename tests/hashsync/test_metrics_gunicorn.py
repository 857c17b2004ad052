"""/metrics under gunicorn with several worker processes, as deployed: deploy/gunicorn.conf.py,
PROMETHEUS_MULTIPROC_DIR, workers recycled after a few requests. Every request counted by any
worker, dead ones included, is in the sum /metrics serves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hashsync.test_metrics import sample
from tests.utils import wait_for

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> bytes | None:
    # Workers are recycled every 3 requests, and on a busy machine a new one can take many
    # seconds to import Django: the request waits in the listen backlog meanwhile. The test
    # is about counting, not latency, so it waits long.
    try:
        with urllib.request.urlopen(url, timeout=90) as response:  # noqa: S310 - localhost
            return bytes(response.read())
    except OSError:
        return None


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "HASHSYNC_ENV": "development",
        "HASHSYNC_VAR_DIR": str(tmp_path / "var"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "DJANGO_SETTINGS_MODULE": "hashsync.settings",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'client' / 'src'}",
    }
    # A stale file from an earlier run: on_starting must remove it, not add it in.
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_1.db").write_bytes(b"stale")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    gunicorn_bin = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [
            str(gunicorn_bin),
            "-c",
            "deploy/gunicorn.conf.py",
            "--max-requests",
            "3",
            "--max-requests-jitter",
            "0",
            "--access-logfile",
            "/dev/null",
            "hashsync.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{base}/healthz"), timeout=60, what="gunicorn to answer")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_requests_served_by_every_worker_are_summed(gunicorn: str) -> None:
    before = sample(
        (_get(f"{gunicorn}/metrics") or b"").decode(),
        "hashsync_http_requests_total",
        route="health",
        method="GET",
        status="2xx",
    )
    for _ in range(REQUESTS):
        assert _get(f"{gunicorn}/healthz") is not None
    text = (_get(f"{gunicorn}/metrics") or b"").decode()
    # Workers were recycled every 3 requests: the counts of dead workers are still there.
    assert (
        sample(text, "hashsync_http_requests_total", route="health", method="GET", status="2xx")
        == (before or 0) + REQUESTS
    )
    # The scrape-time collectors read the node's database.
    assert sample(text, "hashsync_review_queue_depth") == 0
    assert sample(text, "hashsync_audit_chain_length") is not None
