#!/usr/bin/env python
"""The member client's verified catch-up from an empty store (issue 18): target 100k ≤ 0.5 s.

A fake hashsync server (``tests/hashsync_client/fakeserver.py``: the sync API on 127.0.0.1,
real bundles, keyrings and Ed25519-signed manifests) serves a feed of N synthetic entries.
Each run starts a fresh client process with an EMPTY store and times, inside it, one
``HashsyncClient.sync``: feed list, plan, keyring and manifest signature checks, bundle
download with its size cap and SHA-256 check, decode, inserts in one SQLite transaction, the
LtHash16 state digest compared with the signed one, commit, ack. Start-up is excluded.

Besides the wall-clock time it reports the CPU seconds the client used (its own threads plus
any child process it started, from ``getrusage``) and those of its main thread alone (the
decode, the checks and its share of the digest: the critical path when the other core takes
the inserts and the helper's share). Those are the figures to compare on a loaded machine:
wall-clock times taken while other work shares the cores must be re-taken quiet.

Data is synthetic: uniformly random bytes of each algorithm's length (md5 30%, sha1 30%,
sha256 20%, pdq 10%, photodna 10%) and random grading codes. Nothing is a real hash.

    .venv/bin/python bench/client_catchup.py                       # 100,000 entries, 5 runs
    .venv/bin/python bench/client_catchup.py --entries 1000000 --runs 3
    .venv/bin/python bench/client_catchup.py --profile /tmp/catchup.prof   # cProfile one run

Prints (progress on stderr):

    CATCHUP sync_from_empty_<N>_seconds <median> s
    CATCHUP sync_from_empty_<N>_cpu_seconds <median> s
    CATCHUP sync_from_empty_<N>_main_thread_cpu_seconds <median> s
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from p5_client_apply import MIX, load_average, log, synthetic  # noqa: E402

from hashsync_client.api import HashsyncClient  # noqa: E402 - after the path is set
from hashsync_client.config import Config, load_config, save_config  # noqa: E402
from tests.hashsync_client.fakeserver import FakeHashsync  # noqa: E402

FEED = "synthetic-catchup"


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_child(config_path: str, profile: str) -> None:
    """One sync from an empty store, timed inside this (fresh) process."""
    with HashsyncClient(load_config(Path(config_path))) as client:
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu = _cpu_seconds()
        main_cpu = time.thread_time()
        started = time.perf_counter()
        report = client.sync(retries=0)
        elapsed = time.perf_counter() - started
        main_cpu = time.thread_time() - main_cpu
        cpu = _cpu_seconds() - cpu
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    if not report.ok:
        raise SystemExit(f"sync failed: {report.errors()}")
    print(f"{elapsed:.6f} {cpu:.6f} {main_cpu:.6f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        run_child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", default="", help="write a cProfile of one run here")
    args = parser.parse_args()
    rng = np.random.default_rng(18)
    log(f"building {args.entries:,} synthetic entries and the server's snapshot …")
    entries = synthetic(args.entries, rng, MIX)
    server = FakeHashsync().start()
    walls: list[float] = []
    cpus: list[float] = []
    mains: list[float] = []
    try:
        server.publish(FEED, entries)
        os.environ["HASHSYNC_TOKEN"] = server.token  # for the child; never printed
        with tempfile.TemporaryDirectory(prefix="hashsync-catchup-") as scratch:
            for run in range(1 if args.profile else args.runs):
                config = Config(
                    server_url=server.url,
                    root_keyids=(server.root.keyid,),
                    store_path=str(Path(scratch) / f"run{run}.sqlite3"),
                    use_env_proxy=False,
                    timeout_seconds=120.0,
                )
                config_path = save_config(config, Path(scratch) / f"config{run}.json")
                load = load_average()
                output = subprocess.run(
                    [sys.executable, __file__, "--child", str(config_path), args.profile],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])},
                )
                wall, cpu, main_cpu = (float(v) for v in output.stdout.split()[-3:])
                log(
                    f"run {run + 1}: {wall:.3f} s, {cpu:.3f} CPU-s of which the main thread "
                    f"{main_cpu:.3f} (load before: {load})"
                )
                walls.append(wall)
                cpus.append(cpu)
                mains.append(main_cpu)
    finally:
        server.stop()
    n = args.entries
    print(f"CATCHUP sync_from_empty_{n}_seconds {statistics.median(walls):.3f} s", flush=True)
    print(f"CATCHUP sync_from_empty_{n}_cpu_seconds {statistics.median(cpus):.3f} s", flush=True)
    print(
        f"CATCHUP sync_from_empty_{n}_main_thread_cpu_seconds {statistics.median(mains):.3f} s",
        flush=True,
    )
    log(f"min {min(walls):.3f} s, max {max(walls):.3f} s; load after: {load_average()}")


if __name__ == "__main__":
    main()
