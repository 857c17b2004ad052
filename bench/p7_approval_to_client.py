#!/usr/bin/env python
"""P7: from a reviewer's approval to a member client in ``watch`` mode holding the change.
Target: ≤ 10 s (the Hasher-Matcher-Actioner project's own goal is 10 minutes).

What is measured, end to end, with every part real and separate: gunicorn serving the API
(PostgreSQL, Redis cache for pacing, the default announced poll interval unless
``--poll-interval`` says otherwise), a Celery worker on the Redis broker cutting releases (the
approval's on-commit trigger, with the default debounce), and ``hashsync-client watch`` (the
installed console script) syncing into its own SQLite store. For each of ``--rounds`` rounds an
analyst proposes a new entry with a synthetic random MD5 over HTTP and a reviewer approves it
over HTTP; the clock starts when the approval's response arrives and stops when the hash is in
the client's store (read-only polling of the store file every 20 ms). Rounds start at random
moments relative to the client's poll cycle, so the figures include the wait for the next poll.

Data: a PostgreSQL database ``hashsync_bench_p7`` (dropped first and afterwards), one feed
``md5-all``, a member with one sync client; all hash values random bytes.

    .venv/bin/python bench/p7_approval_to_client.py                 # 10 rounds
    .venv/bin/python bench/p7_approval_to_client.py --rounds 3      # quick

Prints:

    P7 approval_to_client_median_seconds <v> s
    P7 approval_to_client_max_seconds <v> s
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DB_NAME = "hashsync_bench_p7"


def log(message: str) -> None:
    print(f"[p7] {message}", file=sys.stderr, flush=True)


def psql(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(server.rstrip("/") + "/postgres", autocommit=True) as conn:
        conn.execute(sql)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(port: int, method: str, path: str, auth: tuple[str, str], body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def setup(env: dict[str, str]) -> dict[str, Any]:
    """Migrate, and create users, a feed, a member with a token; publish the feed."""
    script = r"""
import json, os, django
django.setup()
from django.contrib.auth.models import Group, User
from distribution import keys, releases
from distribution.models import Feed
from hashsync.roles import ensure_roles
from members import services
ensure_roles()
users = {}
for name, role in [("analyst", "analyst"), ("reviewer", "reviewer"), ("admin", "member_admin")]:
    password = os.urandom(12).hex()
    user = User.objects.create_user(name, password=password)
    user.groups.set([Group.objects.get(name=role)])
    users[name] = password
keys.ensure_development_keys()
Feed.objects.create(name="md5-all", algorithms=["md5"])
admin = User.objects.get(username="admin")
services.member_create(actor=admin, name="bench", display_name="Bench (synthetic)")
services.entitlement_grant(actor=admin, member_name="bench", feed="md5-all")
services.client_create(actor=admin, member_name="bench", name="watcher")
_, token = services.token_create(actor=admin, member_name="bench", client_name="watcher",
                                 scopes=["sync"])
print(json.dumps({"users": users, "token": token,
                  "root": sorted(keys.current_keyring().root_keyids)}))
"""
    py = str(BIN / "python")
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [py, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def held(store: Path, value: bytes) -> bool:
    if not store.exists():
        return False
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT 1 FROM entries WHERE value = ?", (value,)).fetchone()
        return row is not None
    except sqlite3.Error:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--database",
        default=os.environ.get("HASHSYNC_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL (without a database name)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--poll-interval", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hashsync-p7-"))
    server = args.database.rstrip("/")
    psql(server, f"DROP DATABASE IF EXISTS {DB_NAME}")
    psql(server, f"CREATE DATABASE {DB_NAME}")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hashsync.settings",
        "HASHSYNC_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": f"{server}/{DB_NAME}",
        "CELERY_BROKER_URL": f"{args.redis}/10",
        "HASHSYNC_CACHE_URL": f"{args.redis}/9",
        "HASHSYNC_VAR_DIR": str(work / "var"),
        "HASHSYNC_BUNDLE_ROOT": str(work / "bundles"),
        "HASHSYNC_SIGNING_KEY_PATH": str(work / "var" / "keys" / "signing.key"),
    }
    if args.poll_interval is not None:
        env["HASHSYNC_POLL_INTERVAL_SECONDS"] = str(args.poll_interval)
    import redis

    redis.Redis.from_url(f"{args.redis}/10").flushdb()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        world = setup(env)
        logs = work / "logs"
        logs.mkdir()
        processes.append(
            subprocess.Popen(
                [str(BIN / "celery"), "-A", "hashsync", "worker", "--pool=solo", "-l", "INFO"],
                cwd=ROOT,
                env=env,
                stdout=(logs / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "-c",
                    "deploy/gunicorn.conf.py",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "hashsync.wsgi",
                ],
                cwd=ROOT,
                env=env,
                stdout=(logs / "gunicorn.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        wait_http(port)
        analyst = ("analyst", world["users"]["analyst"])
        reviewer = ("reviewer", world["users"]["reviewer"])
        # One approval so the feed is published before the client starts.
        warm = call(
            port,
            "POST",
            "/api/v1/proposals/create-entry/",
            analyst,
            {
                "category": "A",
                "age_group": "7-10",
                "hashes": [{"algorithm": "md5", "value": secrets.token_hex(16)}],
            },
        )
        call(port, "POST", f"/api/v1/proposals/{warm['id']}/approve/", reviewer, {})

        client_env = {
            **os.environ,
            "HASHSYNC_TOKEN": world["token"],
            "HASHSYNC_CLIENT_CONFIG": str(work / "client.json"),
        }
        store = work / "client.sqlite3"
        init = [str(BIN / "hashsync-client"), "init", "--server", f"http://127.0.0.1:{port}/"]
        for keyid in world["root"]:
            init += ["--root-keyid", keyid]
        init += ["--store", str(store)]
        subprocess.run(init, env=client_env, check=True, capture_output=True)
        processes.append(
            subprocess.Popen(
                [str(BIN / "hashsync-client"), "-v", "watch", "--no-progress"],
                env=client_env,
                stdout=(logs / "client.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        rng = random.Random()
        latencies = []
        for number in range(1, args.rounds + 1):
            time.sleep(rng.uniform(0.5, 5.5))  # land anywhere in the client's poll cycle
            value = secrets.token_bytes(16)  # synthetic: random bytes, not a real hash
            proposal = call(
                port,
                "POST",
                "/api/v1/proposals/create-entry/",
                analyst,
                {
                    "category": "A",
                    "age_group": "7-10",
                    "hashes": [{"algorithm": "md5", "value": value.hex()}],
                    "source": "synthetic-bench",
                },
            )
            call(port, "POST", f"/api/v1/proposals/{proposal['id']}/approve/", reviewer, {})
            started = time.monotonic()
            while not held(store, value):
                if time.monotonic() - started > args.timeout:
                    raise RuntimeError(
                        f"round {number}: the client did not get the change in {args.timeout} s"
                        f" (logs in {logs})"
                    )
                time.sleep(0.02)
            latency = time.monotonic() - started
            latencies.append(latency)
            log(f"round {number}: {latency:.2f} s")
        print(f"P7 approval_to_client_median_seconds {statistics.median(latencies):.2f} s")
        print(f"P7 approval_to_client_max_seconds {max(latencies):.2f} s")
        log(f"load average {os.getloadavg()}")
        return 0
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        psql(server, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
