"""Exact Hamming-distance search over 256-bit PDQ values: multi-index hashing over numpy.

**Why it is exact.** The index keys every value by ``B`` disjoint blocks of its bits and, for a
query, probes each block's table with the query's block and every variant of it with up to
``f`` bits flipped. If a held value were within ``t`` bits of the query but in none of the
probed buckets, each of its ``B`` blocks would differ from the query's in at least ``f + 1``
bits, so the two would differ in at least ``B * (f + 1)`` bits. Hence the probes find every
value within ``t`` bits whenever ``B * (f + 1) > t`` (the blocks need not cover all 256 bits:
the argument only counts bits inside blocks). Each candidate's full distance is then computed,
so the answer is the answer of a full scan. Above ``exact_up_to`` the index scans, which is
exact too; it never answers approximately.

**Layout** (``docs/matching.md`` has the measurements behind it): 11 blocks probed with up to 2
flipped bits, exact up to 11 x 3 - 1 = 32 bits. Block widths follow the number of values (about
log2 N bits, at most 256 bits in all: 3 x 24 + 8 x 23 at 10M), so a bucket holds about one
value and a query meets about 3,000 buckets and as many candidates at 10M, against 41,500 for
16 one-flip blocks of 16 bits. Per block, ``order`` (row positions sorted by the block's key,
uint32) and ``starts`` (the bucket boundaries, a direct table of 2**width + 1 entries); the
values themselves row-major (one 32-byte line read per candidate). A batch of queries is
answered by a fixed number of numpy passes, whatever the batch size or block count: all probe
keys at once, one gather of bucket bounds, one of candidates, one of values, one popcount.

**Changes** are O(1) plus one bucket probe: a removal clears a tombstone; an addition goes to a
small *buffer* searched by a scan. A full buffer (4,096 values) is rebuilt with the *recent*
segment into a new recent segment, and a recent segment that outgrows an eighth of the main one
(and at least 65,536 values) is folded into a new main segment (amortised O(1) a change).

**Persistence**: ``save(path)`` writes numpy files and ``PdqIndex.load(path)`` maps the large
ones read-only (``mmap=True``), so a restart takes seconds and processes on a node share one copy
in the page cache; tombstones and later changes stay private to each process.

Rows are numbered in the order values arrive (the constructor's rows first, then each
``add``), and a number is never reused (also across ``save``/``load``), so callers keep per-row
data (feed, grading) in arrays or dicts indexed by it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

VALUE_BYTES: Final = 32
BLOCKS: Final = 11
FLIPS: Final = 2
# Exact by probing up to here: 11 blocks x (2 flips + 1) = 33 > 32 (see the module's doc).
MIH_MAX_DISTANCE: Final = BLOCKS * (FLIPS + 1) - 1
# Widest block: a 2**24-entry bucket table (64 MiB) per block.
_MAX_WIDTH: Final = 24
_MIN_WIDTH: Final = 4
# Probe slots, and candidates, handled at once (bounds the temporaries: see ``probe``).
_PROBES_PER_STEP: Final = 1 << 16
_CANDIDATES_PER_STEP: Final = 1 << 16
# Elements of a query-by-row scan matrix computed at once.
_SCAN_CELLS: Final = 1 << 22
_BUFFER_MAX: Final = 4096
_MIN_MERGE: Final = 1 << 16
FORMAT: Final = 1
_META: Final = "pdq-index.json"

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Found = tuple[I64, I64, I64]


def popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Set bits of each uint64 (numpy >= 2 has an instruction for it; 1.26 a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)  # pragma: no cover
    return (
        table[words.view(np.uint8)].reshape(*words.shape, 8).sum(axis=-1, dtype=np.uint8)
    )  # pragma: no cover


def as_words(values: npt.NDArray[Any] | bytes | Sequence[bytes]) -> U64:
    """32-byte values as an (N, 4) uint64 matrix (a copy only when the input needs one)."""
    if isinstance(values, bytes):
        values = np.frombuffer(values, dtype=np.uint8)
    elif not isinstance(values, np.ndarray):
        values = np.frombuffer(b"".join(values), dtype=np.uint8)
    elif values.dtype == np.uint64:
        return np.ascontiguousarray(values, dtype=np.uint64).reshape(-1, 4)
    flat = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, VALUE_BYTES)
    return flat.view(np.uint64)


def widths_for(count: int, blocks: int = BLOCKS) -> tuple[int, ...]:
    """Block widths for ``count`` values: about log2(count) bits, at most 256 bits in all."""
    width = max(_MIN_WIDTH, min(_MAX_WIDTH, count.bit_length()))
    total = min(256, blocks * width)
    base, extra = divmod(total, blocks)
    return tuple(base + 1 if i < extra else base for i in range(blocks))


def distances(xor: U64) -> npt.NDArray[np.uint16]:
    """Set bits of each line of an (..., 4) uint64 matrix (four additions: numpy's sum over a
    short last axis is many times slower)."""
    counts = popcount(xor)
    total = counts[..., 0].astype(np.uint16)
    total += counts[..., 1]
    total += counts[..., 2]
    total += counts[..., 3]
    return total


def _masks(width: int, flips: int) -> npt.NDArray[np.uint64]:
    """Every ``width``-bit mask with at most ``flips`` bits set (0 first)."""
    masks = [
        sum(1 << bit for bit in bits)
        for count in range(flips + 1)
        for bits in itertools.combinations(range(width), count)
    ]
    return np.array(masks, dtype=np.uint64)


def _scan(queries: U64, rows: U64, ids: I64, alive: Bools, max_distance: int) -> list[Found]:
    """Every row compared with every query: the exact answer at any threshold."""
    found: list[Found] = []
    if not len(rows) or not len(queries):
        return found
    step = max(1, _SCAN_CELLS // len(queries))
    for begin in range(0, len(rows), step):
        chunk = rows[begin : begin + step]
        total = distances(queries[:, None, :] ^ chunk[None, :, :])
        q, hits = np.nonzero((total <= max_distance) & alive[begin : begin + step][None, :])
        if len(q):
            found.append((q.astype(np.int64), ids[hits + begin], total[q, hits].astype(np.int64)))
    return found


class _Tables:
    """An immutable set of values with its block tables (tombstones aside)."""

    def __init__(
        self,
        widths: tuple[int, ...],
        flips: int,
        rows: U64,
        ids: I64,
        alive: Bools,
        order: npt.NDArray[np.uint32],
        starts: npt.NDArray[np.uint32],
    ) -> None:
        self.widths = widths
        self.flips = flips
        self.rows, self.ids, self.alive, self.order, self.starts = rows, ids, alive, order, starts
        offsets = np.cumsum([0, *(bit for bit in widths)])
        self._word_lo = (offsets[:-1] // 64).astype(np.intp)
        self._word_hi = np.minimum(self._word_lo + 1, 3)
        self._shift = (offsets[:-1] % 64).astype(np.uint64)
        self._keep = np.array([(1 << w) - 1 for w in widths], dtype=np.uint64)
        table = np.cumsum([0, *((1 << w) + 1 for w in widths)])
        self._table_at = table[:-1].astype(np.uint64)
        masks = [_masks(w, flips) for w in widths]
        self._probe_block = np.concatenate(
            [np.full(len(m), b, dtype=np.intp) for b, m in enumerate(masks)]
        )
        self._probe_mask = np.concatenate(masks)
        self._probe_base = self._table_at[self._probe_block]

    @classmethod
    def build(cls, widths: tuple[int, ...], flips: int, rows: U64, ids: I64) -> _Tables:
        n = len(rows)
        if len(widths) * n >= 1 << 32:
            raise ValueError("too many PDQ values for one index")
        rows = np.ascontiguousarray(rows, dtype=np.uint64).reshape(-1, 4)
        order = np.empty(len(widths) * n, dtype=np.uint32)
        starts = np.empty(sum((1 << w) + 1 for w in widths), dtype=np.uint32)
        tables = cls(widths, flips, rows, ids, np.ones(n, dtype=bool), order, starts)
        positions = np.arange(n, dtype=np.uint64)
        for block, width in enumerate(widths):
            keys = tables.keys(rows, block)
            # Sort (key, position) pairs packed in one uint64: one fast sort, no argsort.
            packed = np.sort((keys << np.uint64(32)) | positions)
            order[block * n : (block + 1) * n] = packed & np.uint64(0xFFFFFFFF)
            at = int(tables._table_at[block])
            bounds = starts[at : at + (1 << width) + 1]
            bounds[0] = 0
            np.cumsum(np.bincount(keys.astype(np.intp), minlength=1 << width), out=bounds[1:])
            bounds += block * n
        return tables

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "rows": self.rows,
            "ids": self.ids,
            "alive": self.alive,
            "order": self.order,
            "starts": self.starts,
        }

    def keys(self, words: U64, block: int | None = None) -> U64:
        """Block keys of (Q, 4) ``words``: (Q, blocks), or (Q,) for one block."""
        pick = slice(None) if block is None else block
        low = words[:, self._word_lo[pick]]
        high = words[:, self._word_hi[pick]]
        shift = self._shift[pick]
        # (high << 1) << (63 - shift) is high << (64 - shift), and 0 when shift is 0.
        joined = (low >> shift) | ((high << np.uint64(1)) << (np.uint64(63) - shift))
        return joined & self._keep[pick]

    def equal(self, value: U64) -> I64:
        """Live positions holding exactly ``value`` (a (1, 4) matrix): one bucket of block 0."""
        if not len(self.rows):
            return np.zeros(0, dtype=np.int64)
        key = int(self.keys(value, 0)[0])
        at = int(self._table_at[0]) + key
        positions = self.order[int(self.starts[at]) : int(self.starts[at + 1])].astype(np.int64)
        same = np.all(self.rows[positions] == value, axis=1) & self.alive[positions]
        return positions[same]

    def probe(self, queries: U64, max_distance: int) -> list[Found]:
        """The candidates of every probed bucket, each checked in full. A few queries at a
        time, so every temporary array stays in the processor's cache (allocating and
        faulting in large temporaries costs more than the work itself)."""
        if not len(self.rows) or not len(queries):
            return []
        probes = len(self._probe_mask)
        found: list[Found] = []
        step = max(1, _PROBES_PER_STEP // probes)
        for start in range(0, len(queries), step):
            keys = self.keys(queries[start : start + step])[:, self._probe_block]
            slots = ((keys ^ self._probe_mask) + self._probe_base).astype(np.intp).reshape(-1)
            low = self.starts[slots].astype(np.int64)
            slots += 1
            lengths = self.starts[slots].astype(np.int64)
            lengths -= low
            filled = np.flatnonzero(lengths)
            if not len(filled):
                continue
            counts = lengths[filled]
            ends = np.cumsum(counts)
            # Pieces of whole buckets with a bounded number of candidates (clustered values
            # can fill one bucket with many).
            cuts = np.searchsorted(
                ends, np.arange(1, 1 + int(ends[-1]) // _CANDIDATES_PER_STEP) * _CANDIDATES_PER_STEP
            )
            bounds = [0, *np.unique(np.minimum(cuts + 1, len(filled))).tolist()]
            if bounds[-1] != len(filled):
                bounds.append(len(filled))
            for first, last in itertools.pairwise(bounds):
                piece = counts[first:last]
                before = int(ends[first - 1]) if first else 0
                total = int(ends[last - 1]) - before
                # Positions low..high-1 of every non-empty bucket, without a Python loop.
                offsets = np.repeat(
                    low[filled[first:last]] - (ends[first:last] - before) + piece, piece
                )
                offsets += np.arange(total)
                candidates = self.order[offsets].astype(np.intp)
                owners = np.repeat(filled[first:last] // probes + start, piece)
                found.extend(self._check(queries, owners, candidates, max_distance))
        return found

    def _check(
        self, queries: U64, owners: I64, candidates: npt.NDArray[np.intp], max_distance: int
    ) -> list[Found]:
        values = np.take(self.rows, candidates, axis=0)
        values ^= np.take(queries, owners, axis=0)
        distance = distances(values)
        near = np.flatnonzero(distance <= max_distance)
        if not len(near):
            return []
        near = near[self.alive[candidates[near]]]
        positions = candidates[near]
        return [(owners[near], self.ids[positions], distance[near].astype(np.int64))]

    def scan(self, queries: U64, max_distance: int) -> list[Found]:
        return _scan(queries, self.rows, self.ids, self.alive, max_distance)


class PdqIndex:
    """An exact PDQ index (see the module's doc). ``PdqIndex(values)`` takes an (N, 32) uint8
    matrix (or a list of 32-byte values, or an (N, 4) uint64 matrix)."""

    def __init__(
        self,
        values: npt.NDArray[Any] | Sequence[bytes] = (),
        *,
        widths: tuple[int, ...] | None = None,
        flips: int = FLIPS,
    ) -> None:
        words = as_words(values) if len(values) else np.zeros((0, 4), dtype=np.uint64)
        self._fixed_widths = widths
        self.flips = flips
        self._main = self._tables(np.ascontiguousarray(words), np.arange(len(words)))
        self._recent: _Tables | None = None
        self._clear_buffer()
        self._next_id = len(words)
        self._live = len(words)

    def _tables(self, words: U64, ids: npt.NDArray[Any]) -> _Tables:
        widths = self._fixed_widths or widths_for(len(words))
        return _Tables.build(widths, self.flips, words, ids.astype(np.int64))

    @property
    def exact_up_to(self) -> int:
        """The largest distance the probes answer exactly (above it the index scans)."""
        return len(self._main.widths) * (self.flips + 1) - 1

    @property
    def widths(self) -> tuple[int, ...]:
        return self._main.widths

    def _clear_buffer(self) -> None:
        self._buffer = np.zeros((16, 4), dtype=np.uint64)
        self._buffer_ids = np.zeros(16, dtype=np.int64)
        self._buffer_alive = np.zeros(16, dtype=bool)
        self._buffer_size = 0
        self._buffer_rows: dict[bytes, list[int]] = {}  # value → buffer positions

    def _segments(self) -> list[_Tables]:
        return [self._main] if self._recent is None else [self._main, self._recent]

    def __len__(self) -> int:
        """Values held (removed ones not counted)."""
        return self._live

    @property
    def nbytes(self) -> int:
        """Memory held (or mapped) by the index's arrays."""
        total = self._buffer.nbytes + self._buffer_ids.nbytes + self._buffer_alive.nbytes
        return total + sum(a.nbytes for t in self._segments() for a in t.arrays.values())

    # --- changes ------------------------------------------------------------------------

    def add(self, value: bytes) -> int:
        """Hold one more value; returns its row number."""
        if len(value) != VALUE_BYTES:
            raise ValueError("a PDQ value is 32 bytes")
        if self._buffer_size == len(self._buffer):
            grown = np.zeros((2 * len(self._buffer), 4), dtype=np.uint64)
            grown[: self._buffer_size] = self._buffer[: self._buffer_size]
            self._buffer = grown
            self._buffer_ids = np.resize(self._buffer_ids, len(grown))
            self._buffer_alive = np.resize(self._buffer_alive, len(grown))
        row = self._next_id
        self._next_id += 1
        position = self._buffer_size
        self._buffer[position] = np.frombuffer(value, dtype=np.uint64)
        self._buffer_ids[position] = row
        self._buffer_alive[position] = True
        self._buffer_size += 1
        self._buffer_rows.setdefault(value, []).append(position)
        self._live += 1
        if self._buffer_size >= _BUFFER_MAX:
            self._fold()
        return row

    def remove(self, value: bytes) -> list[int]:
        """Stop holding every copy of ``value``; returns the row numbers removed."""
        if len(value) != VALUE_BYTES:
            raise ValueError("a PDQ value is 32 bytes")
        removed: list[int] = []
        for position in self._buffer_rows.pop(value, []):
            removed.append(int(self._buffer_ids[position]))
            self._buffer_alive[position] = False
        query = as_words(value)
        for tables in self._segments():
            positions = tables.equal(query)
            if len(positions):
                if not tables.alive.flags.writeable:  # a mapped file: copy on first write
                    tables.alive = np.array(tables.alive)
                tables.alive[positions] = False
                removed.extend(int(r) for r in tables.ids[positions])
        self._live -= len(removed)
        return removed

    def find(self, value: bytes) -> list[int]:
        """Row numbers holding exactly ``value`` (one bucket per segment: cheaper than
        ``within(value, 0)``)."""
        if len(value) != VALUE_BYTES:
            raise ValueError("a PDQ value is 32 bytes")
        found = [int(self._buffer_ids[p]) for p in self._buffer_rows.get(value, [])]
        query = as_words(value)
        for tables in self._segments():
            found.extend(int(r) for r in tables.ids[tables.equal(query)])
        return sorted(found)

    def _fold(self) -> None:
        """The buffer into the recent segment; the recent segment into the main one once it
        outgrows an eighth of it. Row numbers are kept; removed rows are dropped."""
        size = self._buffer_size
        live = self._buffer_alive[:size]
        parts = [(self._buffer[:size][live], self._buffer_ids[:size][live])]
        if self._recent is not None:
            recent = self._recent
            parts.insert(0, (recent.rows[recent.alive], recent.ids[recent.alive]))
        recent_size = sum(len(ids) for _, ids in parts)
        if recent_size > max(_MIN_MERGE, len(self._main) // 8):
            main = self._main
            parts.insert(0, (main.rows[main.alive], main.ids[main.alive]))
            self._main = self._tables(*(np.concatenate(p) for p in zip(*parts, strict=True)))
            self._recent = None
        else:
            words, ids = (np.concatenate(p) for p in zip(*parts, strict=True))
            self._recent = self._tables(words, ids)
        self._clear_buffer()

    # --- search ---------------------------------------------------------------------------

    def within(self, query: bytes, max_distance: int) -> tuple[I64, I64]:
        """(row numbers, distances) of the values within ``max_distance`` bits of ``query``,
        nearest first (ties by row number)."""
        _, rows, distances = self.within_many(as_words(query), max_distance)
        return rows, distances

    def within_many(self, queries: U64, max_distance: int) -> tuple[I64, I64, I64]:
        """Every (query number, row number, distance) with distance ≤ ``max_distance``, for an
        (Q, 4) uint64 matrix of queries; sorted by query, distance, row."""
        if not 0 <= max_distance <= 256:
            raise ValueError("the PDQ distance is 0..256 bits")
        queries = np.ascontiguousarray(queries, dtype=np.uint64).reshape(-1, 4)
        found: list[Found] = []
        for tables in self._segments():
            if max_distance <= len(tables.widths) * (tables.flips + 1) - 1:
                found += tables.probe(queries, max_distance)
            else:
                found += tables.scan(queries, max_distance)
        size = self._buffer_size
        if size:
            buffer = (self._buffer[:size], self._buffer_ids[:size], self._buffer_alive[:size])
            found += _scan(queries, *buffer, max_distance)
        if not found:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        q, rows, dist = (np.concatenate(parts) for parts in zip(*found, strict=True))
        order = np.lexsort((rows, dist, q))
        q, rows, dist = q[order], rows[order], dist[order]
        # A value sits in several of a query's buckets when near: count each (query, row) once.
        first = np.ones(len(q), dtype=bool)
        first[1:] = (q[1:] != q[:-1]) | (rows[1:] != rows[:-1])
        return q[first], rows[first], dist[first]

    def value(self, row: int) -> bytes:
        """The value of a row number (held, or removed since its segment was last built)."""
        for tables in self._segments():
            at = int(np.searchsorted(tables.ids, row))
            if at < len(tables.ids) and tables.ids[at] == row:
                return bytes(tables.rows[at].tobytes())
        positions = np.flatnonzero(self._buffer_ids[: self._buffer_size] == row)
        if len(positions):
            return bytes(self._buffer[positions[0]].tobytes())
        raise KeyError(row)

    def values(self, rows: npt.NDArray[Any]) -> U64:
        """The values of many row numbers at once, as an (R, 4) uint64 matrix."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), 4), dtype=np.uint64)
        pending = np.ones(len(rows), dtype=bool)
        for tables in self._segments():
            at = np.minimum(np.searchsorted(tables.ids, rows), max(len(tables.ids) - 1, 0))
            if not len(tables.ids):
                continue
            hit = pending & (tables.ids[at] == rows)
            out[hit] = tables.rows[at[hit]]
            pending &= ~hit
        for i in np.flatnonzero(pending):
            out[i] = np.frombuffer(self.value(int(rows[i])), dtype=np.uint64)
        return out

    # --- persistence ----------------------------------------------------------------------

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        extra: dict[str, npt.NDArray[Any]] | None = None,
    ) -> None:
        """Write the index to the directory ``path`` (created, or replaced whole): numpy files
        that ``load`` can map, and ``pdq-index.json``. Row numbers are kept, so per-row data
        stays valid: pass it as ``extra`` (name → array, written as ``<name>.npy`` in the same
        directory, read back with ``np.load(path / f"{name}.npy", mmap_mode="r")``; names must
        not start with ``pdq-``). The directory is written under a temporary name and renamed
        into place, so a reader sees the old index or the new one, never half of one."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        segments = {"main": self._main} | ({} if self._recent is None else {"recent": self._recent})
        for name, tables in segments.items():
            for part, array in tables.arrays.items():
                np.save(temporary / f"pdq-{name}-{part}.npy", np.ascontiguousarray(array))
        size = self._buffer_size
        np.save(temporary / "pdq-buffer-rows.npy", self._buffer[:size])
        np.save(temporary / "pdq-buffer-ids.npy", self._buffer_ids[:size])
        np.save(temporary / "pdq-buffer-alive.npy", self._buffer_alive[:size])
        meta = {
            "format": FORMAT,
            "flips": self.flips,
            "fixed_widths": list(self._fixed_widths) if self._fixed_widths else None,
            "segments": {name: list(t.widths) for name, t in segments.items()},
            "next_id": self._next_id,
            "live": self._live,
        }
        for name, array in (extra or {}).items():
            if name.startswith("pdq-") or not name.replace("-", "_").isidentifier():
                raise ValueError(f"extra array name {name!r}")
            np.save(temporary / f"{name}.npy", np.ascontiguousarray(array))
        (temporary / _META).write_text(json.dumps(meta))
        _publish(temporary, target)

    @classmethod
    def build_to(
        cls, path: str | os.PathLike[str], values: npt.NDArray[Any], *, chunk: int = 1 << 20
    ) -> None:
        """Write the files ``PdqIndex(values).save(path)`` writes, without the index ever being
        in memory: ``values`` (an (N, 32) uint8 matrix, typically mapped from disk) is read
        ``chunk`` rows at a time, each block's table is sorted and written on its own, and
        every part goes to its file by plain writes (a mapped output file would count against
        the process's memory until unmapped). Peak memory is about 40 bytes a value (one
        block's keys, positions and sort) plus one table of ``starts``, against ~170 bytes a
        value for a build in memory: at 10M values, ~0.45 GiB instead of 1.7 GiB."""
        n = len(values)
        widths = widths_for(n)
        if len(widths) * n >= 1 << 32:
            raise ValueError("too many PDQ values for one index")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        empty_words = np.zeros((0, 4), dtype=np.uint64)
        empty_ids = np.zeros(0, dtype=np.int64)
        empty_order = np.zeros(0, dtype=np.uint32)
        spec = _Tables(
            widths, FLIPS, empty_words, empty_ids, np.zeros(0, dtype=bool), empty_order, empty_order
        )
        spans = [(start, min(n, start + chunk)) for start in range(0, n, chunk)]

        def words(start: int, end: int) -> U64:
            return np.array(as_words(values[start:end]), dtype=np.uint64)

        with _NpyFile(temporary / "pdq-main-rows.npy", np.uint64, (n, 4)) as out:
            for start, end in spans:
                out.write(words(start, end))
        with _NpyFile(temporary / "pdq-main-ids.npy", np.int64, (n,)) as out:
            for start, end in spans:
                out.write(np.arange(start, end, dtype=np.int64))
        with _NpyFile(temporary / "pdq-main-alive.npy", np.bool_, (n,)) as out:
            for start, end in spans:
                out.write(np.ones(end - start, dtype=bool))
        total = sum((1 << w) + 1 for w in widths)
        with (
            _NpyFile(temporary / "pdq-main-order.npy", np.uint32, (len(widths) * n,)) as order,
            _NpyFile(temporary / "pdq-main-starts.npy", np.uint32, (total,)) as starts,
        ):
            for block, width in enumerate(widths):
                keys = np.empty(n, dtype=np.uint64)
                for start, end in spans:
                    keys[start:end] = spec.keys(words(start, end), block)
                bounds = np.zeros((1 << width) + 1, dtype=np.uint32)
                np.cumsum(np.bincount(keys.astype(np.intp), minlength=1 << width), out=bounds[1:])
                bounds += np.uint32(block * n)
                starts.write(bounds)
                del bounds
                # As in _Tables.build: (key, position) packed in one uint64, one sort.
                keys <<= np.uint64(32)
                keys |= np.arange(n, dtype=np.uint64)
                keys.sort()
                keys &= np.uint64(0xFFFFFFFF)
                order.write(keys.astype(np.uint32))
                del keys
        np.save(temporary / "pdq-buffer-rows.npy", empty_words)
        np.save(temporary / "pdq-buffer-ids.npy", empty_ids)
        np.save(temporary / "pdq-buffer-alive.npy", np.zeros(0, dtype=bool))
        meta = {
            "format": FORMAT,
            "flips": FLIPS,
            "fixed_widths": None,
            "segments": {"main": list(widths)},
            "next_id": n,
            "live": n,
        }
        (temporary / _META).write_text(json.dumps(meta))
        _publish(temporary, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> PdqIndex:
        """An index written by ``save``. With ``mmap`` the large arrays (values, tables) are
        mapped read-only, so loading reads almost nothing and every process mapping the same
        files shares one copy; tombstones are copied on the first removal and additions go to
        private segments, never to the files. Raises ``ValueError`` for a directory that is not
        a complete index of this format (the caller rebuilds)."""
        folder = Path(path)
        try:
            meta = json.loads((folder / _META).read_text())
            if meta.get("format") != FORMAT:
                raise ValueError(f"PDQ index format {meta.get('format')!r}, expected {FORMAT}")
            index = cls.__new__(cls)
            fixed = meta["fixed_widths"]
            index._fixed_widths = tuple(fixed) if fixed else None
            index.flips = int(meta["flips"])
            segments: dict[str, _Tables] = {}
            for name, widths in meta["segments"].items():
                arrays = {
                    part: np.load(
                        folder / f"pdq-{name}-{part}.npy",
                        mmap_mode="r" if mmap and part != "alive" else None,
                        allow_pickle=False,
                    )
                    for part in ("rows", "ids", "alive", "order", "starts")
                }
                segments[name] = _Tables(tuple(widths), index.flips, **arrays)
                _check_shapes(segments[name])
            index._main = segments["main"]
            index._recent = segments.get("recent")
            index._clear_buffer()
            rows = np.load(folder / "pdq-buffer-rows.npy", allow_pickle=False)
            ids = np.load(folder / "pdq-buffer-ids.npy", allow_pickle=False)
            alive = np.load(folder / "pdq-buffer-alive.npy", allow_pickle=False)
            index._next_id = int(meta["next_id"])
            index._live = int(meta["live"])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a complete PDQ index: {exc}") from exc
        if len(rows):
            index._buffer = np.array(rows, dtype=np.uint64).reshape(-1, 4)
            index._buffer_ids = np.array(ids, dtype=np.int64)
            index._buffer_alive = np.array(alive, dtype=bool)
            index._buffer_size = len(rows)
            for position in np.flatnonzero(index._buffer_alive):
                index._buffer_rows.setdefault(index._buffer[position].tobytes(), []).append(
                    int(position)
                )
        return index


class _NpyFile:
    """A ``.npy`` file of a known dtype and shape, filled in order by plain writes."""

    def __init__(self, path: Path, dtype: Any, shape: tuple[int, ...]) -> None:
        self._dtype = np.dtype(dtype)
        self._handle = open(path, "wb")  # noqa: SIM115 - closed by __exit__
        header = {"descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(self._handle, {**header, "shape": shape})
        self._left = int(np.prod(shape, dtype=np.int64))

    def write(self, array: npt.NDArray[Any]) -> None:
        data = np.ascontiguousarray(array, dtype=self._dtype)
        self._left -= data.size
        if self._left < 0:
            raise ValueError("more data than the file's shape holds")
        self._handle.write(data.tobytes())

    def __enter__(self) -> _NpyFile:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None and self._left:
                raise ValueError(f"{self._left} elements short of the file's shape")
        finally:
            self._handle.close()


def _publish(temporary: Path, target: Path) -> None:
    """Make the directory ``temporary`` the directory ``target``: its files on disk first,
    then renamed into place, so a reader sees the old index or the new one, never half."""
    for file in temporary.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    previous = target.with_name(f".{target.name}.{os.getpid()}.old")
    try:
        if target.exists():
            target.rename(previous)
        temporary.rename(target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)


def _check_shapes(tables: _Tables) -> None:
    n = len(tables.rows)
    expected = {
        "rows": (n, 4),
        "ids": (n,),
        "alive": (n,),
        "order": (len(tables.widths) * n,),
        "starts": (sum((1 << w) + 1 for w in tables.widths),),
    }
    for part, shape in expected.items():
        if tables.arrays[part].shape != shape:
            raise ValueError(f"PDQ index part {part} has shape {tables.arrays[part].shape}")
