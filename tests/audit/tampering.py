"""Tampering with the audit trail the way someone with the table owner's rights could: switch the
append-only triggers off, change or remove rows, forge events. Shared by the verifier's, the
command's and the API's tests; works on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.utils import timezone

from audit.chain import event_digest
from audit.models import AuditEvent

# The SQL the migration uses to create the SQLite triggers, so the tamper helper restores
# exactly what production has.
MIGRATION = importlib.import_module("hashlist.migrations.0002_audit_append_only")


@contextmanager
def append_only_triggers_off() -> Iterator[None]:
    """Let the block UPDATE/DELETE audit rows, as a person with the table owner's rights
    could; restore the triggers afterwards (the test transaction's rollback would too)."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(
                "ALTER TABLE hashlist_auditevent DISABLE TRIGGER hashlist_auditevent_append_only"
            )
        else:
            for statement in MIGRATION.SQLITE_BACKWARD:
                cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if postgres:
                cursor.execute(
                    "ALTER TABLE hashlist_auditevent ENABLE TRIGGER hashlist_auditevent_append_only"
                )
            else:
                for statement in MIGRATION.SQLITE_FORWARD:
                    cursor.execute(statement)


def forged_event(
    *,
    seq: int,
    prev_digest: str,
    reason: str = "forged",
    lane: int = 0,
    lane_seq: int | None = None,
) -> AuditEvent:
    """An event with a correct digest over its own fields, linked to ``prev_digest`` — what a
    forger who knows the format would insert (at ``lane_seq`` of ``lane``; default: the
    position after the lane's last event)."""
    if lane_seq is None:
        last = AuditEvent.objects.filter(lane=lane).order_by("-lane_seq").first()
        lane_seq = last.lane_seq + 1 if last else 1
    fields: dict[str, Any] = {
        "seq": seq,
        "lane": lane,
        "lane_seq": lane_seq,
        "format": 2,
        "at": timezone.now().astimezone(dt.UTC),
        "actor": "reviewer",
        "actor_id": None,
        "action": "proposal.approve",
        "object_type": "proposal",
        "object_id": "999999",
        "before": {"status": "pending"},
        "after": {"status": "approved"},
        "reason": reason,
        "request_id": "",
        "prev_digest": prev_digest,
    }
    return AuditEvent.objects.create(digest=event_digest(**fields), **fields)


def change_reason(history: list[AuditEvent]) -> int:
    target = history[2]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE hashlist_auditevent SET reason = %s WHERE seq = %s",
            ["approved after a second look", target.seq],
        )
    return target.seq


def delete_middle(history: list[AuditEvent]) -> int:
    target = history[2]
    AuditEvent.objects.filter(pk=target.pk).delete()
    return target.seq
