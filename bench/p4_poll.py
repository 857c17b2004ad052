#!/usr/bin/env python
"""P4: the authenticated "am I up to date?" poll. Target: ≥ 1,000 requests/s on 2 cores,
under gunicorn with PostgreSQL.

What is measured: ``GET /api/v1/sync/feeds/all/plan/?from_version=<current>`` with
``Authorization: Bearer <token>`` and ``If-None-Match: <the plan's ETag>``, answered
``304 Not Modified``, against gunicorn (``deploy/gunicorn.conf.py``) running the production
configuration: ``HASHSYNC_ENV=production`` (DEBUG off), PostgreSQL, Redis as the cache that
holds the pacing counters, pacing ON at the default announced interval (5 s). Every request
does all the production work: the token is looked up in PostgreSQL, the member's entitlement
and PhotoDNA licence are checked, the pacing key is set in Redis, the newest manifest is read,
``last_used_at`` is written when it is more than a minute old.

Load generator: ``wrk`` (Debian package ``wrk``; ``apt-get install -y wrk``) with a Lua
script written by this bench. Pacing is per sync client and feed, so a load of R req/s needs
about R x 5 s distinct clients; the bench creates ``--tokens`` sync clients (one token each)
and the script rotates through them, never sending one token's request sooner than the
announced interval plus 10% (a client's jitter) after its previous one: it delays the request
instead, and counts that. When it had to wait, the figure is bounded by the number of tokens
(12,000 tokens: ~2,180 req/s), and the bench says so.
The figure is the rate wrk measured; any answer other than 304 (a 429 included) or any socket
error fails the run. wrk runs on the same 2 cores: its CPU share is reported, with the other
processes' (gunicorn, PostgreSQL, Redis, everything else on the machine), from /proc.

Steady state of ``last_used_at``: a fleet that polls every few seconds writes each token's
``last_used_at`` once a minute, spread over the minute. Before each run the bench sets every
token's ``last_used_at`` to a random moment of the past minute, so a short run sees that rate
of writes (``--tokens`` / 60 per second) from its first second rather than a burst. (With more
tokens than the rate needs, each polls less often than every 5.5 s and that is more writes per
poll than a fleet would make: on the safe side.)

Secondary figure: the unconditional poll (no ``If-None-Match``), which answers ``200`` with the
whole ``up_to_date`` plan (manifest and keyrings) and appends a ``sync.plan`` event to the
audit chain (one serialised write per answer); run once with the same rotation.

Data: a PostgreSQL database ``hashsync_bench_p4`` on the server named by ``--database``
(default ``DATABASE_URL``, else ``postgres://postgres@127.0.0.1:5432/``), created (dropped
first if it exists) and dropped afterwards. A feed "all" of ``--entries`` synthetic members
(random bytes, set up as in ``bench/p1_p2_releases.py``: one signed version, then a release of
10 changes, so the feed is at version 2 with a delta) and two more feeds; members with five
sync clients each, entitled to the three feeds, with a PhotoDNA licence (the feed "all" has no
algorithm filter, so the licence check runs on every request). Redis: database 11 of
``--cache`` (default redis://127.0.0.1:6379/11; the tests use 14 and 15); the bench only adds
keys that expire within seconds. The server gets a throw-away SECRET_KEY and a signing-key path
that does not exist: serving polls needs no signing key.

    .venv/bin/python bench/p4_poll.py                                  # the figure
    .venv/bin/python bench/p4_poll.py --config sync:4 --config gthread:3x4   # compare
    .venv/bin/python bench/p4_poll.py --runs 1 --duration 10 --skip-200       # quick look

Prints (detail, CPU split and load averages on stderr):

    P4 poll_304_requests_per_second <median of --runs> req/s
    P4 poll_304_requests_per_second_min <v> req/s
    P4 poll_304_requests_per_second_max <v> req/s
    P4 poll_304_latency_p50_ms <v> ms          (of the median run)
    P4 poll_304_latency_p99_ms <v> ms
    P4 poll_304_cpu_ms_per_request <median> ms  (and _min, _max: all of ours, from /proc)
    P4 poll_304_non_304_responses <n> responses  (must be 0: the run fails otherwise)
    P4 plan_200_requests_per_second <v> req/s   (unless --skip-200)
    P4 plan_200_latency_p50_ms / _p99_ms, P4 plan_200_non_200_responses

With several ``--config``s, every config after the first adds its name to the figure names.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "hashsync_bench_p4"
FEED = "all"
CLIENTS_PER_MEMBER = 5
DEFAULT_CACHE = "redis://127.0.0.1:6379/11"
POLL_INTERVAL = 5  # the production default, announced and enforced
# Each token polls at most once per announced interval plus 10%, as a client that adds jitter
# to the interval does. At exactly the interval a client gets an occasional 429: the server's
# pacing key lives ceil(0.9 x interval) s, which is the whole 5 s interval.
GAP_FACTOR = 1.1


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5 min {five:.2f})"


def redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


# --- CPU accounting from /proc ----------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, float, float, float] | None:
    """(comm, ppid, own CPU seconds, CPU seconds of reaped children, the system (kernel) part
    of both) of a process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / TICK
    reaped = (int(fields[13]) + int(fields[14])) / TICK
    system = (int(fields[12]) + int(fields[14])) / TICK
    return comm, int(fields[1]), own, reaped, system


def _processes() -> dict[int, tuple[str, int, float, float, float]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                found[int(entry)] = stat
    return found


def _tree_cpu(
    procs: dict[int, tuple[str, int, float, float, float]], roots: set[int], *, system: bool = False
) -> float:
    """CPU seconds of the roots, their live descendants, and every descendant they reaped
    (with ``system``, only the kernel's part: system calls, the TCP stack, scheduling)."""
    total, seen, todo = 0.0, set(), list(roots)
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, *_) in procs.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        _, _, own, reaped, kernel = procs[pid]
        total += kernel if system else own + reaped
        todo.extend(children.get(pid, []))
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / TICK, total / TICK


@dataclass
class CpuSample:
    at: float
    machine_busy: float
    machine_total: float
    groups: dict[str, float]
    children: float  # this process's reaped children (wrk, once it has exited)


class BackendCpu(threading.Thread):
    """CPU time of the PostgreSQL processes serving the bench database during a run, sampled
    twice a second: persistent connections are replaced (DB_CONN_MAX_AGE, worker recycling),
    so the processes at the end are not those of the start. A backend that comes and goes
    between two samples is missed (counted under "everything else")."""

    def __init__(self, db_url: str) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(db_url, autocommit=True)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.done = threading.Event()
        self.sample(initial=True)

    def sample(self, *, initial: bool = False) -> None:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
        for (pid,) in rows:
            stat = _stat(int(pid))
            if stat is None:
                continue
            # A backend first seen after the start began during the run: all of its CPU counts.
            self.first.setdefault(int(pid), stat[2] if initial else 0.0)
            self.last[int(pid)] = stat[2]

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.sample()

    def stop(self) -> float:
        self.done.set()
        self.join()
        self.sample()
        self.conn.close()
        return sum(cpu - self.first[pid] for pid, cpu in self.last.items())


REDIS_PIDS: set[int] = set()  # the server of --cache (main), when it says


def cpu_sample(gunicorn_pid: int) -> CpuSample:
    procs = _processes()
    busy, total = _machine_busy()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The Redis server of --cache only: others on the machine serve other work.
    redis = REDIS_PIDS or {p for p, (comm, *_) in procs.items() if comm == "redis-server"}
    return CpuSample(
        at=time.monotonic(),
        machine_busy=busy,
        machine_total=total,
        groups={
            "gunicorn": _tree_cpu(procs, {gunicorn_pid}),
            "gunicorn (kernel part)": _tree_cpu(procs, {gunicorn_pid}, system=True),
            "redis-server": _tree_cpu(procs, redis),
            "bench": procs[os.getpid()][2] if os.getpid() in procs else 0.0,  # wrk: below
        },
        children=usage.ru_utime + usage.ru_stime,
    )


SERVER_PARTS = ("gunicorn", "postgres (bench db)", "redis-server")  # the target's "in all"


def cpu_split(
    before: CpuSample, after: CpuSample, postgres: float, requests: int
) -> tuple[str, dict[str, float]]:
    """Shares of the 2 cores during a run: ours by process, the rest of the machine; and the
    CPU time per request (ms) of each of ours, with ``server`` (gunicorn, PostgreSQL and
    Redis: what the target counts) and ``all`` (those and wrk)."""
    wall = after.at - before.at
    cores = os.cpu_count() or 1
    parts = {name: after.groups[name] - before.groups[name] for name in after.groups}
    kernel = parts.pop("gunicorn (kernel part)")
    parts["postgres (bench db)"] = postgres
    # wrk is this process's child: its CPU shows up in RUSAGE_CHILDREN once it has exited
    # (gunicorn, also a child, has not exited yet, so it is not in it).
    parts["wrk"] = after.children - before.children
    busy = after.machine_busy - before.machine_busy
    parts["everything else"] = max(0.0, busy - sum(parts.values()))
    idle = (after.machine_total - before.machine_total) - busy
    text = ", ".join(f"{name} {100 * seconds / wall:.0f}%" for name, seconds in parts.items())
    ours = [n for n in parts if n not in ("everything else", "bench")]
    ms = {n: 1000 * parts[n] / max(requests, 1) for n in ours}
    ms["gunicorn (kernel part)"] = 1000 * kernel / max(requests, 1)
    ms["server"] = sum(ms[n] for n in SERVER_PARTS)
    ms["all"] = ms["server"] + ms["wrk"]
    per = ", ".join(f"{n} {ms[n]:.3f}" for n in (*ours, "gunicorn (kernel part)"))
    return (
        f"CPU (% of one core, {cores} cores): {text}, idle {100 * idle / wall:.0f}%; "
        f"ms of CPU per request: {per}; gunicorn + PostgreSQL + Redis {ms['server']:.3f}, "
        f"with wrk {ms['all']:.3f}"
    ), ms


# --- The orchestrating parent (no Django here) -------------------------------------------------


@dataclass
class Config:
    worker_class: str  # "sync" | "gthread"
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> Config:
        """``sync:4`` or ``gthread:3x4`` (workers x threads)."""
        kind, _, shape = text.partition(":")
        if kind == "sync" and shape.isdigit():
            return cls("sync", int(shape), 1)
        workers, _, threads = shape.partition("x")
        if kind == "gthread" and workers.isdigit() and threads.isdigit():
            return cls("gthread", int(workers), int(threads))
        raise argparse.ArgumentTypeError(f"{text!r}: expected sync:N or gthread:NxT")

    @property
    def name(self) -> str:
        if self.worker_class == "sync":
            return f"sync{self.workers}"
        return f"gthread{self.workers}x{self.threads}"


@dataclass
class RunResult:
    rate: float
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    errors: dict[str, int]
    delayed: int
    early: int
    cpu: str
    load_before: str
    load_after: str
    extra: dict[str, Any] = field(default_factory=dict)

    def unexpected(self, expected: int) -> int:
        return sum(n for status, n in self.statuses.items() if status != expected)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        default=os.environ.get("DATABASE_URL", "") or "postgres://postgres@127.0.0.1:5432/",
        help="PostgreSQL server URL (its database part is ignored); default DATABASE_URL",
    )
    parser.add_argument("--cache", default=DEFAULT_CACHE, help=f"Redis URL ({DEFAULT_CACHE})")
    parser.add_argument(
        "--db-name",
        default=DB_NAME,
        type=lambda v: v if v.isidentifier() and v.islower() else parser.error("--db-name"),
        help=f"the bench's database, created and dropped ({DB_NAME})",
    )
    parser.add_argument(
        "--config",
        action="append",
        type=Config.parse,
        help="gunicorn worker class and size, sync:N or gthread:NxT; repeat to compare "
        "(default: deploy/gunicorn.conf.py's own defaults)",
    )
    parser.add_argument("--tokens", type=int, default=12000, help="sync clients polling (12000)")
    parser.add_argument("--entries", type=int, default=30000, help="members of the feed (30000)")
    parser.add_argument("--runs", type=int, default=3, help="timed 304 runs per config (3)")
    parser.add_argument("--duration", type=int, default=30, help="seconds per run (30)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--skip-200", action="store_true", help="no unconditional-200 run")
    parser.add_argument(
        "--poll-interval",
        type=int,
        default=POLL_INTERVAL,
        help=f"HASHSYNC_POLL_INTERVAL_SECONDS of the server ({POLL_INTERVAL}; 0 turns pacing "
        "off — not the production figure)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for gunicorn (e.g. DB_CONN_MAX_AGE=0 to compare)",
    )
    parser.add_argument(
        "--app",
        default="hashsync.wsgi",
        help="the WSGI application gunicorn serves (hashsync.wsgi; "
        "hashsync.wsgi:django_application compares without the poll front)",
    )
    parser.add_argument("--keep-logs", metavar="DIR", help="copy gunicorn's logs here")
    parser.add_argument("--stage", choices=("prepare",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "prepare":
        return stage_prepare()

    wrk = shutil.which("wrk")
    if wrk is None:
        log("P4 needs wrk, the HTTP load generator: apt-get install -y wrk")
        return 2
    if args.tokens < 100 or args.runs < 1 or args.duration < 5:
        parser.error("--tokens ≥ 100, --runs ≥ 1 and --duration ≥ 5")
    configs = args.config or [None]
    missing = services_missing(args.database, args.cache)
    if missing:
        log(f"P4 cannot run: {missing}")
        return 2

    import psycopg
    import redis

    # Unknown: every redis-server on the machine is counted.
    with contextlib.suppress(redis.RedisError, KeyError, ValueError):
        REDIS_PIDS.add(int(redis.Redis.from_url(args.cache).info("server")["process_id"]))
    parts = urlsplit(args.database)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    db_name = args.db_name
    db_url = urlunsplit(parts._replace(path=f"/{db_name}"))
    workdir = Path(tempfile.mkdtemp(prefix="hashsync-p4-"))
    failed = False
    try:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {db_name}")  # refuses if someone uses it
            admin.execute(f"CREATE DATABASE {db_name}")
        log(f"created database {redacted(db_url)}")
        world = prepare(db_url, workdir, args)
        for index, config in enumerate(configs):
            suffix = "" if index == 0 else f"_{config.name}"
            failed |= not measure(config, suffix, world, db_url, workdir, wrk, args)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        log(f"dropped database {db_name}")
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def services_missing(database: str, cache: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check-services.py"), database, cache],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def prepare(db_url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Migrate and fill the database in a child process (development settings: it makes
    throw-away keys to sign the releases); returns what the clients need to know."""
    env = dict(os.environ)
    env.update(
        HASHSYNC_ENV="development",
        DEBUG="false",
        DATABASE_URL=db_url,
        HASHSYNC_VAR_DIR=str(workdir / "setup-var"),
        HASHSYNC_MEDIA_ROOT=str(workdir / "setup-var" / "media"),
        DJANGO_SETTINGS_MODULE="hashsync.settings",
        HASHSYNC_BENCH_TOKENS=str(args.tokens),
        HASHSYNC_BENCH_ENTRIES=str(args.entries),
        HASHSYNC_BENCH_WORKDIR=str(workdir),
    )
    env.pop("CELERY_BROKER_URL", None)  # the set-up's release runs in-process
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--stage", "prepare"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    world: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    log(
        f"set-up in {time.perf_counter() - started:.1f} s: feed {FEED} at version "
        f"{world['version']}, {world['tokens']} sync clients with one token each"
    )
    return world


def server_env(config: Config | None, db_url: str, workdir: Path, port: int, args: Any) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "HASHSYNC_"))}
    env.pop("DEBUG", None)
    env.update(
        HASHSYNC_ENV="production",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(48),  # throw-away
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=db_url,
        HASHSYNC_CACHE_URL=args.cache,
        HASHSYNC_CLIENT_IP_HEADER="REMOTE_ADDR",  # wrk connects directly, no proxy
        # Plain HTTP with no proxy in front: production's HTTPS redirect would answer 301.
        SECURE_SSL_REDIRECT="false",
        CELERY_BROKER_URL=args.cache,  # required in production; polls send no task
        # Deliberately absent: serving polls must not need the signing key.
        HASHSYNC_SIGNING_KEY_PATH=str(workdir / "no-signing-key-here"),
        HASHSYNC_VAR_DIR=str(workdir / "server-var"),
        HASHSYNC_POLL_INTERVAL_SECONDS=str(args.poll_interval),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        LOG_LEVEL="warning",
    )
    if config is not None:
        env.update(
            GUNICORN_WORKER_CLASS=config.worker_class,
            GUNICORN_WORKERS=str(config.workers),
            GUNICORN_THREADS=str(config.threads),
        )
    for item in args.server_env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(
    port: int, path: str, headers: dict[str, str], *, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def revoke(db_url: str, token_id: int, *, revoked: bool = True) -> None:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE members_apitoken SET revoked_at = CASE WHEN %s THEN now() END WHERE id = %s",
            [revoked, token_id],
        )


def prime_last_used(db_url: str) -> None:
    """Every token last used at a random moment of the past minute: the steady state of a
    fleet polling every few seconds (each token's ``last_used_at`` written once a minute)."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE members_apitoken SET last_used_at = now() - random() * interval '60 s' "
            "WHERE revoked_at IS NULL"
        )
        conn.execute("VACUUM (ANALYZE) members_apitoken")


def measure(
    config: Config | None,
    suffix: str,
    world: dict[str, Any],
    db_url: str,
    workdir: Path,
    wrk: str,
    args: argparse.Namespace,
) -> bool:
    name = config.name if config else "deploy/gunicorn.conf.py defaults"
    port = free_port()
    env = server_env(config, db_url, workdir, port, args)
    logdir = workdir / f"gunicorn-{config.name if config else 'default'}"
    logdir.mkdir()
    with (logdir / "access.log").open("wb") as out, (logdir / "error.log").open("wb") as err:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                args.app,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,  # the access log goes to stdout ("-"), as in production
            stderr=err,
        )
    try:
        return _measure(server, port, name, suffix, world, db_url, workdir, wrk, args)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if args.keep_logs:
            target = Path(args.keep_logs) / logdir.name
            shutil.copytree(logdir, target, dirs_exist_ok=True)


def _measure(
    server: subprocess.Popen,
    port: int,
    name: str,
    suffix: str,
    world: dict[str, Any],
    db_url: str,
    workdir: Path,
    wrk: str,
    args: argparse.Namespace,
) -> bool:
    path = f"/api/v1/sync/feeds/{FEED}/plan/?from_version={world['version']}"
    probe = {"Authorization": f"Bearer {world['probe_token']}"}
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({server.returncode}); see its error log")
        try:
            # A long timeout, and retries only while nothing listens: a first answer slower
            # than the timeout (a loaded machine) was still served and set the pacing key, so
            # asking again would get 429.
            status, headers, body = get(port, path, probe, timeout=120)
            break
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # The answer the pollers hold: a 200 up_to_date plan with the ETag they send back.
    plan = json.loads(body)
    assert status == 200 and plan["status"] == "up_to_date", (status, body[:300])
    assert plan["poll_interval_seconds"] == args.poll_interval, plan["poll_interval_seconds"]
    etag = headers["etag"]
    assert etag == world["etag"], (etag, world["etag"])
    # Properties the figure must not have bought: the token is checked on every request.
    check = {"Authorization": f"Bearer {world['revoke_token']}", "If-None-Match": etag}
    revoke(db_url, world["revoke_token_id"], revoked=False)  # as made, for every config
    assert get(port, path, check)[0] == 304
    revoke(db_url, world["revoke_token_id"])
    status, _, body = get(port, path, check)
    assert status == 401 and b"token_revoked" in body, (status, body)
    if args.poll_interval > 0:  # and pacing is enforced
        # Two polls back to back: the second is inside the first's interval, unless the pair
        # took longer than the interval's 90% (a loaded machine, a worker's first slow
        # answer): then that pair proves nothing and is tried again.
        window = 0.9 * args.poll_interval
        for _attempt in range(5):
            started = time.monotonic()
            first, _, _ = get(port, path, {**probe, "If-None-Match": etag}, timeout=120)
            status, headers, _ = get(port, path, {**probe, "If-None-Match": etag}, timeout=120)
            if time.monotonic() - started < window:
                break
            time.sleep(args.poll_interval + 1)
        else:
            raise RuntimeError("P4: no two polls within the pacing interval; machine too slow")
        assert first in (304, 429) and status == 429 and "retry-after" in headers, (first, status)
    log(
        f"[{name}] server up on port {port}; ETag {etag}; checked: revocation is refused on "
        "the next request" + (", an early poll gets 429" if args.poll_interval > 0 else "")
    )

    script = workdir / "p4.lua"
    results = []
    time.sleep(args.poll_interval + 1)  # the probe's pacing window
    for run in range(1, args.runs + 1):
        results.append(wrk_run(wrk, port, path, etag, 304, world, db_url, script, server.pid, args))
        report(name, f"304 run {run}", results[-1], args)
    ok = all(r.unexpected(304) == 0 and not any(r.errors.values()) for r in results)
    rates = [r.rate for r in results]
    median = sorted(results, key=lambda r: r.rate)[len(results) // 2]
    print(f"P4 poll_304_requests_per_second{suffix} {statistics.median(rates):.0f} req/s")
    if len(results) > 1:
        print(f"P4 poll_304_requests_per_second_min{suffix} {min(rates):.0f} req/s")
        print(f"P4 poll_304_requests_per_second_max{suffix} {max(rates):.0f} req/s")
    print(f"P4 poll_304_latency_p50_ms{suffix} {median.p50_ms:.1f} ms")
    print(f"P4 poll_304_latency_p99_ms{suffix} {median.p99_ms:.1f} ms")
    # CPU per poll (gunicorn, PostgreSQL's backends of the bench database, Redis; wrk apart),
    # from the processes' own accounting: the figure least disturbed by other work on the
    # machine. The split is of the median run.
    cpu = sorted(r.extra["cpu_ms"]["server"] for r in results)
    print(f"P4 poll_304_cpu_ms_per_request{suffix} {statistics.median(cpu):.3f} ms")
    if len(results) > 1:
        print(f"P4 poll_304_cpu_ms_per_request_min{suffix} {cpu[0]:.3f} ms")
        print(f"P4 poll_304_cpu_ms_per_request_max{suffix} {cpu[-1]:.3f} ms")
    mid = sorted(results, key=lambda r: r.extra["cpu_ms"]["server"])[len(results) // 2]
    for part, label in (
        ("gunicorn", "gunicorn"),
        ("gunicorn (kernel part)", "gunicorn_kernel"),
        ("postgres (bench db)", "postgresql"),
        ("redis-server", "redis"),
        ("wrk", "wrk"),
    ):
        print(f"P4 poll_304_cpu_ms_{label}{suffix} {mid.extra['cpu_ms'][part]:.3f} ms")
    non = sum(r.unexpected(304) + sum(r.errors.values()) for r in results)
    print(f"P4 poll_304_non_304_responses{suffix} {non} responses", flush=True)
    if any(r.delayed > 0.01 * r.requests for r in results):
        log(
            f"[{name}] NOTE: wrk had to hold requests back to keep each token's interval: "
            f"the rate is bounded by --tokens/({args.poll_interval} s x {GAP_FACTOR}); "
            "use more tokens"
        )
    if not args.skip_200:
        plan_run = wrk_run(wrk, port, path, None, 200, world, db_url, script, server.pid, args)
        report(name, "200 run", plan_run, args)
        print(f"P4 plan_200_requests_per_second{suffix} {plan_run.rate:.0f} req/s")
        print(f"P4 plan_200_latency_p50_ms{suffix} {plan_run.p50_ms:.1f} ms")
        print(f"P4 plan_200_latency_p99_ms{suffix} {plan_run.p99_ms:.1f} ms")
        bad = plan_run.unexpected(200) + sum(plan_run.errors.values())
        print(f"P4 plan_200_non_200_responses{suffix} {bad} responses", flush=True)
        ok &= bad == 0
    if not ok:
        log(f"[{name}] FAILED: some answers were not the expected status (see above)")
    return ok


def report(name: str, what: str, r: RunResult, args: argparse.Namespace) -> None:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(r.statuses.items()))
    errors = ", ".join(f"{k} {v}" for k, v in r.errors.items() if v) or "none"
    log(
        f"[{name}] {what}: {r.rate:.0f} req/s ({r.requests} in {r.seconds:.1f} s), latency p50 "
        f"{r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms; statuses {statuses}; socket errors {errors}; "
        f"held back for pacing {r.delayed}, early {r.early}; {r.extra.get('db', '')}"
    )
    log(f"[{name}]   {r.cpu}; before: {r.load_before}, after: {r.load_after}")


LUA = r"""
-- Written by bench/p4_poll.py: rotate sync-client tokens, each at most once per interval.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } p4_timespec;
int clock_gettime(int clk_id, p4_timespec *tp);
]]
local ts = ffi.new("p4_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local TOKENS_FILE = "@TOKENS@"
local PATH = "@PATH@"
local ETAG = @ETAG@
local GAP_MS = @GAP_MS@
local NTHREADS = @NTHREADS@

local threads = {}
local created = 0
function setup(thread)
  thread:set("thread_index", created)
  created = created + 1
  table.insert(threads, thread)
end

local tokens, last, queue = {}, {}, {}
local n, nxt, head, tail = 0, 1, 1, 0
local headers = {}
statuses = {}
delayed = 0
early = 0

function init(args)
  local i = 0
  for line in io.lines(TOKENS_FILE) do
    if i % NTHREADS == thread_index then
      n = n + 1
      tokens[n] = line
      last[n] = -1e12
    end
    i = i + 1
  end
  if ETAG then headers["If-None-Match"] = ETAG end
end

-- Called before each request: reserve the next token and wait until its interval is over.
-- Reservations are served in order (request() below), and their wake-up times only grow.
function delay()
  local k = nxt
  nxt = nxt % n + 1
  tail = tail + 1
  queue[tail] = k
  local wait = last[k] + GAP_MS - now_ms()
  if wait > 0 then
    delayed = delayed + 1
    return math.ceil(wait)
  end
  return 0
end

function request()
  local k = queue[head]
  if k == nil then -- wrk's own check of the script, in its main state (no tokens there)
    return wrk.format("GET", PATH, headers)
  end
  queue[head] = nil
  head = head + 1
  local t = now_ms()
  if t - last[k] < GAP_MS - 1 then early = early + 1 end
  last[k] = t
  headers["Authorization"] = "Bearer " .. tokens[k]
  return wrk.format("GET", PATH, headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts, held, soon = {}, 0, 0
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
    held = held + t:get("delayed")
    soon = soon + t:get("early")
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'P4RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"statuses": {%s}, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"delayed": %d, "early": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    table.concat(parts, ", "), e.connect, e.read, e.write, e.timeout, held, soon))
end
"""


def wrk_run(
    wrk: str,
    port: int,
    path: str,
    etag: str | None,
    expected: int,
    world: dict[str, Any],
    db_url: str,
    script: Path,
    gunicorn_pid: int,
    args: argparse.Namespace,
) -> RunResult:
    lua_etag = "nil" if etag is None else '"' + etag.replace("\\", "\\\\").replace('"', '\\"') + '"'
    script.write_text(
        LUA.replace("@TOKENS@", world["tokens_file"])
        .replace("@PATH@", path)
        .replace("@ETAG@", lua_etag)
        .replace("@GAP_MS@", str(round(args.poll_interval * 1000 * GAP_FACTOR)))
        .replace("@NTHREADS@", str(args.wrk_threads))
    )
    prime_last_used(db_url)
    before_db = db_counters(db_url)
    load_before = load()
    backends = BackendCpu(db_url)
    before = cpu_sample(gunicorn_pid)
    backends.start()
    done = subprocess.run(
        [
            wrk,
            f"--threads={args.wrk_threads}",
            f"--connections={args.connections}",
            f"--duration={args.duration}s",
            "--timeout=5s",
            f"--script={script}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    postgres = backends.stop()
    after = cpu_sample(gunicorn_pid)
    load_after = load()
    after_db = db_counters(db_url)
    line = next((x for x in done.stdout.splitlines() if x.startswith("P4RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}\n{done.stdout}")
    data = json.loads(line.split(" ", 1)[1])
    seconds = data["duration_us"] / 1e6
    writes = after_db["token_writes"] - before_db["token_writes"]
    cpu_text, cpu_ms = cpu_split(before, after, postgres, data["requests"])
    result = RunResult(
        rate=data["requests"] / seconds,
        requests=data["requests"],
        seconds=seconds,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        statuses={int(k): v for k, v in data["statuses"].items()},
        errors=data["errors"],
        delayed=data["delayed"],
        early=data["early"],
        cpu=cpu_text,
        load_before=load_before,
        load_after=load_after,
        extra={
            "db": f"last_used_at writes {writes} ({writes / seconds:.0f}/s)",
            "cpu_ms": cpu_ms,
        },
    )
    # The pacing windows of the tokens this run used must be over before the next run.
    time.sleep(args.poll_interval + 1)
    return result


def db_counters(db_url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'members_apitoken'"
        ).fetchone()
    return {"token_writes": int(row[0]) if row else 0}


# --- Child stage: the data (Django, development settings) ------------------------------------


def stage_prepare() -> int:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction
    from p1_p2_releases import Bench

    from distribution import keys, plans, selectors
    from distribution.models import Feed
    from members import tokens as token_format
    from members.models import ApiToken, Entitlement, Licence, Member, SyncClient

    count = int(os.environ["HASHSYNC_BENCH_TOKENS"])
    entries = int(os.environ["HASHSYNC_BENCH_ENTRIES"])
    workdir = Path(os.environ["HASHSYNC_BENCH_WORKDIR"])

    call_command("migrate", verbosity=0)
    keys.ensure_development_keys()
    # The feed "all" at version 1 (signed), then a release of 10 changes: version 2, a delta.
    bench = Bench(entries, changes=10, repeats=1)
    bench.populate()
    Feed.objects.create(name="md5-sha1", algorithms=["md5", "sha1"], description="synthetic")
    Feed.objects.create(name="sha256", algorithms=["sha256"], description="synthetic")
    bench.write_changes(10)
    bench.cut(10)
    feeds = list(Feed.objects.order_by("name"))
    feed = next(f for f in feeds if f.name == FEED)
    admin = get_user_model().objects.create_user(username="bench-member-admin")

    secrets_out: list[str] = []
    extra = 2  # the probe and the revocation check, outside the rotation
    with transaction.atomic():
        members = Member.objects.bulk_create(
            Member(name=f"member-{i}", display_name=f"Synthetic member {i}")
            for i in range(-(-(count + extra) // CLIENTS_PER_MEMBER))
        )
        Entitlement.objects.bulk_create(
            Entitlement(member=m, feed=f) for m in members for f in feeds
        )
        Licence.objects.bulk_create(
            Licence(member=m, kind="photodna", reference="synthetic") for m in members
        )
        clients = SyncClient.objects.bulk_create(
            SyncClient(member=members[i // CLIENTS_PER_MEMBER], name=f"edge-{i}")
            for i in range(count + extra)
        )
        rows = []
        for client in clients:
            secret = token_format.generate()
            secrets_out.append(secret)
            rows.append(
                ApiToken(
                    client=client,
                    prefix=token_format.display_prefix(secret),
                    digest=token_format.digest(secret),
                    scopes=["sync"],
                    created_by=admin,
                )
            )
        tokens = ApiToken.objects.bulk_create(rows, batch_size=2000)
    tokens_file = workdir / "tokens.txt"
    with os.fdopen(os.open(tokens_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write("\n".join(secrets_out[extra:]) + "\n")
    etag = plans.plan_etag(selectors.manifest_latest_sha256(feed.pk), feed.version)
    print(
        json.dumps(
            {
                "version": feed.version,
                "etag": etag,
                "tokens": count,
                "tokens_file": str(tokens_file),
                "probe_token": secrets_out[0],
                "revoke_token": secrets_out[1],
                "revoke_token_id": tokens[1].pk,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
