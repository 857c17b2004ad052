#!/usr/bin/env python
"""The cost per request of ``hashsync.metrics.MetricsMiddleware`` (request counter and latency
histogram), in the two modes it runs in: in-process values (development, one process) and
``PROMETHEUS_MULTIPROC_DIR`` (gunicorn: values in memory-mapped files shared by the workers).

Times the middleware around a view that does nothing, against the same view called directly,
over a request that resolved to a named route (as every real request has), and reports the
difference per request: the median of 7 runs of 50,000 calls each. No database, no network.

    python bench/metrics_middleware.py        # prints "<id> <name> <value> <unit>" lines
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLS = 50_000
RUNS = 7


def measure() -> float:
    """Nanoseconds the middleware adds to one request (this process's mode)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashsync.settings")
    django.setup()
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from hashsync.metrics import MetricsMiddleware

    response = HttpResponse(b"ok")
    request = RequestFactory().get("/healthz")
    request.resolver_match = resolve("/healthz")

    def view(_request: object) -> HttpResponse:
        return response

    wrapped = MetricsMiddleware(view)

    def run(handler: object) -> float:
        started = time.perf_counter()
        for _ in range(CALLS):
            handler(request)  # type: ignore[operator]
        return (time.perf_counter() - started) / CALLS

    bare, with_metrics = [], []
    for _ in range(RUNS):
        bare.append(run(view))
        with_metrics.append(run(wrapped))
    return (statistics.median(with_metrics) - statistics.median(bare)) * 1e9


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(f"{measure():.0f}")
        return
    env = {
        **os.environ,
        "HASHSYNC_ENV": "development",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'client/src'}",
    }
    env.pop("DATABASE_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    single = subprocess.run(
        [sys.executable, __file__, "--child"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as multiproc_dir:
        multi = subprocess.run(
            [sys.executable, __file__, "--child"],
            env={**env, "PROMETHEUS_MULTIPROC_DIR": multiproc_dir},
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    print(f"M1 metrics_middleware_per_request_single_process {int(single) / 1000:.1f} us")
    print(f"M1 metrics_middleware_per_request_multiprocess {int(multi) / 1000:.1f} us")


if __name__ == "__main__":
    main()
