#!/usr/bin/env python
"""P8/P9 (the index alone): the exact PDQ index at N entries — build, save and (memory-mapped)
load time, memory, queries/s and CPU time a query at Hamming distance 31, the queries answered
by the index as loaded from its files — with recall checked against a brute-force scan in the
same run; and, with ``--faiss``, faiss-cpu's IndexBinaryMultiHash (16 x 16 bits, one flipped
bit) for comparison (docs/matching.md says which was chosen and why).

Data is synthetic: uniformly random 32-byte values (never real PDQ hashes). Queries: a
``--near`` share are copies of held values with 0..31 random bits flipped (each must be
found), the rest random values (almost surely matching nothing).

    .venv/bin/python bench/match_index.py --entries 1000000             # numpy index
    .venv/bin/python bench/match_index.py --entries 1000000 --faiss     # and faiss

Prints ``P8 index_<name>_<N>_<measure> <value> <unit>`` lines. Each index is built in its own
process, so the peak RSS it reports is its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "client" / "src"))

from hashsync_client.pdqindex import PdqIndex, as_words, popcount  # noqa: E402

THRESHOLD = 31


def synthetic(entries: int, queries: int, near: float, seed: int = 15) -> tuple[Any, Any]:
    """(values, queries): random values; a ``near`` share of queries within 0..31 bits."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 256, (entries, 32), dtype=np.uint8)
    asked = rng.integers(0, 256, (queries, 32), dtype=np.uint8)
    near_count = int(queries * near)
    picked = rng.integers(0, entries, near_count)
    bits = np.unpackbits(values[picked], axis=1)
    for row in range(near_count):
        flips = rng.choice(256, int(rng.integers(0, THRESHOLD + 1)), replace=False)
        bits[row, flips] ^= 1
    asked[:near_count] = np.packbits(bits, axis=1)
    return values, asked


def brute_force(values: Any, asked: Any) -> set[tuple[int, int]]:
    """Every (query, row) within the threshold, by comparing each query with every value."""
    words = as_words(values)
    columns = [np.ascontiguousarray(words[:, w]) for w in range(4)]
    found: set[tuple[int, int]] = set()
    for number, query in enumerate(as_words(asked)):
        total = popcount(columns[0] ^ query[0]).astype(np.uint16)
        for w in range(1, 4):
            total += popcount(columns[w] ^ query[w])
        found.update((number, int(row)) for row in np.flatnonzero(total <= THRESHOLD))
    return found


def run_numpy(values: Any, asked: Any, batch: int, out: Any) -> None:
    started = time.perf_counter()
    built_index = PdqIndex(values)
    built = time.perf_counter() - started
    widths = built_index.widths
    # Saved and mapped back, as a restarted server process or member client finds it.
    with tempfile.TemporaryDirectory(dir=os.environ.get("HASHSYNC_BENCH_TMP")) as folder:
        started = time.perf_counter()
        built_index.save(Path(folder) / "index")
        saved = time.perf_counter() - started
        del built_index
        started = time.perf_counter()
        index = PdqIndex.load(Path(folder) / "index", mmap=True)
        loaded = time.perf_counter() - started
        found: set[tuple[int, int]] = set()
        words = as_words(asked)
        index.within_many(words[:batch], THRESHOLD)  # fault the mapped pages in (first touch)
        started, cpu = time.perf_counter(), time.process_time()
        for begin in range(0, len(words), batch):
            q, rows, _ = index.within_many(words[begin : begin + batch], THRESHOLD)
            found.update(zip((q + begin).tolist(), rows.tolist(), strict=True))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        out.put(
            {
                "build_seconds": built,
                "save_seconds": saved,
                "load_seconds": loaded,
                "widths": widths,
                "queries_per_second": len(words) / elapsed,
                "cpu_us_per_query": cpu / len(words) * 1e6,
                "index_mib": index.nbytes / 2**20,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "found": sorted(found),
            }
        )


def run_faiss(values: Any, asked: Any, batch: int, out: Any) -> None:
    import faiss

    started = time.perf_counter()
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = 1
    index.add(values)
    built = time.perf_counter() - started
    found: set[tuple[int, int]] = set()
    started = time.perf_counter()
    for begin in range(0, len(asked), batch):
        # faiss's range search keeps distances strictly below the radius.
        limits, _, rows = index.range_search(asked[begin : begin + batch], THRESHOLD + 1)
        for number in range(len(limits) - 1):
            found.update(
                (begin + number, int(r)) for r in rows[limits[number] : limits[number + 1]]
            )
    elapsed = time.perf_counter() - started
    out.put(
        {
            "build_seconds": built,
            "queries_per_second": len(asked) / elapsed,
            "index_mib": None,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "found": sorted(found),
        }
    )


def measure(name: str, target: Any, values: Any, asked: Any, batch: int) -> dict[str, Any]:
    out: Any = multiprocessing.get_context("fork").Queue()
    process = multiprocessing.get_context("fork").Process(
        target=target, args=(values, asked, batch, out)
    )
    process.start()
    result: dict[str, Any] = out.get()
    process.join()
    result["name"] = name
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--near", type=float, default=0.1, help="share of near-match queries")
    parser.add_argument("--batch", type=int, default=100, help="queries per call")
    parser.add_argument("--faiss", action="store_true", help="also measure faiss-cpu")
    parser.add_argument("--brute-queries", type=int, default=400, help="queries checked by scan")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    print(f"# generating {args.entries:,} synthetic values", file=sys.stderr)
    values, asked = synthetic(args.entries, args.queries, args.near)
    # Recall against brute force on the first queries (the near ones come first, then random).
    checked = min(args.brute_queries, args.queries)
    near_count = int(args.queries * args.near)
    sample = np.r_[0 : min(near_count, checked // 2), near_count : near_count + checked // 2]
    expected = brute_force(values, asked[sample])
    expected_full = {(int(sample[q]), r) for q, r in expected}

    runs = [("numpy", run_numpy)] + ([("faiss", run_faiss)] if args.faiss else [])
    for name, target in runs:
        result = measure(name, target, values, asked, args.batch)
        sampled = set(int(s) for s in sample)
        got = {(q, r) for q, r in map(tuple, result.pop("found")) if q in sampled}
        recall = len(got & expected_full) / len(expected_full) if expected_full else 1.0
        exact = got == expected_full
        n = args.entries
        print(f"P8 index_{name}_{n}_build_seconds {result['build_seconds']:.2f} s")
        print(f"P8 index_{name}_{n}_queries_per_second {result['queries_per_second']:.0f} q/s")
        if "cpu_us_per_query" in result:
            print(f"P8 index_{name}_{n}_cpu_per_query {result['cpu_us_per_query']:.0f} us")
            print(f"P8 index_{name}_{n}_save_seconds {result['save_seconds']:.2f} s")
            print(f"P8 index_{name}_{n}_load_seconds {result['load_seconds']:.3f} s (mapped)")
            print(f"P8 index_{name}_{n}_widths {result['widths']}")
        if result["index_mib"] is not None:
            print(f"P8 index_{name}_{n}_arrays_mib {result['index_mib']:.0f} MiB")
        print(f"P8 index_{name}_{n}_peak_rss_mib {result['peak_rss_mib']:.0f} MiB")
        print(
            f"P8 index_{name}_{n}_recall {recall:.4f} (exact={exact}, {len(expected_full)} pairs)"
        )
        if args.json:
            print(json.dumps(result))


if __name__ == "__main__":
    main()
