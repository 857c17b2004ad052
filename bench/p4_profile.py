#!/usr/bin/env python
"""P4, looked at closely: the CPU of one up-to-date poll (``304``) in one process, without
gunicorn or a load generator, and where it goes.

Calls the WSGI application (production settings: DEBUG off, PostgreSQL, the Redis cache,
pacing on) once per token with ``If-None-Match``, every token once per pass, and reports the
Python CPU per poll of this process, the CPU of its PostgreSQL backend and of the Redis server
(from /proc and ``INFO``), as ``bench/p4_poll.py`` does for a whole server. The machine's load
inflates all three alike, but far less than it disturbs a req/s figure. ``--profile FILE``
writes a cProfile of one more pass (``python -m pstats FILE``).

Data: made by ``bench/p4_poll.py --stage prepare`` in a database of its own
(``hashsync_bench_p4_profile``, created and dropped), ``--tokens`` sync clients. Before each
pass the pacing keys are deleted (Redis database of ``--cache``; the bench's own keys only)
and every token's ``last_used_at`` set to a random moment of the past minute, as in P4.

    .venv/bin/python bench/p4_profile.py --cache redis://127.0.0.1:6379/11
    .venv/bin/python bench/p4_profile.py --profile /tmp/poll.prof --passes 3

Prints ``P4 poll_304_cpu_ms_in_process <python + postgres + redis> ms`` (best pass), and the
split on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("HASHSYNC_BENCH_DB_NAME", "hashsync_bench_p4_profile")
TICK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        default=os.environ.get("DATABASE_URL", "") or "postgres://postgres@127.0.0.1:5432/",
        help="PostgreSQL server URL (its database part is ignored)",
    )
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/11", help="Redis URL")
    parser.add_argument("--tokens", type=int, default=4000, help="sync clients (4000)")
    parser.add_argument("--passes", type=int, default=5, help="timed passes (5)")
    parser.add_argument(
        "--app",
        choices=("application", "django_application"),
        action="append",
        help="hashsync.wsgi's application (the poll front, as served; the default) or "
        "Django's alone; repeat to compare, the passes alternating between them",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile one more pass into FILE")
    args = parser.parse_args()

    import psycopg

    parts = urlsplit(args.database)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    db_url = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        admin.execute(f"CREATE DATABASE {DB_NAME}")
    workdir = Path(tempfile.mkdtemp(prefix="hashsync-p4-profile-"))
    try:
        env = dict(os.environ)
        env.update(
            HASHSYNC_ENV="development",
            DEBUG="false",
            DATABASE_URL=db_url,
            HASHSYNC_VAR_DIR=str(workdir / "setup-var"),
            HASHSYNC_MEDIA_ROOT=str(workdir / "setup-var" / "media"),
            DJANGO_SETTINGS_MODULE="hashsync.settings",
            HASHSYNC_BENCH_TOKENS=str(args.tokens),
            HASHSYNC_BENCH_ENTRIES="2000",
            HASHSYNC_BENCH_WORKDIR=str(workdir),
        )
        env.pop("CELERY_BROKER_URL", None)
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "p4_poll.py"), "--stage", "prepare"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        world = json.loads(done.stdout.strip().splitlines()[-1])
        return measure(world, db_url, workdir, args)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def measure(world: dict[str, Any], db_url: str, workdir: Path, args: argparse.Namespace) -> int:
    os.environ.update(
        HASHSYNC_ENV="production",
        DEBUG="false",
        SECRET_KEY="p4-profile-throw-away-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=db_url,
        HASHSYNC_CACHE_URL=args.cache,
        HASHSYNC_CLIENT_IP_HEADER="REMOTE_ADDR",
        CELERY_BROKER_URL=args.cache,
        HASHSYNC_SIGNING_KEY_PATH=str(workdir / "no-signing-key-here"),
        HASHSYNC_VAR_DIR=str(workdir / "server-var"),
        HASHSYNC_POLL_INTERVAL_SECONDS="5",
        SECURE_SSL_REDIRECT="false",
        # One connection for the whole measurement, so its backend's CPU can be read.
        DB_CONN_MAX_AGE="3600",
        LOG_LEVEL="warning",
        DJANGO_SETTINGS_MODULE="hashsync.settings",
    )
    sys.path.insert(0, str(ROOT))
    import warnings

    warnings.simplefilter("ignore")  # whitenoise: no static directory here
    import psycopg
    import redis
    from django.db import connection

    import hashsync.wsgi

    # What gunicorn serves (the poll front before Django), or Django's handler alone.
    names = args.app or ["application"]
    apps = {name: getattr(hashsync.wsgi, name) for name in names}
    app = apps[names[0]]
    tokens = Path(world["tokens_file"]).read_text().split()
    path = f"/api/v1/sync/feeds/all/plan/?from_version={world['version']}"
    rds = redis.Redis.from_url(args.cache)

    def used_redis() -> float:
        cpu = rds.info("cpu")
        return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

    statuses: dict[str, int] = {}

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
        statuses[status] = statuses.get(status, 0) + 1
        return lambda data: None

    def poll(token: str, app: Any = app) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path.split("?")[0],
            "QUERY_STRING": path.split("?")[1],
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "HTTP_IF_NONE_MATCH": world["etag"],
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
        }
        for _ in app(environ, start_response):
            pass

    def prime() -> None:
        for key in rds.scan_iter("*hashsync:pace:*", count=1000):
            rds.delete(key)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE members_apitoken SET last_used_at = now() - random() * interval '60 s' "
                "WHERE revoked_at IS NULL"
            )
            conn.execute("VACUUM (ANALYZE) members_apitoken")

    def token_writes() -> int:
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'members_apitoken'"
            ).fetchone()
        return int(row[0]) if row else 0

    prime()
    for name in names:  # warm up: connection, prepared statement, imports
        for token in tokens[:200]:
            poll(token, apps[name])
        prime()
    backend = connection.connection.info.backend_pid
    results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names}
    for n in range(args.passes):
        for name in names:
            prime()
            statuses.clear()
            writes0 = token_writes()
            py0, pg0, rd0 = time.process_time(), proc_cpu(backend), used_redis()
            for token in tokens:
                poll(token, apps[name])
            py, pg, rd = time.process_time() - py0, proc_cpu(backend) - pg0, used_redis() - rd0
            if connection.connection.info.backend_pid != backend:
                log("the database connection changed during the pass: its PostgreSQL CPU is lost")
            count = len(tokens)
            results[name].append((py + pg + rd, py, pg, rd))
            log(
                f"pass {n + 1} {name}: {statuses}; ms of CPU per poll: python "
                f"{1000 * py / count:.3f}, postgres {1000 * pg / count:.3f}, redis "
                f"{1000 * rd / count:.3f}, together {1000 * (py + pg + rd) / count:.3f}; "
                f"last_used_at writes {token_writes() - writes0}; load {os.getloadavg()[0]:.2f}"
            )
            if set(statuses) != {"304 Not Modified"}:
                log("FAILED: an answer other than 304")
                return 1
    for index, name in enumerate(names):
        suffix = "" if index == 0 else f"_{name}"
        best = min(results[name])
        for part, value in zip(("", "_python", "_postgres", "_redis"), best, strict=True):
            print(
                f"P4 poll_304_cpu_ms_in_process{part}{suffix} {1000 * value / len(tokens):.3f} ms"
            )
    if args.profile:
        import cProfile

        prime()
        profiler = cProfile.Profile(time.process_time)  # CPU, not waits
        profiler.enable()
        for token in tokens:
            poll(token)
        profiler.disable()
        profiler.dump_stats(args.profile)
        log(f"profile of {len(tokens)} polls in {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
