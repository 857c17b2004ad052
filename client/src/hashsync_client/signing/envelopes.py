"""DSSE envelopes: Ed25519 signatures over ``PAE(payloadType, payload)``, so the signed bytes
are exactly the payload bytes and nobody re-serialises JSON before checking a signature."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hashsync_client.signing.canonical import _strict_loads, canonical_json
from hashsync_client.signing.errors import SignatureError
from hashsync_client.signing.keys import SigningKey, keyid_of

# Manifests and keyrings are a few kilobytes; anything far larger is an attack on the parser,
# refused before JSON decoding. Documented in docs/signing.md.
MAX_ENVELOPE_BYTES = 64 * 1024

_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
# One alphabet per string (standard or URL-safe), then at most two "=" (docs/signing.md §2).
_BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}")


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
    """DSSE lets writers use the standard or the URL-safe alphabet; padding is optional. Every
    other variation is refused, so that all conforming clients read an envelope alike: mixed
    alphabets, wrong padding, characters outside the alphabet (whitespace too), and unused
    trailing bits that are not zero (two texts for the same bytes)."""
    if not isinstance(value, str):
        raise _malformed(f"{what} is not a string")
    if not _BASE64_RE.fullmatch(value):
        raise _malformed(f"{what} is not base64 in one alphabet")
    bare = value.translate(_URLSAFE_TO_STANDARD).rstrip("=")
    if value.endswith("=") and len(value) % 4:
        raise _malformed(f"{what} has wrong base64 padding")
    try:
        raw = base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii").rstrip("=") != bare:
        raise _malformed(f"{what} is not canonical base64 (non-zero unused bits)")
    return raw


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


def envelope_signatures(envelope: bytes, *, payload_type: str) -> list[tuple[str, bytes]]:
    """The (keyid, signature) pairs an envelope carries, WITHOUT checking any of them: for
    showing people who signed what (the staff pages). ``SignatureError`` if it is malformed.
    Never trust the result; ``open_envelope`` and the ``verify_*`` functions check."""
    return list(_decode_envelope(envelope, payload_type).signatures)


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
