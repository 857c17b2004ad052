"""The audit trail is append-only in the database itself: UPDATE and DELETE on audit rows are
refused by triggers, whatever code or person issues them. (TRUNCATE needs the table owner's
rights; in production the application's role should not own the table — see
docs/operations.md. The hash chain and the chain head catch whatever a privileged person does.)"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION hashlist_audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER hashlist_auditevent_append_only
    BEFORE UPDATE OR DELETE ON hashlist_auditevent
    FOR EACH ROW EXECUTE FUNCTION hashlist_audit_refuse_change();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS hashlist_auditevent_append_only ON hashlist_auditevent;
DROP FUNCTION IF EXISTS hashlist_audit_refuse_change();
"""
SQLITE_FORWARD = [
    "CREATE TRIGGER hashlist_auditevent_no_update BEFORE UPDATE ON hashlist_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE refused'); END;",
    "CREATE TRIGGER hashlist_auditevent_no_delete BEFORE DELETE ON hashlist_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE refused'); END;",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS hashlist_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS hashlist_auditevent_no_delete;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # params=None: the PL/pgSQL body contains RAISE's '%' placeholders, which must reach
        # the server as written instead of being taken for query parameters.
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"hashsync supports PostgreSQL and SQLite, not {vendor}")
    apps.get_model("hashlist", "AuditChainHead").objects.get_or_create(
        pk=1, defaults={"seq": 0, "digest": "0" * 64}
    )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    else:
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("hashlist", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
