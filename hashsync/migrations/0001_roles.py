"""Create the staff roles (analyst, reviewer, member_admin, auditor) as groups with their
permissions, as defined in hashsync/roles.py."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from hashsync.roles import sync_roles


def forward(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); create them now
    # so the groups can be given them in this migration.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    sync_roles(apps)


def backward(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=["analyst", "reviewer", "member_admin", "auditor"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("hashlist", "0002_audit_append_only"),
    ]
    operations = [migrations.RunPython(forward, backward)]
