"""The audit trail moves out of ``hashlist`` into its own app, in Django's model state only.

The database is not touched: the tables keep their names (``db_table``), rows, indexes,
constraints and append-only triggers. A fresh database still gets all of them from hashlist 0001
(tables) and 0002 (triggers and the chain-head row), which run before this; hashlist 0003 then
drops the models from that app's state, and audit 0002 moves their content types."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("hashlist", "0002_audit_append_only")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AuditChainHead",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("seq", models.PositiveBigIntegerField(default=0)),
                        ("digest", models.CharField(max_length=64)),
                    ],
                    options={"db_table": "hashlist_auditchainhead"},
                ),
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("seq", models.PositiveBigIntegerField(unique=True)),
                        ("at", models.DateTimeField()),
                        ("actor", models.CharField(blank=True, default="", max_length=150)),
                        ("actor_id", models.BigIntegerField(blank=True, null=True)),
                        ("action", models.CharField(max_length=64)),
                        ("object_type", models.CharField(max_length=64)),
                        ("object_id", models.CharField(blank=True, default="", max_length=64)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("reason", models.TextField(blank=True, default="")),
                        ("request_id", models.CharField(blank=True, default="", max_length=64)),
                        ("prev_digest", models.CharField(max_length=64)),
                        ("digest", models.CharField(max_length=64, unique=True)),
                    ],
                    options={
                        "db_table": "hashlist_auditevent",
                        "indexes": [
                            models.Index(
                                fields=["object_type", "object_id"], name="audit_object_idx"
                            ),
                            models.Index(fields=["at"], name="audit_at_idx"),
                        ],
                    },
                ),
            ],
        )
    ]
