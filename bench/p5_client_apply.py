#!/usr/bin/env python
"""P5: the member client applies a snapshot / a delta, verified. Targets: 1M ≤ 15 s, 10k ≤ 1 s.

A fake hashsync server (``tests/hashsync_client/fakeserver.py``: the sync API on 127.0.0.1, real
bundles, keyrings and Ed25519-signed manifests) serves a feed of N synthetic entries; the
client (``HashsyncClient.sync``) starts from an empty store. Then the server cuts a version
with K changes (70% new entries, 20% regrades, 10% retractions) and the client syncs again.

Each timed operation runs in its own process (a member's client does not share the GIL or
the heap with a server), timed inside it. What one timed sync includes — everything a
member's machine does: the feed list, the plan,
the keyring chain and manifest signature checks, the bundle download over HTTP with its size
cap and SHA-256 check, the decode, the inserts in one SQLite transaction (WAL,
synchronous=FULL) with the LtHash16 state updated alongside, the state digest compared with
the signed one, the commit and the ack. Not included: building the data and the bundles
(the server's work).

Also measured: the apply alone (bundle already on disk, ``apply_step``), and ``lookup`` of
PDQ values against M PDQ entries within Hamming distance 31 (loading the index from SQLite,
then per query).

Data is synthetic: uniformly random bytes of each algorithm's length, in a mix of md5 30%,
sha1 30%, sha256 20%, pdq 10%, photodna 10%, and random grading codes. Nothing is a real hash.

    .venv/bin/python bench/p5_client_apply.py                      # 1,000,000 / 10,000
    .venv/bin/python bench/p5_client_apply.py --entries 100000     # quick

Prints (progress on stderr):

    P5 sync_snapshot_<N>_seconds <v> s
    P5 sync_delta_<K>_on_<N>_seconds <v> s
    P5 apply_snapshot_<N>_seconds <v> s        (apply_step only: decode, insert, digest, commit)
    P5 lookup_pdq_<M>_index_load_seconds <v> s
    P5 lookup_pdq_<M>_ms_per_query <v> ms
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hashsync_client.api import HashsyncClient  # noqa: E402 - after the path is set
from hashsync_client.apply import apply_step  # noqa: E402
from hashsync_client.config import Config, load_config, save_config  # noqa: E402
from hashsync_client.format import ALGORITHM_IDS, ALGORITHM_LENGTHS  # noqa: E402
from hashsync_client.lookup import Lookup  # noqa: E402
from hashsync_client.plan import VerifiedStep  # noqa: E402
from hashsync_client.store import Store  # noqa: E402
from tests.hashsync_client.fakeserver import Entries, FakeHashsync  # noqa: E402

FEED = "synthetic-bench"
MIX = {"md5": 0.3, "sha1": 0.3, "sha256": 0.2, "pdq": 0.1, "photodna": 0.1}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def synthetic(count: int, rng: np.random.Generator, mix: dict[str, float]) -> Entries:
    """``count`` SYNTHETIC entries: random values in the given algorithm mix."""
    entries: Entries = {}
    for algorithm, share in mix.items():
        wanted = round(count * share) if algorithm != list(mix)[-1] else count - len(entries)
        length = ALGORITHM_LENGTHS[algorithm]
        while wanted > 0:
            raw = rng.bytes(wanted * length)
            gradings = rng.integers(0, 630, wanted).tolist()
            before = len(entries)
            for i in range(wanted):
                entries[(algorithm, raw[i * length : (i + 1) * length])] = gradings[i]
            wanted -= len(entries) - before
    return entries


def next_version(entries: Entries, changes: int, rng: np.random.Generator) -> Entries:
    result = dict(entries)
    keys = list(result)
    picked = rng.choice(len(keys), int(changes * 0.3), replace=False)
    regrade, retract = picked[: int(changes * 0.2)], picked[int(changes * 0.2) :]
    for index in regrade:
        key = keys[index]
        result[key] = (result[key] + 1) % 630
    for index in retract:
        del result[keys[index]]
    result.update(synthetic(changes - len(picked), rng, MIX))
    return result


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def child(mode: str, *args: str) -> float:
    """Run one timed client operation in a fresh process and return its seconds.

    A member's client is its own process: it does not share the GIL or the heap with the fake
    server (whose million-entry Python dicts would make every garbage collection of the
    client's slower), so the timed work runs in a child, timed inside it, start-up excluded.
    """
    output = subprocess.run(
        [sys.executable, __file__, mode, *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return float(output.stdout.split()[-1])


def run_child_sync(config_path: str) -> None:
    with HashsyncClient(load_config(Path(config_path))) as client:
        started = time.perf_counter()
        report = client.sync(retries=0)
        elapsed = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"sync failed: {report.errors()}")
    print(f"{elapsed:.6f}")


def run_child_apply(bundle: str, store_path: str, step_json: str) -> None:
    step = VerifiedStep(**json.loads(step_json))
    with Store(store_path) as store:
        state = store.ensure_feed(FEED)
        started = time.perf_counter()
        apply_step(store, state, step, Path(bundle))
        elapsed = time.perf_counter() - started
    print(f"{elapsed:.6f}")


def bench_sync(entries: int, changes: int, workdir: Path) -> None:
    rng = np.random.default_rng(5)
    log(f"building {entries:,} synthetic entries and the server's bundles …")
    first = synthetic(entries, rng, MIX)
    server = FakeHashsync().start()
    try:
        server.publish(FEED, first)
        config = Config(
            server_url=server.url,
            root_keyids=(server.root.keyid,),
            store_path=str(workdir / "sync.sqlite3"),
            use_env_proxy=False,
            timeout_seconds=120.0,
        )
        config_path = save_config(config, workdir / "config.json")
        os.environ["HASHSYNC_TOKEN"] = server.token  # for the child; never printed
        log(f"load average before the snapshot sync: {load_average()}")
        elapsed = child("--child-sync", str(config_path))
        print(f"P5 sync_snapshot_{entries}_seconds {elapsed:.2f} s", flush=True)

        log(f"cutting a version with {changes:,} changes …")
        second = next_version(first, changes, rng)
        server.publish(FEED, second, snapshot=False)
        log(f"load average before the delta sync: {load_average()}")
        elapsed = child("--child-sync", str(config_path))
        print(f"P5 sync_delta_{changes}_on_{entries}_seconds {elapsed:.3f} s", flush=True)

        # The apply alone, from the snapshot bundle on disk, into a fresh store.
        version = server.feeds[FEED].versions[0]
        manifest = server.feeds[FEED].manifests[0].payload
        assert version.snapshot is not None
        bundle = workdir / "snapshot.bundle"
        bundle.write_bytes(server.bundles[version.snapshot.sha256])
        step = {
            "kind": "snapshot",
            "from_version": 0,
            "to_version": version.version,
            "sha256": version.snapshot.sha256,
            "size": version.snapshot.size,
            "url": "",
            "max_records": len(first),
            "state_digest": version.digest,
            "entry_count": len(first),
            "manifest": manifest,
        }
        log(f"load average before the apply: {load_average()}")
        elapsed = child(
            "--child-apply", str(bundle), str(workdir / "apply.sqlite3"), json.dumps(step)
        )
        print(f"P5 apply_snapshot_{entries}_seconds {elapsed:.2f} s", flush=True)
    finally:
        server.stop()


def bench_pdq_lookup(count: int, queries: int, workdir: Path) -> None:
    rng = np.random.default_rng(9)
    with Store(workdir / "pdq.sqlite3") as store:
        feed = store.ensure_feed("synthetic-pdq")
        raw = rng.bytes(count * 32)
        pdq = ALGORITHM_IDS["pdq"]
        rows = ((feed.id, pdq, raw[i * 32 : (i + 1) * 32], 0) for i in range(count))
        with store.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO entries(feed_id, algorithm, value, grading) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
        lookup = Lookup(store)
        started = time.perf_counter()
        lookup.pdq_indexes()  # no sync wrote it: built from SQLite, as before
        loaded = time.perf_counter() - started
        values = [rng.bytes(32).hex() for _ in range(queries)]
        started = time.perf_counter()
        results = lookup.values(values)
        elapsed = time.perf_counter() - started
        assert len(results) == queries
    print(f"P5 lookup_pdq_{count}_index_load_seconds {loaded:.2f} s", flush=True)
    print(f"P5 lookup_pdq_{count}_ms_per_query {elapsed / queries * 1000:.1f} ms", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-sync":
        run_child_sync(sys.argv[2])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child-apply":
        run_child_apply(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--pdq-entries", type=int, help="default: --entries")
    parser.add_argument("--pdq-queries", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hashsync-p5-") as scratch:
        workdir = Path(scratch)
        bench_sync(args.entries, args.changes, workdir)
        bench_pdq_lookup(args.pdq_entries or args.entries, args.pdq_queries, workdir)
    log(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
