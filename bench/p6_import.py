#!/usr/bin/env python
"""P6: bulk import of N CSV rows, validated and staged. Target: 1,000,000 rows in ≤ 60 s.

Measures ``hashlist.imports.import_validate`` alone — streaming, validating every row, checking
every hash against the file and the list, and staging — on a file written beforehand. HTTP
upload and review are not part of the figure.

The rows are synthetic: md5, sha1 and sha256 columns of random bytes (``os.urandom``), a
random category and age group, source "synthetic-bench". Nothing here is a real hash. With
``--facts`` the rows record facts instead of a category (a random activity, pubertal stage,
origin and self-generated flag, some unknown), so every row's grading is derived from them.

The database is ``DATABASE_URL`` if set (an empty, dedicated one: the script migrates it and
leaves its rows behind), otherwise a fresh SQLite file in a temporary directory that is
removed afterwards.

    .venv/bin/python bench/p6_import.py --rows 100000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hashsync_bench \
        .venv/bin/python bench/p6_import.py

Prints two lines on stdout (progress goes to stderr):

    P6 import_rows_<N>_seconds <value> s
    P6 import_rows_<N>_peak_rss_mib <value> MiB
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ("A", "B", "C")
AGE_GROUPS = ("0-2", "3-6", "7-10", "11-13", "14-15", "16-17", "unknown")
ROW_BYTES = 16 + 20 + 32  # md5 + sha1 + sha256
BLOCK_ROWS = 10_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


ACTIVITIES = ("penetrative", "animal", "sadism", "non_penetrative", "lascivious_exhibition",
              "nudity_posing", "other")  # fmt: skip
STAGES = ("prepubescent", "pubescent", "post_pubescent", "")
ORIGINS = ("real", "computer_generated", "")
SELF_GENERATED = ("yes", "no", "")


def _grading(choose: random.Random, facts: bool) -> str:
    if not facts:
        return f"{choose.choice(CATEGORIES)},{choose.choice(AGE_GROUPS)}"
    return (
        f",{choose.choice(AGE_GROUPS)},{choose.choice(ACTIVITIES)},{choose.choice(STAGES)},"
        f"{choose.choice(ORIGINS)},{choose.choice(SELF_GENERATED)}"
    )


def write_synthetic_csv(path: Path, rows: int, *, facts: bool = False) -> None:
    """``rows`` rows of random hashes; the grading is chosen by a seeded PRNG (not secret)."""
    choose = random.Random(6)  # grading spread, not a secret
    with path.open("w", encoding="ascii", newline="") as out:
        if facts:
            out.write(
                "category,age_group,activity,pubertal_stage,origin,self_generated,"
                "source,md5,sha1,sha256\n"
            )
        else:
            out.write("category,age_group,source,md5,sha1,sha256\n")
        written = 0
        while written < rows:
            n = min(BLOCK_ROWS, rows - written)
            block = os.urandom(ROW_BYTES * n).hex()
            lines = []
            for i in range(n):
                h = block[i * 2 * ROW_BYTES : (i + 1) * 2 * ROW_BYTES]
                lines.append(
                    f"{_grading(choose, facts)},synthetic-bench,{h[:32]},{h[32:72]},{h[72:]}\n"
                )
            out.write("".join(lines))
            written += n


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a local process, from /proc; None if not readable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to import (1,000,000)")
    parser.add_argument("--profile", metavar="PATH", help="write cProfile stats of the import here")
    parser.add_argument(
        "--facts",
        action="store_true",
        help="rows record facts, not a category (docs/import-format.md)",
    )
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("--rows must be at least 1")

    workdir = Path(tempfile.mkdtemp(prefix="hashsync-p6-"))
    try:
        return run(args.rows, workdir, args.profile, facts=args.facts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(rows: int, workdir: Path, profile: str | None, *, facts: bool = False) -> int:
    # Settings are read once, at django.setup(): everything must be in the environment first.
    os.environ["HASHSYNC_VAR_DIR"] = str(workdir)
    os.environ["HASHSYNC_MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ["HASHSYNC_IMPORT_MAX_ROWS"] = str(max(rows, 5_000_000))
    # As in production: with DEBUG on, Django renders every query's SQL for connection.queries,
    # which for 2,000-row statements costs more than running them.
    os.environ["DEBUG"] = "false"
    os.environ["DJANGO_SETTINGS_MODULE"] = "hashsync.settings"
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from hashlist import imports
    from hashlist.models import ImportBatch, ImportFormat, ImportStatus, StagedRow
    from hashsync.roles import ANALYST

    log(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']})")
    call_command("migrate", verbosity=0)

    upload_dir = Path(settings.MEDIA_ROOT) / "imports" / "bench"
    upload_dir.mkdir(parents=True)
    csv_path = upload_dir / f"synthetic-{rows}.csv"
    started = time.perf_counter()
    write_synthetic_csv(csv_path, rows, facts=facts)
    size = csv_path.stat().st_size
    log(
        f"wrote {rows} synthetic rows, {size / 2**20:.1f} MiB, "
        f"in {time.perf_counter() - started:.1f} s"
    )

    user_model = get_user_model()
    analyst = user_model.objects.create_user(username=f"bench-analyst-{time.time_ns()}")
    analyst.groups.add(Group.objects.get(name=ANALYST))
    batch = ImportBatch.objects.create(
        uploaded_by=analyst,
        file=str(csv_path.relative_to(settings.MEDIA_ROOT)),
        original_name=csv_path.name,
        format=ImportFormat.CSV,
        size=size,
        sha256=sha256_of(csv_path),
    )

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    server_pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            server_pid = cursor.fetchone()[0]
    server_started = process_cpu_seconds(server_pid) if server_pid else None
    started, cpu_started = time.perf_counter(), time.process_time()
    imports.import_validate(batch_id=batch.pk)
    seconds = time.perf_counter() - started
    # On a shared machine wall time includes waiting for a core; CPU times show how much.
    cpu = f"{time.process_time() - cpu_started:.1f} s CPU in this process"
    server_now = process_cpu_seconds(server_pid) if server_pid else None
    if server_started is not None and server_now is not None:
        cpu += f", {server_now - server_started:.1f} s CPU in its PostgreSQL backend"
    log(
        f"import: {seconds:.1f} s wall, {cpu}, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
        log(f"profile written to {profile}")

    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED, (batch.status, batch.error_count)
    assert batch.rows_valid == rows, batch.rows_valid
    staged = StagedRow.objects.filter(batch=batch).count()
    assert staged == rows, staged

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"P6 import_rows_{rows}_seconds {seconds:.1f} s")
    print(f"P6 import_rows_{rows}_peak_rss_mib {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
