"""Signed envelopes, keys, keyrings and manifests: the trust layer between server and members.

Pure Python plus ``cryptography``, no Django: the member client imports this module to verify
what the server signs, so both sides run the same checks. The wire formats and the procedures
for operators are in ``docs/signing.md``; keep the two in step.

Layers, from the bottom:

- **DSSE envelopes** (``sign_envelope`` / ``open_envelope``): Ed25519 signatures over
  ``PAE(payloadType, payload)``, so the signed bytes are exactly the payload bytes and nobody
  re-serialises JSON before checking a signature.
- **Keys** (``SigningKey`` and the PEM helpers). A ``keyid`` is the SHA-256 hex digest of the
  raw 32-byte Ed25519 public key.
- **Keyrings**: offline root key(s) sign a versioned keyring that names the online signing keys
  and their validity windows. Version n+1 must carry a threshold of signatures from version n's
  root *and* from its own root, so a root rotation is vouched for by the root it replaces (the
  idea of TUF's root chain). Clients pin root keyids and walk the chain.
- **Manifests**: one per feed and version, signed by an online key that the keyring says was
  valid when the manifest was issued.

Every refusal of received data raises ``SignatureError`` (a ``ValueError``) with a stable
``code``; mistakes by the calling code (a naive datetime, a threshold of 0) raise plain
``ValueError``/``TypeError``. Nothing here logs or formats private key material.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "KEYRING_PAYLOAD_TYPE",
    "MANIFEST_FORMAT",
    "MANIFEST_PAYLOAD_TYPE",
    "MAX_CLOCK_SKEW",
    "MAX_ENVELOPE_BYTES",
    "KeyFormatError",
    "Keyring",
    "RootKeyEntry",
    "SignatureError",
    "SigningKey",
    "SigningKeyEntry",
    "build_keyring",
    "canonical_json",
    "cosign_envelope",
    "format_timestamp",
    "generate_key",
    "keyid_of",
    "load_private_key",
    "load_public_key_b64",
    "manifest_sha256",
    "open_envelope",
    "pae",
    "parse_keyring_unverified",
    "parse_timestamp",
    "public_key_b64",
    "sign_envelope",
    "sign_keyring",
    "sign_manifest",
    "verify_keyring_chain",
    "verify_manifest",
    "verify_manifest_history",
    "write_private_key",
]

logger = logging.getLogger(__name__)

KEYRING_PAYLOAD_TYPE = "application/vnd.hashsync.keyring+json"
MANIFEST_PAYLOAD_TYPE = "application/vnd.hashsync.manifest+json"
MANIFEST_FORMAT = 1
# Manifests and keyrings are a few kilobytes; anything far larger is an attack on the parser,
# refused before JSON decoding. Documented in docs/signing.md.
MAX_ENVELOPE_BYTES = 64 * 1024
# How far in the future a manifest's issued_at may lie: member clocks drift.
MAX_CLOCK_SKEW = timedelta(minutes=5)

_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SHA256_HEX_RE = re.compile(r"[0-9a-f]{64}")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


class SignatureError(ValueError):
    """Received data (envelope, keyring, manifest) is refused. ``code`` is stable, for APIs."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class KeyFormatError(ValueError):
    """A key file or an encoded public key is not a usable Ed25519 key."""


# --- canonical JSON and timestamps -----------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not ASCII-escaped). Floats are refused (``TypeError``):
    their text form differs between languages, so a signed payload carries integers or strings.
    """
    return json.dumps(
        _plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _plain(obj: Any) -> Any:
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        raise TypeError("floats are not allowed in canonical JSON; use integers or strings")
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON object keys must be strings, not {type(key)}")
            out[key] = _plain(value)
        return out
    if isinstance(obj, list | tuple):
        return [_plain(item) for item in obj]
    raise TypeError(f"{type(obj).__name__} is not allowed in canonical JSON")


def format_timestamp(when: datetime) -> str:
    """``2025-01-31T12:00:00Z``: UTC, whole seconds (a sub-second part is dropped)."""
    _require_aware(when, "timestamp")
    return when.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_timestamp(text: str) -> datetime:
    """Inverse of ``format_timestamp``; accepts only that exact form. ``ValueError`` otherwise."""
    if not isinstance(text, str) or not _TIMESTAMP_RE.fullmatch(text):
        raise ValueError(f"expected a UTC timestamp like 2025-01-31T12:00:00Z, got {text!r:.40}")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _require_aware(when: datetime, name: str) -> None:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _whole_seconds(when: datetime) -> datetime:
    _require_aware(when, "timestamp")
    return when.astimezone(UTC).replace(microsecond=0)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        # Two parsers may keep different duplicates; refusing them removes the ambiguity.
        raise ValueError("duplicate key in JSON object")
    return out


def _reject_number(text: str) -> Any:
    raise ValueError(f"non-integer number {text[:20]!r} is not allowed")


def _strict_loads(data: bytes) -> Any:
    return json.loads(
        data.decode("utf-8"),
        object_pairs_hook=_reject_duplicates,
        parse_float=_reject_number,
        parse_constant=_reject_number,
    )


def _load_canonical_object(payload: bytes, what: str) -> dict[str, Any]:
    """Parse a signed payload and insist it is canonical JSON, so its SHA-256 is well defined and
    every client reads the same object out of it."""
    try:
        obj = _strict_loads(payload)
        canonical = canonical_json(obj)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise SignatureError(
            f"{what} payload is not valid JSON: {exc}", code=f"{what}_malformed"
        ) from None
    if not isinstance(obj, dict):
        raise SignatureError(f"{what} payload is not a JSON object", code=f"{what}_malformed")
    if canonical != payload:
        raise SignatureError(
            f"{what} payload is not canonical JSON (sorted keys, no spaces, UTF-8)",
            code=f"{what}_malformed",
        )
    return obj


# --- keys ------------------------------------------------------------------------------------


def keyid_of(public_key: Ed25519PublicKey) -> str:
    """SHA-256 hex digest of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


class SigningKey:
    """An Ed25519 private key with its keyid. ``repr`` shows the keyid only."""

    __slots__ = ("_private_key", "keyid", "public_key")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("SigningKey wraps an Ed25519PrivateKey")
        self._private_key = private_key
        self.public_key: Ed25519PublicKey = private_key.public_key()
        self.keyid: str = keyid_of(self.public_key)

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private_key

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(keyid={self.keyid!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SigningKey) and other.keyid == self.keyid

    def __hash__(self) -> int:
        return hash(self.keyid)


def generate_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def public_key_b64(key: Ed25519PublicKey | SigningKey) -> str:
    """Standard base64 of the raw 32-byte public key (the form used in keyrings)."""
    public = key.public_key if isinstance(key, SigningKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key_b64(text: str) -> Ed25519PublicKey:
    """Inverse of ``public_key_b64``; ``KeyFormatError`` unless it is 32 bytes of base64."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise KeyFormatError("public key is not standard base64") from None
    if len(raw) != 32:
        raise KeyFormatError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def write_private_key(
    path: str | os.PathLike[str], key: SigningKey, *, password: bytes | None = None
) -> None:
    """Write ``key`` as PEM PKCS#8 (encrypted when ``password`` is given), mode 0600.

    Atomic and never overwrites: the PEM goes to a 0600 temporary file in the same directory,
    which is then hard-linked to ``path`` (``link`` fails if ``path`` exists, so two writers
    cannot clobber each other and a reader never sees half a key). Raises ``FileExistsError``.
    """
    target = Path(path)
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing key file", str(path))
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    directory = target.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # exactly 0600 whatever the umask
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, target)
    finally:
        os.unlink(temporary)
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def load_private_key(path: str | os.PathLike[str], *, password: bytes | None = None) -> SigningKey:
    """Read a PEM PKCS#8 Ed25519 private key. ``KeyFormatError`` if it is anything else."""
    target = Path(path)
    mode = target.stat().st_mode
    if mode & 0o077:
        logger.warning("private key file %s is accessible to group or others (mode %o)", path, mode)
    data = target.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # cryptography's messages are fixed texts ("Bad decrypt...", "Password was not given..."),
        # never the key bytes; `from None` keeps the file contents out of the traceback.
        raise KeyFormatError(f"{path}: not a usable PEM PKCS#8 private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{path}: expected an Ed25519 key, found {type(key).__name__}")
    return SigningKey(key)


# --- DSSE envelopes --------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign_envelope(payload: bytes, payload_type: str, keys: Sequence[SigningKey]) -> bytes:
    """A DSSE envelope as canonical JSON bytes, one signature per distinct key, by keyid."""
    if not keys:
        raise ValueError("at least one signing key is required")
    message = pae(payload_type, payload)
    return _encode_envelope(payload, payload_type, {key.keyid: key.sign(message) for key in keys})


def cosign_envelope(envelope: bytes, *, payload_type: str, keys: Sequence[SigningKey]) -> bytes:
    """Add signatures by ``keys`` to an existing envelope (existing ones are kept as they are).

    For threshold signing by holders who never meet: each signs on their own offline machine and
    passes the envelope on. Existing signatures are not checked here; verification does that.
    """
    if not keys:
        raise ValueError("at least one signing key is required")
    parsed = _decode_envelope(envelope, payload_type)
    signatures = dict(parsed.signatures)
    message = pae(payload_type, parsed.payload)
    signatures.update({key.keyid: key.sign(message) for key in keys})
    return _encode_envelope(parsed.payload, payload_type, signatures)


def _encode_envelope(payload: bytes, payload_type: str, signatures: Mapping[str, bytes]) -> bytes:
    envelope = canonical_json(
        {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": payload_type,
            "signatures": [
                {"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")}
                for keyid, sig in sorted(signatures.items())
            ],
        }
    )
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise ValueError(
            f"envelope of {len(envelope)} bytes exceeds MAX_ENVELOPE_BYTES ({MAX_ENVELOPE_BYTES}); "
            "clients would refuse it"
        )
    return envelope


class _Envelope(NamedTuple):
    payload_type: str
    payload: bytes
    signatures: list[tuple[str, bytes]]


def _malformed(message: str) -> SignatureError:
    return SignatureError(f"malformed envelope: {message}", code="envelope_malformed")


def _b64decode(value: object, what: str) -> bytes:
    # DSSE: verifiers accept standard and URL-safe base64; we also tolerate missing padding.
    if not isinstance(value, str):
        raise _malformed(f"{what} is not a string")
    text = value.translate(_URLSAFE_TO_STANDARD)
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not valid base64") from None


def _decode_envelope(envelope: bytes, payload_type: str) -> _Envelope:
    if not isinstance(envelope, bytes | bytearray | memoryview):
        raise TypeError("an envelope is bytes")
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise SignatureError(
            f"envelope of {len(envelope)} bytes is larger than the {MAX_ENVELOPE_BYTES} allowed",
            code="envelope_too_large",
        )
    try:
        obj = _strict_loads(bytes(envelope))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _malformed(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise _malformed("not a JSON object")
    found_type = obj.get("payloadType")
    if not isinstance(found_type, str):
        raise _malformed("payloadType is missing or not a string")
    if found_type != payload_type:
        raise SignatureError(
            f"payload type is {found_type[:80]!r}, expected {payload_type!r}",
            code="wrong_payload_type",
        )
    payload = _b64decode(obj.get("payload"), "payload")
    entries = obj.get("signatures")
    if not isinstance(entries, list):
        raise _malformed("signatures is missing or not a list")
    signatures = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("keyid"), str):
            raise _malformed("each signature must be an object with a string keyid")
        signatures.append((entry["keyid"], _b64decode(entry.get("sig"), "sig")))
    return _Envelope(found_type, payload, signatures)


def _valid_signers(parsed: _Envelope, trusted: Mapping[str, Ed25519PublicKey]) -> set[str]:
    """Keyids in ``trusted`` with at least one valid signature. The keyid is only used to pick
    the key to try (DSSE: it is a hint); a set counts a key once however often it signed."""
    message = pae(parsed.payload_type, parsed.payload)
    accepted: set[str] = set()
    for keyid, sig in parsed.signatures:
        key = trusted.get(keyid)
        if key is None or keyid in accepted:
            continue
        try:
            key.verify(sig, message)
        except InvalidSignature:
            continue
        accepted.add(keyid)
    return accepted


def _check_trusted(trusted: Mapping[str, Ed25519PublicKey]) -> None:
    # Two keyids naming one key would let one signature count twice towards a threshold.
    for keyid, key in trusted.items():
        if keyid_of(key) != keyid:
            raise ValueError(f"trusted key {keyid!r:.20} is not the keyid of its public key")


def open_envelope(
    envelope: bytes,
    *,
    payload_type: str,
    trusted: Mapping[str, Ed25519PublicKey],
    threshold: int,
) -> bytes:
    """The payload, if at least ``threshold`` distinct keys of ``trusted`` (keyid → public key,
    keyid = ``keyid_of(key)``) signed PAE(payload_type, payload). ``SignatureError`` otherwise.
    """
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    _check_trusted(trusted)
    parsed = _decode_envelope(envelope, payload_type)
    signers = _valid_signers(parsed, trusted)
    if len(signers) < threshold:
        raise _too_few("envelope", signers, threshold, parsed, trusted)
    return parsed.payload


def _too_few(
    what: str,
    signers: set[str],
    threshold: int,
    parsed: _Envelope,
    trusted: Mapping[str, Ed25519PublicKey],
) -> SignatureError:
    known = {keyid for keyid, _ in parsed.signatures if keyid in trusted}
    detail = "" if known else "; none of its signatures is from a trusted key"
    return SignatureError(
        f"{what} has valid signatures from {len(signers)} trusted key(s), "
        f"{threshold} required{detail}",
        code="signature_threshold",
    )


# --- keyrings --------------------------------------------------------------------------------


def _require_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}")
    return value


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


_MANIFEST_FIELDS = (
    "type",
    "format",
    "feed",
    "version",
    "previous_manifest_sha256",
    "issued_at",
    "expires_at",
    "entry_count",
    "state_digest",
    "delta",
    "snapshot",
)


def _validate_manifest(manifest: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """Presence and types of the format-1 fields; ``ValueError`` naming the first bad one.
    Unknown fields are allowed (and ignored) so a later format can add to them."""
    missing = [field for field in _MANIFEST_FIELDS if field not in manifest]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    if manifest["type"] != "hashsync/manifest":
        raise ValueError("type is not 'hashsync/manifest'")
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
        delta = _require_object(
            manifest["delta"], "delta", ("from_version", "sha256", "size", "records")
        )
        if _require_int(delta["from_version"], "delta.from_version", 0) >= version:
            raise ValueError("delta.from_version must be lower than version")
        _require_sha256_hex(delta["sha256"], "delta.sha256")
        _require_int(delta["size"], "delta.size", 0)
        _require_int(delta["records"], "delta.records", 0)
    if manifest["snapshot"] is not None:
        snapshot = _require_object(manifest["snapshot"], "snapshot", ("version", "sha256", "size"))
        if _require_int(snapshot["version"], "snapshot.version", 0) > version:
            raise ValueError("snapshot.version must not exceed version")
        _require_sha256_hex(snapshot["sha256"], "snapshot.sha256")
        _require_int(snapshot["size"], "snapshot.size", 0)
    return issued_at, expires_at


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
