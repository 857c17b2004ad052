"""Print the keyring: the root key(s) members pin, and the online signing keys in service.

Shows only public key fingerprints; never reads a private key.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.keys import client_init_command, current_keyring, first_keyring
from hashsync_client.signing import format_timestamp


class Command(BaseCommand):
    help = (
        "Show the root key id(s) that member clients pin, the current keyring's online signing "
        "keys, and the exact `hashsync-client init` command for a member."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--server",
            default="https://hashsync.example.org/",
            help="the server URL members use, for the printed init command",
        )
        parser.add_argument(
            "--token-file",
            default="/etc/hashsync/token",
            help="where the member keeps its API token, for the printed init command",
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, server: str, token_file: str, **options: Any) -> None:
        first, current = first_keyring(), current_keyring()
        if first is None or current is None:
            raise CommandError(
                "No keyring has been issued yet: create an offline root and issue a signing key "
                "(docs/signing.md, `manage.py keys_create_root` and `keys_issue_signing`)."
            )
        command = client_init_command(
            first, server_url=server, options=f"--token-file {token_file}"
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "pin": {
                            "root_keyids": sorted(first.root_keyids),
                            "root_threshold": first.root_threshold,
                        },
                        "current_keyring": {
                            "version": current.version,
                            "expires_at": format_timestamp(current.expires_at),
                            "root_keyids": sorted(current.root_keyids),
                            "root_threshold": current.root_threshold,
                            "signing_keys": [
                                {
                                    "keyid": key.keyid,
                                    "valid_from": format_timestamp(key.valid_from),
                                    "valid_until": format_timestamp(key.valid_until),
                                }
                                for key in current.signing_keys
                            ],
                        },
                        "client_init": command,
                    },
                    indent=2,
                )
            )
            return
        self.stdout.write(f"Members pin the root of keyring v1 (threshold {first.root_threshold}):")
        for keyid in sorted(first.root_keyids):
            self.stdout.write(f"  {keyid}")
        self.stdout.write(
            f"Current keyring v{current.version}, expires {format_timestamp(current.expires_at)}; "
            f"root threshold {current.root_threshold} of {len(current.root_keys)}:"
        )
        for keyid in sorted(current.root_keyids):
            self.stdout.write(f"  root    {keyid}")
        for key in current.signing_keys:
            self.stdout.write(
                f"  signing {key.keyid} valid {format_timestamp(key.valid_from)} to "
                f"{format_timestamp(key.valid_until)}"
            )
        self.stdout.write("A member's client is set up with:")
        self.stdout.write(f"  {command}")
