"""The transparency log (docs/transparency.md): an append-only RFC 9162 Merkle tree whose
leaves are the signed manifests, its stored subtrees and its signed checkpoints.

Rows here are only ever inserted (``services.log_append``), under the ``LogState`` row lock, so
two workers can never give two leaves one index; the primary keys make it impossible anyway.
"""

from __future__ import annotations

from django.db import models


class LogState(models.Model):
    """The single row every append locks (SELECT … FOR UPDATE): the log's size."""

    size = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Log of {self.size} leaves"


class LogLeaf(models.Model):
    """One manifest in the log, with what its leaf bytes commit to (``leaf_bytes``)."""

    index = models.PositiveBigIntegerField(primary_key=True)
    feed_name = models.CharField(max_length=64)
    version = models.PositiveBigIntegerField()
    # Manifest.sha256 (the signed payload's digest): how a manifest finds its leaf.
    manifest_sha256 = models.CharField(max_length=64, unique=True)
    previous_sha256 = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [("view_log", "Can see the transparency log")]

    def __str__(self) -> str:
        return f"Leaf {self.index} ({self.feed_name}@{self.version})"


class LogNode(models.Model):
    """The hash of one complete subtree: ``key`` is ``level << 56 | position`` (``node_key``),
    so a proof's O(log n) nodes are read with one ``key IN (…)``; level 0 are the leaf hashes."""

    key = models.BigIntegerField(primary_key=True)
    hash = models.BinaryField(max_length=32)

    def __str__(self) -> str:
        return f"Node {self.key >> 56}/{self.key & ((1 << 56) - 1)}"


class Checkpoint(models.Model):
    """A signed checkpoint (C2SP signed note) of the log at ``size`` leaves."""

    size = models.PositiveBigIntegerField(unique=True)
    root_hash = models.BinaryField(max_length=32)
    note = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["size"]

    def __str__(self) -> str:
        return f"Checkpoint at {self.size}"


class Witness(models.Model):
    """A witness configured in HASHSYNC_TLOG_WITNESSES, with what the log knows of it: the size
    of the newest checkpoint it cosigned (what the next add-checkpoint names as ``old``)."""

    name = models.CharField(max_length=255, unique=True)
    url = models.CharField(max_length=2048)
    verifier_key = models.CharField(max_length=512)
    size = models.PositiveBigIntegerField(default=0)
    last_cosigned_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Witness {self.name}"


class Cosignature(models.Model):
    """A witness's cosignature/v1 line on one checkpoint, served with it."""

    checkpoint = models.ForeignKey(
        Checkpoint, on_delete=models.CASCADE, related_name="cosignatures"
    )
    witness = models.ForeignKey(Witness, on_delete=models.CASCADE, related_name="cosignatures")
    line = models.TextField()
    timestamp = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["checkpoint", "witness"], name="cosignature_once"),
        ]

    def __str__(self) -> str:
        return f"Cosignature of {self.witness_id} on {self.checkpoint_id}"
