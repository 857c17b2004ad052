"""The server's side of the key hierarchy: the online signing key and the stored keyrings.

Root private keys never live on the server: operators bring them (from offline media) to the
``keys_*`` management commands, which sign a new keyring and forget them. The one exception is
the embedded development default, which generates a throw-away root on first use and says so
loudly; production refuses to start a cut without a configured key.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from distribution.models import Keyring as KeyringRow
from distribution.selectors import keyring_envelopes, keyring_exists, keyring_latest_envelope
from hashsync.errors import DomainError
from hashsync_client.signing import (
    Keyring,
    SigningKey,
    SigningKeyEntry,
    build_keyring,
    generate_key,
    load_private_key,
    parse_keyring_unverified,
    sign_keyring,
    verify_keyring_chain,
    write_private_key,
)

logger = logging.getLogger(__name__)

DEVELOPMENT_ROOT = "root-DEVELOPMENT-ONLY.key"


class SigningUnavailable(DomainError):
    code = "signing_unavailable"
    http_status = 503


def first_keyring() -> Keyring | None:
    """Keyring version 1: a member's client pins its root, since a client walks the chain from
    the first keyring (docs/signing.md §3) however often the root has rotated since."""
    envelopes = keyring_envelopes()
    return parse_keyring_unverified(envelopes[0]) if envelopes else None


def client_init_command(
    keyring: Keyring, *, server_url: str, options: str = "--token-file /etc/hashsync/token"
) -> str:
    """The ``hashsync-client init`` command a member runs to pin ``keyring``'s root
    (``options``: where the token is, and any other init options)."""
    pins = " ".join(f"--root-keyid {keyid}" for keyid in sorted(keyring.root_keyids))
    threshold = f" --root-threshold {keyring.root_threshold}" if keyring.root_threshold > 1 else ""
    return f"hashsync-client init --server {server_url} {pins}{threshold} {options}"


def current_keyring() -> Keyring | None:
    envelope = keyring_latest_envelope()
    return parse_keyring_unverified(envelope) if envelope is not None else None


def online_signing_key(*, now: dt.datetime | None = None) -> SigningKey:
    """The key manifests are signed with, checked against the current keyring."""
    path = Path(settings.HASHSYNC_SIGNING_KEY_PATH)
    if not settings.PRODUCTION and not keyring_exists():
        ensure_development_keys()
    # Only after the bootstrap: a key it issues is valid from its own (later) second.
    now = now or timezone.now()
    if not path.exists():
        raise SigningUnavailable(
            f"No online signing key at {path}. Issue one with "
            "`manage.py keys_issue_signing --root-key …` (see docs/signing.md)."
        )
    key = load_private_key(path)
    keyring = current_keyring()
    if keyring is None or keyring.signing_key_valid_at(key.keyid, now) is None:
        raise SigningUnavailable(
            "The online signing key is not valid now in the current keyring (expired, not yet "
            "valid, or never issued). Issue a new one with `manage.py keys_issue_signing`."
        )
    if keyring.is_expired(now):
        raise SigningUnavailable(
            f"Keyring version {keyring.version} has expired; clients would refuse everything "
            "signed now. Re-issue it with `manage.py keys_issue_signing`."
        )
    return key


def install_signing_key(key: SigningKey) -> None:
    """Make ``key`` the online signing key: written atomically (mode 0600) over the file at
    HASHSYNC_SIGNING_KEY_PATH. Call once the keyring listing it has committed; until then the
    old key, still listed and valid, keeps signing."""
    path = Path(settings.HASHSYNC_SIGNING_KEY_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        staged = Path(scratch) / path.name
        write_private_key(staged, key)
        os.replace(staged, path)


def _store(keyring: Keyring, envelope: bytes, *, action: str) -> None:
    # The server checks the chain it is about to serve, as a client would.
    envelopes = [*keyring_envelopes(), envelope]
    first = parse_keyring_unverified(envelopes[0])
    verify_keyring_chain(
        envelopes,
        pinned_root_keyids=first.root_keyids,
        now=timezone.now(),
        pinned_threshold=first.root_threshold,
    )
    KeyringRow.objects.create(version=keyring.version, envelope=envelope)
    audit_record(
        actor=None,
        action=action,
        object_type="keyring",
        object_id=keyring.version,
        after={
            "root_keys": sorted(keyring.root_keyids),
            "root_threshold": keyring.root_threshold,
            "signing_keys": sorted(k.keyid for k in keyring.signing_keys),
            "expires_at": keyring.expires_at.isoformat(),
        },
    )


def keyring_issue(
    *,
    root_keys: Sequence[SigningKey],
    new_root_keys: Sequence[SigningKey] | None = None,
    new_root_threshold: int | None = None,
    issue_signing_key: bool = True,
    signing_valid_days: int = 90,
    keyring_valid_days: int = 365,
    now: dt.datetime | None = None,
) -> tuple[Keyring, SigningKey | None]:
    """Sign and store the next keyring version; run it in a transaction.

    With ``issue_signing_key`` a fresh online key is generated and listed; it is returned for
    the caller to ``install_signing_key`` after commit (still-valid older keys stay listed, so
    manifests signed with them keep verifying). With ``new_root_keys`` the root is rotated: the
    new keyring is signed by the old root and the new one.
    """
    now = (now or timezone.now()).replace(microsecond=0)
    previous = current_keyring()
    signing: list[SigningKeyEntry] = [
        entry for entry in (previous.signing_keys if previous else ()) if entry.valid_until > now
    ]
    new_key = generate_key() if issue_signing_key else None
    if new_key is not None:
        signing.append(
            SigningKeyEntry.of(
                new_key, valid_from=now, valid_until=now + dt.timedelta(days=signing_valid_days)
            )
        )
    roots = list(new_root_keys or root_keys)
    keyring = build_keyring(
        version=(previous.version + 1) if previous else 1,
        issued_at=now,
        expires_at=now + dt.timedelta(days=keyring_valid_days),
        root_keys=roots,
        root_threshold=new_root_threshold or (previous.root_threshold if previous else 1),
        signing_keys=signing,
    )
    signers = {k.keyid: k for k in [*root_keys, *(new_root_keys or [])]}
    envelope = sign_keyring(keyring, list(signers.values()))
    _store(keyring, envelope, action="keyring.rotate_root" if new_root_keys else "keyring.issue")
    return keyring, new_key


def ensure_development_keys() -> None:
    """Embedded default only: a throw-away root (kept in var/, never for production) and a
    first keyring with an online key, so `make run` can publish signed releases."""
    if settings.PRODUCTION:
        raise SigningUnavailable("Refusing to generate keys in production.")
    with transaction.atomic():
        if keyring_exists():
            return
        root_path = Path(settings.VAR_DIR) / "keys" / DEVELOPMENT_ROOT
        root = load_private_key(root_path) if root_path.exists() else generate_key()
        if not root_path.exists():
            root_path.parent.mkdir(parents=True, exist_ok=True)
            write_private_key(root_path, root)
        logger.warning(
            "DEVELOPMENT KEYS: generated a throw-away root key at %s and an online signing key. "
            "Clients must pin root %s. Never use these in production (docs/signing.md).",
            root_path,
            root.keyid,
        )
        _, key = keyring_issue(root_keys=[root])
    assert key is not None
    install_signing_key(key)
