"""The member client's PDQ index, persisted beside the store, one per feed.

``lookup`` at 10M entries cannot afford to read every PDQ value back from SQLite into Python
objects on each run (about 1 GiB and tens of seconds), so a sync leaves the feed's PDQ values
where a lookup can map them: ``<store>.pdqindex/<feed>.json`` (the *pointer*) names one
*generation* directory ``<feed>.<generation>/`` holding

- ``values.bin``: 32 bytes a row (the PDQ values, in row order), append-only;
- ``gradings.bin``: the grading code of each row, u16 LE, append-only;
- ``changes.bin``: 33 bytes a change since the generation was written (a byte, 0 add / 1
  remove, then the value), append-only; row numbers of adds continue after the base rows;
- ``tables/``: the ``PdqIndex`` tables over the base rows, built to disk by the sync
  (``PdqIndex.build_to``) and mapped by ``lookup``; missing or unreadable, ``open`` builds
  them from ``values.bin`` — from the mapped file, never from SQLite.

The pointer says which feed version and state digest the files are for, how many rows of each
file count, and the format. ``open`` uses an index only if all of that matches the store's
feed row (read in the same read transaction as nothing else is needed); anything else (no
index, another version, another digest, files shorter than the pointer says, an unknown
format) is *stale*: the index is rebuilt from SQLite, streamed in chunks, and, when the store's
directory is writable and no sync holds the store, persisted for the next run. A stale index
is never used.

How a sync keeps it current:

- a **snapshot** streams each decoded PDQ block into a new generation while the rows go to
  SQLite (``SnapshotSink``); after SQLite's COMMIT the pointer is switched to it (write to a
  temporary file, fsync, rename). A failed or refused apply deletes the new generation and
  leaves the pointer (and the old generation) as they were.
- a **delta** collects its PDQ changes (O(changes) memory: removals and re-gradings of keys
  held, new keys) and, after COMMIT, appends them to the current generation and rewrites the
  pointer: O(changes), unless the pointer did not match the version the delta started from
  (then the whole index is rebuilt from SQLite) or the changes since the generation was
  written outnumber 1/16 of its rows, capped at 65,536 (then it is rebuilt from SQLite,
  streamed: at 10M entries one O(N) rebuild per 65,536 changes, the price of keeping each
  lookup's replay of the changes on the mapped tables short).

A crash between SQLite's COMMIT and the pointer's rename leaves a pointer for the previous
version: stale, so rebuilt — never silently used. Bytes appended past the pointer's counts by
an interrupted update are ignored and truncated by the next update.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from hashsync_client.format import ALGORITHM_IDS
from hashsync_client.pdqindex import PdqIndex, as_words
from hashsync_client.store import Store, StoreBusy

logger = logging.getLogger(__name__)

INDEX_FORMAT: Final = 1
PDQ: Final = ALGORITHM_IDS["pdq"]
VALUE_BYTES: Final = 32
CHANGE_BYTES: Final = 1 + VALUE_BYTES
ADD: Final = 0
REMOVE: Final = 1
# Rows read from SQLite per fetch when rebuilding (bounds the Python objects alive at once).
REBUILD_CHUNK: Final = 65_536
# Changes appended to a generation before it is rewritten: 1/16 of its rows, but at least
# MIN_COMPACT and at most MAX_CHANGES, because each lookup replays them on the loaded tables
# (measured: ~7 µs an addition, ~40 µs a removal, so 65,536 changes cost a lookup 0.5-3 s).
MIN_COMPACT: Final = 4_096
MAX_CHANGES: Final = 65_536
COMPACT_SHARE: Final = 16

_FILES: Final = ("values.bin", "gradings.bin", "changes.bin")


def index_root(store_path: Path) -> Path:
    """Where a store's PDQ indexes live: next to it, as the spool and the lock are."""
    return store_path.parent / (store_path.name + ".pdqindex")


@dataclass(frozen=True)
class Pointer:
    """What ``<feed>.json`` says: which generation, for which version, how many rows."""

    feed: str
    version: int
    state_digest: str
    generation: str
    base_rows: int
    rows: int
    changes: int

    def as_json(self) -> dict[str, Any]:
        return {"format": INDEX_FORMAT, **self.__dict__}

    @classmethod
    def read(cls, path: Path) -> Pointer | None:
        try:
            data = json.loads(path.read_text(encoding="ascii"))
            if data.pop("format") != INDEX_FORMAT:
                return None
            pointer = cls(**data)
        except (OSError, ValueError, TypeError, KeyError, UnicodeDecodeError):
            return None
        numbers = (pointer.version, pointer.base_rows, pointer.rows, pointer.changes)
        if not all(type(n) is int and n >= 0 for n in numbers) or pointer.rows < pointer.base_rows:
            return None
        if not all(isinstance(s, str) for s in (pointer.feed, pointer.state_digest)):
            return None
        if not isinstance(pointer.generation, str) or not pointer.generation.isalnum():
            return None
        return pointer


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FeedIndexDir:
    """The files of one feed's index under ``root``."""

    def __init__(self, root: Path, feed: str) -> None:
        self.root = root
        self.feed = feed
        self.pointer_path = root / f"{feed}.json"

    def generation_dir(self, generation: str) -> Path:
        return self.root / f"{self.feed}.{generation}"

    def pointer(self) -> Pointer | None:
        pointer = Pointer.read(self.pointer_path)
        if pointer is None or pointer.feed != self.feed:
            return None
        return pointer

    def new_generation(self) -> tuple[str, Path]:
        self.root.mkdir(mode=0o700, exist_ok=True)
        generation = secrets.token_hex(8)
        path = self.generation_dir(generation)
        path.mkdir(mode=0o700)
        return generation, path

    def publish(self, pointer: Pointer) -> None:
        """Switch the pointer (atomically), then delete every other generation of the feed."""
        temporary = self.pointer_path.with_name(self.pointer_path.name + f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(pointer.as_json(), sort_keys=True), encoding="ascii")
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, self.pointer_path)
        _fsync_dir(self.root)
        self.prune(keep=pointer.generation)

    def prune(self, keep: str | None) -> None:
        for path in self.root.glob(f"{self.feed}.*"):
            generation = path.name[len(self.feed) + 1 :]
            if path.is_dir() and generation != keep and generation.isalnum():
                shutil.rmtree(path, ignore_errors=True)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pointer_path.unlink()
        self.prune(keep=None)


class _Appender:
    """Appends rows (and changes) to a generation's files, truncating first to what counts."""

    def __init__(self, path: Path, rows: int = 0, changes: int = 0) -> None:
        self.path = path
        self.rows = rows
        self.changes = changes
        self._values = self._open("values.bin", rows * VALUE_BYTES)
        self._gradings = self._open("gradings.bin", rows * 2)
        self._changes = self._open("changes.bin", changes * CHANGE_BYTES)

    def _open(self, name: str, length: int) -> Any:
        handle = open(self.path / name, "ab+")  # noqa: SIM115 - closed in close()
        handle.truncate(length)
        handle.seek(length)
        return handle

    def add_rows(self, values: Sequence[bytes], gradings: Any) -> None:
        self._values.write(b"".join(values))
        self._gradings.write(np.asarray(gradings, dtype="<u2").tobytes())
        self.rows += len(values)

    def add_changes(self, op: int, values: Sequence[bytes]) -> None:
        marker = bytes((op,))
        self._changes.write(b"".join(marker + value for value in values))
        self.changes += len(values)

    def close(self, *, sync: bool) -> None:
        for handle in (self._values, self._gradings, self._changes):
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
            handle.close()


class SnapshotSink:
    """Receives a snapshot's PDQ blocks while it is applied; ``commit`` after SQLite's COMMIT
    makes them the feed's index, ``abort`` deletes them.

    The index is auxiliary: a file system error here never fails the apply. The sink then
    drops what it wrote and ``commit`` leaves the old pointer, so ``lookup`` sees a stale
    index and rebuilds it from SQLite."""

    def __init__(self, store_path: Path, feed: str) -> None:
        self._dir = FeedIndexDir(index_root(store_path), feed)
        self._path: Path | None = None
        self._appender: _Appender | None = None
        try:
            self._generation, self._path = self._dir.new_generation()
            self._appender = _Appender(self._path)
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        logger.warning(
            "%s: PDQ index not written (%s); lookup will rebuild it", self._dir.feed, exc
        )
        self.abort()

    @property
    def rows(self) -> int:
        return 0 if self._appender is None else self._appender.rows

    def add(self, values: Sequence[bytes], gradings: Any) -> None:
        if self._appender is None:
            return
        try:
            self._appender.add_rows(values, gradings)
        except OSError as exc:
            self._failed(exc)

    def commit(self, version: int, state_digest: str) -> None:
        if self._appender is None or self._path is None:
            return
        appender, self._appender = self._appender, None
        appender.close(sync=True)
        _save_tables(self._path, appender.rows)
        self._dir.publish(
            Pointer(
                self._dir.feed,
                version,
                state_digest,
                self._generation,
                appender.rows,
                appender.rows,
                0,
            )
        )

    def abort(self) -> None:
        if self._appender is not None:
            with contextlib.suppress(OSError):
                self._appender.close(sync=False)
            self._appender = None
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None


@dataclass
class DeltaChanges:
    """A delta's PDQ changes, in the order they must be replayed: removals, then additions."""

    removed: list[bytes] = field(default_factory=list)
    added: list[bytes] = field(default_factory=list)
    added_gradings: list[int] = field(default_factory=list)

    def record(
        self,
        existing: dict[bytes, int],
        upserts: Sequence[tuple[bytes, int]],
        deletes: Sequence[bytes],
    ) -> None:
        """One batch of ``apply._apply_delta``: ``existing`` the keys held before it."""
        for value, _grading in upserts:
            if value in existing:
                self.removed.append(value)
        self.removed.extend(deletes)
        self.added.extend(value for value, _ in upserts)
        self.added_gradings.extend(grading for _, grading in upserts)


def update_after_delta(
    store_path: Path,
    conn: sqlite3.Connection,
    feed: str,
    before: tuple[int, str],
    after: tuple[int, str],
    changes: DeltaChanges,
) -> None:
    """After a delta's COMMIT: append its changes to the feed's index if that index is the one
    of ``before`` (version, state digest), else (or when it has grown too many changes)
    rebuild it from SQLite."""
    directory = FeedIndexDir(index_root(store_path), feed)
    pointer = directory.pointer()
    count = len(changes.removed) + len(changes.added)
    usable = (
        pointer is not None
        and (pointer.version, pointer.state_digest) == before
        and _files_hold(directory.generation_dir(pointer.generation), pointer)
        and pointer.changes + count <= _change_limit(pointer.base_rows)
    )
    if not usable:
        rebuild(store_path, conn, feed)
        return
    assert pointer is not None
    path = directory.generation_dir(pointer.generation)
    appender = _Appender(path, pointer.rows, pointer.changes)
    try:
        appender.add_changes(REMOVE, changes.removed)
        appender.add_changes(ADD, changes.added)
        appender.add_rows(changes.added, changes.added_gradings)
    finally:
        appender.close(sync=True)
    version, digest = after
    directory.publish(
        Pointer(
            feed,
            version,
            digest,
            pointer.generation,
            pointer.base_rows,
            appender.rows,
            appender.changes,
        )
    )


def _change_limit(base_rows: int) -> int:
    return max(MIN_COMPACT, min(MAX_CHANGES, base_rows // COMPACT_SHARE))


def _files_hold(path: Path, pointer: Pointer) -> bool:
    sizes = (pointer.rows * VALUE_BYTES, pointer.rows * 2, pointer.changes * CHANGE_BYTES)
    try:
        return all(
            (path / name).stat().st_size >= size for name, size in zip(_FILES, sizes, strict=True)
        )
    except OSError:
        return False


def rebuild(
    store_path: Path, conn: sqlite3.Connection, feed: str, *, root: Path | None = None
) -> Pointer | None:
    """Write the feed's index afresh from SQLite (streamed: ``REBUILD_CHUNK`` rows at a time)
    and publish it (under ``root``, by default the store's index directory); None if the feed
    is not in the store. The feed's version, digest and rows are read in one read
    transaction, so they agree."""
    directory = FeedIndexDir(root or index_root(store_path), feed)
    generation, path = directory.new_generation()
    try:
        appender = _Appender(path)
        try:
            with _read_transaction(conn):
                row = conn.execute(
                    "SELECT id, version, state_digest FROM feeds WHERE name = ?", (feed,)
                ).fetchone()
                if row is None:
                    raise LookupError(feed)
                feed_id, version, digest = int(row[0]), int(row[1]), str(row[2])
                for values, gradings in _stream(conn, feed_id):
                    appender.add_rows(values, gradings)
        finally:
            appender.close(sync=True)
        _save_tables(path, appender.rows)
        pointer = Pointer(feed, version, digest, generation, appender.rows, appender.rows, 0)
        directory.publish(pointer)
        return pointer
    except LookupError:
        shutil.rmtree(path, ignore_errors=True)
        return None
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


@contextlib.contextmanager
def _read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    if conn.in_transaction:  # the caller's transaction already gives one snapshot
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _stream(conn: sqlite3.Connection, feed_id: int) -> Iterator[tuple[list[bytes], list[int]]]:
    cursor = conn.execute(
        "SELECT value, grading FROM entries WHERE feed_id = ? AND algorithm = ? ORDER BY value",
        (feed_id, PDQ),
    )
    while rows := cursor.fetchmany(REBUILD_CHUNK):
        yield [bytes(v) for v, _ in rows], [int(g) for _, g in rows]


# --- the tables: PdqIndex's own save/load when it has them ------------------------------


def _save_tables(path: Path, rows: int) -> None:
    """Build the ``PdqIndex`` tables over the generation's rows (read from the mapped
    ``values.bin``) straight to ``tables/``, one block at a time (``PdqIndex.build_to``:
    ~40 bytes a row at its peak where a build in memory holds ~170), so that ``lookup`` maps
    them instead of building them."""
    if not rows:
        return
    values = np.memmap(path / "values.bin", dtype=np.uint8, mode="r", shape=(rows, VALUE_BYTES))
    PdqIndex.build_to(path / "tables", values)


def _load_tables(path: Path, values: npt.NDArray[np.uint8]) -> PdqIndex:
    """The saved tables over the base rows (mapped), or, if there are none that fit, tables
    built here from ``values``."""
    tables = path / "tables"
    if tables.exists():
        try:
            index = PdqIndex.load(tables, mmap=True)
        except ValueError as exc:
            logger.warning("PDQ index tables in %s unreadable (%s); building them", path, exc)
        else:
            if isinstance(index, PdqIndex) and len(index) == len(values):
                return index
    return PdqIndex(values)


# --- reading ----------------------------------------------------------------------------


class FeedIndex:
    """One feed's PDQ index as a lookup uses it: the index, and each row's value and grading."""

    def __init__(
        self, index: PdqIndex, values: npt.NDArray[np.uint8], gradings: npt.NDArray[np.uint16]
    ) -> None:
        self.index = index
        self._values = values
        self._gradings = gradings

    def __len__(self) -> int:
        return len(self.index)

    def value(self, row: int) -> bytes:
        return bytes(self._values[row])

    def grading(self, row: int) -> int:
        return int(self._gradings[row])


def open_feed_index(store: Store, feed: str, held: tuple[int, str]) -> tuple[FeedIndex, bool]:
    """The index of ``feed`` for the state ``held`` (version, state digest) of the store's
    feed row, and whether the persisted one was used (False: rebuilt from SQLite first).

    A rebuild is persisted only while this process can take the store's sync lock (a sync
    running beside us owns the index directory); otherwise, or if the directory cannot be
    written, it goes to a temporary directory for this run only."""
    directory = FeedIndexDir(index_root(store.path), feed)
    for _attempt in range(3):
        pointer = directory.pointer()
        if (
            pointer is not None
            and (pointer.version, pointer.state_digest) == held
            and _files_hold(directory.generation_dir(pointer.generation), pointer)
        ):
            try:
                return _load(directory.generation_dir(pointer.generation), pointer), True
            except FileNotFoundError:  # a sync replaced the generation as we opened it
                continue
        break
    return _rebuilt(store, feed), False


def _rebuilt(store: Store, feed: str) -> FeedIndex:
    """Rebuild a stale index from SQLite. The rebuilt index is for the store's state at the
    time of the rebuild (one read transaction): consistent with the rows, whatever a sync
    committed since the caller looked."""
    with contextlib.ExitStack() as stack:
        root: Path | None = None
        try:
            stack.enter_context(store.sync_lock())
            pointer = rebuild(store.path, store.conn, feed)
        except (StoreBusy, OSError) as exc:
            logger.info("PDQ index of %s built for this run only (%s)", feed, exc)
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hashsync-pdq-")))
            pointer = rebuild(store.path, store.conn, feed, root=root)
        if pointer is None:
            raise LookupError(f"feed {feed} is not held")
        directory = FeedIndexDir(root or index_root(store.path), feed)
        # The files stay mapped after a temporary directory is deleted (POSIX).
        return _load(directory.generation_dir(pointer.generation), pointer)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _load(path: Path, pointer: Pointer) -> FeedIndex:
    rows = pointer.rows
    values: npt.NDArray[np.uint8]
    gradings: npt.NDArray[np.uint16]
    if rows:
        values = np.memmap(path / "values.bin", dtype=np.uint8, mode="r", shape=(rows, 32))
        gradings = np.memmap(path / "gradings.bin", dtype="<u2", mode="r", shape=(rows,))
    else:
        values = np.zeros((0, VALUE_BYTES), dtype=np.uint8)
        gradings = np.zeros(0, dtype="<u2")
    index = _load_tables(path, values[: pointer.base_rows])
    if pointer.changes:
        changes = np.fromfile(
            path / "changes.bin", dtype=np.uint8, count=pointer.changes * CHANGE_BYTES
        ).reshape(pointer.changes, CHANGE_BYTES)
        next_row = pointer.base_rows
        for op, value in zip(changes[:, 0].tolist(), changes[:, 1:], strict=True):
            raw = value.tobytes()
            if op == REMOVE:
                index.remove(raw)
            else:
                row = index.add(raw)
                if row != next_row:  # pragma: no cover - PdqIndex numbers rows in order
                    raise RuntimeError("PDQ index row numbering out of step with its files")
                next_row += 1
    return FeedIndex(index, values, gradings)


def query_words(values: Sequence[bytes]) -> npt.NDArray[np.uint64]:
    """PDQ query values as the (Q, 4) uint64 matrix ``PdqIndex.within_many`` takes."""
    if not values:
        return np.zeros((0, 4), dtype=np.uint64)
    return as_words(list(values))
