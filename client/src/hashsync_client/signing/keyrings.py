"""Keyrings and the root rotation chain.

Offline root key(s) sign a versioned keyring that names the online signing keys and their
validity windows. Version n+1 must carry a threshold of signatures from version n's root *and*
from its own root, so a root rotation is vouched for by the root it replaces (the idea of TUF's
root chain). Clients pin root keyids and walk the chain with ``verify_keyring_chain``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hashsync_client.signing.canonical import (
    _load_canonical_object,
    _require_aware,
    _require_int,
    _whole_seconds,
    canonical_json,
    format_timestamp,
    parse_timestamp,
)
from hashsync_client.signing.envelopes import (
    _decode_envelope,
    _too_few,
    _valid_signers,
    sign_envelope,
)
from hashsync_client.signing.errors import SignatureError
from hashsync_client.signing.keys import (
    SigningKey,
    keyid_of,
    load_public_key_b64,
    public_key_b64,
)

KEYRING_PAYLOAD_TYPE = "application/vnd.hashsync.keyring+json"


@dataclass(frozen=True)
class RootKeyEntry:
    keyid: str
    public_key: Ed25519PublicKey

    @classmethod
    def of(cls, key: Ed25519PublicKey | SigningKey) -> RootKeyEntry:
        public = key.public_key if isinstance(key, SigningKey) else key
        return cls(keyid=keyid_of(public), public_key=public)


@dataclass(frozen=True)
class SigningKeyEntry:
    """An online signing key and the window [valid_from, valid_until) it may sign manifests in."""

    keyid: str
    public_key: Ed25519PublicKey
    valid_from: datetime
    valid_until: datetime

    @classmethod
    def of(
        cls,
        key: Ed25519PublicKey | SigningKey,
        *,
        valid_from: datetime,
        valid_until: datetime,
    ) -> SigningKeyEntry:
        public = key.public_key if isinstance(key, SigningKey) else key
        return cls(
            keyid=keyid_of(public),
            public_key=public,
            valid_from=_whole_seconds(valid_from),
            valid_until=_whole_seconds(valid_until),
        )

    def valid_at(self, when: datetime) -> bool:
        return self.valid_from <= when < self.valid_until


def _check_timestamp_field(when: datetime, name: str) -> None:
    _require_aware(when, name)
    if when.utcoffset() != timedelta(0) or when.microsecond:
        raise ValueError(f"{name} must be UTC with whole seconds (use build_keyring)")


@dataclass(frozen=True)
class Keyring:
    """One version of the keyring. Construct with ``build_keyring``; obtain a *trusted* one only
    from ``verify_keyring_chain``. Validated on construction (``ValueError``)."""

    version: int
    issued_at: datetime
    expires_at: datetime
    root_threshold: int
    root_keys: tuple[RootKeyEntry, ...]
    signing_keys: tuple[SigningKeyEntry, ...]

    def __post_init__(self) -> None:
        _require_int(self.version, "version", 1)
        _check_timestamp_field(self.issued_at, "issued_at")
        _check_timestamp_field(self.expires_at, "expires_at")
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        if not self.root_keys:
            raise ValueError("a keyring needs at least one root key")
        _require_int(self.root_threshold, "root threshold", 1)
        if self.root_threshold > len(self.root_keys):
            raise ValueError(
                f"root threshold {self.root_threshold} exceeds the {len(self.root_keys)} root keys"
            )
        entries: tuple[RootKeyEntry | SigningKeyEntry, ...] = (*self.root_keys, *self.signing_keys)
        for entry in entries:
            if keyid_of(entry.public_key) != entry.keyid:
                raise ValueError(f"keyid {entry.keyid[:16]!r} does not match its public key")
        root_ids = [entry.keyid for entry in self.root_keys]
        signing_ids = [entry.keyid for entry in self.signing_keys]
        if len(set(root_ids)) != len(root_ids) or len(set(signing_ids)) != len(signing_ids):
            raise ValueError("a key is listed twice")
        if set(root_ids) & set(signing_ids):
            # A root key is meant to stay offline; listing it as an online key defeats that.
            raise ValueError("a root key cannot also be an online signing key")
        for entry in self.signing_keys:
            _check_timestamp_field(entry.valid_from, "valid_from")
            _check_timestamp_field(entry.valid_until, "valid_until")
            if entry.valid_until <= entry.valid_from:
                raise ValueError(f"signing key {entry.keyid[:16]}…: valid_until <= valid_from")

    @property
    def root_keyids(self) -> frozenset[str]:
        return frozenset(entry.keyid for entry in self.root_keys)

    def root_public_keys(self) -> dict[str, Ed25519PublicKey]:
        return {entry.keyid: entry.public_key for entry in self.root_keys}

    def signing_key_valid_at(self, keyid: str, when: datetime) -> Ed25519PublicKey | None:
        """The online key ``keyid`` if this keyring lists it and ``when`` is in its window."""
        _require_aware(when, "when")
        for entry in self.signing_keys:
            if entry.keyid == keyid and entry.valid_at(when):
                return entry.public_key
        return None

    def is_expired(self, now: datetime) -> bool:
        _require_aware(now, "now")
        return self.expires_at <= now

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "hashsync/keyring",
            "version": self.version,
            "issued_at": format_timestamp(self.issued_at),
            "expires_at": format_timestamp(self.expires_at),
            "root": {
                "threshold": self.root_threshold,
                "keys": [
                    {"keyid": entry.keyid, "public_key": public_key_b64(entry.public_key)}
                    for entry in self.root_keys
                ],
            },
            "signing_keys": [
                {
                    "keyid": entry.keyid,
                    "public_key": public_key_b64(entry.public_key),
                    "valid_from": format_timestamp(entry.valid_from),
                    "valid_until": format_timestamp(entry.valid_until),
                }
                for entry in self.signing_keys
            ],
        }

    def to_payload(self) -> bytes:
        """The exact bytes that are signed (canonical JSON of ``to_json()``)."""
        return canonical_json(self.to_json())


def build_keyring(
    *,
    version: int,
    issued_at: datetime,
    expires_at: datetime,
    root_keys: Sequence[Ed25519PublicKey | SigningKey],
    root_threshold: int,
    signing_keys: Sequence[SigningKeyEntry],
) -> Keyring:
    """A keyring with keys ordered by keyid and timestamps cut to whole UTC seconds, so the
    same inputs always give the same payload bytes. ``ValueError`` if it would be invalid."""
    return Keyring(
        version=version,
        issued_at=_whole_seconds(issued_at),
        expires_at=_whole_seconds(expires_at),
        root_threshold=root_threshold,
        root_keys=tuple(sorted((RootKeyEntry.of(k) for k in root_keys), key=lambda e: e.keyid)),
        signing_keys=tuple(sorted(signing_keys, key=lambda e: e.keyid)),
    )


def sign_keyring(keyring: Keyring, keys: Sequence[SigningKey]) -> bytes:
    """Sign a keyring with root private keys, on the offline machine that holds them.

    For version n+1, ``keys`` must include a threshold of version n's root keys and a threshold
    of the new root keys (the same keys when the root does not change). Holders in different
    places sign one after another with ``cosign_envelope``.
    """
    return sign_envelope(keyring.to_payload(), KEYRING_PAYLOAD_TYPE, keys)


def _keyring_from_json(obj: dict[str, Any]) -> Keyring:
    if obj["type"] != "hashsync/keyring":
        raise ValueError("type is not 'hashsync/keyring'")
    root = obj["root"]
    if not isinstance(root, dict) or not isinstance(root["keys"], list):
        raise ValueError("root must be an object with a keys list")
    signing = obj["signing_keys"]
    if not isinstance(signing, list):
        raise ValueError("signing_keys must be a list")

    def key_from(item: Any) -> tuple[str, Ed25519PublicKey]:
        if not isinstance(item, dict) or not isinstance(item["keyid"], str):
            raise ValueError("each key must be an object with keyid and public_key")
        return item["keyid"], load_public_key_b64(item["public_key"])

    root_keys = tuple(RootKeyEntry(*key_from(item)) for item in root["keys"])
    signing_keys = []
    for item in signing:
        keyid, public = key_from(item)
        signing_keys.append(
            SigningKeyEntry(
                keyid=keyid,
                public_key=public,
                valid_from=parse_timestamp(item["valid_from"]),
                valid_until=parse_timestamp(item["valid_until"]),
            )
        )
    return Keyring(
        # Types of version and threshold are checked by Keyring.__post_init__.
        version=obj["version"],
        issued_at=parse_timestamp(obj["issued_at"]),
        expires_at=parse_timestamp(obj["expires_at"]),
        root_threshold=root["threshold"],
        root_keys=root_keys,
        signing_keys=tuple(signing_keys),
    )


def _parse_keyring_payload(payload: bytes) -> Keyring:
    obj = _load_canonical_object(payload, "keyring")
    try:
        return _keyring_from_json(obj)
    except KeyError as exc:
        raise SignatureError(f"keyring lacks field {exc}", code="keyring_malformed") from None
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"keyring is malformed: {exc}", code="keyring_malformed") from None


def parse_keyring_unverified(envelope: bytes) -> Keyring:
    """Read a keyring envelope WITHOUT checking any signature: for showing an operator what
    they are about to co-sign, or for filing an envelope by version. Never trust the result."""
    return _parse_keyring_payload(_decode_envelope(envelope, KEYRING_PAYLOAD_TYPE).payload)


def verify_keyring_chain(
    envelopes: Sequence[bytes],
    *,
    pinned_root_keyids: Collection[str],
    now: datetime,
    min_version: int | None = None,
    pinned_threshold: int = 1,
) -> Keyring:
    """Walk a chain of keyring envelopes from a pinned root and return the trusted last one.

    - The first envelope is the anchor: it must be signed by at least
      max(its root threshold, ``pinned_threshold``) distinct keys that are both pinned and in
      its root. (Pinning keyids only, an attacker holding one of several root keys could issue a
      keyring whose root is that key alone with threshold 1; clients of a k-of-n root pass
      ``pinned_threshold=k``.)
    - Each next envelope must be signed by a threshold of the trusted root (checked before its
      payload is interpreted), have exactly the next version, and be signed by a threshold of
      its own root.
    - Only the last keyring must be unexpired at ``now``; intermediate ones may have expired,
      as in TUF. A last version below ``min_version`` (the version the caller already trusted)
      is a rollback.

    A client that stores its trusted keyring may re-pin to ``keyring.root_keyids`` with
    ``pinned_threshold=keyring.root_threshold`` and pass only envelopes from that version on.
    """
    _require_aware(now, "now")
    _require_int(pinned_threshold, "pinned_threshold", 1)
    pinned = set(pinned_root_keyids)
    if not pinned:
        raise ValueError("at least one pinned root keyid is required")
    if not envelopes:
        raise SignatureError("the keyring chain is empty", code="keyring_chain_empty")

    anchor = _decode_envelope(envelopes[0], KEYRING_PAYLOAD_TYPE)
    trusted = _parse_keyring_payload(anchor.payload)
    anchor_keys = {k: v for k, v in trusted.root_public_keys().items() if k in pinned}
    required = max(trusted.root_threshold, pinned_threshold)
    signers = _valid_signers(anchor, anchor_keys)
    if len(signers) < required:
        raise SignatureError(
            f"keyring version {trusted.version} is signed by {len(signers)} pinned root key(s), "
            f"{required} required; the server's root is not the one this client pins",
            code="untrusted_root",
        )

    for position, raw in enumerate(envelopes[1:], start=2):
        parsed = _decode_envelope(raw, KEYRING_PAYLOAD_TYPE)
        old_root = trusted.root_public_keys()
        signers = _valid_signers(parsed, old_root)
        if len(signers) < trusted.root_threshold:
            raise _too_few(
                f"keyring #{position} (after trusted version {trusted.version}), by the "
                "previous root,",
                signers,
                trusted.root_threshold,
                parsed,
                old_root,
            )
        candidate = _parse_keyring_payload(parsed.payload)
        if candidate.version <= trusted.version:
            raise SignatureError(
                f"keyring version {candidate.version} follows trusted version "
                f"{trusted.version}: rollback refused",
                code="rollback",
            )
        if candidate.version != trusted.version + 1:
            raise SignatureError(
                f"keyring version {candidate.version} follows version {trusted.version}; "
                f"version {trusted.version + 1} is missing from the chain",
                code="version_gap",
            )
        new_root = candidate.root_public_keys()
        signers = _valid_signers(parsed, new_root)
        if len(signers) < candidate.root_threshold:
            raise _too_few(
                f"keyring version {candidate.version}, by its own root,",
                signers,
                candidate.root_threshold,
                parsed,
                new_root,
            )
        trusted = candidate

    if trusted.is_expired(now):
        raise SignatureError(
            f"keyring version {trusted.version} expired at {format_timestamp(trusted.expires_at)}",
            code="keyring_expired",
        )
    if min_version is not None and trusted.version < min_version:
        raise SignatureError(
            f"keyring version {trusted.version} is older than version {min_version} "
            "already trusted: rollback refused",
            code="rollback",
        )
    return trusted


# --- manifests -------------------------------------------------------------------------------
