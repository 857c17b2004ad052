"""Create a root key pair. Run it on an offline machine; keep the file there.

The private key is written (mode 0600, never overwriting) to --out; its key id — the
fingerprint members pin in their clients — is printed. Nothing is stored on the server.
With --encrypt the passphrase is prompted for twice, or read from HASHSYNC_ROOT_KEY_PASSWORD
(the variable the other key commands read it from) when a ceremony is scripted.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hashsync_client.signing import generate_key, write_private_key


class Command(BaseCommand):
    help = "Create a root key (for offline keeping) and print the fingerprint clients pin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, metavar="PATH")
        parser.add_argument(
            "--encrypt", action="store_true", help="protect the file with a passphrase"
        )

    def handle(self, *args: Any, out: str, encrypt: bool, **options: Any) -> None:
        password = None
        if encrypt:
            scripted = os.environ.get("HASHSYNC_ROOT_KEY_PASSWORD")
            if scripted:
                password = scripted.encode()
            else:
                password = getpass.getpass("Passphrase: ").encode()
                if password != getpass.getpass("Again: ").encode():
                    raise CommandError("Passphrases differ.")
            if len(password) < 12:
                raise CommandError("The passphrase is shorter than 12 characters.")
        key = generate_key()
        try:
            write_private_key(out, key, password=password)
        except FileExistsError:
            raise CommandError(f"{out} exists; refusing to overwrite a key.") from None
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror}.") from None
        self.stdout.write(self.style.SUCCESS(f"Root key written to {out}"))
        self.stdout.write(f"Root key id (pin this in member clients): {key.keyid}")
