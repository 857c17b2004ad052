"""RFC 9162 §2.1 Merkle tree maths: hashes, proofs from stored subtrees, proof verification.

The tree is never held whole. Whoever keeps it (the server's database, a test's dictionary)
stores the hash of every *complete* subtree, keyed by ``(level, position)``: the node at level
``l`` and position ``p`` covers leaves ``[p·2^l, (p+1)·2^l)``, level 0 being the leaf hashes.
A proof element is the hash of a range of leaves ``MTH(D[a:b])``; every range the RFC's
recursions name is aligned, so it is a run of at most log2(n) complete subtrees, folded right to
left. Generating a proof is therefore: list the ranges (pure arithmetic), list their subtrees,
read them all at once from a ``NodeReader``, fold. That is O(log n) stored nodes per proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

Node = tuple[int, int]  # (level, position)


class ProofError(ValueError):
    """A proof does not verify, or its inputs are out of range. ``code`` is stable."""

    def __init__(self, message: str, *, code: str = "proof_invalid") -> None:
        super().__init__(message)
        self.code = code


class NodeReader(Protocol):
    def read_nodes(self, nodes: Sequence[Node], /) -> Mapping[Node, bytes]:
        """The stored hash of each complete subtree asked for (all of them must exist)."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """MTH({}) = SHA-256 of the empty string."""
    return hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees, left to right, that make up the aligned range [start, end)."""
    nodes: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start % (1 << level):
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of an aligned range from its complete subtrees (left-heavy, so fold from the right)."""
    acc = hashes[-1]
    for value in reversed(hashes[:-1]):
        acc = node_hash(value, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PATH(index, D[0:size]), leaf end first (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}", code="log_index_invalid")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1); empty when
    ``old == new``."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from {old} to {new}", code="log_size_invalid")
    if old == new:
        return []
    ranges: list[tuple[int, int]] = []
    start, end, complete = 0, new, True  # SUBPROOF(m, D[start:end], complete)
    m = old
    while True:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    ranges.reverse()
    return ranges


def _resolve(ranges: Sequence[tuple[int, int]], reader: NodeReader) -> list[bytes]:
    per_range = [range_nodes(a, b) for a, b in ranges]
    wanted = sorted({node for nodes in per_range for node in nodes})
    found = reader.read_nodes(wanted) if wanted else {}
    return [fold([found[node] for node in nodes]) for nodes in per_range]


def root_hash(size: int, reader: NodeReader) -> bytes:
    return _resolve([(0, size)], reader)[0] if size else empty_root()


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    return _resolve(inclusion_ranges(index, size), reader)


def consistency_proof(old: int, new: int, reader: NodeReader) -> list[bytes]:
    return _resolve(consistency_ranges(old, new), reader)


def proof_nodes(ranges: Iterable[tuple[int, int]]) -> set[Node]:
    """Every stored subtree some ranges need: to read several proofs with one query."""
    return {node for a, b in ranges for node in range_nodes(a, b)}


def append_nodes(index: int, leaf: bytes, reader: NodeReader) -> list[tuple[Node, bytes]]:
    """The subtrees completed by appending leaf hash ``leaf`` at ``index``: the leaf itself and
    one parent per trailing 1-bit of ``index`` (each reads its stored left sibling)."""
    siblings: list[Node] = []
    position, level = index, 0
    while position & 1:
        siblings.append((level, position - 1))
        position >>= 1
        level += 1
    found = reader.read_nodes(siblings) if siblings else {}
    created = [((0, index), leaf)]
    acc, position = leaf, index
    for level, sibling in enumerate(siblings):
        acc = node_hash(found[sibling], acc)
        position >>= 1
        created.append(((level + 1, position), acc))
    return created


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2; ``leaf`` is the leaf *hash*. Raises ``ProofError``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}", code="log_index_invalid")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is too long", code="inclusion_invalid")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise ProofError("the inclusion proof does not lead to the root", code="inclusion_invalid")


def verify_consistency(
    old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2. Raises ``ProofError`` (code ``consistency_invalid``) unless the tree
    of ``new`` leaves with root ``new_root`` extends the one of ``old`` leaves, ``old_root``."""
    bad = ProofError(
        f"the log of {new} leaves does not extend the one of {old}", code="consistency_invalid"
    )
    if old > new or old < 0:
        raise ProofError(f"no consistency from {old} to {new}", code="log_size_invalid")
    if old == new:
        if proof or old_root != new_root:
            raise bad
        return
    if old == 0:
        if proof:
            raise bad
        return
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        raise bad
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise bad
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise bad


class MemoryTree:
    """A whole tree in a dictionary: for the witness's tests, vectors and benchmarks."""

    def __init__(self) -> None:
        self.nodes: dict[Node, bytes] = {}
        self.size = 0

    def read_nodes(self, nodes: Sequence[Node], /) -> Mapping[Node, bytes]:
        return {node: self.nodes[node] for node in nodes}

    def append(self, leaf: bytes) -> int:
        """Append the leaf (its bytes, not its hash); returns its index."""
        index = self.size
        self.nodes.update(append_nodes(index, leaf_hash(leaf), self))
        self.size += 1
        return index

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self.size if size is None else size, self)
