"""On PostgreSQL, the index behind ``feed_entry_unique_key`` also carries ``grading``
(``INCLUDE``), so the snapshot writer's ordered scan of a feed (``releases.snapshots.feed_rows``) is an
index-only scan: no heap page visit per member wherever the visibility map marks the page
all-visible, which autovacuum keeps up to date. 10M members: 18 s of database CPU → 3 s
(docs/benchmarks.md, P1).

Written by hand, and PostgreSQL only, because Django creates no constraint at all for a
``UniqueConstraint(include=...)`` on SQLite (check models.W039): putting ``include`` on the
model would drop the uniqueness of feed keys on the embedded database. The model's constraint
is therefore unchanged; a later migration that re-creates it must keep the ``INCLUDE``.

Autovacuum is asked to visit the table after 1% of its rows changed (the default is 20%: 2M
changes on a 10M feed), so the visibility map the index-only scan relies on stays mostly set
between snapshots. Without it, a 10M snapshot measured 30-39 s instead of 22 s.

The swap is one ALTER TABLE: the table is locked (ACCESS EXCLUSIVE) while the new index is
built, about 11 s for 10M members. Only the release and snapshot workers use this table; they
wait.
"""

from django.db import migrations

TABLE = "distribution_feedentry"
CONSTRAINT = "feed_entry_unique_key"
KEY = "feed_id, algorithm, value"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} DROP CONSTRAINT {CONSTRAINT}, "
            f"ADD CONSTRAINT {CONSTRAINT} UNIQUE ({KEY}) INCLUDE (grading)"
        )
        schema_editor.execute(
            f"ALTER TABLE {TABLE} SET (autovacuum_vacuum_scale_factor = 0.01, "
            "autovacuum_vacuum_insert_scale_factor = 0.01)"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_insert_scale_factor)"
        )
        schema_editor.execute(
            f"ALTER TABLE {TABLE} DROP CONSTRAINT {CONSTRAINT}, "
            f"ADD CONSTRAINT {CONSTRAINT} UNIQUE ({KEY})"
        )


class Migration(migrations.Migration):
    dependencies = [("distribution", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
