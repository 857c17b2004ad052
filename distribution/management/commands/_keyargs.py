"""Shared argument handling of the key commands: root keys are read from files the operator
brings (offline media) and are never copied anywhere by the server."""

from __future__ import annotations

import getpass
import os

from django.core.management.base import CommandError, CommandParser

from distribution.keys import current_keyring
from hashsync_client.signing import KeyFormatError, SigningKey, load_private_key


def add_root_key_arguments(parser: CommandParser, flag: str = "--root-key") -> None:
    parser.add_argument(
        flag,
        action="append",
        required=True,
        metavar="PATH",
        help="a root private key file (repeat for a threshold of several keys)",
    )


def load_root_keys(paths: list[str], *, encrypted: bool) -> list[SigningKey]:
    password = None
    if encrypted:
        password = (
            os.environ.get("HASHSYNC_ROOT_KEY_PASSWORD") or getpass.getpass("Root key passphrase: ")
        ).encode()
    keys = []
    for path in paths:
        try:
            keys.append(load_private_key(path, password=password))
        except (OSError, KeyFormatError, ValueError) as exc:
            raise CommandError(f"Cannot read root key {path}: {exc}") from None
    return keys


def refusal(exc: ValueError) -> str:
    """The operator's message when keyring_issue refuses: most often root key files that are
    not the current keyring's root (the server checks the chain before storing anything)."""
    current = current_keyring()
    root = ", ".join(sorted(current.root_keyids)) if current else "none yet"
    return (
        f"Nothing was stored: {exc}. Check the root key file(s) and options; the current "
        f"keyring's root key id(s): {root}."
    )
