"""The column encodings of a block: LEB128 key-prefix deltas, the sort check, grading palettes.

Vectorised with numpy: the per-record work of a million-record snapshot stays out of Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hashsync_client.format.constants import ESCAPE, PALETTE_MAX
from hashsync_client.format.records import BundleFormatError

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def _varint_encode(values: I64) -> bytes:
    """Unsigned LEB128 of each value (all 0..2**32-1), concatenated; vectorised."""
    v = values.astype(np.uint64)
    sizes = np.ones(len(v), dtype=np.int64)
    for k in range(1, 5):
        sizes += v >= np.uint64(1 << (7 * k))
    starts = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    for k in range(5):
        has = sizes > k
        byte = ((v[has] >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        byte[sizes[has] > k + 1] |= 0x80
        out[starts[has] + k] = byte
    return out.tobytes()


def _varint_decode(data: bytes, count: int) -> U64:
    """Exactly ``count`` canonical LEB128 values below 2**32 filling ``data``; vectorised."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw < 0x80)
    if len(ends) != count or (count and ends[-1] != len(raw) - 1):
        raise BundleFormatError(
            f"key prefix column holds {len(ends)} complete varints, expected {count}"
        )
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    starts = np.empty(count, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    sizes = ends - starts + 1
    if sizes.max() > 5:
        raise BundleFormatError("key prefix varint longer than 5 bytes")
    # Canonical: no redundant trailing zero group (0x80 0x00), and at most 32 bits.
    if np.any((sizes > 1) & (raw[ends] == 0)):
        raise BundleFormatError("key prefix varint is not in its shortest form")
    if np.any((sizes == 5) & (raw[ends] > 0x0F)):
        raise BundleFormatError("key prefix delta does not fit in 32 bits")
    position = np.arange(len(raw), dtype=np.int64) - np.repeat(starts, sizes)
    groups = (raw & 0x7F).astype(np.uint64) << (position * 7).astype(np.uint64)
    return np.add.reduceat(groups, starts).astype(np.uint64)


def _first_unsorted(deltas: I64, tails: U8) -> int:
    """Index (>= 1) of the first row not strictly greater than the row before it, or -1.

    ``deltas`` are the differences of consecutive key prefixes; rows whose prefixes are equal
    are compared on their remaining bytes.
    """
    bad = np.flatnonzero(deltas[1:] < 0) + 1
    ties = np.flatnonzero(deltas[1:] == 0) + 1
    if len(ties):
        before, after = tails[ties - 1], tails[ties]
        differs = before != after
        first = differs.argmax(axis=1)
        rows = np.arange(len(ties))
        greater = differs.any(axis=1) & (after[rows, first] > before[rows, first])
        bad = np.concatenate([bad, ties[~greater]])
    return int(bad.min()) if len(bad) else -1


def _palette(gradings: I64) -> tuple[I64, U8, I64]:
    """(palette, index column, escaped codes) for one block's grading codes.

    The palette lists the block's distinct codes by descending frequency, ties by ascending
    code, at most 255 of them; records whose code is not in it get index 255 and their code
    is stored in the escape column, in record order.
    """
    codes, inverse, counts = np.unique(gradings, return_inverse=True, return_counts=True)
    order = np.lexsort((codes, -counts))
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes))
    record_rank = rank[inverse.ravel()]
    escaped = record_rank >= PALETTE_MAX
    index = np.where(escaped, ESCAPE, record_rank).astype(np.uint8)
    return codes[order[:PALETTE_MAX]].astype(np.int64), index, gradings[escaped]


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "little")
