"""Issue a new online signing key, listed in a new keyring version signed by the root.

Also the way to start (keyring version 1) and to renew a keyring before it expires. The new
key replaces the file at HASHSYNC_SIGNING_KEY_PATH once the keyring is stored; older keys that
are still valid stay listed, so what they signed keeps verifying.
"""

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
    help = "Sign a new keyring with the root key(s) and install a new online signing key."

    def add_arguments(self, parser: CommandParser) -> None:
        add_root_key_arguments(parser)
        parser.add_argument("--encrypted", action="store_true", help="root key files are encrypted")
        parser.add_argument("--valid-days", type=int, default=90, help="signing key lifetime")
        parser.add_argument("--keyring-days", type=int, default=365, help="keyring lifetime")
        parser.add_argument("--threshold", type=int, default=None, help="root signatures needed")

    def handle(
        self,
        *args: Any,
        root_key: list[str],
        encrypted: bool,
        valid_days: int,
        keyring_days: int,
        threshold: int | None,
        **options: Any,
    ) -> None:
        roots = load_root_keys(root_key, encrypted=encrypted)
        try:
            with transaction.atomic():
                keyring, new_key = keys.keyring_issue(
                    root_keys=roots,
                    new_root_threshold=threshold,
                    signing_valid_days=valid_days,
                    keyring_valid_days=keyring_days,
                )
        except ValueError as exc:  # SignatureError included: not the current root
            raise CommandError(refusal(exc)) from None
        assert new_key is not None
        keys.install_signing_key(new_key)
        self.stdout.write(
            self.style.SUCCESS(
                f"Keyring version {keyring.version} stored; online key {new_key.keyid} installed."
            )
        )
