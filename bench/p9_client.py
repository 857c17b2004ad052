#!/usr/bin/env python
"""P9: the member client at 10M PDQ entries. Targets: a 10M snapshot synced and indexed ≤ 120 s
with ≤ 1 GiB peak RSS, and ``lookup`` of PDQ values ≥ 2,000 queries per second.

Data is SYNTHETIC: uniformly random 32-byte values standing in for PDQ hashes (never a real
hash) with random grading codes, in one feed. The bench writes the snapshot bundle the way a
release does (``write_bundle``) and computes its state digest, once per size and seed (kept in
``--cache-dir`` when given, since at 10M that alone takes minutes), then, each in a fresh
process, timed inside it:

- **sync + index**: ``apply_step`` of the bundle file into an empty store — the decode, every
  check, the inserts in one SQLite transaction, the LtHash16 digest compared with the signed
  one, the commit — and the persisted PDQ index written beside the store
  (``hashsync_client.feedindex``). Not included: the HTTP download (P5 measures the whole
  sync over HTTP). Peak RSS is that process's VmHWM (its own, since its exec), and
  ``ru_maxrss`` of its digest process (reported apart: each is a separate process; the
  latter may include the apply process's RSS at the moment it forked the digest process).
- **lookup**: ``Lookup.values`` of Q query texts in one call (what ``hashsync-client lookup
  --values …`` does), the persisted index loaded first (load time reported apart);
  ``--near`` of the queries are held values with 0..31 random bits flipped, the rest random.
  Recall against a brute-force scan of the bundle's values over ``--recall-sample`` of them.

    .venv/bin/python bench/p9_client.py                               # 200,000 entries
    .venv/bin/python bench/p9_client.py --entries 10000000 --cache-dir /var/tmp/p9

Prints (detail on stderr):

    P9 sync_index_snapshot_<N>_seconds <v> s      wall, apply + index (CPU seconds on stderr)
    P9 sync_index_snapshot_<N>_cpu_seconds <v> s  CPU of the client process and its children
    P9 sync_index_snapshot_<N>_peak_rss_mib <v> MiB
    P9 sync_digest_process_<N>_peak_rss_mib <v> MiB
    P9 lookup_pdq_<N>_index_load_seconds <v> s
    P9 lookup_pdq_<N>_queries_per_second <v> q/s
    P9 lookup_pdq_<N>_recall <v> %
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "client" / "src"))

from hashsync_client.apply import apply_step, bundle_state  # noqa: E402
from hashsync_client.format import Op, Record, write_bundle  # noqa: E402
from hashsync_client.lthash import LtHash16  # noqa: E402
from hashsync_client.pdqindex import as_words, popcount  # noqa: E402
from hashsync_client.plan import VerifiedStep  # noqa: E402

FEED = "synthetic-p9"
THRESHOLD = 31
CHUNK = 1 << 16


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_now() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def synthetic_values(entries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(values (N, 32) uint8 sorted and distinct, gradings): SYNTHETIC random values."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 256, (entries, 32), dtype=np.uint8)
    keys = values.view(">u8")  # (N, 4) big-endian words: their order is the bytes' order
    order = np.lexsort(keys.T[::-1])
    values = values[order]
    same = np.all(values[1:] == values[:-1], axis=1)
    if same.any():  # pragma: no cover - 2**-200 for random 256-bit values
        values = values[np.concatenate([[True], ~same])]
    gradings = rng.integers(0, 630, len(values))
    return values, gradings


def records(values: np.ndarray, gradings: np.ndarray) -> Iterator[Record]:
    for start in range(0, len(values), CHUNK):
        raw = values[start : start + CHUNK].tobytes()
        marks = gradings[start : start + CHUNK].tolist()
        for i, grading in enumerate(marks):
            yield Record("pdq", raw[i * 32 : (i + 1) * 32], Op.UPSERT, grading)


def build(entries: int, seed: int, cache: Path) -> dict[str, Any]:
    """The snapshot bundle, the values and the step (with its state digest), cached."""
    stem = cache / f"p9-{entries}-{seed}"
    meta_path = stem.with_suffix(".json")
    if meta_path.exists():
        return dict(json.loads(meta_path.read_text()))
    log(f"building {entries:,} SYNTHETIC PDQ entries and their snapshot bundle …")
    values, gradings = synthetic_values(entries, seed)
    np.save(stem.with_suffix(".values.npy"), values)
    bundle = stem.with_suffix(".bundle")
    with bundle.open("wb") as out:
        info = write_bundle(
            out,
            kind="snapshot",
            feed=FEED,
            from_version=0,
            to_version=1,
            records=records(values, gradings),
            record_count=len(values),
        )
    log(f"computing the state digest ({load_now()}) …")
    digest = LtHash16(bundle_state(str(bundle), len(values))).hexdigest()
    meta = {
        "bundle": str(bundle),
        "values": str(stem.with_suffix(".values.npy")),
        "step": {
            "kind": "snapshot",
            "from_version": 0,
            "to_version": 1,
            "sha256": info.sha256,
            "size": info.size,
            "url": "",
            "max_records": len(values),
            "state_digest": digest,
            "entry_count": len(values),
            "manifest": {"expires_at": "2099-01-01T00:00:00Z", "synthetic": True},
        },
    }
    meta_path.write_text(json.dumps(meta))
    return meta


def peak_rss_mib() -> float:
    """This process's peak RSS since its exec (VmHWM). Not ``ru_maxrss``: Linux carries that
    over from the forked parent's memory at exec, so a child of a parent holding 10M test
    values would report the parent's size."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def run_child_apply(bundle: str, store_path: str, step_json: str) -> None:
    from hashsync_client.store import Store

    step = VerifiedStep(**json.loads(step_json))
    started, cpu = time.perf_counter(), time.process_time()
    with Store(store_path) as store:
        apply_step(store, store.ensure_feed(FEED), step, Path(bundle))
    elapsed = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu_self": time.process_time() - cpu,
                "cpu_children": children.ru_utime + children.ru_stime,
                "rss_mib": peak_rss_mib(),
                "children_rss_mib": children.ru_maxrss / 1024,
            }
        )
    )


def run_child_lookup(store_path: str, queries_path: str) -> None:
    from hashsync_client.lookup import Lookup
    from hashsync_client.store import Store

    texts = [q.tobytes().hex() for q in np.load(queries_path)]
    with Store(store_path) as store:
        lookup = Lookup(store)
        started, cpu = time.perf_counter(), time.process_time()
        lookup.pdq_indexes()
        load_seconds, load_cpu = time.perf_counter() - started, time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        results = lookup.values(texts)
        seconds, query_cpu = time.perf_counter() - started, time.process_time() - cpu
    found = [
        [i, bytes.fromhex(m.value).hex(), m.distance]
        for i, query in enumerate(results)
        for m in query.matches
        if m.algorithm == "pdq"
    ]
    print(
        json.dumps(
            {
                "load_seconds": load_seconds,
                "load_cpu": load_cpu,
                "rebuilt": lookup.pdq_rebuilt,
                "seconds": seconds,
                "cpu": query_cpu,
                "rss_mib": peak_rss_mib(),
                "found": found,
            }
        )
    )


def make_queries(values: np.ndarray, count: int, near: float, seed: int) -> np.ndarray:
    """``near`` of them held values with 0..31 random bits flipped, the rest random."""
    rng = np.random.default_rng(seed)
    asked = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    near_count = int(count * near)
    picked = rng.integers(0, len(values), near_count)
    bits = np.unpackbits(np.asarray(values[picked]), axis=1)
    for row in range(near_count):
        flips = rng.choice(256, int(rng.integers(0, THRESHOLD + 1)), replace=False)
        bits[row, flips] ^= 1
    asked[:near_count] = np.packbits(bits, axis=1)
    return asked[rng.permutation(count)]


def brute_force(values: np.ndarray, asked: np.ndarray) -> set[tuple[int, str, int]]:
    """Every (query, value, distance) within the threshold, each query against every value."""
    found: set[tuple[int, str, int]] = set()
    step = 1 << 20
    for begin in range(0, len(values), step):
        words = as_words(np.ascontiguousarray(values[begin : begin + step]))
        for number, query in enumerate(as_words(asked)):
            total = popcount(words[:, 0] ^ query[0]).astype(np.uint16)
            for w in range(1, 4):
                total += popcount(words[:, w] ^ query[w])
            for row in np.flatnonzero(total <= THRESHOLD):
                found.add((number, values[begin + row].tobytes().hex(), int(total[row])))
    return found


def child(*args: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'client' / 'src'}:{ROOT}"},
    )
    if output.returncode:
        raise SystemExit(f"{args[0]} failed:\n{output.stderr}")
    if output.stderr:
        log(output.stderr.rstrip())
    return dict(json.loads(output.stdout.splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-apply":
        run_child_apply(*sys.argv[2:5])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-lookup":
        run_child_lookup(*sys.argv[2:4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--cache-dir", type=Path, help="keep the bundle and digest here")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--near", type=float, default=0.1, help="share of near queries")
    parser.add_argument(
        "--recall-sample", type=int, default=50, help="queries checked by brute force"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hashsync-p9-") as scratch:
        cache = args.cache_dir or Path(scratch)
        cache.mkdir(parents=True, exist_ok=True)
        meta = build(args.entries, args.seed, cache)
        if args.build_only:
            return
        n = args.entries
        log(f"sync + index of {n:,} entries ({load_now()}) …")
        store = Path(scratch) / "client.sqlite3"
        result = child("--child-apply", str(meta["bundle"]), str(store), json.dumps(meta["step"]))
        log(f"apply: {result} ({load_now()})")
        print(f"P9 sync_index_snapshot_{n}_seconds {result['seconds']:.1f} s", flush=True)
        cpu = result["cpu_self"] + result["cpu_children"]
        print(f"P9 sync_index_snapshot_{n}_cpu_seconds {cpu:.1f} s", flush=True)
        print(f"P9 sync_index_snapshot_{n}_peak_rss_mib {result['rss_mib']:.0f} MiB", flush=True)
        print(
            f"P9 sync_digest_process_{n}_peak_rss_mib {result['children_rss_mib']:.0f} MiB",
            flush=True,
        )
        values = np.load(str(meta["values"]), mmap_mode="r")
        asked = make_queries(values, args.queries, args.near, args.seed + 1)
        queries_path = Path(scratch) / "queries.npy"
        np.save(queries_path, asked)
        log(f"lookup of {len(asked):,} PDQ values ({load_now()}) …")
        looked = child("--child-lookup", str(store), str(queries_path))
        found = {tuple(item) for item in looked.pop("found")}
        log(f"lookup: {looked} ({load_now()})")
        print(f"P9 lookup_pdq_{n}_index_load_seconds {looked['load_seconds']:.2f} s", flush=True)
        rate = len(asked) / looked["seconds"]
        print(f"P9 lookup_pdq_{n}_queries_per_second {rate:.0f} q/s", flush=True)
        print(
            f"P9 lookup_pdq_{n}_cpu_ms_per_query {looked['cpu'] / len(asked) * 1000:.3f} ms",
            flush=True,
        )
        print(f"P9 lookup_pdq_{n}_peak_rss_mib {looked['rss_mib']:.0f} MiB", flush=True)
        sample = min(args.recall_sample, len(asked))
        log(f"brute force over {sample} queries ({load_now()}) …")
        expected = brute_force(values, asked[:sample])
        got = {item for item in found if item[0] < sample}
        recall = len(got & expected) / len(expected) if expected else 1.0
        extra = len(got - expected)
        log(f"recall sample: {len(expected)} pairs expected, {len(got)} found, {extra} extra")
        print(f"P9 lookup_pdq_{n}_recall {recall * 100:.2f} %", flush=True)
        if recall < 1 or extra:
            raise SystemExit("P9: the lookup's answers differ from brute force")


if __name__ == "__main__":
    main()
