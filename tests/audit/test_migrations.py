"""Moving the audit trail from ``hashlist`` to ``audit`` keeps existing databases and their chains
intact: a database at the migration state before the move, with events written the way the old
code wrote them, verifies after migrating forward, its triggers still refuse changes, and the
auditor role still reads the trail. Runs on SQLite and PostgreSQL.

Transactional, because SQLite cannot migrate inside the test's transaction. The events it
commits are removed at the end with the triggers off: SQLite's flush deletes row by row, which
the triggers refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.apps.registry import Apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.chain import GENESIS_DIGEST, event_digest
from audit.models import AuditEvent
from audit.services import audit_record
from audit.verify import verify_chain
from hashsync.roles import AUDITOR
from tests.audit.tampering import append_only_triggers_off

pytestmark = pytest.mark.django_db(transaction=True)

# Before the move: no audit app (so no hashlist 0003, audit 0002 or hashsync 0004 either).
BEFORE_THE_MOVE = [("audit", None)]


def migrate_to_the_newest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def record_the_old_way(apps: Apps, *, object_id: int, reason: str) -> Any:
    """What ``hashlist.audit.audit_record`` did, on that state's ``hashlist`` models."""
    head_model = apps.get_model("hashlist", "AuditChainHead")
    event_model = apps.get_model("hashlist", "AuditEvent")
    with transaction.atomic():
        head_model.objects.get_or_create(pk=1, defaults={"seq": 0, "digest": GENESIS_DIGEST})
        head = head_model.objects.select_for_update().get(pk=1)
        fields: dict[str, Any] = {
            "seq": head.seq + 1,
            "at": timezone.now(),
            "actor": "system",
            "actor_id": None,
            "action": "proposal.approve",
            "object_type": "proposal",
            "object_id": str(object_id),
            "before": {"status": "pending"},
            "after": {"status": "approved", "entry": object_id},
            "reason": reason,
            "request_id": "",
            "prev_digest": head.digest,
        }
        event = event_model.objects.create(digest=event_digest(**fields, format=1), **fields)
        head.seq, head.digest = event.seq, event.digest
        head.save(update_fields=["seq", "digest"])
    return event


# Indexes that audit migrations after the move add (0003: the trail page's filters); going back
# to before the move removes them too.
ADDED_AFTER_THE_MOVE = {"audit_actor_seq_idx", "audit_action_seq_idx", "audit_lane_seq_uniq"}
# Columns audit 0004 (lanes) adds, with their constraints (checks, the head's unique lane).
LANE_COLUMNS = {"lane", "lane_seq", "format"}


def before_later_indexes(constraints: dict[str, Any]) -> dict[str, Any]:
    return {
        table: {
            n: c
            for n, c in found.items()
            if n not in ADDED_AFTER_THE_MOVE and not set(c["columns"]) & LANE_COLUMNS
        }
        for table, found in constraints.items()
    }


def table_constraints() -> dict[str, Any]:
    """The audit tables' indexes and constraints, as the database reports them."""
    with connection.cursor() as cursor:
        return {
            table: connection.introspection.get_constraints(cursor, table)
            for table in ("hashlist_auditevent", "hashlist_auditchainhead")
        }


def test_a_chain_written_before_the_move_verifies_after_it_and_auditors_still_read_it(
    make_user: Callable[..., Any], api: Any
):
    # The auditor exists before the move, with the permission the old role table granted.
    auditor = make_user(AUDITOR)
    constraints = table_constraints()
    state = MigrationExecutor(connection).migrate(BEFORE_THE_MOVE)
    try:
        apps = state.apps
        assert not apps.is_installed("audit")
        assert table_constraints() == before_later_indexes(constraints)
        content_type = apps.get_model("contenttypes", "ContentType")
        assert content_type.objects.get(model="auditevent").app_label == "hashlist"
        group = apps.get_model("auth", "Group").objects.get(name=AUDITOR)
        assert group.permissions.filter(
            content_type__app_label="hashlist", codename="view_auditevent"
        ).exists()
        written = [
            record_the_old_way(apps, object_id=n, reason=f"synthetic {n}") for n in range(1, 6)
        ]
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            apps.get_model("hashlist", "AuditEvent").objects.update(reason="rewritten")

        migrate_to_the_newest()
        ContentType.objects.clear_cache()

        assert table_constraints() == constraints
        report = verify_chain()
        assert report.ok, report.problem
        assert report.events_checked == report.head_seq == written[-1].seq
        assert report.head_digest == written[-1].digest
        # The old events are lane 0's history, in the format they were hashed with.
        assert list(
            AuditEvent.objects.order_by("seq").values_list("seq", "lane", "lane_seq", "format")
        )[-len(written) :] == [(e.seq, 0, e.seq, 1) for e in written]
        # New events continue lane 0 from the old head, and the sequence after the old seq.
        with transaction.atomic():
            continued = audit_record(actor=None, action="test.after_lanes", object_type="test")
        assert (continued.lane, continued.lane_seq) == (0, written[-1].seq + 1)
        assert continued.seq > written[-1].seq and continued.prev_digest == written[-1].digest
        assert verify_chain().ok
        assert list(
            AuditEvent.objects.filter(action="proposal.approve")
            .order_by("seq")
            .values_list("digest", flat=True)
        )[-len(written) :] == [e.digest for e in written]
        assert not ContentType.objects.filter(app_label="hashlist", model="auditevent").exists()
        assert get_user_model().objects.get(pk=auditor.pk).has_perm("audit.view_auditevent")
        listing = api(auditor).get("/api/v1/audit/events/", {"action": "proposal.approve"})
        assert listing.status_code == 200
        assert [e["digest"] for e in listing.json()["results"]] == [e.digest for e in written]
        assert [(e["lane"], e["lane_seq"]) for e in listing.json()["results"]] == [
            (0, e.seq) for e in written
        ]
        assert api(auditor).get("/api/v1/audit/verify/").json()["ok"] is True
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(seq=written[0].seq).update(reason="rewritten")
    finally:
        migrate_to_the_newest()
        ContentType.objects.clear_cache()
        with append_only_triggers_off():
            AuditEvent.objects.all().delete()
