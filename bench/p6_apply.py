#!/usr/bin/env python
"""P6 (approval): from a reviewer's approval of a 1M-row import to the release that carries it.

The import is validated and staged first (not timed: that is ``p6_import.py``). Then, timed:
the approval (``services.proposal_approve``: the decision, the batch marked ``applying``), the
apply task's work (``imports.import_apply``: every row as an entry, its hashes and its change,
in one transaction), and the release cut that publishes them (``releases.release_cut``) to one
feed holding every entry. Called in this process one after the other, as a worker would run
them; the Celery hand-offs (milliseconds, and the release debounce) are left out.

Synthetic rows as in ``p6_import.py`` (random md5, sha1 and sha256). The database is a fresh
one, ``hashsync_bench_p6_apply``, created on the PostgreSQL server ``--database`` names and
dropped afterwards (``--database sqlite``: a SQLite file in a temporary directory).

    .venv/bin/python bench/p6_apply.py --rows 1000000 \\
        --database postgres://postgres@127.0.0.1:5432

Prints on stdout (progress goes to stderr):

    P6 apply_rows_<N>_approve_seconds <value> s
    P6 apply_rows_<N>_apply_seconds <value> s
    P6 apply_rows_<N>_release_seconds <value> s
    P6 approval_to_release_rows_<N>_seconds <value> s
    P6 apply_rows_<N>_peak_rss_mib <value> MiB
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from p6_import import ROOT, log, sha256_of, write_synthetic_csv
from p7_approval_to_client import psql

DB_NAME = "hashsync_bench_p6_apply"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to import (1,000,000)")
    parser.add_argument(
        "--database",
        default=os.environ.get("HASHSYNC_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL (without a database name), or 'sqlite'",
    )
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="hashsync-p6-apply-"))
    server = None if args.database == "sqlite" else args.database.rstrip("/")
    if server:
        psql(server, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        psql(server, f"CREATE DATABASE {DB_NAME}")
        os.environ["DATABASE_URL"] = f"{server}/{DB_NAME}"
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    try:
        return run(args.rows, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if server:
            from django.db import connections

            connections.close_all()
            psql(server, f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def run(rows: int, workdir: Path) -> int:
    os.environ["HASHSYNC_VAR_DIR"] = str(workdir)
    os.environ["HASHSYNC_MEDIA_ROOT"] = str(workdir / "media")
    os.environ["HASHSYNC_IMPORT_MAX_ROWS"] = str(max(rows, 5_000_000))
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

    import distribution.tasks
    from distribution import releases
    from distribution.models import Feed
    from hashlist import imports, services
    from hashlist.imports import apply
    from hashlist.models import ImportBatch, ImportFormat, ImportStatus
    from hashsync.roles import ANALYST, REVIEWER

    log(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']})")
    call_command("migrate", verbosity=0)
    # This script runs the tasks itself, in order; nothing is sent to a broker.
    apply.enqueue_apply = lambda batch_id: None
    distribution.tasks.schedule_release_cut = lambda: None

    stamp = time.time_ns()
    users = get_user_model().objects
    analyst = users.create_user(username=f"bench-analyst-{stamp}")
    analyst.groups.add(Group.objects.get(name=ANALYST))
    reviewer = users.create_user(username=f"bench-reviewer-{stamp}")
    reviewer.groups.add(Group.objects.get(name=REVIEWER))
    Feed.objects.create(name=f"all-{stamp}", description="synthetic-bench: every entry")
    releases.release_cut()  # publishes the new feed, so the import's release is a delta

    upload_dir = Path(settings.MEDIA_ROOT) / "imports" / "bench"
    upload_dir.mkdir(parents=True)
    csv_path = upload_dir / f"synthetic-{rows}.csv"
    write_synthetic_csv(csv_path, rows)
    batch = ImportBatch.objects.create(
        uploaded_by=analyst,
        file=str(csv_path.relative_to(settings.MEDIA_ROOT)),
        original_name=csv_path.name,
        format=ImportFormat.CSV,
        size=csv_path.stat().st_size,
        sha256=sha256_of(csv_path),
    )
    started = time.perf_counter()
    imports.import_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED, (batch.status, batch.error_count)
    log(f"validated and staged {rows} rows in {time.perf_counter() - started:.1f} s (not timed)")

    profiler = None
    if os.environ.get("HASHSYNC_BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    timings: dict[str, float] = {}

    def timed(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(sql.split()[:3])[:60]
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t

    wrapper = connection.execute_wrapper(timed)
    wrapper.__enter__()
    started = time.perf_counter()
    services.proposal_approve(actor=reviewer, proposal_id=batch.proposal_id)
    approved = time.perf_counter()
    applied_batch = imports.import_apply(batch_id=batch.pk)
    applied = time.perf_counter()
    release = releases.release_cut()
    released = time.perf_counter()
    wrapper.__exit__(None, None, None)
    for key, spent in sorted(timings.items(), key=lambda kv: -kv[1])[:8]:
        log(f"  {spent:6.1f} s  {key}")
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(os.environ["HASHSYNC_BENCH_PROFILE"])

    assert applied_batch is not None and applied_batch.status == ImportStatus.APPROVED
    assert applied_batch.rows_applied == rows
    assert release is not None and release.change_count == rows, release
    log(f"release {release.version}: {release.change_count} changes; load {os.getloadavg()[0]:.1f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"P6 apply_rows_{rows}_approve_seconds {approved - started:.2f} s")
    print(f"P6 apply_rows_{rows}_apply_seconds {applied - approved:.1f} s")
    print(f"P6 apply_rows_{rows}_release_seconds {released - applied:.1f} s")
    print(f"P6 approval_to_release_rows_{rows}_seconds {released - started:.1f} s")
    print(f"P6 apply_rows_{rows}_peak_rss_mib {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
