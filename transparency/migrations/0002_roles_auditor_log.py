"""Auditors see the transparency log (``transparency.view_log``, hashsync/roles.py): give the
role group its permissions again now that this app's permission exists."""

from django.db import migrations

from hashsync.migrations import _roles


class Migration(migrations.Migration):
    dependencies = [
        ("transparency", "0001_initial"),
        ("hashsync", "0004_roles_audit"),
        ("audit", "0004_audit_lanes"),
        ("hashlist", "0007_entry_facts_frameworks"),
        ("distribution", "0004_release_cut_seconds"),
        ("members", "0003_feedback_one_open"),
    ]
    operations = [migrations.RunPython(_roles.forward, migrations.RunPython.noop)]
