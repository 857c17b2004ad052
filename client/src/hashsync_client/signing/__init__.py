"""Signed envelopes, keys, keyrings and manifests: the trust layer between server and members.

Pure Python plus ``cryptography``, no Django: the member client imports this package to verify
what the server signs, so both sides run the same checks. The wire formats and the procedures
for operators are in ``docs/signing.md``; keep the two in step.

Layers, from the bottom, one module each:

- ``canonical``: canonical JSON and timestamps, the exact bytes everything signed is made of.
- ``keys``: ``SigningKey`` and the PEM helpers. A ``keyid`` is the SHA-256 hex digest of the
  raw 32-byte Ed25519 public key.
- ``envelopes``: DSSE (``sign_envelope`` / ``open_envelope``): Ed25519 signatures over
  ``PAE(payloadType, payload)``, so the signed bytes are exactly the payload bytes and nobody
  re-serialises JSON before checking a signature.
- ``keyrings``: offline root key(s) sign a versioned keyring that names the online signing keys
  and their validity windows. Version n+1 must carry a threshold of signatures from version n's
  root *and* from its own root, so a root rotation is vouched for by the root it replaces (the
  idea of TUF's root chain). Clients pin root keyids and walk the chain.
- ``manifests``: one per feed and version, laid out by ``manifest_payload``, signed by an online
  key that the keyring says was valid when the manifest was issued.

Every refusal of received data raises ``SignatureError`` (a ``ValueError``) with a stable
``code``; mistakes by the calling code (a naive datetime, a threshold of 0) raise plain
``ValueError``/``TypeError``. Nothing here logs or formats private key material.
"""

from __future__ import annotations

from hashsync_client.signing.canonical import canonical_json, format_timestamp, parse_timestamp
from hashsync_client.signing.envelopes import (
    MAX_ENVELOPE_BYTES,
    cosign_envelope,
    envelope_signatures,
    open_envelope,
    pae,
    sign_envelope,
)
from hashsync_client.signing.errors import KeyFormatError, SignatureError
from hashsync_client.signing.keyrings import (
    KEYRING_PAYLOAD_TYPE,
    Keyring,
    RootKeyEntry,
    SigningKeyEntry,
    build_keyring,
    parse_keyring_unverified,
    sign_keyring,
    verify_keyring_chain,
)
from hashsync_client.signing.keys import (
    SigningKey,
    generate_key,
    keyid_of,
    load_private_key,
    load_public_key_b64,
    public_key_b64,
    write_private_key,
)
from hashsync_client.signing.manifests import (
    MANIFEST_FORMAT,
    MANIFEST_PAYLOAD_TYPE,
    MAX_CLOCK_SKEW,
    DeltaRef,
    SnapshotRef,
    manifest_framework,
    manifest_payload,
    manifest_sha256,
    sign_manifest,
    verify_manifest,
    verify_manifest_history,
)

__all__ = [
    "KEYRING_PAYLOAD_TYPE",
    "MANIFEST_FORMAT",
    "MANIFEST_PAYLOAD_TYPE",
    "MAX_CLOCK_SKEW",
    "MAX_ENVELOPE_BYTES",
    "DeltaRef",
    "KeyFormatError",
    "Keyring",
    "RootKeyEntry",
    "SignatureError",
    "SigningKey",
    "SigningKeyEntry",
    "SnapshotRef",
    "build_keyring",
    "canonical_json",
    "cosign_envelope",
    "envelope_signatures",
    "format_timestamp",
    "generate_key",
    "keyid_of",
    "load_private_key",
    "load_public_key_b64",
    "manifest_framework",
    "manifest_payload",
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
