"""Give the roles their distribution permissions (feeds, releases)."""

from django.db import migrations

from hashsync.migrations import _roles


class Migration(migrations.Migration):
    dependencies = [
        ("hashsync", "0001_roles"),
        ("distribution", "0001_initial"),
    ]
    operations = [migrations.RunPython(_roles.forward, migrations.RunPython.noop)]
