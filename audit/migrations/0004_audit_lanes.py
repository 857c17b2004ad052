"""Audit lanes (docs/audit.md, "Lanes and anchors"): every event gets a lane, a gapless
position in it (``lane_seq``) and the digest format it was hashed with; the chain head becomes
one row per lane; the global ``seq`` is drawn from a PostgreSQL sequence.

Existing events are the staff lane's history: lane 0, ``lane_seq = seq``, format 1 — their
digests are unchanged and verify as written, and lane 0's head is the old single head. Filling
``lane_seq`` is an UPDATE of every row, which the append-only triggers refuse, so this migration
(run by the table owner) switches them off for that statement alone. On SQLite, adding the
columns rebuilds the table, which drops its triggers; they are created again at the end.
The UPDATE rewrites the whole table: on a large trail, plan the upgrade's downtime for it."""

import importlib

from django.db import migrations, models

APPEND_ONLY = importlib.import_module("hashlist.migrations.0002_audit_append_only")
SEQUENCE = "audit_event_seq"


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE hashlist_auditevent DISABLE TRIGGER hashlist_auditevent_append_only"
        )
        schema_editor.execute("UPDATE hashlist_auditevent SET lane_seq = seq")
        schema_editor.execute(
            "ALTER TABLE hashlist_auditevent ENABLE TRIGGER hashlist_auditevent_append_only"
        )
        # Lane 0's head was inserted with an explicit pk 1, which left the id sequence behind
        # it: the first member lane's head would take id 1 and clash.
        schema_editor.execute(
            "SELECT setval(pg_get_serial_sequence('hashlist_auditchainhead', 'id'), "
            "COALESCE((SELECT MAX(id) FROM hashlist_auditchainhead), 0) + 1, false)"
        )
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} AS bigint")
        # Continue after the largest seq; an empty trail starts at 1.
        schema_editor.execute(
            f"SELECT setval('{SEQUENCE}', COALESCE((SELECT MAX(seq) FROM hashlist_auditevent), 0)"
            " + 1, false)"
        )
    else:
        for statement in APPEND_ONLY.SQLITE_BACKWARD:
            schema_editor.execute(statement)
        schema_editor.execute("UPDATE hashlist_auditevent SET lane_seq = seq")
        for statement in APPEND_ONLY.SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


def recreate_sqlite_triggers(apps, schema_editor):
    # AlterField, AddConstraint and RemoveField rebuild SQLite tables too (and drop their
    # triggers).
    if schema_editor.connection.vendor == "sqlite":
        for statement in APPEND_ONLY.SQLITE_BACKWARD + APPEND_ONLY.SQLITE_FORWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_trail_filters_and_chain_checks")]

    operations = [
        # Backwards, this runs last: removing the columns rebuilt the SQLite table.
        migrations.RunPython(migrations.RunPython.noop, recreate_sqlite_triggers),
        migrations.AddField(
            model_name="auditchainhead",
            name="lane",
            field=models.PositiveSmallIntegerField(default=0, unique=True),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="lane",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="format",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="lane_seq",
            field=models.PositiveBigIntegerField(null=True),
        ),
        migrations.RunPython(forward, backward, elidable=False),
        migrations.AlterField(
            model_name="auditevent",
            name="lane_seq",
            field=models.PositiveBigIntegerField(),
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                fields=("lane", "lane_seq"), name="audit_lane_seq_uniq"
            ),
        ),
        migrations.RunPython(recreate_sqlite_triggers, migrations.RunPython.noop),
    ]
