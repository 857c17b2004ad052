"""The database refuses a change-log row whose proposal is not approved by a person other than
its author (``hashlist.models.approved_by_another``), on INSERT and on UPDATE, whoever writes it
— the services, raw SQL, ``psql`` with the application's credentials. Publication reads only the
change log, so this keeps an unapproved change out of every release at the source.

SQLite: Django rebuilds a table to alter it (create, copy, drop, rename), and SQLite then refuses
any trigger that names the dropped table. A later migration that alters ``hashlist_proposal``
or ``hashlist_change`` on SQLite must drop these triggers first and create them again after
(``backward``/``forward`` here), or the migration fails with "error in trigger".

Consequence for writers: mark the proposal approved (status, reviewer) *before* writing its
changes, in the same transaction (``services.proposal_approve``) or an earlier one.

Existing rows are not re-checked (every change written through the services satisfies the rule;
anything else is withheld by the release cutter and reported by ``audit_verify``).
PostgreSQL checks a whole statement at once (a statement trigger over the transition table),
so a bulk import's multi-row INSERT and the cutter's UPDATE cost one join, not one query per row.
The table owner can still drop the triggers: see docs/audit.md for what catches that.
"""

from django.db import migrations

REFUSED = "is not approved by a person other than its author"

# The function's search path is fixed to the schema it was created in, with pg_temp last: a
# session could otherwise shadow hashlist_proposal with a temporary table of its own.
PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION hashlist_change_require_approval() RETURNS trigger
LANGUAGE plpgsql SET search_path = {{schema}}, pg_catalog, pg_temp AS $$
DECLARE
    bad_change bigint;
    bad_proposal bigint;
BEGIN
    SELECT c.id, c.proposal_id INTO bad_change, bad_proposal
    FROM written_changes c
    LEFT JOIN hashlist_proposal p ON p.id = c.proposal_id
    WHERE p.id IS NULL
       OR p.status <> 'approved'
       OR p.reviewer_id IS NULL
       OR p.reviewer_id = p.author_id
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'change % refused on %: its proposal % {REFUSED}',
            bad_change, TG_OP, bad_proposal
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER hashlist_change_approved_insert
    AFTER INSERT ON hashlist_change REFERENCING NEW TABLE AS written_changes
    FOR EACH STATEMENT EXECUTE FUNCTION hashlist_change_require_approval();
CREATE TRIGGER hashlist_change_approved_update
    AFTER UPDATE ON hashlist_change REFERENCING NEW TABLE AS written_changes
    FOR EACH STATEMENT EXECUTE FUNCTION hashlist_change_require_approval();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS hashlist_change_approved_insert ON hashlist_change;
DROP TRIGGER IF EXISTS hashlist_change_approved_update ON hashlist_change;
DROP FUNCTION IF EXISTS hashlist_change_require_approval();
"""
_SQLITE_UNAPPROVED = (
    "NOT EXISTS (SELECT 1 FROM hashlist_proposal p WHERE p.id = NEW.proposal_id "
    "AND p.status = 'approved' AND p.reviewer_id IS NOT NULL AND p.reviewer_id <> p.author_id)"
)
SQLITE_FORWARD = [
    f"CREATE TRIGGER hashlist_change_approved_{op.lower()} BEFORE {op} ON hashlist_change "
    f"WHEN {_SQLITE_UNAPPROVED} "
    f"BEGIN SELECT RAISE(ABORT, 'change refused on {op}: its proposal {REFUSED}'); END;"
    for op in ("INSERT", "UPDATE")
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS hashlist_change_approved_insert;",
    "DROP TRIGGER IF EXISTS hashlist_change_approved_update;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            (schema,) = cursor.fetchone()
        quoted = schema_editor.connection.ops.quote_name(schema)
        # params=None: RAISE's '%' placeholders must reach the server as written.
        schema_editor.execute(PG_FORWARD.replace("{schema}", quoted), params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"hashsync supports PostgreSQL and SQLite, not {vendor}")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    else:
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("hashlist", "0004_import_apply_task")]
    operations = [migrations.RunPython(forward, backward)]
