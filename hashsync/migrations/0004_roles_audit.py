"""The auditor's audit permission is now ``audit.view_auditevent`` (the trail moved to the
``audit`` app). Existing databases keep it through audit 0002's relabelling; this gives it on a
fresh database, whatever order the earlier role migrations ran in."""

from django.db import migrations

from hashsync.migrations import _roles


class Migration(migrations.Migration):
    dependencies = [
        ("hashsync", "0003_roles_members"),
        ("audit", "0002_move_content_types"),
    ]
    operations = [migrations.RunPython(_roles.forward, migrations.RunPython.noop)]
