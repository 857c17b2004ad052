"""Shared by the role migrations: create permissions now (Django normally does so only after
all migrations), then give each role group exactly its permissions from hashsync/roles.py."""

from django.contrib.auth.management import create_permissions

from hashsync.roles import sync_roles


def forward(apps, schema_editor):
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    sync_roles(apps)
