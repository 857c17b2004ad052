"""Exact Hamming-distance search over 256-bit PDQ values: multi-index hashing over numpy.

A PDQ value is cut into 16 blocks of 16 bits. If two values differ in at most 31 bits, then by
the pigeonhole principle at least one of the 16 blocks differs in at most one bit (16 blocks
of 2 or more differing bits would make 32). So every value within distance 31 of a query is
in one of the 16 x 17 buckets "block b equals the query's block b, or that block with one bit
flipped", and checking each candidate's full distance gives the exact answer — not an
approximation. Thresholds above 31 fall back to a full scan, which is exact too.

Layout (``docs/matching.md`` says why numpy rather than faiss, with the measurements):

- ``_cols``: the values as four uint64 columns, a (4, N) matrix (32 bytes an entry; a
  candidate is first checked on two columns, which rules out nearly every non-match);
- ``_order[b]``: the row numbers sorted by block ``b`` (uint32), and ``_starts[b]`` the
  bucket boundaries (a counting sort: bucket ``k`` of block ``b`` is
  ``_order[b, _starts[b, k]:_starts[b, k + 1]]``), 64 bytes an entry for the 16 blocks;
- a tombstone mask over those rows, and an *overlay* of rows added since the tables were
  built, searched by a full scan of the overlay alone. ``add`` and ``remove`` are therefore
  O(1) plus one bucket probe; once the overlay outgrows a quarter of the tables (and at
  least 65,536 rows), ``add`` folds it in — amortised O(1) per change.

Rows are numbered in the order values arrive (the constructor's rows first, then each
``add``), and a number is never reused, so callers keep per-row data (feed, grading) in arrays
or dicts indexed by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

VALUE_BYTES: Final = 32
BLOCKS: Final = 16
# Exact with one flipped bit per block: 16 blocks x 2 bits = 32 > 31 (see the module's doc).
MIH_MAX_DISTANCE: Final = 31
_BUCKETS: Final = 1 << 16
# Probes per block: the block itself and its 16 one-bit neighbours.
_FLIPS: Final = np.array([0] + [1 << bit for bit in range(16)], dtype=np.uint16)
# Candidates checked at once in a batch (bounds the temporary (candidates, 4) matrix).
_CANDIDATES_PER_STEP: Final = 1 << 20
_SCAN_ROWS: Final = 1 << 18
_MIN_MERGE: Final = 1 << 16

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def popcount(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Set bits of each uint64 (numpy >= 2 has an instruction for it; 1.26 a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)  # pragma: no cover
    return (
        table[words.view(np.uint8)].reshape(*words.shape, 8).sum(axis=-1, dtype=np.uint8)
    )  # pragma: no cover


def as_words(values: npt.NDArray[np.uint8] | bytes | Sequence[bytes]) -> U64:
    """32-byte values as an (N, 4) uint64 matrix (a copy only when the input needs one)."""
    if isinstance(values, bytes):
        values = np.frombuffer(values, dtype=np.uint8)
    elif not isinstance(values, np.ndarray):
        values = np.frombuffer(b"".join(values), dtype=np.uint8)
    flat = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, VALUE_BYTES)
    return flat.view(np.uint64)


def _distances(rows: U64, queries: U64) -> npt.NDArray[np.uint16]:
    """Hamming distance of each row to the query on the same line (both (T, 4))."""
    total = popcount(rows[:, 0] ^ queries[:, 0]).astype(np.uint16)
    for word in range(1, 4):
        total += popcount(rows[:, word] ^ queries[:, word])
    return total


class PdqIndex:
    """An exact PDQ index (see the module's doc). ``PdqIndex(values)`` takes an (N, 32) uint8
    matrix (or a list of 32-byte values)."""

    def __init__(self, values: npt.NDArray[np.uint8] | Sequence[bytes] = ()) -> None:
        words = as_words(values) if len(values) else np.zeros((0, 4), dtype=np.uint64)
        self._build(np.ascontiguousarray(words), np.arange(len(words), dtype=np.int64))
        self._clear_overlay()
        self._next_id = len(words)
        self._live = len(words)

    def _clear_overlay(self) -> None:
        self._overlay = np.zeros((16, 4), dtype=np.uint64)
        self._overlay_ids = np.zeros(16, dtype=np.int64)
        self._overlay_alive = np.zeros(16, dtype=bool)
        self._overlay_size = 0
        self._overlay_rows: dict[bytes, list[int]] = {}  # value → overlay positions

    def _build(self, words: U64, ids: I64) -> None:
        """The 16 block tables over ``words``, whose row numbers are ``ids`` (ascending)."""
        n = len(words)
        if n >= 1 << 32:
            raise ValueError("a PDQ index holds fewer than 2**32 values")
        self._cols = np.ascontiguousarray(words.T)
        self._ids = ids
        self._alive = np.ones(n, dtype=bool)
        self._order = np.empty((BLOCKS, n), dtype=np.uint32)
        self._starts = np.empty((BLOCKS, _BUCKETS + 1), dtype=np.int64)
        blocks = words.view(np.uint16)
        for block in range(BLOCKS):
            column = np.ascontiguousarray(blocks[:, block])
            self._order[block] = np.argsort(column, kind="stable")  # a radix sort for uint16
            self._starts[block, 0] = 0
            np.cumsum(np.bincount(column, minlength=_BUCKETS), out=self._starts[block, 1:])
            # Offsets into the flattened tables, so one gather serves every block.
            self._starts[block] += block * n

    # --- changes ------------------------------------------------------------------------

    def __len__(self) -> int:
        """Values held (removed ones not counted)."""
        return self._live

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays."""
        arrays = (
            self._cols,
            self._ids,
            self._alive,
            self._order,
            self._starts,
            self._overlay,
            self._overlay_ids,
            self._overlay_alive,
        )
        return sum(a.nbytes for a in arrays)

    def add(self, value: bytes) -> int:
        """Hold one more value; returns its row number."""
        if len(value) != VALUE_BYTES:
            raise ValueError("a PDQ value is 32 bytes")
        if self._overlay_size == len(self._overlay):
            grown = np.zeros((2 * len(self._overlay), 4), dtype=np.uint64)
            grown[: self._overlay_size] = self._overlay[: self._overlay_size]
            self._overlay = grown
            self._overlay_ids = np.resize(self._overlay_ids, len(grown))
            self._overlay_alive = np.resize(self._overlay_alive, len(grown))
        row = self._next_id
        self._next_id += 1
        position = self._overlay_size
        self._overlay[position] = np.frombuffer(value, dtype=np.uint64)
        self._overlay_ids[position] = row
        self._overlay_alive[position] = True
        self._overlay_size += 1
        self._overlay_rows.setdefault(value, []).append(position)
        self._live += 1
        if self._overlay_size > max(_MIN_MERGE, len(self._ids) // 4):
            self._merge()
        return row

    def remove(self, value: bytes) -> list[int]:
        """Stop holding every copy of ``value``; returns the row numbers removed."""
        if len(value) != VALUE_BYTES:
            raise ValueError("a PDQ value is 32 bytes")
        removed: list[int] = []
        for position in self._overlay_rows.pop(value, []):
            removed.append(int(self._overlay_ids[position]))
            self._overlay_alive[position] = False
        base = self._base_rows_equal(value)
        self._alive[base] = False
        removed.extend(int(r) for r in self._ids[base])
        self._live -= len(removed)
        return removed

    def _base_rows_equal(self, value: bytes) -> I64:
        """Live table rows holding exactly ``value``: one bucket of block 0."""
        query = np.frombuffer(value, dtype=np.uint64)
        key = int(np.frombuffer(value[:2], dtype=np.uint16)[0])
        rows = self._order[0, self._starts[0, key] : self._starts[0, key + 1]].astype(np.int64)
        same = np.all(query == self._cols[:, rows].T, axis=1) & self._alive[rows]
        return rows[same]

    def _merge(self) -> None:
        """Fold the overlay into the tables and drop removed rows (row numbers are kept)."""
        size = self._overlay_size
        live = self._overlay_alive[:size]
        words = np.concatenate([self._cols[:, self._alive].T, self._overlay[:size][live]])
        ids = np.concatenate([self._ids[self._alive], self._overlay_ids[:size][live]])
        self._build(words, ids)
        self._clear_overlay()

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
        if max_distance <= MIH_MAX_DISTANCE:
            found = self._probe(queries, max_distance)
        else:
            found = self._scan(queries, self._cols.T, self._ids, self._alive, max_distance)
        size = self._overlay_size
        if size:
            overlay = (self._overlay[:size], self._overlay_ids[:size], self._overlay_alive[:size])
            found += self._scan(queries, *overlay, max_distance)
        if not found:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        q, rows, dist = (np.concatenate(parts) for parts in zip(*found, strict=True))
        order = np.lexsort((rows, dist, q))
        return q[order], rows[order], dist[order]

    def _probe(self, queries: U64, max_distance: int) -> list[tuple[I64, I64, I64]]:
        """Multi-index hashing: the candidates of the 16 x 17 buckets, each checked in full."""
        if not len(self._ids) or not len(queries):
            return []
        blocks = queries.view(np.uint16)  # (Q, 16)
        keys = blocks[:, :, None] ^ _FLIPS[None, None, :]  # (Q, 16, 17)
        block_of = np.arange(BLOCKS)[None, :, None]
        low = self._starts[block_of, keys.astype(np.int64)].reshape(len(queries), -1)
        high = self._starts[block_of, keys.astype(np.int64) + 1].reshape(len(queries), -1)
        sizes = (high - low).sum(axis=1)
        flat_order = self._order.reshape(-1)
        found: list[tuple[I64, I64, I64]] = []
        start = 0
        while start < len(queries):
            # As many queries as keep the candidates of one step bounded (at least one).
            cumulative = np.cumsum(sizes[start:])
            end = start + max(1, int(np.searchsorted(cumulative, _CANDIDATES_PER_STEP)))
            lo, hi = low[start:end].reshape(-1), high[start:end].reshape(-1)
            lengths = hi - lo
            total = int(lengths.sum())
            if total:
                # Positions lo..hi-1 of every bucket, concatenated, without a Python loop.
                offsets = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
                offsets += np.arange(total)
                candidates = np.take(flat_order, offsets)
                found.extend(
                    self._check(queries, start, sizes[start:end], candidates, max_distance)
                )
            start = end
        return found

    def _check(
        self,
        queries: U64,
        first: int,
        sizes: I64,
        candidates: npt.NDArray[np.uint32],
        max_distance: int,
    ) -> list[tuple[I64, I64, I64]]:
        """The candidates within ``max_distance`` of their query (queries ``first``.. own
        ``sizes`` candidates each, in order). Two of the four words first: a value more than
        ``max_distance`` bits away on 128 bits is out, which is nearly every random one."""
        owners = np.arange(first, first + len(sizes))
        partial = np.zeros(len(candidates), dtype=np.uint16)
        for word in (0, 1):
            query_words = np.repeat(queries[first : first + len(sizes), word], sizes)
            partial += popcount(np.take(self._cols[word], candidates) ^ query_words)
        near = np.flatnonzero(partial <= max_distance)
        if not len(near):
            return []
        owner = np.repeat(owners, sizes)[near]
        rows = candidates[near].astype(np.int64)
        keep = self._alive[rows]
        # A value can sit in several of a query's buckets: count each (query, row) once.
        pairs = np.unique(np.stack([owner[keep], rows[keep]]), axis=1)
        q, rows = pairs[0], pairs[1]
        distance = _distances(self._cols[:, rows].T, queries[q]).astype(np.int64)
        within = distance <= max_distance
        return [(q[within], self._ids[rows[within]], distance[within])]

    @staticmethod
    def _scan(
        queries: U64, words: U64, ids: I64, alive: npt.NDArray[np.bool_], max_distance: int
    ) -> list[tuple[I64, I64, I64]]:
        """Every row compared with every query: the exact answer at any threshold."""
        found: list[tuple[I64, I64, I64]] = []
        columns = [np.ascontiguousarray(words[:, w]) for w in range(4)]
        for number, query in enumerate(queries):
            for begin in range(0, len(words), _SCAN_ROWS):
                end = begin + _SCAN_ROWS
                total = popcount(columns[0][begin:end] ^ query[0]).astype(np.uint16)
                for w in range(1, 4):
                    total += popcount(columns[w][begin:end] ^ query[w])
                hits = np.flatnonzero((total <= max_distance) & alive[begin:end])
                if len(hits):
                    found.append(
                        (
                            np.full(len(hits), number, dtype=np.int64),
                            ids[hits + begin],
                            total[hits].astype(np.int64),
                        )
                    )
        return found

    def value(self, row: int) -> bytes:
        """The value of a row number (held, or removed since the tables were last built)."""
        at = np.searchsorted(self._ids, row)
        if at < len(self._ids) and self._ids[at] == row:
            return self._cols[:, at].tobytes()
        positions = np.flatnonzero(self._overlay_ids[: self._overlay_size] == row)
        if len(positions):
            return self._overlay[positions[0]].tobytes()
        raise KeyError(row)
