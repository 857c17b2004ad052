"""The audit trail's tables: the events (in lanes), one chain-head row per lane, chain checks."""

from __future__ import annotations

from django.conf import settings
from django.db import models

STAFF_LANE = 0


class AuditEvent(models.Model):
    """Append-only, hash-chained record of a state change.

    The trail is a set of **lanes**, each its own chain: lane 0 holds staff and system events,
    lanes 1..``HASHSYNC_AUDIT_LANES`` the member clients' events (a client always appends to
    the same lane), so the fleet does not queue on one lock. ``lane_seq`` is gapless within a
    lane (assigned under the lane head's lock, in the change's transaction, so a rollback gives
    the number back) and a deleted event is detectable; ``seq`` orders the whole trail and comes
    from a database sequence, which may skip numbers (a rolled-back append). ``digest`` is the
    SHA-256 of the event's canonical form, in the format ``format`` names, including
    ``prev_digest`` (the digest of the lane's event before); see ``audit.chain``. The database
    refuses UPDATE and DELETE on this table (triggers in the migration).
    """

    seq = models.PositiveBigIntegerField(unique=True)
    lane = models.PositiveSmallIntegerField(default=STAFF_LANE)
    lane_seq = models.PositiveBigIntegerField()
    # The digest format the event was hashed with (audit.chain.FORMATS): old events keep theirs.
    format = models.PositiveSmallIntegerField(default=1)
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
            # The trail page filters by actor or action, newest first, a page at a time
            # (``audit.selectors.audit_trail`` with keyset paging on ``seq``): each filter
            # reads one index range backwards instead of walking the whole table.
            models.Index(fields=["actor", "seq"], name="audit_actor_seq_idx"),
            models.Index(fields=["action", "seq"], name="audit_action_seq_idx"),
        ]
        constraints = [
            # The lane's chain order; also the index ``audit.verify`` walks a lane by.
            models.UniqueConstraint(fields=["lane", "lane_seq"], name="audit_lane_seq_uniq"),
        ]

    def __str__(self) -> str:
        return f"Audit #{self.seq} {self.action} {self.object_type}:{self.object_id}"


class AuditChainHead(models.Model):
    """One row per lane: it serialises appends to that lane (locked FOR UPDATE) and remembers
    the lane's last ``lane_seq`` (``seq`` here) and digest, so truncation of its tail is
    detectable. Lane 0's row is the one the single chain had (pk 1)."""

    lane = models.PositiveSmallIntegerField(unique=True)
    seq = models.PositiveBigIntegerField(default=0)
    digest = models.CharField(max_length=64)

    class Meta:
        db_table = "hashlist_auditchainhead"

    def __str__(self) -> str:
        return f"Audit lane {self.lane} head #{self.seq}"


class ChainCheck(models.Model):
    """One run of ``audit.verify.verify_chain`` started from the auditors' page: who asked,
    when it started and finished, and what it found. Running while ``finished_at`` is null.
    Unlike audit events these rows change once (when the check finishes); starting one is
    itself on the trail (``audit.chain_check``)."""

    started_at = models.DateTimeField()
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The starter's username when it started, kept if the account is later removed.
    started_by_name = models.CharField(max_length=150)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True, blank=True)
    events_checked = models.PositiveBigIntegerField(default=0)
    head_seq = models.PositiveBigIntegerField(null=True, blank=True)
    first_bad_seq = models.PositiveBigIntegerField(null=True, blank=True)
    problem = models.TextField(blank=True, default="")
    findings = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            # The page's "latest checks" and the "is one running already?" guard.
            models.Index(fields=["-started_at"], name="audit_chaincheck_started_idx"),
        ]

    def __str__(self) -> str:
        return f"Chain check {self.pk} ({self.state})"

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def state(self) -> str:
        if self.finished_at is None:
            return "running"
        if self.ok:
            return "intact"
        return "broken" if self.first_bad_seq is not None else "failed"
