"""LtHash16, the state digest of a feed (``docs/bundle-format.md``, "State digest").

A homomorphic multiset hash (Lewi et al., "Securing update propagation with homomorphic
hashing", 2019): the state is 1024 unsigned 16-bit lanes; each element is expanded by
SHAKE128 to 1024 lanes, and adding or removing the element adds or subtracts them lane-wise
modulo 2**16. The state of a set is therefore independent of order and updatable in
O(changes), on the server when a release is cut and on the client when it applies a delta.
Members compare ``hexdigest()``, the SHA-256 of the state, with the signed manifest.

Shared with the member client: standard library and numpy only, no Django.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from typing import Final

import numpy as np
import numpy.typing as npt

from hashsync_client.format import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    ALGORITHM_NAMES,
    GRADING_COUNT,
    MAX_FRAMEWORK_CLASSES,
)

# A record's code: a grading code (format 1), or a class index and grading code (format 2).
_CODE_COUNT = GRADING_COUNT * MAX_FRAMEWORK_CLASSES

LTHASH_BYTES: Final = 2048
LANES: Final = LTHASH_BYTES // 2
DOMAIN: Final = b"hashsync-lthash-v1"
# Elements expanded per numpy sum: 4096 * 2 KiB = 8 MiB of expansions held at once.
BATCH: Final = 4096

_LITTLE_U16: Final = np.dtype("<u2")


def element(algorithm: str, value: bytes, grading: int) -> bytes:
    """The canonical element of one feed record: algorithm id, key bytes, grading (u16 BE).

    ``ValueError`` for an unknown algorithm, a value of the wrong length or a grading code
    outside 0..629 (the message never contains the value).
    """
    number = ALGORITHM_IDS.get(algorithm)
    if number is None:
        raise ValueError(f"unknown algorithm; expected one of {', '.join(ALGORITHM_IDS)}")
    if len(value) != ALGORITHM_LENGTHS[algorithm]:
        raise ValueError(
            f"{algorithm} value must be {ALGORITHM_LENGTHS[algorithm]} bytes, got {len(value)}"
        )
    if type(grading) is not int or not 0 <= grading < _CODE_COUNT:
        raise ValueError(f"grading must be an integer 0..{_CODE_COUNT - 1}")
    return bytes((number,)) + bytes(value) + grading.to_bytes(2, "big")


def row_elements(rows: Iterable[tuple[int, bytes, int]]) -> Iterator[bytes]:
    """The elements of (algorithm id, value, grading) rows, as a store keeps them, checked
    like ``element`` (``ValueError``, ``KeyError`` for an unknown id)."""
    for algorithm, value, grading in rows:
        yield element(ALGORITHM_NAMES[algorithm], bytes(value), grading)


def _expanded_sum(batch: list[bytes]) -> npt.NDArray[np.uint16]:
    """Lane-wise sum (mod 2**16) of the SHAKE128 expansions of ``batch``."""
    shake = hashlib.shake_128
    # DOMAIN + item: one allocation per element is cheaper than copying a primed hasher.
    expansions = b"".join([shake(DOMAIN + item).digest(LTHASH_BYTES) for item in batch])
    lanes = np.frombuffer(expansions, dtype=_LITTLE_U16).reshape(len(batch), LANES)
    # Integer arithmetic in uint16 wraps around: exactly the mod 2**16 the scheme needs.
    return np.add.reduce(lanes, axis=0, dtype=np.uint16)


class LtHash16:
    """A multiset of byte strings, as 1024 lanes of 16 bits (empty set: all zeros)."""

    __slots__ = ("_lanes",)

    def __init__(self, state: bytes | None = None) -> None:
        if state is None:
            self._lanes = np.zeros(LANES, dtype=np.uint16)
            return
        raw = bytes(state)
        if len(raw) != LTHASH_BYTES:
            raise ValueError(f"an LtHash16 state is {LTHASH_BYTES} bytes, got {len(raw)}")
        self._lanes = np.frombuffer(raw, dtype=_LITTLE_U16).astype(np.uint16)

    def _combine(self, elements: Iterable[bytes], sign: int) -> None:
        items = iter(elements)
        while batch := list(itertools.islice(items, BATCH)):
            if not all(type(item) is bytes for item in batch):
                raise TypeError("LtHash16 elements must be bytes")
            if sign > 0:
                self._lanes += _expanded_sum(batch)
            else:
                self._lanes -= _expanded_sum(batch)

    def add(self, elements: Iterable[bytes]) -> None:
        """Add each element (a multiset: adding one twice counts it twice)."""
        self._combine(elements, 1)

    def remove(self, elements: Iterable[bytes]) -> None:
        """Remove each element; removing what was never added is not detected."""
        self._combine(elements, -1)

    def state(self) -> bytes:
        """The 2048-byte state: lane ``i`` as little-endian u16 at offset ``2 * i``."""
        return self._lanes.astype(_LITTLE_U16).tobytes()

    def hexdigest(self) -> str:
        """SHA-256 of ``state()`` in hex: the "state digest" that manifests publish."""
        return hashlib.sha256(self.state()).hexdigest()

    def copy(self) -> LtHash16:
        twin = LtHash16.__new__(LtHash16)
        twin._lanes = self._lanes.copy()
        return twin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LtHash16):
            return NotImplemented
        return bool(np.array_equal(self._lanes, other._lanes))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"LtHash16({self.hexdigest()[:16]}…)"
