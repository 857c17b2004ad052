"""Rotate the root: a new keyring version naming the new root key(s), signed by the old root
and the new one, so clients that pin the old root follow the rotation without a change."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from distribution import keys
from distribution.management.commands._keyargs import (
    add_root_key_arguments,
    load_root_keys,
    refusal,
)


class Command(BaseCommand):
    help = "Rotate the root key(s); the new keyring is signed by the old and the new root."

    def add_arguments(self, parser: CommandParser) -> None:
        add_root_key_arguments(parser, "--old-root")
        add_root_key_arguments(parser, "--new-root")
        parser.add_argument("--encrypted", action="store_true")
        parser.add_argument("--threshold", type=int, default=None)

    def handle(
        self,
        *args: Any,
        old_root: list[str],
        new_root: list[str],
        encrypted: bool,
        threshold: int | None,
        **options: Any,
    ) -> None:
        try:
            with transaction.atomic():
                keyring, _ = keys.keyring_issue(
                    root_keys=load_root_keys(old_root, encrypted=encrypted),
                    new_root_keys=load_root_keys(new_root, encrypted=encrypted),
                    new_root_threshold=threshold,
                    issue_signing_key=False,
                )
        except ValueError as exc:  # SignatureError included: not the current root
            raise CommandError(refusal(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Keyring version {keyring.version} stored with root "
                f"{', '.join(sorted(keyring.root_keyids))}."
            )
        )
