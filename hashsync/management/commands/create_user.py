"""Create a staff user with one of the roles (analyst, reviewer, member_admin, auditor).

The password is read from the environment variable named by --password-env, or prompted for;
never from the command line, where it would land in shell history and process lists.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from audit.services import audit_record
from hashsync.roles import ROLES, ensure_roles


class Command(BaseCommand):
    help = "Create a user with a role. The password comes from --password-env or a prompt."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="name of an environment variable holding the password (for scripts)",
        )

    def handle(
        self,
        *args: Any,
        username: str,
        role: str,
        email: str,
        password_env: str | None,
        **options: Any,
    ) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            raise CommandError(f"User {username!r} already exists.")
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"Environment variable {password_env} is not set or empty.")
        else:
            password = getpass.getpass(f"Password for {username}: ")
            if password != getpass.getpass("Again: "):
                raise CommandError("The passwords do not match.")
        try:
            validate_password(password, user_model(username=username, email=email))
        except ValidationError as exc:
            raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        with transaction.atomic():
            ensure_roles()
            user = user_model.objects.create_user(
                username=username, email=email, password=password, is_staff=True
            )
            user.groups.add(Group.objects.get(name=role))
            audit_record(
                actor=None,
                action="user.create",
                object_type="user",
                object_id=user.pk,
                after={"username": username, "role": role},
            )
        self.stdout.write(self.style.SUCCESS(f"Created {role} {username!r}."))
