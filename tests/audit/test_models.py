"""The audit event table is append-only in the database itself: UPDATE and DELETE are refused by
triggers, whatever code issues them. Runs on SQLite and PostgreSQL (a fresh test database gets
the triggers from the migrations)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.verify import verify_chain
from tests.audit.tampering import append_only_triggers_off

pytestmark = pytest.mark.django_db


def _orm_update(event: AuditEvent) -> None:
    AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")


def _orm_save(event: AuditEvent) -> None:
    event.reason = "rewritten"
    event.save()


def _orm_delete(event: AuditEvent) -> None:
    event.delete()


def _orm_bulk_delete(event: AuditEvent) -> None:
    AuditEvent.objects.all().delete()


def _raw_update(event: AuditEvent) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE hashlist_auditevent SET reason = %s WHERE seq = %s", ["rewritten", event.seq]
        )


def _raw_delete(event: AuditEvent) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM hashlist_auditevent WHERE seq = %s", [event.seq])


@pytest.mark.parametrize(
    ("change", "verb"),
    [
        (_orm_update, "UPDATE"),
        (_orm_save, "UPDATE"),
        (_orm_delete, "DELETE"),
        (_orm_bulk_delete, "DELETE"),
        (_raw_update, "UPDATE"),
        (_raw_delete, "DELETE"),
    ],
    ids=["orm-update", "orm-save", "orm-delete", "orm-bulk-delete", "raw-update", "raw-delete"],
)
def test_database_refuses_to_change_or_remove_an_audit_event(
    history, change: Callable[[AuditEvent], None], verb: str
):
    target = history[2]
    original_reason = target.reason
    # The savepoint keeps the test's transaction usable after the error on PostgreSQL.
    with pytest.raises(DatabaseError, match=rf"append-only: {verb} refused"), transaction.atomic():
        change(target)
    assert AuditEvent.objects.get(pk=target.pk).reason == original_reason
    assert AuditEvent.objects.count() == len(history)
    assert verify_chain().ok


def test_tamper_helper_restores_the_append_only_triggers(history):
    with append_only_triggers_off():
        AuditEvent.objects.filter(pk=history[0].pk).update(reason="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw_delete(history[1])
    assert AuditEvent.objects.filter(pk=history[1].pk).exists()
