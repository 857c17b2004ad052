"""Relabel the audit models' content types from ``hashlist`` to ``audit``.

Permissions (``view_auditevent`` …) point at the content type row, so relabelling that row
keeps every permission, and every group and user holding one, while its name becomes
``audit.view_auditevent``. On a fresh database there is nothing to relabel yet: the content
types are created later, under ``audit``."""

from django.db import migrations

MODELS = ("auditevent", "auditchainhead")


def _relabel(apps, old_label, new_label):
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        old = content_type.objects.filter(app_label=old_label, model=model).first()
        if old is None:
            continue
        # A row under the new label can exist only if a permissions pass of this same migrate
        # run created it after audit 0001; the old row is the one groups and users hold. The
        # role migration that follows (hashsync 0004) grants the roles their permissions again.
        content_type.objects.filter(app_label=new_label, model=model).delete()
        old.app_label = new_label
        old.save(update_fields=["app_label"])


def forward(apps, schema_editor):
    _relabel(apps, "hashlist", "audit")


def backward(apps, schema_editor):
    _relabel(apps, "audit", "hashlist")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("hashlist", "0003_audit_moved_to_audit_app"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forward, backward)]
