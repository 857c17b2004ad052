"""Create the staff roles (analyst, reviewer, member_admin, auditor) as groups with their
permissions, as defined in hashsync/roles.py."""

from django.db import migrations

from hashsync.migrations._roles import forward


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
