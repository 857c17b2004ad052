"""Manifests: one per feed and version, signed by an online key that the keyring says was valid
when the manifest was issued. ``manifest_payload`` states the format-1 layout once; the server,
the test vectors and the client's fake server build manifests with it, and ``verify_manifest``
checks what it receives against the same fields."""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from hashsync_client.format.records import FrameworkRef
from hashsync_client.signing.canonical import (
    _load_canonical_object,
    _require_aware,
    _require_int,
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
from hashsync_client.signing.keyrings import Keyring
from hashsync_client.signing.keys import SigningKey

MANIFEST_PAYLOAD_TYPE = "application/vnd.hashsync.manifest+json"
MANIFEST_FORMAT = 1
# How far in the future a manifest's issued_at may lie: member clocks drift.
MAX_CLOCK_SKEW = timedelta(minutes=5)

_MANIFEST_TYPE = "hashsync/manifest"
_SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class DeltaRef:
    """The delta bundle from ``from_version`` to the manifest's version (0: from nothing)."""

    from_version: int
    sha256: str
    size: int
    records: int


@dataclass(frozen=True)
class SnapshotRef:
    """The newest snapshot bundle at or below the manifest's version."""

    version: int
    sha256: str
    size: int


def manifest_payload(
    *,
    feed: str,
    version: int,
    previous_manifest_sha256: str | None,
    issued_at: datetime,
    expires_at: datetime,
    entry_count: int,
    state_digest: str,
    delta: DeltaRef | None,
    snapshot: SnapshotRef | None,
    framework: FrameworkRef | None = None,
) -> dict[str, Any]:
    """The format-1 manifest, as the JSON object that ``sign_manifest`` signs and
    ``verify_manifest`` returns. Timestamps are written as whole UTC seconds
    (``format_timestamp``); nothing is validated here, ``sign_manifest`` does that.

    ``framework``: the grading framework and rule version of a feed published in bundle
    format 2 (docs/bundle-format.md §3.1), as a ``framework`` member; a format-1 feed's
    manifest has none, so its bytes are what they were before frameworks existed."""
    payload = {
        "type": _MANIFEST_TYPE,
        "format": MANIFEST_FORMAT,
        "feed": feed,
        "version": version,
        "previous_manifest_sha256": previous_manifest_sha256,
        "issued_at": format_timestamp(issued_at),
        "expires_at": format_timestamp(expires_at),
        "entry_count": entry_count,
        "state_digest": state_digest,
        "delta": None if delta is None else asdict(delta),
        "snapshot": None if snapshot is None else asdict(snapshot),
    }
    if framework is not None:
        payload["framework"] = framework.to_json()
    return payload


# What a received manifest must carry is what manifest_payload writes: its two constants, then
# one field per parameter, named alike; delta and snapshot carry the fields of their refs.
# ``framework`` is the one optional member (format-2 feeds only).
_OPTIONAL_FIELDS = ("framework",)
_MANIFEST_FIELDS = tuple(
    name
    for name in ("type", "format", *inspect.signature(manifest_payload).parameters)
    if name not in _OPTIONAL_FIELDS
)
_DELTA_FIELDS = tuple(field.name for field in fields(DeltaRef))
_SNAPSHOT_FIELDS = tuple(field.name for field in fields(SnapshotRef))


def _require_sha256_hex(value: Any, name: str) -> None:
    if not isinstance(value, str) or not _SHA256_HEX_RE.fullmatch(value):
        raise ValueError(f"{name} must be 64 lowercase hex digits")


def _require_object(value: Any, name: str, fields: Collection[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object or null")
    missing = [field for field in fields if field not in value]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(sorted(missing))}")
    return value


def _validate_manifest(manifest: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """Presence and types of the format-1 fields; ``ValueError`` naming the first bad one.
    Unknown fields are allowed (and ignored) so a later format can add to them."""
    missing = [field for field in _MANIFEST_FIELDS if field not in manifest]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    if manifest["type"] != _MANIFEST_TYPE:
        raise ValueError(f"type is not {_MANIFEST_TYPE!r}")
    if isinstance(manifest["format"], bool) or manifest["format"] != MANIFEST_FORMAT:
        raise ValueError(f"format {manifest['format']!r:.20} is not supported (expected 1)")
    if not isinstance(manifest["feed"], str) or not manifest["feed"]:
        raise ValueError("feed must be a non-empty string")
    version = _require_int(manifest["version"], "version", 0)
    if manifest["previous_manifest_sha256"] is not None:
        _require_sha256_hex(manifest["previous_manifest_sha256"], "previous_manifest_sha256")
    issued_at = parse_timestamp(manifest["issued_at"])
    expires_at = parse_timestamp(manifest["expires_at"])
    if expires_at <= issued_at:
        raise ValueError("expires_at must be after issued_at")
    _require_int(manifest["entry_count"], "entry_count", 0)
    if not isinstance(manifest["state_digest"], str) or not manifest["state_digest"]:
        raise ValueError("state_digest must be a non-empty string")
    if manifest["delta"] is not None:
        delta = _require_object(manifest["delta"], "delta", _DELTA_FIELDS)
        if _require_int(delta["from_version"], "delta.from_version", 0) >= version:
            raise ValueError("delta.from_version must be lower than version")
        _require_sha256_hex(delta["sha256"], "delta.sha256")
        _require_int(delta["size"], "delta.size", 0)
        _require_int(delta["records"], "delta.records", 0)
    if manifest["snapshot"] is not None:
        snapshot = _require_object(manifest["snapshot"], "snapshot", _SNAPSHOT_FIELDS)
        if _require_int(snapshot["version"], "snapshot.version", 0) > version:
            raise ValueError("snapshot.version must not exceed version")
        _require_sha256_hex(snapshot["sha256"], "snapshot.sha256")
        _require_int(snapshot["size"], "snapshot.size", 0)
    if "framework" in manifest:
        FrameworkRef.from_json(manifest["framework"])
    return issued_at, expires_at


def manifest_framework(manifest: Mapping[str, Any]) -> FrameworkRef | None:
    """The grading framework a (verified) manifest names, or None for a format-1 feed."""
    data = manifest.get("framework")
    return None if data is None else FrameworkRef.from_json(data)


def manifest_sha256(manifest: Mapping[str, Any]) -> str:
    """SHA-256 hex of the manifest's payload bytes: what the next manifest's
    ``previous_manifest_sha256`` holds. Equal to sha256(payload) because payloads are canonical."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


def sign_manifest(
    manifest: Mapping[str, Any], key: SigningKey, *, keyring: Keyring | None = None
) -> bytes:
    """Validate ``manifest`` and sign its canonical JSON. ``ValueError`` if it is malformed or,
    when ``keyring`` is given, if that keyring does not allow ``key`` at the manifest's
    ``issued_at`` (clients would refuse the result)."""
    payload = canonical_json(manifest)
    issued_at, _ = _validate_manifest(manifest)
    if keyring is not None and keyring.signing_key_valid_at(key.keyid, issued_at) is None:
        raise ValueError(
            f"keyring version {keyring.version} does not allow key {key.keyid[:16]}… "
            f"at {format_timestamp(issued_at)}"
        )
    return sign_envelope(payload, MANIFEST_PAYLOAD_TYPE, [key])


def _signed_manifest(envelope: bytes, keyring: Keyring) -> dict[str, Any]:
    """Checks 2-4 of docs/signing.md: the manifest, if signed by an online key of ``keyring``
    that was valid at its ``issued_at`` and well-formed. Freshness is the callers' business."""
    parsed = _decode_envelope(envelope, MANIFEST_PAYLOAD_TYPE)
    online = {entry.keyid: entry.public_key for entry in keyring.signing_keys}
    signers = _valid_signers(parsed, online)
    if not signers:
        raise _too_few(
            f"manifest (checked against keyring version {keyring.version})",
            signers,
            1,
            parsed,
            online,
        )
    manifest = _load_canonical_object(parsed.payload, "manifest")
    if manifest.get("format") != MANIFEST_FORMAT or isinstance(manifest.get("format"), bool):
        raise SignatureError(
            f"manifest format {manifest.get('format')!r:.20} is not supported by this client "
            f"(it reads format {MANIFEST_FORMAT})",
            code="unsupported_format",
        )
    try:
        issued_at, _ = _validate_manifest(manifest)
    except ValueError as exc:
        raise SignatureError(f"manifest is malformed: {exc}", code="manifest_malformed") from None
    if not any(keyring.signing_key_valid_at(keyid, issued_at) for keyid in signers):
        raise SignatureError(
            f"manifest issued at {manifest['issued_at']} is signed by a key that keyring "
            f"version {keyring.version} does not allow at that time",
            code="key_not_valid",
        )
    return manifest


def verify_manifest(
    envelope: bytes,
    *,
    keyring: Keyring,
    now: datetime,
    feed: str | None = None,
    min_version: int | None = None,
) -> dict[str, Any]:
    """The manifest, if signed by an online key of ``keyring`` (a keyring from
    ``verify_keyring_chain``) that was valid at the manifest's ``issued_at``, and fresh: not
    expired, not issued more than ``MAX_CLOCK_SKEW`` in the future, for ``feed``, and at least
    ``min_version`` (the version the client holds; equal is allowed, since an unchanged feed is
    re-signed with a later expiry). ``SignatureError`` otherwise."""
    _require_aware(now, "now")
    if keyring.is_expired(now):
        raise SignatureError(
            f"keyring version {keyring.version} expired at {format_timestamp(keyring.expires_at)};"
            " fetch the current keyring chain",
            code="keyring_expired",
        )
    manifest = _signed_manifest(envelope, keyring)
    issued_at, expires_at = _validate_manifest(manifest)  # checked by _signed_manifest
    if issued_at > now + MAX_CLOCK_SKEW:
        raise SignatureError(
            f"manifest is issued at {manifest['issued_at']}, in the future; check the clock",
            code="issued_in_future",
        )
    if expires_at <= now:
        raise SignatureError(
            f"manifest for version {manifest['version']} expired at {manifest['expires_at']}",
            code="manifest_expired",
        )
    if feed is not None and manifest["feed"] != feed:
        raise SignatureError(f"manifest is for another feed than {feed!r}", code="wrong_feed")
    if min_version is not None and manifest["version"] < min_version:
        raise SignatureError(
            f"manifest version {manifest['version']} is older than version {min_version} "
            "already held: replay refused",
            code="rollback",
        )
    return manifest


def verify_manifest_history(
    envelope: bytes, *, keyring: Keyring, feed: str | None = None
) -> dict[str, Any]:
    """The manifest, if signed by an online key of ``keyring`` that was valid at the manifest's
    ``issued_at``, well-formed and for ``feed`` — **without** the freshness checks of
    ``verify_manifest`` (expiry, issued in the future, minimum version).

    For the manifests of the intermediate steps of a sync plan (docs/sync-api.md, "What the
    client checks", 3): they are history, may have expired long ago, and are vouched for by
    the newest manifest, which the caller must check with ``verify_manifest``. The keyring
    itself must come from ``verify_keyring_chain`` at the current time. ``SignatureError``
    otherwise, with the codes of ``verify_manifest``.
    """
    manifest = _signed_manifest(envelope, keyring)
    if feed is not None and manifest["feed"] != feed:
        raise SignatureError(f"manifest is for another feed than {feed!r}", code="wrong_feed")
    return manifest
