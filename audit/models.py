"""The audit trail's two tables: the events and the single chain-head row."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """Append-only, hash-chained record of a state change.

    ``seq`` is gapless (assigned under the chain-head lock, unlike an autoincrement id, which
    leaves gaps on rollback), so a deleted event is detectable. ``digest`` is the SHA-256 of the
    event's canonical form including ``prev_digest``; see ``audit.chain``. The database
    refuses UPDATE and DELETE on this table (triggers in the migration).
    """

    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150, blank=True, default="")
    actor_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    prev_digest = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, unique=True)

    class Meta:
        # The table (and its triggers) were created when the trail lived in ``hashlist``; the
        # name stays so existing databases and their chains carry over untouched.
        db_table = "hashlist_auditevent"
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["at"], name="audit_at_idx"),
        ]

    def __str__(self) -> str:
        return f"Audit #{self.seq} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """The single row that serialises appends to the audit chain (locked FOR UPDATE) and
    remembers the last sequence number and digest, so truncation of the tail is detectable."""

    seq = models.PositiveBigIntegerField(default=0)
    digest = models.CharField(max_length=64)

    class Meta:
        db_table = "hashlist_auditchainhead"

    def __str__(self) -> str:
        return f"Audit chain head #{self.seq}"
