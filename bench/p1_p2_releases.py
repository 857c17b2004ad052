#!/usr/bin/env python
"""P1 and P2: the release machinery against a feed of N members.

P2 — cutting a release of 1,000 changes: ≤ 2 s, and the same (ratio ≤ 1.5) at 10M entries as
at 100k. Measures ``distribution.releases.release_cut()`` alone, on a feed "all" (no filter)
that already holds N members, with 1,000 approved-but-unreleased changes waiting: about 70%
new entries, 20% regrades and 10% retractions of existing members, each written as the
services write them (Entry, Hash, Proposal and Change rows, ``entry_state`` before/after; bulk
inserts). Three timed cuts per scale, each over fresh changes, after one untimed warm-up cut of
10 changes (a long-running worker is warm); the median is reported.

P1 — full snapshot of a 10M-entry feed: ≤ 60 s and ≤ 1 GiB peak RSS. Measures
``distribution.releases.snapshot_build(feed_id=…)`` in a child process started only for it,
so the set-up's memory does not count; the RSS figure is that process's ``ru_maxrss``.

Set-up fast path (not measured): the feed's N members are written straight into
``distribution_feedentry`` (COPY on PostgreSQL, with the table's secondary indexes and
constraints dropped during the load and re-created from their own definitions afterwards, then
VACUUM ANALYZE as autovacuum eventually would; see ``--no-vacuum``), with ``version``,
``entry_count``, ``lthash`` and ``populated_at`` set to match, one ``ReleaseState``,
``Release`` and ``FeedVersion`` for the starting version and a signed manifest — so the next
``release_cut()`` is an ordinary incremental cut. The cutter reads only ``Change.before/after``
and ``FeedEntry``, so most members have no ``hashlist_entry``/``hashlist_hash`` rows: their
``entry_id`` is a synthetic id from 10**12 up. The ~1,000 entries the timed changes regrade or
retract are real Entry and Hash rows whose hashes are in the feed.

Every entry has an MD5, a SHA-1 and a SHA-256 hash (as the P6 import data), so N members are
about N/3 entries and a change touches three feed records. All values are synthetic: uniformly
random bytes from a seeded numpy generator (``source`` "synthetic-bench"); gradings are drawn
from made-up skewed marginals. Nothing here is a real hash.

Databases: with a PostgreSQL URL (``--database``, default ``DATABASE_URL``) only its server is
used: the bench creates its own database ``hashsync_bench_releases`` for each scale and drops
it afterwards. Otherwise a fresh SQLite file in a temporary directory (removed afterwards).
Keys and bundles go to a temporary HASHSYNC_VAR_DIR (development keys generated once).

    .venv/bin/python bench/p1_p2_releases.py                    # P2 at 100k and 10M, P1 at 10M
    .venv/bin/python bench/p1_p2_releases.py --entries 100000 --snapshot-entries 1000000
    .venv/bin/python bench/p1_p2_releases.py --database postgres://postgres@127.0.0.1:5432/x
    .venv/bin/python bench/p1_p2_releases.py --entries '' --snapshot-entries 10000000 \
        --no-vacuum --database postgres://postgres@127.0.0.1:5432/x     # P1 alone, worst case

``--no-vacuum`` (PostgreSQL): ANALYZE the loaded table but do not VACUUM it, so its visibility
map is empty — as on a table that has changed all over since autovacuum last visited it — and
the snapshot's index-only scan must still read a heap page per member. The worst case for P1;
its figures are named ``snapshot_<N>_unvacuumed_…``.

Prints (detail, load averages and checks on stderr):

    P2 release_1000_changes_at_<N>_seconds <v> s              one line per --entries scale
    P2 release_1000_changes_ratio_<Nmax>_to_<Nmin> <v> x     with two scales or more
    P1 snapshot_<N>_seconds <v> s                            (_unvacuumed_seconds with
    P1 snapshot_<N>_peak_rss_mib <v> MiB                       --no-vacuum, and so on)
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "hashsync_bench_releases"
ALGORITHMS = ("md5", "sha1", "sha256")  # every synthetic entry has one hash of each
NEW, REGRADE, RETRACT = "create", "regrade", "retract"
MIX = ((NEW, 0.7), (REGRADE, 0.2), (RETRACT, 0.1))
WARMUP_CHANGES = 10
SYNTHETIC_ENTRY_BASE = 10**12  # entry ids of members without hashlist rows
CHUNK_ENTRIES = 50_000  # entries generated (and COPY'd) per step: 150,000 feed rows
VERIFY_DIGEST_UP_TO = 1_000_000  # recompute the LtHash from the table up to this many rows
SEED = 12


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} cores"


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a local process, from /proc; None if not readable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_postgresql(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql", "pgsql")


def redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


# --- The orchestrating parent (no Django here) --------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--entries",
        default="100000,10000000",
        help="comma-separated feed sizes for P2 (default 100000,10000000); empty: no P2",
    )
    parser.add_argument(
        "--snapshot-entries",
        type=int,
        default=None,
        help="feed size for P1 (default: the largest --entries); 0: no P1",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("DATABASE_URL", ""),
        help="PostgreSQL server URL (its database part is ignored); default DATABASE_URL, "
        "else a temporary SQLite file",
    )
    parser.add_argument("--changes", type=int, default=1000, help="changes per cut (1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed cuts per scale (3)")
    parser.add_argument("--profile", metavar="DIR", help="write cProfile stats of P2 and P1 here")
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="PostgreSQL: ANALYZE the loaded feed table without VACUUM (empty visibility map)",
    )
    # Internal: the stages run in child processes.
    parser.add_argument("--stage", choices=("prepare", "snapshot"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--p2", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage == "prepare":
        return stage_prepare(args)
    if args.stage == "snapshot":
        return stage_snapshot(args)

    try:
        p2_scales = sorted({int(x) for x in args.entries.split(",") if x.strip()})
    except ValueError:
        parser.error("--entries must be comma-separated integers")
    snapshot_n = args.snapshot_entries
    if snapshot_n is None:
        snapshot_n = max(p2_scales, default=0)
    pool = (args.repeats + 1) * args.changes  # generous: only ~30% are drawn from it
    if any(n < 3 * pool for n in p2_scales) or (snapshot_n and snapshot_n < 3 * pool):
        parser.error(f"feeds must hold at least {3 * pool} members for these --changes/--repeats")
    if args.changes < 10 or args.repeats < 1:
        parser.error("--changes must be at least 10 and --repeats at least 1")
    postgres = bool(args.database) and is_postgresql(args.database)
    if args.database and not postgres and not args.database.startswith("sqlite"):
        parser.error("--database must be a PostgreSQL URL (or empty for SQLite)")
    if args.no_vacuum and (not postgres or p2_scales):
        parser.error("--no-vacuum is for P1 alone on PostgreSQL: add --entries '' and --database")

    workdir = Path(tempfile.mkdtemp(prefix="hashsync-p1p2-"))
    medians: dict[int, float] = {}
    try:
        for n in sorted({*p2_scales, *([snapshot_n] if snapshot_n else [])}):
            medians.update(
                run_scale(
                    n,
                    p2=n in p2_scales,
                    snapshot=n == snapshot_n,
                    postgres=postgres,
                    server=args.database,
                    workdir=workdir / str(n),
                    args=args,
                )
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if len(medians) >= 2:
        low, high = min(medians), max(medians)
        ratio = medians[high] / medians[low]
        print(f"P2 release_{args.changes}_changes_ratio_{high}_to_{low} {ratio:.2f} x", flush=True)
    return 0


def run_scale(
    n: int,
    *,
    p2: bool,
    snapshot: bool,
    postgres: bool,
    server: str,
    workdir: Path,
    args: argparse.Namespace,
) -> dict[int, float]:
    workdir.mkdir(parents=True)
    env = dict(os.environ)
    env.update(
        HASHSYNC_VAR_DIR=str(workdir),
        HASHSYNC_MEDIA_ROOT=str(workdir / "media"),
        # As in production: with DEBUG on, Django keeps every query's SQL.
        DEBUG="false",
        DJANGO_SETTINGS_MODULE="hashsync.settings",
        HASHSYNC_BENCH_CHANGES=str(args.changes),
        HASHSYNC_BENCH_REPEATS=str(args.repeats),
        HASHSYNC_BENCH_PROFILE=args.profile or "",
        HASHSYNC_BENCH_NO_VACUUM="1" if args.no_vacuum else "",
    )
    if postgres:
        import psycopg

        parts = urlsplit(server)
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{DB_NAME}"))
        with psycopg.connect(admin_url, autocommit=True) as admin:
            # Without FORCE: refuses (and stops the bench) if someone is using it.
            admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
            admin.execute(f"CREATE DATABASE {DB_NAME}")
        log(f"[{n}] created database {redacted(env['DATABASE_URL'])}")
    else:
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
        log(f"[{n}] database: SQLite file in {workdir}")

    script = [sys.executable, str(Path(__file__).resolve())]
    medians: dict[int, float] = {}
    try:
        stage = [*script, "--stage", "prepare", "--n", str(n), *(["--p2"] if p2 else [])]
        done = subprocess.run(stage, env=env, stdout=subprocess.PIPE, text=True, check=True)
        for line in done.stdout.splitlines():
            print(line, flush=True)
            parts_ = line.split()
            if len(parts_) == 4 and parts_[0] == "P2" and parts_[1].endswith("_seconds"):
                medians[n] = float(parts_[2])
        if snapshot:
            stage = [*script, "--stage", "snapshot", "--n", str(n)]
            done = subprocess.run(stage, env=env, stdout=subprocess.PIPE, text=True, check=True)
            for line in done.stdout.splitlines():
                print(line, flush=True)
    finally:
        if postgres:
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            log(f"[{n}] dropped database {DB_NAME}")
    return medians


# --- Child stages ---------------------------------------------------------------------------------


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def stage_prepare(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from distribution import keys

    n = args.n
    changes = int(os.environ["HASHSYNC_BENCH_CHANGES"])
    repeats = int(os.environ["HASHSYNC_BENCH_REPEATS"])
    profile_dir = os.environ.get("HASHSYNC_BENCH_PROFILE") or None

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    keys.ensure_development_keys()
    log(f"[{n}] migrated, development keys made in {time.perf_counter() - started:.1f} s")

    bench = Bench(n, changes=changes, repeats=repeats)
    started = time.perf_counter()
    bench.populate()
    log(f"[{n}] set-up of {n} members took {time.perf_counter() - started:.1f} s ({load()})")

    if not args.p2:
        return 0
    server_pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            server_pid = cursor.fetchone()[0]

    bench.write_changes(WARMUP_CHANGES)
    started = time.perf_counter()
    bench.cut(WARMUP_CHANGES)
    log(f"[{n}] warm-up cut of {WARMUP_CHANGES} changes: {time.perf_counter() - started:.2f} s")

    timings = []
    for run in range(1, repeats + 1):
        started = time.perf_counter()
        bench.write_changes(changes)
        written = time.perf_counter() - started
        profiler = None
        if profile_dir:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        server_before = process_cpu_seconds(server_pid) if server_pid else None
        before = load()
        started, cpu = time.perf_counter(), time.process_time()
        bench.cut(changes)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        if profiler is not None and profile_dir:
            profiler.disable()
            path = Path(profile_dir) / f"p2-{n}-run{run}.prof"
            profiler.dump_stats(path)
            log(f"[{n}] profile written to {path}")
        server_after = process_cpu_seconds(server_pid) if server_pid else None
        server = (
            f", {server_after - server_before:.2f} s CPU in its PostgreSQL backend"
            if server_before is not None and server_after is not None
            else ""
        )
        timings.append(seconds)
        log(
            f"[{n}] cut {run}: {seconds:.3f} s wall, {cpu:.2f} s CPU in this process{server} "
            f"(changes written in {written:.1f} s, untimed); before: {before}; after: {load()}"
        )
    bench.verify()
    median = statistics.median(timings)
    print(f"P2 release_{changes}_changes_at_{n}_seconds {median:.3f} s", flush=True)
    return 0


def stage_snapshot(args: argparse.Namespace) -> int:
    setup_django()
    from django.db import connection

    from distribution.models import Feed, FeedEntry
    from distribution.releases import snapshot_build

    n = args.n
    profile_dir = os.environ.get("HASHSYNC_BENCH_PROFILE") or None
    feed = Feed.objects.get(name="all")
    server_pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            server_pid = cursor.fetchone()[0]
            # Pages marked all-visible (as of the last VACUUM/ANALYZE): the index-only scan
            # reads the heap for the others.
            cursor.execute(
                "SELECT relallvisible, relpages FROM pg_class WHERE oid = %s::regclass",
                [FeedEntry._meta.db_table],
            )
            visible, pages = cursor.fetchone()
        log(f"[{n}] feed table: {visible} of {pages} pages all-visible")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    server_before = process_cpu_seconds(server_pid) if server_pid else None
    before = load()
    started, cpu = time.perf_counter(), time.process_time()
    version = snapshot_build(feed_id=feed.pk)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    server_after = process_cpu_seconds(server_pid) if server_pid else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if profiler is not None and profile_dir:
        profiler.disable()
        path = Path(profile_dir) / f"p1-{n}.prof"
        profiler.dump_stats(path)
        log(f"[{n}] profile written to {path}")
    assert version is not None and version.snapshot_sha256, "no snapshot was built"
    server = (
        f", {server_after - server_before:.1f} s CPU in its PostgreSQL backend"
        if server_before is not None and server_after is not None
        else ""
    )
    log(
        f"[{n}] snapshot of {version.entry_count} records at version {version.version}: "
        f"{(version.snapshot_size or 0) / 2**20:.1f} MiB, sha256 {version.snapshot_sha256}; "
        f"{seconds:.1f} s wall, {cpu:.1f} s CPU in this process{server}; "
        f"peak RSS {rss_before:.0f} MiB before the build; before: {before}; after: {load()}"
    )
    assert version.entry_count == FeedEntry.objects.filter(feed=feed).count()
    name = (
        f"snapshot_{n}_unvacuumed"
        if os.environ.get("HASHSYNC_BENCH_NO_VACUUM")
        else f"snapshot_{n}"
    )
    print(f"P1 {name}_seconds {seconds:.1f} s", flush=True)
    print(f"P1 {name}_peak_rss_mib {peak:.0f} MiB", flush=True)
    return 0


# --- Set-up and the synthetic changes (run inside a child, after django.setup()) --------------


class Bench:
    def __init__(self, n: int, *, changes: int, repeats: int) -> None:
        import numpy as np

        from hashsync_client.format import GRADING_COUNT, decode_grading

        self.np = np
        self.n = n
        self.changes = changes
        self.rng = np.random.default_rng(SEED)
        self.choose = random.Random(SEED)  # the change mix; not a secret
        # Made-up skewed, independent marginals over the grading fields.
        marginals: dict[str, dict[object, float]] = {
            "category": {"A": 0.2, "B": 0.25, "C": 0.55},
            "age_group": {
                "0-2": 0.03,
                "3-6": 0.10,
                "7-10": 0.25,
                "11-13": 0.35,
                "14-15": 0.12,
                "16-17": 0.05,
                "unknown": 0.10,
            },
            "baseline": {None: 0.6, True: 0.3, False: 0.1},
            "industry_class": {"": 0.5, "A1": 0.15, "A2": 0.2, "B1": 0.1, "B2": 0.05},
            "content_type": {"image": 0.9, "video": 0.1},
        }
        weights = np.array(
            [
                np.prod([marginals[f][v] for f, v in decode_grading(c)._asdict().items()])
                for c in range(GRADING_COUNT)
            ]
        )
        self.weights = weights / weights.sum()
        # Existing members the timed changes regrade or retract: real Entry + Hash rows.
        self.pool_size = (repeats + 1) * changes  # ~30% of it is used
        self.pool: list[int] = []  # entry ids not yet touched
        self.feed: Any = None  # the Feed, once populated
        self.author: Any = None
        self.reviewer: Any = None

    # -- helpers --

    def codes(self, count: int) -> list[int]:
        return self.rng.choice(len(self.weights), size=count, p=self.weights).tolist()

    def values(self, algorithm: str, count: int):
        from hashsync_client.format import ALGORITHM_LENGTHS

        length = ALGORITHM_LENGTHS[algorithm]
        return self.rng.integers(0, 256, size=(count, length), dtype=self.np.uint8)

    @staticmethod
    def split(array) -> list[bytes]:
        flat = array.tobytes()
        width = array.shape[1]
        return [flat[i : i + width] for i in range(0, len(flat), width)]

    def elements(self, algorithm: str, values, codes) -> list[bytes]:
        """The LtHash elements of these rows (``hashsync_client.lthash.element``), vectorised."""
        from hashsync_client.format import ALGORITHM_IDS

        np = self.np
        count, length = values.shape
        out = np.empty((count, length + 3), dtype=np.uint8)
        out[:, 0] = ALGORITHM_IDS[algorithm]
        out[:, 1 : length + 1] = values
        grading = np.asarray(codes, dtype=np.uint16)
        out[:, length + 1] = grading >> 8
        out[:, length + 2] = grading & 0xFF
        return self.split(out)

    # -- set-up --

    def populate(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db import connection, transaction
        from django.utils import timezone

        from distribution import keys
        from distribution.models import Feed, FeedEntry, FeedVersion, Release, ReleaseState
        from distribution.releases import manifest_publish
        from hashlist.models import Entry, EntryStatus, Hash
        from hashsync_client.format import decode_grading
        from hashsync_client.lthash import LtHash16, element

        users = get_user_model().objects
        self.author = users.create_user(username="bench-author")
        self.reviewer = users.create_user(username="bench-reviewer")
        feed = Feed.objects.create(name="all", description="synthetic-bench: every entry")
        self.feed = feed

        # The pool: real entries whose three hashes are feed members.
        pool_codes = self.codes(self.pool_size)
        entries = Entry.objects.bulk_create(
            [Entry(**decode_grading(c)._asdict(), source="synthetic-bench") for c in pool_codes],
            batch_size=5000,
        )
        self.pool = [e.pk for e in entries]
        pool_rows: list[tuple[str, bytes, int, int]] = []
        pool_elements: list[bytes] = []
        hashes = []
        for algorithm in ALGORITHMS:
            values = self.values(algorithm, len(entries))
            pool_elements += self.elements(algorithm, values, pool_codes)
            for entry, value, code in zip(entries, self.split(values), pool_codes, strict=True):
                pool_rows.append((algorithm, value, code, entry.pk))
                hashes.append(Hash(entry=entry, algorithm=algorithm, value=value))
        Hash.objects.bulk_create(hashes, batch_size=5000)
        assert Entry.objects.filter(status=EntryStatus.ACTIVE).count() == len(entries)

        digest = LtHash16()
        chunks = self.member_chunks(pool_rows, pool_elements)
        started = time.perf_counter()
        lthash_seconds = 0.0
        written = 0
        if connection.vendor == "postgresql":
            with transaction.atomic():
                restore = self.drop_secondary_indexes()
                raw = connection.connection
                table = FeedEntry._meta.db_table
                copy_sql = f"COPY {table} (feed_id, algorithm, value, grading, entry_id) FROM STDIN"
                with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    for rows, elements in chunks:
                        fid = feed.pk
                        copy.write(
                            "".join(
                                [f"{fid}\t{a}\t\\\\x{v.hex()}\t{g}\t{e}\n" for a, v, g, e in rows]
                            )
                        )
                        t = time.perf_counter()
                        digest.add(elements)
                        lthash_seconds += time.perf_counter() - t
                        written += len(rows)
                        self.progress(written, started)
                t = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
                    for statement in restore:
                        cursor.execute(statement)
                log(
                    f"[{self.n}] indexes and constraints re-created in "
                    f"{time.perf_counter() - t:.1f} s"
                )
            t = time.perf_counter()
            # VACUUM sets the visibility map the snapshot's index-only scan relies on.
            statement = (
                "ANALYZE" if os.environ.get("HASHSYNC_BENCH_NO_VACUUM") else "VACUUM ANALYZE"
            )
            with connection.cursor() as cursor:
                cursor.execute(f"{statement} {table}")
            log(f"[{self.n}] {statement} in {time.perf_counter() - t:.1f} s")
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                for rows, elements in chunks:
                    cursor.executemany(
                        f"INSERT INTO {FeedEntry._meta.db_table} "  # noqa: S608 - ours
                        "(feed_id, algorithm, value, grading, entry_id) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        [(feed.pk, a, v, g, e) for a, v, g, e in rows],
                    )
                    t = time.perf_counter()
                    digest.add(elements)
                    lthash_seconds += time.perf_counter() - t
                    written += len(rows)
                    self.progress(written, started)
        log(
            f"[{self.n}] {written} members written in {time.perf_counter() - started:.1f} s "
            f"(of which LtHash {lthash_seconds:.1f} s)"
        )
        assert written == self.n
        # The vectorised elements are the canonical ones.
        algorithm, value, code, _ = pool_rows[0]
        assert pool_elements[0] == element(algorithm, value, code)

        now = timezone.now()
        with transaction.atomic():
            state = ReleaseState.objects.get_or_create(pk=1)[0]
            state.last_version = 1
            state.save()
            Release.objects.create(version=1, change_count=0, first_change_id=0, last_change_id=0)
            FeedVersion.objects.create(
                feed=feed,
                version=1,
                previous_version=None,
                entry_count=self.n,
                state_digest=digest.hexdigest(),
            )
            feed.version, feed.entry_count, feed.lthash = 1, self.n, digest.state()
            feed.populated_at = now
            feed.save()
            manifest_publish(feed, signer=keys.online_signing_key(), now=now)
        self.verify()

    def member_chunks(self, pool_rows, pool_elements):
        """(rows, LtHash elements) per step: N members in all, the pool's spread among them.
        Rows are (algorithm, value, grading, entry id), in random key order like a real table."""
        remaining = self.n - len(pool_rows)
        steps = max(1, -(-remaining // (3 * CHUNK_ENTRIES)))
        pool_step = -(-len(pool_rows) // steps)
        next_entry = SYNTHETIC_ENTRY_BASE
        for step in range(steps):
            count = -(-min(remaining, 3 * CHUNK_ENTRIES) // 3)  # entries this step
            codes = self.codes(count)
            ids = list(range(next_entry, next_entry + count))
            next_entry += count
            rows: list[tuple[str, bytes, int, int]] = []
            elements: list[bytes] = []
            for algorithm in ALGORITHMS:
                values = self.values(algorithm, count)
                rows += zip([algorithm] * count, self.split(values), codes, ids, strict=True)
                elements += self.elements(algorithm, values, codes)
            take = min(remaining, len(rows))
            del rows[take:], elements[take:]
            remaining -= take
            share = slice(step * pool_step, (step + 1) * pool_step)
            yield rows + pool_rows[share], elements + pool_elements[share]
        assert remaining == 0

    def progress(self, written: int, started: float) -> None:
        if written // 1_000_000 != (written - 3 * CHUNK_ENTRIES) // 1_000_000:
            log(f"[{self.n}] … {written} members, {time.perf_counter() - started:.0f} s")

    def drop_secondary_indexes(self) -> list[str]:
        """Drop the feed table's constraints (but its primary key) and other indexes; return
        the statements that re-create them exactly, from PostgreSQL's own definitions."""
        from django.db import connection

        from distribution.models import FeedEntry

        table = FeedEntry._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype <> 'p' ORDER BY conname",
                [table],
            )
            constraints = cursor.fetchall()
            cursor.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                "WHERE indrelid = %s::regclass AND NOT indisprimary AND indexrelid NOT IN "
                "(SELECT conindid FROM pg_constraint WHERE conrelid = %s::regclass) "
                "ORDER BY 1",
                [table, table],
            )
            indexes = cursor.fetchall()
            for name, _ in constraints:
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        log(f"[{self.n}] load without {[c for c, _ in constraints] + [i for i, _ in indexes]}")
        return [f'ALTER TABLE {table} ADD CONSTRAINT "{c}" {d}' for c, d in constraints] + [
            d for _, d in indexes
        ]

    # -- the changes --

    def write_changes(self, count: int) -> None:
        """``count`` approved, unreleased changes, as ``hashlist.services`` writes them."""
        from django.db import transaction
        from django.utils import timezone

        from hashlist.changelog import EntryState
        from hashlist.models import (
            Change,
            Entry,
            EntryStatus,
            Hash,
            Proposal,
            ProposalKind,
            ProposalStatus,
        )
        from hashsync_client.format import GRADING_FIELD_NAMES, decode_grading

        kinds = [kind for kind, share in MIX for _ in range(round(count * share))]
        kinds = (kinds + [NEW] * count)[:count]
        self.choose.shuffle(kinds)
        now = timezone.now()

        def state(entry: Entry, pairs: list[tuple[str, bytes]]) -> dict:
            return EntryState.of(entry, pairs).to_json()

        def approved(kind: str, entry: Entry | None, base: int | None, payload: dict) -> Proposal:
            return Proposal(
                kind=kind,
                status=ProposalStatus.APPROVED,
                entry=entry,
                base_revision=base,
                payload=payload,
                author=self.author,
                reviewer=self.reviewer,
                reviewed_at=now,
                comment="synthetic-bench",
            )

        with transaction.atomic():
            # New entries: Entry, three Hash rows, an approved proposal, a "create" change.
            new_count = kinds.count(NEW)
            codes = self.codes(new_count)
            entries = Entry.objects.bulk_create(
                [Entry(**decode_grading(c)._asdict(), source="synthetic-bench") for c in codes]
            )
            pairs_of: dict[int, list[tuple[str, bytes]]] = {e.pk: [] for e in entries}
            hashes = []
            for algorithm in ALGORITHMS:
                for entry, value in zip(
                    entries, self.split(self.values(algorithm, new_count)), strict=True
                ):
                    pairs_of[entry.pk].append((algorithm, value))
                    hashes.append(Hash(entry=entry, algorithm=algorithm, value=value))
            Hash.objects.bulk_create(hashes)
            new = iter(entries)

            # Existing members: regraded to a different grading, or retracted.
            touched_ids = [self.pool.pop() for kind in kinds if kind != NEW]
            touched = Entry.objects.in_bulk(touched_ids)
            existing_pairs: dict[int, list[tuple[str, bytes]]] = {i: [] for i in touched_ids}
            for h in Hash.objects.filter(entry_id__in=touched_ids).order_by("algorithm", "id"):
                existing_pairs[h.entry_id].append((h.algorithm, bytes(h.value)))
            old = iter(touched_ids)

            plan: list[tuple[Proposal, Entry, str, dict | None, dict]] = []
            for kind in kinds:
                if kind == NEW:
                    entry = next(new)
                    after = state(entry, pairs_of[entry.pk])
                    payload = {
                        "grading": {f: after[f] for f in GRADING_FIELD_NAMES},
                        "hashes": after["hashes"],
                        "source": "synthetic-bench",
                        "notes": "",
                    }
                    plan.append(
                        (
                            approved(ProposalKind.CREATE, entry, None, payload),
                            entry,
                            kind,
                            None,
                            after,
                        )
                    )
                    continue
                entry = touched[next(old)]
                pairs = existing_pairs[entry.pk]
                before = state(entry, pairs)
                base = entry.revision
                if kind == REGRADE:
                    current = EntryState.of(entry, pairs).grading
                    while True:
                        grading = decode_grading(self.codes(1)[0])
                        if grading != current:
                            break
                    for field, value in grading._asdict().items():
                        setattr(entry, field, value)
                    payload = {"grading": grading._asdict()}
                else:
                    entry.status = EntryStatus.RETRACTED
                    payload = {}
                entry.revision += 1
                entry.updated_at = now
                plan.append(
                    (approved(kind, entry, base, payload), entry, kind, before, state(entry, pairs))
                )

            Entry.objects.bulk_update(
                list(touched.values()),
                [*GRADING_FIELD_NAMES, "status", "revision", "updated_at"],
            )
            proposals = Proposal.objects.bulk_create([p for p, *_ in plan])
            Change.objects.bulk_create(
                [
                    Change(
                        entry=entry,
                        proposal=proposal,
                        kind=kind,
                        before=before,
                        after=after,
                        approved_at=now,
                    )
                    for proposal, (_, entry, kind, before, after) in zip(
                        proposals, plan, strict=True
                    )
                ]
            )

    def cut(self, count: int) -> None:
        from distribution.releases import release_cut

        release = release_cut()
        assert release is not None and release.change_count == count, release

    def verify(self) -> None:
        """The feed's published count and digest match its table (digest: small feeds)."""
        from distribution.models import Feed, FeedEntry
        from hashsync_client.lthash import LtHash16, element

        feed = Feed.objects.get(pk=self.feed.pk)
        rows = FeedEntry.objects.filter(feed=feed)
        count = rows.count()
        assert count == feed.entry_count, (count, feed.entry_count)
        if count <= VERIFY_DIGEST_UP_TO:
            digest = LtHash16()
            digest.add(
                element(a, bytes(v), g)
                for a, v, g in rows.values_list("algorithm", "value", "grading").iterator(
                    chunk_size=20000
                )
            )
            assert digest.state() == bytes(feed.lthash), "feed digest differs from its members"
            log(f"[{self.n}] checked: {count} members, digest matches at version {feed.version}")
        else:
            log(f"[{self.n}] checked: {count} members at version {feed.version}")


if __name__ == "__main__":
    sys.exit(main())
