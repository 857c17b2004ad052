"""Applying one verified bundle to the local store, in one transaction, and proving the result.

The bundle's bytes were already checked against the SHA-256 and size in its signed manifest
(``http.SyncApi.download``). Here it is decoded block by block into an open transaction;
the feed's LtHash16 state is updated alongside and, once the whole bundle has decoded without
error, compared with the state digest the step's manifest signs. Only then is the transaction
committed. Any error, a digest mismatch or a stop request rolls back, leaving the version held
before, intact; a SIGKILL or power cut does the same through SQLite's atomic commit.

Snapshots (up to millions of records) overlap the costs over both cores. A writer thread runs
the ``executemany`` inserts (SQLite releases the GIL while it works) while this thread decodes;
the LtHash elements (SHAKE128, ~3-8 µs each, which holds the GIL) are expanded by this thread
and, for snapshots of ``PROCESS_DIGEST_MIN_RECORDS`` or more, shared with a helper process
(``lthash.LtHashSum``) that takes a frame of elements whenever it has room. Deltas are small
and done in one thread: each batch reads the gradings it replaces, so their elements can be
subtracted from the state.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hashsync_client import feedindex
from hashsync_client.errors import DigestMismatch, Interrupted, VerificationError
from hashsync_client.format import ALGORITHM_IDS, Block, BundleFormatError, read_bundle_blocks
from hashsync_client.lthash import HelperFailed, LtHash16, LtHashSum
from hashsync_client.plan import VerifiedStep
from hashsync_client.progress import NullProgress, ProgressSink
from hashsync_client.signing import canonical_json, manifest_framework, manifest_sha256
from hashsync_client.store import FeedState, Store, timestamp, utc_now

logger = logging.getLogger(__name__)

# Records per executemany / LtHash batch, and how often a stop request is noticed.
APPLY_BATCH = 8192
# Snapshots at least this big share their digest with a helper process (lthash.LtHashSum);
# below it, starting the process (~0.1 s of CPU, mostly importing numpy) would cost more than
# it saves (a 50k snapshot's digest is ~0.17 s of CPU on a quiet Xeon core).
PROCESS_DIGEST_MIN_RECORDS = 50_000
# Test hook, for the SIGKILL test only: once the first batch of an apply is written (inside
# the open transaction), create the file this names and stall, so a test can kill the
# process mid-apply deterministically. Harmless if set by anyone else: the apply just waits.
STALL_ENV = "HASHSYNC_CLIENT_TESTING_STALL_APPLY"

_INSERT = "INSERT INTO entries(feed_id, algorithm, value, grading) VALUES (?, ?, ?, ?)"
_UPSERT = (
    _INSERT + " ON CONFLICT(feed_id, algorithm, value) DO UPDATE SET grading = excluded.grading"
)
_DELETE = "DELETE FROM entries WHERE feed_id = ? AND algorithm = ? AND value = ?"
_IN_CHUNK = 900


@dataclass(frozen=True)
class Applied:
    version: int
    state_digest: str
    entry_count: int
    records: int


def _elements(algorithm_id: int, values: Iterable[bytes], gradings: Iterable[int]) -> list[bytes]:
    # lthash.element() inlined: the codec already checked lengths and grading ranges, and
    # this runs a million times for a snapshot.
    prefix = bytes((algorithm_id,))
    return [
        prefix + value + grading.to_bytes(2, "big")
        for value, grading in zip(values, gradings, strict=True)
    ]


def _stall_for_test(conn_sync: Callable[[], None]) -> None:
    marker = os.environ.get(STALL_ENV)
    if not marker:
        return
    conn_sync()
    Path(marker).write_text(str(os.getpid()), encoding="ascii")
    logger.warning("%s is set: stalling inside an open apply transaction", STALL_ENV)
    time.sleep(600)


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Interrupted("stopped while applying a bundle; the previous version is kept")


def _batches(blocks: Iterable[Block]) -> Iterator[tuple[int, list[bytes], list[int], list[int]]]:
    for block in blocks:
        number = ALGORITHM_IDS[block.algorithm]
        gradings = block.gradings.tolist()
        ops = block.ops.tolist()
        for start in range(0, len(block.values), APPLY_BATCH):
            end = start + APPLY_BATCH
            yield number, block.values[start:end], ops[start:end], gradings[start:end]


def apply_step(
    store: Store,
    feed: FeedState,
    step: VerifiedStep,
    bundle: Path,
    *,
    stop: threading.Event | None = None,
    progress: ProgressSink | None = None,
    process_digest_from: int | None = None,
) -> Applied:
    """Apply the verified ``bundle`` of ``step`` to ``feed`` and commit, or change nothing.

    A snapshot of at least ``process_digest_from`` records (default
    ``PROCESS_DIGEST_MIN_RECORDS``) shares its digest's work with a helper process, in
    parallel with the decode and the inserts here; the value is the same either way.
    """
    progress = progress or NullProgress()
    with bundle.open("rb") as handle:
        try:
            # Nothing is decompressed until ``blocks`` is iterated, and the header's count is
            # compared with the signed one first: one refusal (bundle_header) for any other
            # count, larger or smaller.
            header, blocks = read_bundle_blocks(handle)
        except BundleFormatError as exc:
            raise VerificationError(
                f"{feed.name}: bad bundle: {exc}", code="bundle_format"
            ) from None
        expected = (feed.name, step.kind, step.from_version, step.to_version, step.max_records)
        found = (
            header.feed,
            header.kind,
            header.from_version,
            header.to_version,
            header.record_count,
        )
        if found != expected:
            raise VerificationError(
                f"{feed.name}: the bundle's header is for {header.kind} {header.feed} "
                f"{header.from_version}->{header.to_version} with {header.record_count} records, "
                f"not this step's (its signed count is {step.max_records})",
                code="bundle_header",
            )
        # A format-2 bundle names the framework, rule version and classes its codes are in; the
        # signed manifest must name the same (a format-1 bundle: no framework in either).
        if header.framework != manifest_framework(step.manifest):
            raise VerificationError(
                f"{feed.name}: the bundle's grading framework is not the one its signed "
                "manifest names",
                code="bundle_header",
            )
        conn = store.conn
        threshold = (
            PROCESS_DIGEST_MIN_RECORDS if process_digest_from is None else process_digest_from
        )
        digester = (
            LtHashSum(helper=header.record_count >= threshold) if step.kind == "snapshot" else None
        )
        # The feed's PDQ index beside the store (hashsync_client.feedindex): a snapshot's PDQ
        # blocks stream into a new one, a delta's PDQ changes are collected; either is made
        # the feed's index only after COMMIT.
        sink = feedindex.SnapshotSink(store.path, feed.name) if step.kind == "snapshot" else None
        changes = feedindex.DeltaChanges()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if digester is not None:
                count = _apply_snapshot(store, feed.id, blocks, digester, stop, progress, sink)
                records = count
                state = _snapshot_state(digester, bundle, step.max_records)
            else:
                state = LtHash16(feed.lthash)
                change, records = _apply_delta(
                    store, feed.id, blocks, state, stop, progress, changes
                )
                count = feed.entry_count + change
            digest = state.hexdigest()
            if digest != step.state_digest or count != step.entry_count:
                raise DigestMismatch(
                    f"{feed.name}: after applying version {step.to_version} the list has "
                    f"{count} entries and state digest {digest[:16]}…; the signed manifest "
                    f"says {step.entry_count} entries and {step.state_digest[:16]}…",
                )
            store.update_feed(
                feed.name,
                version=step.to_version,
                lthash=state.state(),
                state_digest=digest,
                entry_count=count,
                manifest=canonical_json(step.manifest),
                manifest_sha256=manifest_sha256(step.manifest),
                manifest_expires_at=step.manifest["expires_at"],
                synced_at=timestamp(utc_now()),
                etag=None,
                etag_version=None,
            )
            conn.execute("COMMIT")
        except BundleFormatError as exc:
            conn.execute("ROLLBACK")
            if sink is not None:
                sink.abort()
            raise VerificationError(
                f"{feed.name}: bad bundle: {exc}", code="bundle_format"
            ) from None
        except BaseException:
            conn.execute("ROLLBACK")
            if sink is not None:
                sink.abort()
            raise
        finally:
            progress.close()
            if digester is not None:
                digester.close()
    _update_index(store, feed, step, digest, sink, changes)
    return Applied(step.to_version, digest, count, records)


def _update_index(
    store: Store,
    feed: FeedState,
    step: VerifiedStep,
    digest: str,
    sink: feedindex.SnapshotSink | None,
    changes: feedindex.DeltaChanges,
) -> None:
    """After COMMIT: make the feed's PDQ index that of the version now held. The store is
    already right; if this fails the index stays at the previous version's pointer, which
    ``lookup`` detects as stale and rebuilds, so a failure here is logged, not raised."""
    try:
        if sink is not None:
            sink.commit(step.to_version, digest)
        else:
            feedindex.update_after_delta(
                store.path,
                store.conn,
                feed.name,
                (feed.version, feed.state_digest),
                (step.to_version, digest),
                changes,
            )
    except Exception as exc:  # the store is committed; the index is only a cache of it
        logger.warning("%s: the PDQ index was not updated (%s); lookup rebuilds it", feed.name, exc)
        if sink is not None:
            sink.abort()


def _snapshot_state(digester: LtHashSum, bundle: Path, max_records: int) -> LtHash16:
    try:
        return digester.result()
    except HelperFailed as exc:
        # Its part of the sum is lost with it: compute the whole state again, here.
        logger.warning("%s; computing the digest again from the bundle", exc)
        return LtHash16(bundle_state(str(bundle), max_records))


def bundle_state(path: str, max_records: int) -> bytes:
    """The LtHash16 state of the records of a snapshot bundle, computed from the file alone."""
    state = LtHash16()
    with open(path, "rb") as handle:
        _, blocks = read_bundle_blocks(handle, max_records=max_records)
        for number, values, _ops, gradings in _batches(blocks):
            state.add(_elements(number, values, gradings))
    return state.state()


def _apply_snapshot(
    store: Store,
    feed_id: int,
    blocks: Iterable[Block],
    state: LtHashSum,
    stop: threading.Event | None,
    progress: ProgressSink,
    sink: feedindex.SnapshotSink | None = None,
) -> int:
    conn = store.conn
    conn.execute("DELETE FROM entries WHERE feed_id = ?", (feed_id,))
    work: queue.Queue[tuple[int, list[bytes], list[int]] | None] = queue.Queue(maxsize=4)
    failures: list[BaseException] = []

    def writer() -> None:
        while True:
            item = work.get()
            try:
                if item is None:
                    return
                if not failures:
                    number, values, gradings = item
                    conn.executemany(
                        _INSERT,
                        zip(
                            itertools.repeat(feed_id),
                            itertools.repeat(number),
                            values,
                            gradings,
                            strict=False,
                        ),
                    )
            except BaseException as exc:  # reported to the caller's thread below
                failures.append(exc)
            finally:
                work.task_done()

    thread = threading.Thread(target=writer, name="hashsync-apply-writer", daemon=True)
    thread.start()
    count = 0
    first = True
    try:
        for number, values, _ops, gradings in _batches(blocks):
            _check_stop(stop)
            if failures:
                break
            work.put((number, values, gradings))
            if sink is not None and number == feedindex.PDQ:
                sink.add(values, gradings)
            state.add_records(number, values, gradings)
            count += len(values)
            progress.update(len(values))
            if first:
                first = False
                _stall_for_test(work.join)
    finally:
        work.put(None)
        thread.join()
    if failures:
        raise failures[0]
    return count


def _existing(store: Store, feed_id: int, number: int, values: list[bytes]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for start in range(0, len(values), _IN_CHUNK):
        chunk = values[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = store.conn.execute(
            "SELECT value, grading FROM entries "  # noqa: S608 - only markers
            f"WHERE feed_id = ? AND algorithm = ? AND value IN ({marks})",
            (feed_id, number, *chunk),
        )
        found.update((bytes(value), grading) for value, grading in rows)
    return found


def _apply_delta(
    store: Store,
    feed_id: int,
    blocks: Iterable[Block],
    state: LtHash16,
    stop: threading.Event | None,
    progress: ProgressSink,
    changes: feedindex.DeltaChanges | None = None,
) -> tuple[int, int]:
    """Apply the records; return (change in entry count, records read)."""
    conn = store.conn
    change = 0
    records = 0
    first = True
    for number, values, ops, gradings in _batches(blocks):
        _check_stop(stop)
        existing = _existing(store, feed_id, number, values)
        # Whatever the record does, the key's old element leaves the state; an UPSERT adds
        # its new one. Computed from our own rows, never from what the delta claims.
        removed = _elements(number, existing, existing.values())
        upserts = [(v, g) for v, op, g in zip(values, ops, gradings, strict=True) if op == 0]
        deletes = [v for v, op in zip(values, ops, strict=True) if op != 0 and v in existing]
        conn.executemany(_UPSERT, ((feed_id, number, v, g) for v, g in upserts))
        conn.executemany(_DELETE, ((feed_id, number, v) for v in deletes))
        if changes is not None and number == feedindex.PDQ:
            changes.record(existing, upserts, deletes)
        state.remove(removed)
        state.add(_elements(number, (v for v, _ in upserts), (g for _, g in upserts)))
        change += sum(1 for v, _ in upserts if v not in existing) - len(deletes)
        records += len(values)
        progress.update(len(values))
        if first:
            first = False
            _stall_for_test(lambda: None)
    return change, records
