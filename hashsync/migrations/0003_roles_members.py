"""Give the roles their members permissions (organisations, tokens, acks, disputes)."""

from django.db import migrations

from hashsync.migrations import _roles


class Migration(migrations.Migration):
    dependencies = [
        ("hashsync", "0002_roles_distribution"),
        ("members", "0001_initial"),
    ]
    operations = [migrations.RunPython(_roles.forward, migrations.RunPython.noop)]
