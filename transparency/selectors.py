"""Reads of the transparency log: checkpoints, leaves and proofs (O(log n) stored nodes each)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hashsync_client.tlog import (
    Node,
    consistency_ranges,
    inclusion_ranges,
    proof_nodes,
    range_nodes,
)
from hashsync_client.tlog.tree import fold
from transparency.models import Checkpoint, Cosignature, LogLeaf, LogNode, Witness

LEVEL_SHIFT = 56


def node_key(node: Node) -> int:
    level, position = node
    return (level << LEVEL_SHIFT) | position


class DatabaseNodes:
    """A ``NodeReader`` over ``LogNode``; with ``preload`` the nodes of several proofs are read
    with one query."""

    def __init__(self) -> None:
        self.cache: dict[Node, bytes] = {}

    def preload(self, nodes: set[Node]) -> None:
        self.read_nodes(sorted(nodes))

    def read_nodes(self, nodes: Sequence[Node], /) -> Mapping[Node, bytes]:
        missing = {node_key(n): n for n in nodes if n not in self.cache}
        if missing:
            for key, value in LogNode.objects.filter(key__in=list(missing)).values_list(
                "key", "hash"
            ):
                self.cache[missing[key]] = bytes(value)
        return {n: self.cache[n] for n in nodes}


def checkpoint_latest() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-size").first()


def checkpoint_served(checkpoint: Checkpoint) -> str:
    """The checkpoint's note with every witness cosignature collected for it appended."""
    lines = (
        Cosignature.objects.filter(checkpoint=checkpoint)
        .order_by("id")
        .values_list("line", flat=True)
    )
    return checkpoint.note + "".join(lines)


def witnesses_list() -> list[Witness]:
    return list(Witness.objects.order_by("name"))


def leaves_by_manifest(sha256s: set[str]) -> dict[str, int]:
    """The leaf index of each manifest (by its sha256) that is in the log."""
    rows = LogLeaf.objects.filter(manifest_sha256__in=sha256s).values_list(
        "manifest_sha256", "index"
    )
    return dict(rows)


def leaf_get(index: int) -> LogLeaf | None:
    return LogLeaf.objects.filter(index=index).first()


def leaf_of_manifest(sha256: str) -> LogLeaf | None:
    return LogLeaf.objects.filter(manifest_sha256=sha256).first()


def proofs(
    *, inclusions: Sequence[int], size: int, consistency_from: int | None = None
) -> tuple[dict[int, list[bytes]], list[bytes] | None]:
    """Inclusion proofs of ``inclusions`` (leaf indexes) in the tree of ``size`` leaves, and the
    consistency proof from ``consistency_from`` to ``size``: one query for all their nodes.
    Raises ``ProofError`` (stable codes) for indexes or sizes out of range."""
    per_leaf = {index: inclusion_ranges(index, size) for index in inclusions}
    consistency = (
        consistency_ranges(consistency_from, size) if consistency_from is not None else None
    )
    reader = DatabaseNodes()
    ranges = [r for rs in per_leaf.values() for r in rs] + (consistency or [])
    reader.preload(proof_nodes(ranges))

    def resolve(rs: list[tuple[int, int]]) -> list[bytes]:
        out = []
        for a, b in rs:
            nodes = range_nodes(a, b)
            out.append(fold(list(reader.read_nodes(nodes).values())))
        return out

    inclusion = {index: resolve(rs) for index, rs in per_leaf.items()}
    return inclusion, (resolve(consistency) if consistency is not None else None)
