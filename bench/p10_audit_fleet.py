#!/usr/bin/env python
"""P10: member events on the audit trail at fleet rate — one chain head (the old behaviour,
``HASHSYNC_AUDIT_LANES=1``: every member event queues on one head-row lock) against 16 lanes.

Part 1, appends (PostgreSQL): ``--threads`` threads, each with its own connection, append
``sync.plan``-shaped member events through ``audit.services.audit_record`` — one transaction
per event, as a plan answer does — for ``--duration`` seconds, for simulated clients drawn at
random from ``--clients`` ids (so the lanes fill as a fleet fills them). Measured: appends per
second, and lock waits: a sampler reads ``pg_stat_activity`` of the bench database every 20 ms
and counts the backends waiting on a lock (``wait_event_type = 'Lock'``: the head row's tuple
or the transaction holding it). With one lane nearly every other appender waits; with 16,
two appenders wait only when their clients share a lane.

Part 2, HTTP (``--http``): the unconditional plan (``GET …/plan/`` without ``If-None-Match``:
200 and a ``sync.plan`` event per answer) under the P4 setup, by running ``bench/p4_poll.py``
with ``HASHSYNC_AUDIT_LANES`` set for its gunicorn, for 1,000 and 10,000 simulated clients
(tokens). P4 paces each token to one poll per 5.5 s, so 1,000 clients cap the rate at about
180 req/s: that figure shows the latency at fleet size, 10,000 the throughput. (P4's own 304
run happens first, at its minimum length; it is not reported here.)

Data: a database ``hashsync_bench_p10`` on the server named by ``--database`` (default
``DATABASE_URL``, else ``postgres://postgres@127.0.0.1:5432/``), created, migrated and dropped.
No hash values are involved: the events carry synthetic feed names and versions.

    .venv/bin/python bench/p10_audit_fleet.py                    # part 1
    .venv/bin/python bench/p10_audit_fleet.py --http             # parts 1 and 2

Prints ``P10 <name> <value> <unit>``; the name states lanes, threads or clients.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "hashsync_bench_p10"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(name: str, value: float, unit: str) -> None:
    print(f"P10 {name} {value:.1f} {unit}", flush=True)


class LockWaits(threading.Thread):
    """Samples how many backends of the bench database are active, and how many of them wait
    on a lock, every 20 ms until stopped."""

    def __init__(self, db_url: str) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(db_url, autocommit=True)
        self.samples = 0
        self.waiting = 0
        self.active = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            row = self.conn.execute(
                "SELECT count(*) FILTER (WHERE state = 'active'), "
                "count(*) FILTER (WHERE wait_event_type = 'Lock') "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchone()
            assert row is not None
            self.samples += 1
            self.active += int(row[0])
            self.waiting += int(row[1])

    def stop(self) -> tuple[float, float]:
        """(mean backends waiting on a lock, mean active backends) over the samples."""
        self.done.set()
        self.join()
        self.conn.close()
        n = max(self.samples, 1)
        return self.waiting / n, self.active / n


def appends(*, lanes: int, threads: int, clients: int, seconds: float, db_url: str) -> None:
    from django.conf import settings
    from django.db import connection, transaction

    from audit.services import audit_record

    settings.HASHSYNC_AUDIT_LANES = lanes
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop = threading.Event()

    def work(index: int) -> None:
        rng = random.Random(index)
        try:
            start.wait()
            while not stop.is_set():
                client = rng.randrange(1, clients + 1)
                with transaction.atomic():
                    audit_record(
                        actor=None,
                        actor_label=f"member:bench/edge-{client}",
                        client_id=client,
                        action="sync.plan",
                        object_type="feed",
                        object_id=1,
                        after={"feed": "all", "from_version": 2, "version": 2, "token": "hs_bench"},
                    )
                counts[index] += 1
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    sampler = LockWaits(db_url)
    start.wait()
    sampler.start()
    began = time.monotonic()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - began
    waiting, active = sampler.stop()
    total = sum(counts)
    suffix = f"lanes{lanes}_threads{threads}"
    emit(f"audit_appends_per_second_{suffix}", total / elapsed, "appends/s")
    emit(f"audit_lock_waiting_backends_{suffix}", waiting, "backends")
    emit(f"audit_active_backends_{suffix}", active, "backends")
    log(f"lanes={lanes}: {total} appends in {elapsed:.1f}s")


def part_appends(args: argparse.Namespace, db_url: str) -> None:
    os.environ.update(HASHSYNC_ENV="development", DATABASE_URL=db_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashsync.settings")
    sys.path[:0] = [str(ROOT), str(ROOT / "client" / "src")]
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    for lanes in (1, 16):
        appends(
            lanes=lanes,
            threads=args.threads,
            clients=args.clients,
            seconds=args.duration,
            db_url=db_url,
        )
    from audit.verify import verify_chain

    report = verify_chain()
    log(f"chain after the runs: ok={report.ok} events={report.events_checked} {report.problem}")
    if not report.ok:
        raise SystemExit("P10: the audit chain does not verify after the runs")


def part_http(args: argparse.Namespace) -> None:
    for clients in (1000, 10000):
        for lanes in (1, 16):
            done = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "p4_poll.py"),
                    "--database",
                    args.database,
                    "--cache",
                    args.cache,
                    "--tokens",
                    str(clients),
                    "--entries",
                    str(args.entries),
                    "--runs",
                    "1",
                    "--duration",
                    "5",
                    "--server-env",
                    f"HASHSYNC_AUDIT_LANES={lanes}",
                ],
                stdout=subprocess.PIPE,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"P10: p4_poll.py failed ({done.returncode}) for {clients}")
            for line in done.stdout.splitlines():
                parts = line.split()
                if len(parts) == 4 and parts[1].startswith("plan_200_"):
                    name = parts[1].replace("plan_200_", f"plan_200_clients{clients}_lanes{lanes}_")
                    print(f"P10 {name} {parts[2]} {parts[3]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        default=os.environ.get("DATABASE_URL", "") or "postgres://postgres@127.0.0.1:5432/",
        help="PostgreSQL server URL (its database part is ignored); default DATABASE_URL",
    )
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/11", help="Redis, for --http")
    parser.add_argument("--threads", type=int, default=16, help="appending threads (16)")
    parser.add_argument("--clients", type=int, default=10000, help="simulated clients (10000)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per run (10)")
    parser.add_argument("--entries", type=int, default=3000, help="P4 feed size, --http (3000)")
    parser.add_argument("--http", action="store_true", help="also the P4 plan runs")
    args = parser.parse_args()

    import psycopg

    parts = urlsplit(args.database)
    if parts.scheme not in ("postgres", "postgresql"):
        log("P10 needs PostgreSQL (--database postgres://…)")
        return 2
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    db_url = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    try:
        part_appends(args, db_url)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    if args.http:
        part_http(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
