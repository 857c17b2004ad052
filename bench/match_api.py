#!/usr/bin/env python
"""P8 through the API: ``POST /api/v1/sync/match/`` under gunicorn (production settings) on
PostgreSQL and Redis, against a feed of N synthetic PDQ values; recall checked against a
brute-force scan in the same run. Also: how long a web process takes to load the feed's index
on its first match (the restart case), and how long a released change takes to become
matchable in a running process (the matcher's part of P7).

Set-up (a child process, development settings for the throw-away keys): a fresh database, one
feed ``synthetic-pdq`` published at version 1 by a snapshot bundle of N random 32-byte values
written straight to bundle storage (the feed's rows are not written: the matcher never reads
them), a member with a lookup-only token. The server: gunicorn with deploy/gunicorn.conf.py,
``--workers`` gthread processes of ``--threads`` threads, HASHSYNC_ENV=production, the member
budget off (HASHSYNC_MEMBER_REQUESTS_PER_MINUTE=0) so the bench measures matching, not the
budget; every request still writes its ``sync.match`` audit event. The load: ``--clients``
threads in this process posting batches of ``--batch`` PDQ values, a ``--near`` share of them
held values with 0..31 bits flipped.

    .venv/bin/python bench/match_api.py --entries 1000000 --database postgres://postgres@127.0.0.1:5432/

Prints ``P8 match_api_<N>_… <value> <unit>`` lines (and ``P7 match_release_to_match_seconds``).
All values are synthetic random bytes, never real PDQ hashes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "client" / "src"))

from hashsync_client.pdqindex import as_words, popcount  # noqa: E402

DB_NAME = "hashsync_bench_match"
FEED = "synthetic-pdq"
THRESHOLD = 31


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def load() -> str:
    return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- set-up (child, Django) ---------------------------------------------------------------------


def stage_prepare(entries: int, workdir: Path) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from distribution import keys
    from distribution.models import Feed, FeedVersion, ReleaseState
    from distribution.releases.bundles import index_bundle, store_bundle
    from distribution.releases.manifests import manifest_publish
    from hashsync.roles import MEMBER_ADMIN
    from hashsync_client.format import ALGORITHM_IDS, Op, Record
    from hashsync_client.lthash import LtHash16, row_elements
    from tests.factories import member_with_token, staff_user

    call_command("migrate", verbosity=0)
    keys.ensure_development_keys()
    rng = np.random.default_rng(8)
    values = rng.integers(0, 256, (entries, 32), dtype=np.uint8)
    values = values[np.lexsort(values.T[::-1])]  # bundle order: by value
    np.save(workdir / "values.npy", values)
    gradings = rng.integers(1, 40, entries)
    started = time.perf_counter()
    pdq = ALGORITHM_IDS["pdq"]
    digest = LtHash16()
    for begin in range(0, entries, 100_000):
        rows = [
            (pdq, values[i].tobytes(), int(gradings[i]))
            for i in range(begin, min(entries, begin + 100_000))
        ]
        digest.add(row_elements(rows))
    records = (
        Record("pdq", values[i].tobytes(), Op.UPSERT, int(gradings[i])) for i in range(entries)
    )
    with transaction.atomic():
        state = ReleaseState.objects.select_for_update().get_or_create(pk=1)[0]
        feed = Feed.objects.create(name=FEED, algorithms=["pdq"], carries_photodna=False)
        info = store_bundle(records, kind="snapshot", feed=FEED, from_version=0, to_version=1)
        index_bundle(info, "snapshot")
        FeedVersion.objects.create(
            feed=feed,
            version=1,
            entry_count=entries,
            state_digest=digest.hexdigest(),
            snapshot_sha256=info.sha256,
            snapshot_size=info.size,
        )
        now = timezone.now()
        feed.version, feed.entry_count, feed.lthash, feed.populated_at = (
            1,
            entries,
            digest.state(),
            now,
        )
        feed.save()
        manifest_publish(feed, signer=keys.online_signing_key(), now=now)
        state.last_version = 1
        state.save()
    log(f"snapshot of {entries:,} PDQ values published in {time.perf_counter() - started:.1f} s")
    admin = staff_user(MEMBER_ADMIN, username="bench-member-admin")
    _, token = member_with_token(admin, name="bench", feeds=(FEED,), scopes=("lookup",))
    print(json.dumps({"token": token}))


def stage_release(workdir: Path) -> None:
    """One approved PDQ entry released (in-process cut): prints its value."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from distribution import releases
    from hashsync.roles import ANALYST, REVIEWER
    from tests.factories import approved_entry, staff_user

    value = secrets.token_bytes(32).hex()  # synthetic
    suffix = secrets.token_hex(4)
    analyst = staff_user(ANALYST, username=f"bench-analyst-{suffix}")
    reviewer = staff_user(REVIEWER, username=f"bench-reviewer-{suffix}")
    approved_entry(analyst, reviewer, hashes=[{"algorithm": "pdq", "value": value}])
    releases.release_cut()  # a no-op when the approval's own (in-process) task already cut it
    print(json.dumps({"value": value, "released_at": time.time()}))


# --- the run (parent) ---------------------------------------------------------------------------


def child(stage: str, env: dict[str, str], workdir: Path, entries: int) -> dict[str, Any]:
    args = [sys.executable, __file__, "--stage", stage, "--workdir", str(workdir)]
    done = subprocess.run(
        [*args, "--entries", str(entries)], env=env, stdout=subprocess.PIPE, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def post(port: int, token: str, body: dict[str, Any], timeout: float = 300) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/api/v1/sync/match/",
            json.dumps(body),
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def queries(values: Any, count: int, near: float, rng: Any) -> Any:
    asked = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    picked = rng.integers(0, len(values), int(count * near))
    bits = np.unpackbits(values[picked], axis=1)
    for row in range(len(picked)):
        bits[row, rng.choice(256, int(rng.integers(0, THRESHOLD + 1)), replace=False)] ^= 1
    asked[: len(picked)] = np.packbits(bits, axis=1)
    rng.shuffle(asked)
    return asked


def brute_force(values: Any, asked: Any) -> list[set[str]]:
    words = as_words(values)
    columns = [np.ascontiguousarray(words[:, w]) for w in range(4)]
    found = []
    for query in as_words(asked):
        total = popcount(columns[0] ^ query[0]).astype(np.uint16)
        for w in range(1, 4):
            total += popcount(columns[w] ^ query[w])
        found.append({values[i].tobytes().hex() for i in np.flatnonzero(total <= THRESHOLD)})
    return found


def server_pids(master: int) -> list[int]:
    """gunicorn's master and its workers."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (dead ones count 0)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) of these processes: PSS counts pages shared by several
    processes (the mapped index) once in all."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--near", type=float, default=0.1)
    parser.add_argument("--recall-queries", type=int, default=300)
    parser.add_argument("--db-name", default=DB_NAME)
    parser.add_argument("--stage", choices=("prepare", "release"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "prepare":
        stage_prepare(args.entries, Path(args.workdir))
        return 0
    if args.stage == "release":
        stage_release(Path(args.workdir))
        return 0

    import psycopg

    workdir = Path(tempfile.mkdtemp(prefix="hashsync-match-"))
    parts = urlsplit(args.database)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    db_url = urlunsplit(parts._replace(path=f"/{args.db_name}"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {args.db_name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {args.db_name}")
    common = {
        "DATABASE_URL": db_url,
        "HASHSYNC_VAR_DIR": str(workdir / "var"),
        "HASHSYNC_BUNDLE_ROOT": str(workdir / "bundles"),
        "HASHSYNC_SIGNING_KEY_PATH": str(workdir / "var" / "keys" / "signing.key"),
        "DJANGO_SETTINGS_MODULE": "hashsync.settings",
        "DEBUG": "false",
    }
    setup_env = {**os.environ, **common, "HASHSYNC_ENV": "development"}
    setup_env.pop("CELERY_BROKER_URL", None)
    started = time.perf_counter()
    world = child("prepare", setup_env, workdir, args.entries)
    log(f"set-up in {time.perf_counter() - started:.1f} s ({load()})")
    values = np.load(workdir / "values.npy")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "HASHSYNC_"))
    }
    server_env.update(
        common,
        HASHSYNC_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(48),  # throw-away
        ALLOWED_HOSTS="127.0.0.1",
        HASHSYNC_CACHE_URL=args.cache,
        CELERY_BROKER_URL=args.cache,
        HASHSYNC_CLIENT_IP_HEADER="REMOTE_ADDR",
        HASHSYNC_MEMBER_REQUESTS_PER_MINUTE="0",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on localhost, no proxy in front
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKER_CLASS="gthread",
        GUNICORN_WORKERS=str(args.workers),
        GUNICORN_THREADS=str(args.threads),
        LOG_LEVEL="warning",
    )
    errors = (workdir / "gunicorn.err").open("wb")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "hashsync.wsgi",
        ],
        cwd=ROOT,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    try:
        return run(args, port, world["token"], values, workdir, setup_env, server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {args.db_name} WITH (FORCE)")


def run(
    args: Any, port: int, token: str, values: Any, workdir: Path, setup_env: Any, master: int
) -> int:
    n = args.entries
    rng = np.random.default_rng(15)
    one = {"hashes": [{"algorithm": "pdq", "value": values[0].tobytes().hex()}]}
    deadline = time.monotonic() + 120
    while True:  # gunicorn listening (not a match: the first one may take long to build)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    # Index load: every worker's first match loads the index; ask as many at once as there
    # are threads in all, and time the slowest. The very first time, one worker builds it from
    # the snapshot bundle and saves it (the others wait, then map it); after a restart (SIGHUP:
    # gunicorn replaces every worker, as max_requests recycling replaces one) they map it.
    results: list[float] = []

    def first() -> None:
        t = time.perf_counter()
        status, _ = post(port, token, one)
        assert status == 200, status
        results.append(time.perf_counter() - t)

    def first_answers() -> float:
        results.clear()
        warm = [threading.Thread(target=first) for _ in range(args.workers * args.threads * 2)]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        return max(results)

    built = first_answers()
    log(f"first answers (index built from the snapshot) after {built:.2f} s ({load()})")
    print(
        f"P8 match_api_{n}_index_build_seconds {built:.2f} s (first start: workers booting, "
        "one builds the index from the snapshot and saves it, the other maps it)",
        flush=True,
    )
    old_workers = set(server_pids(master)[1:])
    os.kill(master, signal.SIGHUP)
    started = time.perf_counter()
    while set(server_pids(master)[1:]) & old_workers or len(server_pids(master)) < 2:
        time.sleep(0.1)
    restarted = first_answers() + (time.perf_counter() - started)
    log(f"after a restart, first answers after {restarted:.2f} s ({load()})")
    print(f"P8 match_api_{n}_index_load_seconds {restarted:.2f} s (restart, mapped)", flush=True)

    # Recall against brute force, through the API.
    asked = queries(values, args.recall_queries, 0.5, rng)
    expected = brute_force(values, asked)
    got: list[set[str]] = []
    for begin in range(0, len(asked), args.batch):
        chunk = asked[begin : begin + args.batch]
        body = {"hashes": [{"algorithm": "pdq", "value": q.tobytes().hex()} for q in chunk]}
        status, answer = post(port, token, body)
        assert status == 200, (status, answer)
        got.extend({m["value"] for m in r["matches"]} for r in answer["results"])
    pairs = sum(len(e) for e in expected)
    found = sum(len(e & g) for e, g in zip(expected, got, strict=True))
    exact = expected == got
    print(f"P8 match_api_{n}_recall {found / max(pairs, 1):.4f} (exact={exact}, {pairs} pairs)")

    # Throughput.
    bodies = []
    for _ in range(64):
        chunk = queries(values, args.batch, args.near, rng)
        bodies.append({"hashes": [{"algorithm": "pdq", "value": q.tobytes().hex()} for q in chunk]})
    done = [0] * args.clients
    stop = time.monotonic() + args.seconds

    def client(number: int) -> None:
        i = number
        while time.monotonic() < stop:
            status, _ = post(port, token, bodies[i % len(bodies)])
            assert status == 200, status
            done[number] += args.batch
            i += args.clients

    before = load()
    pids = server_pids(master)
    cpu_before, own_before = cpu_seconds(pids), time.process_time()
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    log(f"{sum(done):,} hashes in {elapsed:.1f} s; before: {before}; after: {load()}")
    server_cpu = cpu_seconds(pids) - cpu_before
    client_cpu = time.process_time() - own_before
    rate = sum(done) / elapsed
    print(f"P8 match_api_{n}_hashes_per_second {rate:.0f} hashes/s (batches of {args.batch})")
    per_thousand = server_cpu / sum(done) * 1000
    print(
        f"P8 match_api_{n}_server_cpu_seconds_per_1000_hashes {per_thousand:.3f} s "
        f"(gunicorn master and workers; {2 / per_thousand * 1000:.0f} hashes/s on 2 idle cores)"
    )
    print(
        f"P8 match_api_{n}_bench_client_cpu_seconds_per_1000_hashes "
        f"{client_cpu / sum(done) * 1000:.3f} s"
    )
    rss, pss = memory_mib(pids)
    print(
        f"P8 match_api_{n}_server_memory_mib rss {rss:.0f} pss {pss:.0f} MiB "
        f"({args.workers} workers, the mapped index counted once in PSS)"
    )

    # A release reaching a running matcher: approval + cut in a child, then the first answer
    # that finds it (the catch-up, a delta applied inside that request).
    release = child("release", setup_env, workdir, n)
    body = {"hashes": [{"algorithm": "pdq", "value": release["value"]}]}
    while True:
        status, answer = post(port, token, body)
        if status == 200 and answer["results"][0]["matched"]:
            break
    seconds = time.time() - release["released_at"]
    print(f"P7 match_release_to_match_seconds {seconds:.2f} s (cut to first matching answer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
