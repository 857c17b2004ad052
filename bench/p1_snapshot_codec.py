#!/usr/bin/env python
"""P1 (codec part) and P5 (state digest): encode a snapshot of N records, read it back, and
compute the LtHash16 state digest over N elements. Targets: the whole 10M-entry snapshot (DB
read included, measured separately) ≤ 60 s and ≤ 1 GiB peak RSS on 2 cores.

The snapshot is written by ``hashsync_client.format.write_bundle`` from a generator of sorted
synthetic records (random MD5-length keys from a seeded generator, made one leading byte at a
time so the test data itself stays small) to a temporary file, the way the release worker
writes it. The spooled path is used (no ``record_count`` given), as ``releases.store_bundle``
does. Nothing here is a real hash.

    .venv/bin/python bench/p1_snapshot_codec.py                     # 10,000,000 records
    .venv/bin/python bench/p1_snapshot_codec.py --entries 1000000

Prints (detail on stderr):

    P1 snapshot_codec_<N>_seconds <v> s            records generated + encoded + written
    P1 snapshot_codec_<N>_peak_rss_mib <v> MiB     peak RSS of the process after encoding
    P1 snapshot_generator_<N>_seconds <v> s        the synthetic generator alone (included above)
    P1 snapshot_codec_net_cpu_<N>_seconds <v> s    CPU of the encode pass minus the generator's
    P1 snapshot_decode_<N>_seconds <v> s           read_bundle over the file, every record
    P5 lthash_<N>_us_per_element <v> us            LtHash16.add over N 19-byte elements
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from p3_bundle_size import synthetic_snapshot  # noqa: E402

from hashsync_client.format import GRADING_COUNT, read_bundle, write_bundle  # noqa: E402
from hashsync_client.lthash import LtHash16  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_now() -> str:
    # The figures are wall-clock; on a shared machine the load says how much they are inflated.
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def synthetic_elements(n: int, seed: int) -> Iterator[bytes]:
    """``n`` random 19-byte elements (the size of an md5 record's element)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, 65536):
        size = min(65536, n - start)
        flat = rng.integers(0, 256, size=size * 19, dtype=np.uint8).tobytes()
        yield from (flat[i : i + 19] for i in range(0, size * 19, 19))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000_000, help="records (10,000,000)")
    args = parser.parse_args()
    n = args.entries
    if n < 1:
        parser.error("--entries must be at least 1")
    load = load_now()

    counts = np.zeros(GRADING_COUNT, dtype=np.int64)
    started, cpu = time.perf_counter(), time.process_time()
    generated = sum(1 for _ in synthetic_snapshot(n, ("md5",), 1, counts))
    generator_seconds = time.perf_counter() - started
    generator_cpu = time.process_time() - cpu
    assert generated == n
    log(f"generator alone: {generator_seconds:.1f} s wall, {generator_cpu:.1f} s CPU ({load})")
    rss_before = peak_rss_mib()

    with tempfile.TemporaryDirectory(prefix="hashsync-p1-") as tmp:
        path = Path(tmp) / "snapshot.bin"
        started, cpu = time.perf_counter(), time.process_time()
        with path.open("wb") as out:
            info = write_bundle(
                out,
                kind="snapshot",
                feed="synthetic-bench",
                from_version=0,
                to_version=1,
                records=synthetic_snapshot(n, ("md5",), 1, counts),
            )
        codec_seconds = time.perf_counter() - started
        codec_cpu = time.process_time() - cpu
        codec_rss = peak_rss_mib()
        log(
            f"encode: {info.size / 2**20:.1f} MiB in {codec_seconds:.1f} s wall, "
            f"{codec_cpu:.1f} s CPU; peak RSS {rss_before:.0f} MiB before, "
            f"{codec_rss:.0f} MiB after"
        )

        started, cpu = time.perf_counter(), time.process_time()
        with path.open("rb") as inp:
            header, records = read_bundle(inp)
            read = sum(1 for _ in records)
        decode_seconds = time.perf_counter() - started
        assert read == header.record_count == n
        log(
            f"decode: {decode_seconds:.1f} s wall, {time.process_time() - cpu:.1f} s CPU, "
            f"peak RSS now {peak_rss_mib():.0f} MiB"
        )

    digest = LtHash16()
    elements = synthetic_elements(n, seed=2)
    # generating the elements is not part of the figure: time add() on pre-made batches
    lthash_seconds = lthash_cpu = 0.0
    while batch := list(itertools.islice(elements, 1 << 18)):
        started, cpu = time.perf_counter(), time.process_time()
        digest.add(batch)
        lthash_seconds += time.perf_counter() - started
        lthash_cpu += time.process_time() - cpu
    log(
        f"lthash: {lthash_seconds:.1f} s wall, {lthash_cpu:.1f} s CPU "
        f"({lthash_cpu / n * 1e6:.2f} us CPU per element) for {n} elements, "
        f"digest {digest.hexdigest()[:16]}…; {load_now()}"
    )

    print(f"P1 snapshot_codec_{n}_seconds {codec_seconds:.1f} s")
    print(f"P1 snapshot_codec_{n}_peak_rss_mib {codec_rss:.0f} MiB")
    print(f"P1 snapshot_generator_{n}_seconds {generator_seconds:.1f} s")
    print(f"P1 snapshot_codec_net_cpu_{n}_seconds {codec_cpu - generator_cpu:.1f} s")
    print(f"P1 snapshot_decode_{n}_seconds {decode_seconds:.1f} s")
    print(f"P5 lthash_{n}_us_per_element {lthash_seconds / n * 1e6:.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
