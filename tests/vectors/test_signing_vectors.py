"""The committed keyring and manifest vectors are reproducible and verify from the pinned root;
the manifest's digests name the committed bundles and the state after the delta."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hashsync_client.signing import parse_timestamp, verify_keyring_chain, verify_manifest
from tests.vectors.make_signing_vectors import generate

HERE = Path(__file__).resolve().parent
VECTORS = json.loads((HERE / "vectors.json").read_text())
SIGNING = VECTORS["signing"]


def test_signing_vectors_regenerate_byte_for_byte():
    files, section = generate(VECTORS)
    for name, data in files.items():
        assert (HERE / name).read_bytes() == data, name
    assert section == SIGNING


def test_the_manifest_vector_verifies_from_the_pinned_root_and_names_the_bundles():
    now = parse_timestamp(SIGNING["verify_at"])
    keyring_bytes = (HERE / SIGNING["keyring_file"]).read_bytes()
    manifest_bytes = (HERE / SIGNING["manifest_file"]).read_bytes()
    assert hashlib.sha256(keyring_bytes).hexdigest() == SIGNING["keyring_sha256"]
    assert hashlib.sha256(manifest_bytes).hexdigest() == SIGNING["manifest_sha256"]

    keyring = verify_keyring_chain(
        [keyring_bytes], pinned_root_keyids={SIGNING["root_keyid"]}, now=now
    )
    manifest = verify_manifest(manifest_bytes, keyring=keyring, now=now)

    for part in ("snapshot", "delta"):
        data = (HERE / VECTORS[part]["file"]).read_bytes()
        assert manifest[part]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest[part]["size"] == len(data)
    assert manifest["state_digest"] == VECTORS["lthash"]["after_delta_digest"]
