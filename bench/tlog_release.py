#!/usr/bin/env python
"""The transparency log's share of a release: one checkpoint per release against one per feed.

A release of F feeds publishes F manifests, each a leaf of the log. Until 2026-12 every append
signed its own checkpoint (F signatures, F ``Checkpoint`` rows, F cosigning tasks queued per
release); now the release transaction signs one after its last append
(``transparency.services.one_checkpoint``). This measures both in one process, on the same
database, by timing ``distribution.releases.manifest_resign`` — a real publishing transaction
that signs a manifest for every feed — with and without ``one_checkpoint`` (``per-append``
patches it out, which is exactly the former behaviour).

Set-up: a fresh database (``--database``, a PostgreSQL server URL: the bench creates and drops
``hashsync_bench_tlog``; default a temporary SQLite file), development keys in a temporary
HASHSYNC_VAR_DIR, ``--feeds`` F empty feeds published once. Then ``--releases`` re-signings of
all F feeds per mode, modes interleaved, one untimed warm-up each. No hash values at all.

    .venv/bin/python bench/tlog_release.py --feeds 1,8,32 --database postgres://postgres@127.0.0.1:5432/

Prints, per F: ``TLOG release_<F>_feeds_cpu_ms_<mode> <v> ms`` (this process's CPU time per
release, median; the database server's CPU is not in it), ``…_queries_<mode>`` (SQL statements
per release) and ``…_checkpoints_<mode>`` (checkpoints signed per release).

Then the plan's size with the log (``--plan-steps``, e.g. 1,10,50): a feed "plan-size" gets
that many releases of one synthetic change each (after the F feeds' leaves, so the tree is not
trivially small), and a member's plan from its first version — one delta step per release — is
fetched through the sync API with ``log_size`` set (consistency proof included):
``TLOG plan_<N>_behind_<S>_steps_bytes`` (the whole JSON body; S steps: the server offers a
snapshot once the deltas outweigh it), ``…_log_bytes`` (its ``log`` object) and ``…_log_share``
(percent).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "hashsync_bench_tlog"


def load() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", default="1,8,32", help="feed counts, comma-separated")
    parser.add_argument("--releases", type=int, default=15, help="timed releases per mode (15)")
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--plan-steps", default="1,10,50", help="plan sizes to measure")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hashsync-bench-tlog-"))
    admin = args.database if args.database.startswith(("postgres://", "postgresql://")) else ""
    if admin:
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        os.environ["DATABASE_URL"] = urlsplit(admin)._replace(path="/" + DB_NAME).geturl()
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    os.environ.update(
        HASHSYNC_ENV="development",
        HASHSYNC_VAR_DIR=str(work),
        HASHSYNC_TLOG_WITNESSES="",
        DJANGO_SETTINGS_MODULE="hashsync.settings",
    )
    os.environ.pop("CELERY_BROKER_URL", None)
    sys.path[:0] = [str(ROOT), str(ROOT / "client" / "src")]
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from distribution import keys, releases
    from distribution.models import Feed
    from distribution.releases import manifests
    from transparency.models import Checkpoint

    try:
        call_command("migrate", verbosity=0)
        keys.ensure_development_keys()
        print(f"# tlog_release: {connection.vendor}, {load()}", file=sys.stderr)
        made = 0
        clock = timezone.now()
        for feeds in [int(f) for f in args.feeds.split(",") if f]:
            for i in range(made, feeds):
                Feed.objects.create(name=f"synthetic-{i}", algorithms=["md5"])
            made = max(made, feeds)
            releases.release_cut()  # publishes the new feeds
            figures: dict[str, dict[str, list[float]]] = {}
            modes = {
                "one_per_release": manifests.one_checkpoint,
                "per_append": lambda: contextlib.nullcontext(),
            }
            for round_ in range(args.releases + 1):
                for mode, wrapper in modes.items():
                    manifests.one_checkpoint = wrapper  # type: ignore[assignment]
                    clock += dt.timedelta(days=30)  # every manifest is due for re-signing
                    before = Checkpoint.objects.count()
                    connection.queries_log.clear()  # a bounded deque: count from empty
                    with CaptureQueriesContext(connection) as queries:
                        cpu = time.process_time()
                        signed = releases.manifest_resign(now=clock)
                        cpu = time.process_time() - cpu
                    assert len(signed) == feeds, (signed, feeds)
                    if round_ == 0:
                        continue  # warm-up
                    row = figures.setdefault(mode, {"cpu": [], "q": [], "cp": []})
                    row["cpu"].append(cpu * 1000)
                    row["q"].append(len(queries.captured_queries))
                    row["cp"].append(Checkpoint.objects.count() - before)
            manifests.one_checkpoint = modes["one_per_release"]  # type: ignore[assignment]
            for mode, row in figures.items():
                name = f"release_{feeds}_feeds"
                print(f"TLOG {name}_cpu_ms_{mode} {statistics.median(row['cpu']):.1f} ms")
                print(f"TLOG {name}_queries_{mode} {statistics.median(row['q']):.0f} statements")
                print(f"TLOG {name}_checkpoints_{mode} {statistics.median(row['cp']):.0f}")
            print(f"# after F={feeds}: {load()}", file=sys.stderr)
        plan_sizes([int(n) for n in args.plan_steps.split(",") if n])
    finally:
        connection.close()
        if admin:
            import psycopg

            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


def plan_sizes(steps: list[int]) -> None:
    import json
    import secrets

    from django.conf import settings
    from django.test import Client

    from distribution import releases
    from distribution.models import Feed
    from hashsync.roles import ANALYST, MEMBER_ADMIN, REVIEWER
    from tests.factories import approved_entry, member_with_token, staff_user
    from transparency.models import LogState

    if not steps:
        return
    settings.HASHSYNC_PLAN_MAX_DELTAS = max(steps) + 1
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE = 0
    feed = Feed.objects.create(name="plan-size", algorithms=["md5"])
    releases.release_cut()
    start = Feed.objects.get(pk=feed.pk).version
    analyst, reviewer = staff_user(ANALYST), staff_user(REVIEWER)
    _, token = member_with_token(staff_user(MEMBER_ADMIN), name="bench", feeds=(feed.name,))
    for _ in range(max(steps)):
        value = secrets.token_hex(16)  # a synthetic md5: random bytes
        approved_entry(analyst, reviewer, hashes=[{"algorithm": "md5", "value": value}])
        releases.release_cut()  # unless the approval's own cut already ran
    newest = Feed.objects.get(pk=feed.pk).version
    log_size = LogState.objects.get(pk=1).size
    print(f"# plan sizes: log of {log_size} leaves, feed at version {newest}", file=sys.stderr)
    client = Client(HTTP_HOST="localhost")
    for n in steps:
        held = max(start, newest - n)
        answer = client.get(
            f"/api/v1/sync/feeds/{feed.name}/plan/",
            {"from_version": held, "log_size": max(1, log_size // 2)},
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert answer.status_code == 200, answer.content[:300]
        body = json.loads(answer.content)
        # The server may offer a snapshot instead of many small deltas: name the real count.
        name = f"plan_{n}_behind_{len(body['steps'])}_steps"
        log_bytes = len(json.dumps(body["log"], separators=(",", ":")))
        print(f"TLOG {name}_bytes {len(answer.content)} bytes")
        print(f"TLOG {name}_log_bytes {log_bytes} bytes")
        print(f"TLOG {name}_log_share {100 * log_bytes / len(answer.content):.0f} %")


if __name__ == "__main__":
    sys.exit(main())
