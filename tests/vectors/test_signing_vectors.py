"""The committed keyring and manifest vectors are reproducible and verify from the pinned root;
the manifest's digests name the committed bundles and the state after the delta."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hashsync_client.signing import (
    manifest_sha256,
    parse_timestamp,
    verify_keyring_chain,
    verify_manifest,
)
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


def test_the_snapshot_version_has_its_own_signed_manifest_and_version_2_links_to_it():
    now = parse_timestamp(SIGNING["verify_at"])
    keyring = verify_keyring_chain(
        [(HERE / SIGNING["keyring_file"]).read_bytes()],
        pinned_root_keyids={SIGNING["root_keyid"]},
        now=now,
    )
    first = verify_manifest(
        (HERE / SIGNING["manifest_v1_file"]).read_bytes(), keyring=keyring, now=now
    )
    second = verify_manifest(
        (HERE / SIGNING["manifest_file"]).read_bytes(), keyring=keyring, now=now
    )

    snapshot = (HERE / VECTORS["snapshot"]["file"]).read_bytes()
    assert first["version"] == 1 and first["delta"] is None
    assert first["snapshot"] == second["snapshot"]
    assert first["snapshot"]["sha256"] == hashlib.sha256(snapshot).hexdigest()
    assert first["state_digest"] == VECTORS["lthash"]["snapshot_digest"]
    assert first["entry_count"] == len(VECTORS["snapshot"]["records"]) == 20
    assert second["previous_manifest_sha256"] == manifest_sha256(first)
    assert second["entry_count"] == VECTORS["lthash"]["after_delta_entry_count"] == 19
