#!/usr/bin/env python
"""Write the keyring and manifest test vectors: keyring.json, manifest-v1.json (the snapshot's
version) and manifest.json (version 2, after the delta), all DSSE envelopes, and the "signing"
section of vectors.json.

TEST KEYS ONLY: the root and online keys are derived from fixed public seeds below, so anyone
can reproduce every byte — never use them for anything but tests. Ed25519 signatures are
deterministic, so the same inputs always give the same envelope bytes.

    .venv/bin/python tests/vectors/make_signing_vectors.py

Run it after make_vectors.py: the manifest names the snapshot and delta written there.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashsync_client.signing import (
    DeltaRef,
    SigningKey,
    SigningKeyEntry,
    SnapshotRef,
    build_keyring,
    manifest_payload,
    manifest_sha256,
    public_key_b64,
    sign_keyring,
    sign_manifest,
)

HERE = Path(__file__).resolve().parent
ROOT_SEED = bytes(range(32))  # TEST KEY — public on purpose
ONLINE_SEED = bytes(range(32, 64))  # TEST KEY — public on purpose
ISSUED = datetime(2026, 11, 25, 0, 0, 0, tzinfo=UTC)
EXPIRES = datetime(2036, 11, 25, 0, 0, 0, tzinfo=UTC)


def test_key(seed: bytes) -> SigningKey:
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed))


def generate(vectors: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, Any]]:
    root, online = test_key(ROOT_SEED), test_key(ONLINE_SEED)
    keyring = build_keyring(
        version=1,
        issued_at=ISSUED,
        expires_at=EXPIRES,
        root_keys=[root],
        root_threshold=1,
        signing_keys=[SigningKeyEntry.of(online, valid_from=ISSUED, valid_until=EXPIRES)],
    )
    keyring_envelope = sign_keyring(keyring, [root])
    snapshot_header, delta_header = (
        json.loads(vectors[kind]["header_json"]) for kind in ("snapshot", "delta")
    )
    snapshot_ref = SnapshotRef(
        version=snapshot_header["to_version"],
        sha256=vectors["snapshot"]["sha256"],
        size=vectors["snapshot"]["size"],
    )
    # Version 1 is the snapshot's: a client that takes the snapshot checks its state against
    # this manifest's digest (sync-api.md, "What the client checks", 5).
    first = manifest_payload(
        feed=snapshot_header["feed"],
        version=snapshot_header["to_version"],
        previous_manifest_sha256=None,
        issued_at=ISSUED,
        expires_at=EXPIRES,
        entry_count=snapshot_header["record_count"],
        state_digest=vectors["lthash"]["snapshot_digest"],
        delta=None,
        snapshot=snapshot_ref,
    )
    first_envelope = sign_manifest(first, online)
    manifest = manifest_payload(
        feed=delta_header["feed"],
        version=delta_header["to_version"],
        previous_manifest_sha256=manifest_sha256(first),
        issued_at=ISSUED,
        expires_at=EXPIRES,
        entry_count=vectors["lthash"]["after_delta_entry_count"],
        state_digest=vectors["lthash"]["after_delta_digest"],
        delta=DeltaRef(
            from_version=delta_header["from_version"],
            sha256=vectors["delta"]["sha256"],
            size=vectors["delta"]["size"],
            records=delta_header["record_count"],
        ),
        snapshot=snapshot_ref,
    )
    manifest_envelope = sign_manifest(manifest, online)
    section = {
        "warning": "TEST KEYS derived from public seeds; never trust them outside tests.",
        "root_seed_hex": ROOT_SEED.hex(),
        "root_keyid": root.keyid,
        "root_public_key": public_key_b64(root),
        "online_seed_hex": ONLINE_SEED.hex(),
        "online_keyid": online.keyid,
        "keyring_file": "keyring.json",
        "keyring_sha256": hashlib.sha256(keyring_envelope).hexdigest(),
        "manifest_v1_file": "manifest-v1.json",
        "manifest_v1_sha256": hashlib.sha256(first_envelope).hexdigest(),
        "manifest_v1_payload_sha256": manifest_sha256(first),
        "manifest_v1_payload": base64.b64decode(json.loads(first_envelope)["payload"]).decode(),
        "manifest_file": "manifest.json",
        "manifest_sha256": hashlib.sha256(manifest_envelope).hexdigest(),
        "manifest_payload_sha256": manifest_sha256(manifest),
        "manifest_payload": base64.b64decode(json.loads(manifest_envelope)["payload"]).decode(),
        "verify_at": "2026-12-01T00:00:00Z",
    }
    files = {
        "keyring.json": keyring_envelope,
        "manifest-v1.json": first_envelope,
        "manifest.json": manifest_envelope,
    }
    return files, section


def main() -> None:
    path = HERE / "vectors.json"
    document = json.loads(path.read_text())
    files, section = generate(document)
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    document["signing"] = section
    path.write_text(json.dumps(document, indent=2, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
