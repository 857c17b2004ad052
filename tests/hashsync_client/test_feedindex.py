"""The member client's persisted PDQ index (``hashsync_client.feedindex``): written while a
snapshot is applied, updated in O(changes) by a delta, never used when stale, and equal to a
fresh build. All values are SYNTHETIC random bytes."""

from __future__ import annotations

import io
import json
import queue
import tracemalloc
import types
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from hashsync_client import apply as apply_module
from hashsync_client import feedindex
from hashsync_client.api import HashsyncClient
from hashsync_client.apply import apply_step
from hashsync_client.cli_output import print_query
from hashsync_client.errors import DigestMismatch, VerificationError
from hashsync_client.feedindex import FeedIndexDir, index_root, open_feed_index
from hashsync_client.format import Op, Record
from hashsync_client.lookup import Lookup
from hashsync_client.plan import VerifiedStep
from hashsync_client.store import Store
from tests.hashsync_client.fakeserver import (
    Entries,
    FakeHashsync,
    build_bundle,
    digest_of,
    synthetic_entries,
)

FEED = "synthetic-index"


def flip(value: bytes, bits: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    unpacked = np.unpackbits(np.frombuffer(value, dtype=np.uint8))
    unpacked[rng.choice(256, bits, replace=False)] ^= 1
    return np.packbits(unpacked).tobytes()


def step_for(
    tmp_path: Path,
    kind: str,
    start: int,
    end: int,
    records: list[Record],
    after: Entries,
    *,
    digest: str | None = None,
) -> tuple[VerifiedStep, Path]:
    data = build_bundle(kind, FEED, start, end, records)
    path = tmp_path / f"{kind}-{end}.bundle"
    path.write_bytes(data)
    step = VerifiedStep(
        kind=kind,
        from_version=start,
        to_version=end,
        sha256="0" * 64,
        size=len(data),
        url="",
        max_records=len(records),
        state_digest=digest or digest_of(after),
        entry_count=len(after),
        manifest={"version": end, "expires_at": "2099-01-01T00:00:00Z"},
    )
    return step, path


def snapshot(tmp_path: Path, entries: Entries, version: int = 1) -> tuple[VerifiedStep, Path]:
    records = [Record(a, v, Op.UPSERT, g) for (a, v), g in entries.items()]
    return step_for(tmp_path, "snapshot", 0, version, records, entries)


def delta(
    tmp_path: Path, before: Entries, after: Entries, start: int, end: int
) -> tuple[VerifiedStep, Path]:
    records = [Record(a, v, Op.UPSERT, g) for (a, v), g in after.items() if before.get((a, v)) != g]
    records += [Record(a, v, Op.RETRACTED, 0) for (a, v) in before if (a, v) not in after]
    return step_for(tmp_path, "delta", start, end, records, after)


def changed(entries: Entries, seed: int) -> Entries:
    """A next version: some PDQ entries retracted, some regraded, new ones added."""
    rng = np.random.default_rng(seed)
    result = dict(entries)
    pdq = [key for key in result if key[0] == "pdq"]
    for index in rng.choice(len(pdq), len(pdq) // 5, replace=False):
        del result[pdq[index]]
    for index in rng.choice(len(pdq), len(pdq) // 5, replace=False):
        if pdq[index] in result:
            result[pdq[index]] = (result[pdq[index]] + 1) % 630
    result.update(synthetic_entries(40, seed=seed + 100, algorithms=("pdq", "md5")))
    return result


def pdq_of(entries: Entries) -> dict[bytes, int]:
    return {v: g for (a, v), g in entries.items() if a == "pdq"}


def indexed(index: feedindex.FeedIndex, queries: list[bytes], distance: int) -> set[tuple]:
    """Every (query, value, grading, distance) the index answers: what a lookup shows."""
    q, rows, dist = index.index.within_many(feedindex.query_words(queries), distance)
    return {
        (int(a), index.value(int(r)), index.grading(int(r)), int(d))
        for a, r, d in zip(q, rows, dist, strict=True)
    }


def brute(pdq: dict[bytes, int], queries: list[bytes], distance: int) -> set[tuple]:
    found = set()
    for number, query in enumerate(queries):
        for value, grading in pdq.items():
            d = (int.from_bytes(value, "big") ^ int.from_bytes(query, "big")).bit_count()
            if d <= distance:
                found.add((number, value, grading, d))
    return found


def near_queries(pdq: dict[bytes, int], seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    values = list(pdq)
    picked = [values[int(i)] for i in rng.choice(len(values), min(20, len(values)), replace=False)]
    queries = [flip(v, int(rng.integers(0, 32)), seed + i) for i, v in enumerate(picked)]
    return [*queries, flip(picked[0], 31, seed), flip(picked[0], 32, seed), rng.bytes(32)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "client.sqlite3") as opened:
        yield opened


def held(store: Store) -> tuple[int, str]:
    state = store.feed(FEED)
    assert state is not None
    return state.version, state.state_digest


def pointer(store: Store) -> feedindex.Pointer | None:
    return FeedIndexDir(index_root(store.path), FEED).pointer()


def generations(store: Store) -> list[str]:
    return sorted(p.name for p in index_root(store.path).glob(f"{FEED}.*") if p.is_dir())


# --- snapshot: streamed, same store and digest, the index written beside it ---------------


@pytest.mark.parametrize("batch", [1, 7, 64, 8192])
def test_a_snapshot_applied_in_batches_gives_the_same_store_digest_and_index(
    tmp_path, store, monkeypatch, batch
):
    # 3 x 65,536-record blocks would be slow to build here: small batches move the chunk
    # boundaries instead (batch 1 and 7 split every block; 64 divides the PDQ count exactly).
    monkeypatch.setattr(apply_module, "APPLY_BATCH", batch)
    entries = synthetic_entries(320, seed=1, algorithms=("pdq", "md5", "sha1"))
    entries.update(
        synthetic_entries(128 - len(pdq_of(entries)) % 64 + 64, seed=2, algorithms=("pdq",))
    )
    step, bundle = snapshot(tmp_path, entries)

    applied = apply_step(store, store.ensure_feed(FEED), step, bundle)

    assert applied.state_digest == digest_of(entries)
    rows = store.conn.execute("SELECT algorithm, value, grading FROM entries").fetchall()
    assert len(rows) == len(entries)
    state, count = store.recompute_state(store.ensure_feed(FEED).id)
    assert (state.hexdigest(), count) == (digest_of(entries), len(entries))
    index, persisted = open_feed_index(store, FEED, held(store))
    assert persisted
    pdq = pdq_of(entries)
    assert len(index) == len(pdq)
    everything = list(pdq)
    assert indexed(index, everything, 0) == {(i, v, pdq[v], 0) for i, v in enumerate(everything)}


def test_a_feed_without_pdq_gets_an_empty_index(tmp_path, store):
    entries = synthetic_entries(50, seed=3, algorithms=("md5",))
    step, bundle = snapshot(tmp_path, entries)
    apply_step(store, store.ensure_feed(FEED), step, bundle)

    index, persisted = open_feed_index(store, FEED, held(store))

    assert persisted and len(index) == 0
    assert indexed(index, [bytes(32)], 31) == set()


@pytest.mark.parametrize("damage", ["checksum", "digest"])
def test_a_refused_snapshot_leaves_store_and_index_as_they_were(tmp_path, store, damage):
    first = synthetic_entries(60, seed=4, algorithms=("pdq",))
    step, bundle = snapshot(tmp_path, first, version=1)
    apply_step(store, store.ensure_feed(FEED), step, bundle)
    before = (pointer(store), generations(store), held(store))

    second = synthetic_entries(80, seed=5, algorithms=("pdq",))
    records = [Record(a, v, Op.UPSERT, g) for (a, v), g in second.items()]
    if damage == "digest":
        step, bundle = step_for(tmp_path, "snapshot", 0, 2, records, second, digest="f" * 64)
        expected: type[Exception] = DigestMismatch
    else:
        step, bundle = step_for(tmp_path, "snapshot", 0, 2, records, second)
        data = bytearray(bundle.read_bytes())
        data[-20] ^= 0xFF  # inside the zstd frame: its checksum fails at the end
        bundle.write_bytes(bytes(data))
        expected = VerificationError
    with pytest.raises(expected):
        apply_step(store, store.ensure_feed(FEED), step, bundle)

    assert (pointer(store), generations(store), held(store)) == before
    index, persisted = open_feed_index(store, FEED, held(store))
    assert persisted
    assert indexed(index, list(pdq_of(first)), 0) == {
        (i, v, g, 0) for i, (v, g) in enumerate(pdq_of(first).items())
    }


# --- deltas: O(changes) appends, equal to a fresh build ----------------------------------


def test_the_index_after_deltas_equals_a_fresh_build_and_brute_force(tmp_path, store):
    versions = [synthetic_entries(200, seed=6, algorithms=("pdq", "md5"))]
    step, bundle = snapshot(tmp_path, versions[0])
    apply_step(store, store.ensure_feed(FEED), step, bundle)
    base = pointer(store)
    assert base is not None
    for number in range(1, 4):
        versions.append(changed(versions[-1], seed=10 + number))
        step, bundle = delta(tmp_path, versions[-2], versions[-1], number, number + 1)
        apply_step(store, store.ensure_feed(FEED), step, bundle)
        now = pointer(store)
        assert now is not None
        # Appended to the same generation, not rebuilt: O(changes).
        assert (now.generation, now.base_rows) == (base.generation, base.base_rows)
        assert (now.version, now.state_digest) == held(store)

    pdq = pdq_of(versions[-1])
    queries = near_queries(pdq, seed=20) + list(pdq)[:5]
    updated, persisted = open_feed_index(store, FEED, held(store))
    assert persisted
    fresh_root = tmp_path / "fresh"
    fresh_pointer = feedindex.rebuild(store.path, store.conn, FEED, root=fresh_root)
    assert fresh_pointer is not None and fresh_pointer.changes == 0
    fresh = feedindex._load(
        FeedIndexDir(fresh_root, FEED).generation_dir(fresh_pointer.generation), fresh_pointer
    )
    assert len(updated) == len(fresh) == len(pdq)
    for distance in (0, 10, 31, 40):
        expected = brute(pdq, queries, distance)
        assert indexed(updated, queries, distance) == expected
        assert indexed(fresh, queries, distance) == expected
    assert indexed(updated, list(pdq), 0) == {(i, v, pdq[v], 0) for i, v in enumerate(pdq)}


def test_many_changes_rewrite_the_generation(tmp_path, store, monkeypatch):
    monkeypatch.setattr(feedindex, "MIN_COMPACT", 10)
    first = synthetic_entries(40, seed=7, algorithms=("pdq",))
    step, bundle = snapshot(tmp_path, first)
    apply_step(store, store.ensure_feed(FEED), step, bundle)
    base = pointer(store)
    second = changed(first, seed=8)
    step, bundle = delta(tmp_path, first, second, 1, 2)
    apply_step(store, store.ensure_feed(FEED), step, bundle)

    now = pointer(store)
    assert base is not None and now is not None
    assert now.generation != base.generation and now.changes == 0
    assert generations(store) == [f"{FEED}.{now.generation}"]
    index, persisted = open_feed_index(store, FEED, held(store))
    pdq = pdq_of(second)
    assert persisted and indexed(index, list(pdq), 0) == {
        (i, v, pdq[v], 0) for i, v in enumerate(pdq)
    }


def test_a_delta_on_a_stale_index_rebuilds_it(tmp_path, store):
    first = synthetic_entries(40, seed=9, algorithms=("pdq",))
    step, bundle = snapshot(tmp_path, first)
    apply_step(store, store.ensure_feed(FEED), step, bundle)
    FeedIndexDir(index_root(store.path), FEED).remove()
    second = changed(first, seed=10)
    step, bundle = delta(tmp_path, first, second, 1, 2)

    apply_step(store, store.ensure_feed(FEED), step, bundle)

    now = pointer(store)
    assert now is not None and (now.version, now.state_digest) == held(store)
    index, persisted = open_feed_index(store, FEED, held(store))
    pdq = pdq_of(second)
    assert persisted and indexed(index, list(pdq), 0) == {
        (i, v, pdq[v], 0) for i, v in enumerate(pdq)
    }


# --- a stale index is never used ---------------------------------------------------------


def tamper_pointer(store: Store, **changes: object) -> None:
    path = FeedIndexDir(index_root(store.path), FEED).pointer_path
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "tamper",
    ["version", "digest", "format", "short_file", "garbage", "missing", "crash_after_commit"],
)
def test_a_stale_index_is_rebuilt_from_the_store_not_used(tmp_path, store, tamper, monkeypatch):
    first = synthetic_entries(50, seed=11, algorithms=("pdq",))
    step, bundle = snapshot(tmp_path, first)
    apply_step(store, store.ensure_feed(FEED), step, bundle)
    expected = pdq_of(first)
    current = pointer(store)
    assert current is not None
    generation = FeedIndexDir(index_root(store.path), FEED).generation_dir(current.generation)
    if tamper == "version":
        tamper_pointer(store, version=current.version + 1)
    elif tamper == "digest":
        tamper_pointer(store, state_digest="0" * 64)
    elif tamper == "format":
        tamper_pointer(store, format=99)
    elif tamper == "short_file":
        (generation / "values.bin").write_bytes(b"")
    elif tamper == "garbage":
        FeedIndexDir(index_root(store.path), FEED).pointer_path.write_text("{not json")
    elif tamper == "missing":
        FeedIndexDir(index_root(store.path), FEED).remove()
    else:
        # The delta commits, then the process dies before the pointer is switched.
        def crash(self: FeedIndexDir, pointer: feedindex.Pointer) -> None:
            raise OSError("power cut")

        second = changed(first, seed=12)
        step, bundle = delta(tmp_path, first, second, 1, 2)
        monkeypatch.setattr(FeedIndexDir, "publish", crash)
        apply_step(store, store.ensure_feed(FEED), step, bundle)
        monkeypatch.undo()
        expected = pdq_of(second)
        assert pointer(store) == current  # still the previous version's

    index, persisted = open_feed_index(store, FEED, held(store))

    assert not persisted
    assert indexed(index, list(expected), 0) == {
        (i, v, g, 0) for i, (v, g) in enumerate(expected.items())
    }
    rebuilt = pointer(store)
    assert rebuilt is not None and (rebuilt.version, rebuilt.state_digest) == held(store)
    assert open_feed_index(store, FEED, held(store))[1]  # persisted for the next run


def test_a_lookup_beside_a_running_sync_does_not_touch_the_index_directory(tmp_path, store):
    first = synthetic_entries(30, seed=13, algorithms=("pdq",))
    step, bundle = snapshot(tmp_path, first)
    apply_step(store, store.ensure_feed(FEED), step, bundle)
    FeedIndexDir(index_root(store.path), FEED).remove()

    with Store(store.path) as syncing, syncing.sync_lock():
        index, persisted = open_feed_index(store, FEED, held(store))

    assert not persisted and len(index) == len(first)
    assert pointer(store) is None and generations(store) == []


# --- lookup: same answers and output, persisted or not -------------------------------------


def test_lookup_output_is_the_same_from_the_persisted_index_and_a_rebuild(
    client: HashsyncClient, server: FakeHashsync
):
    entries = synthetic_entries(120, seed=14, algorithms=("pdq", "sha256"))
    pdq = sorted(pdq_of(entries))
    # Two entries at the same distance from a query: ties are ordered by value, as before.
    twin = flip(pdq[0], 3, seed=1)
    entries[("pdq", flip(twin, 3, seed=2))] = 7
    server.publish(FEED, entries)
    server.publish("synthetic-other", {("pdq", pdq[0]): 9})
    assert client.sync(retries=0).ok
    texts = [twin.hex(), flip(pdq[1], 31, seed=3).hex(), pdq[2].hex(), "00" * 32, "nonsense"]

    def printed() -> tuple[str, list[str]]:
        lookup = client.lookup()
        out = io.StringIO()
        with redirect_stdout(out):
            for query in lookup.values(texts):
                print_query(query)
        return out.getvalue(), lookup.pdq_rebuilt

    persisted, rebuilt_none = printed()
    for feed in ("synthetic-other", FEED):
        FeedIndexDir(index_root(client.store.path), feed).remove()
    rebuilt, rebuilt_names = printed()

    assert rebuilt_none == [] and sorted(rebuilt_names) == sorted([FEED, "synthetic-other"])
    assert persisted == rebuilt
    lines = persisted.splitlines()
    assert sum("MATCH" in line for line in lines) >= 3
    assert f"{FEED}" in persisted and "synthetic-other" in persisted
    # Order: nearest first, then feed name, then value.
    (near,) = Lookup(client.store).values([twin.hex()])
    keys = [(m.distance, m.feed, m.value) for m in near.matches]
    assert keys == sorted(keys) and len(keys) >= 2


# --- memory: bounded by the chunk, not the feed ---------------------------------------------


def pdq_feed(count: int, seed: int) -> Entries:
    """``count`` SYNTHETIC random PDQ values (numpy: quicker than synthetic_entries here)."""
    rng = np.random.default_rng(seed)
    raw = rng.bytes(count * 32)
    gradings = rng.integers(0, 630, count).tolist()
    return {("pdq", raw[i * 32 : (i + 1) * 32]): gradings[i] for i in range(count)}


class _LockstepQueue(queue.Queue[object]):
    """The writer's queue, with each put waiting until the writer has taken the block in.

    The apply lets the writer fall up to a few blocks behind; how far it falls depends on the
    machine's load, and so would a peak measured with it. In lockstep at most one block is in
    flight, so the peak says what is held per block and what grows with the feed — and
    nothing about timing."""

    def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        if item is not None:
            self.join()


def peak_bytes(tmp_path: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(apply_module, "queue", types.SimpleNamespace(Queue=_LockstepQueue))
    entries = pdq_feed(count, seed=15)
    step, bundle = snapshot(tmp_path, entries)
    del entries
    with Store(tmp_path / f"memory-{count}.sqlite3") as target:
        feed = target.ensure_feed(FEED)
        tracemalloc.start()
        try:
            # The digest here, not in a second process, so that tracemalloc sees it.
            apply_step(target, feed, step, bundle, process_digest_from=count + 1)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return peak


def test_applying_a_snapshot_allocates_per_block_not_per_feed(tmp_path, monkeypatch):
    # A bundle block holds up to 65,536 records and is decoded whole, so memory per block is
    # the unit. From two blocks on, the apply holds the same at its peak (the block being
    # written and the next one decoding), so two blocks' feed is compared with four blocks'.
    # Anything holding the whole feed (a list of entries, the index's values in memory) would
    # add ~60 bytes or more a record, 7.9 MB here on a peak of about 24 MB; the decode, the
    # inserts, the digest and the index files stay per block.
    two_blocks = peak_bytes(tmp_path, 131_000, monkeypatch)
    four_blocks = peak_bytes(tmp_path, 262_000, monkeypatch)

    assert four_blocks < two_blocks * 1.15, (two_blocks, four_blocks)


def test_lookup_reads_the_persisted_files_never_sqlite(tmp_path, store, monkeypatch):
    entries = synthetic_entries(80, seed=16, algorithms=("pdq",))
    step, bundle = snapshot(tmp_path, entries)
    apply_step(store, store.ensure_feed(FEED), step, bundle)
    current = pointer(store)
    assert current is not None
    tables = FeedIndexDir(index_root(store.path), FEED).generation_dir(current.generation)
    # The sync built the tables to disk and a lookup maps them without building anything,
    # and never reads SQLite.
    assert (tables / "tables").is_dir()

    def no_sqlite(*args: object) -> None:
        raise AssertionError("the PDQ index was read from SQLite")

    monkeypatch.setattr(feedindex, "_stream", no_sqlite)

    class NoBuild(feedindex.PdqIndex):
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("the PDQ tables were built, not loaded")

    monkeypatch.setattr(feedindex, "PdqIndex", NoBuild)
    index, persisted = open_feed_index(store, FEED, held(store))

    pdq = pdq_of(entries)
    assert persisted
    assert indexed(index, list(pdq), 0) == {(i, v, pdq[v], 0) for i, v in enumerate(pdq)}
