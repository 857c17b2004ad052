"""Envelopes, keys, keyring chains and manifests (``hashsync_client.signing``). No database.

Every key here is derived from a fixed, published seed: test vectors, never real keys. Every
digest in a manifest is the SHA-256 of a made-up string (synthetic, not a real bundle).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashsync_client.signing import (
    KEYRING_PAYLOAD_TYPE,
    MANIFEST_PAYLOAD_TYPE,
    MAX_CLOCK_SKEW,
    MAX_ENVELOPE_BYTES,
    DeltaRef,
    KeyFormatError,
    Keyring,
    SignatureError,
    SigningKey,
    SigningKeyEntry,
    SnapshotRef,
    build_keyring,
    canonical_json,
    cosign_envelope,
    envelope_signatures,
    format_timestamp,
    generate_key,
    keyid_of,
    load_private_key,
    load_public_key_b64,
    manifest_payload,
    manifest_sha256,
    open_envelope,
    pae,
    parse_keyring_unverified,
    parse_timestamp,
    public_key_b64,
    sign_envelope,
    sign_keyring,
    sign_manifest,
    verify_keyring_chain,
    verify_manifest,
    write_private_key,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "signing.md"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def fixed_key(n: int) -> SigningKey:
    """Deterministic key number ``n`` (seed = 32 bytes of ``n``): a test vector."""
    return SigningKey(Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32))


ROOT_A, ROOT_B, ROOT_C, ATTACKER = fixed_key(1), fixed_key(2), fixed_key(3), fixed_key(66)
ONLINE_1, ONLINE_2 = fixed_key(11), fixed_key(12)


def synthetic_sha256(label: str) -> str:
    return hashlib.sha256(f"synthetic {label}".encode()).hexdigest()


def manifest(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "hashsync/manifest",
        "format": 1,
        "feed": "pdq-baseline",
        "version": 42,
        "previous_manifest_sha256": synthetic_sha256("manifest 41"),
        "issued_at": format_timestamp(NOW - timedelta(hours=1)),
        "expires_at": format_timestamp(NOW + 7 * DAY),
        "entry_count": 1000,
        "state_digest": "lthash16:" + base64.b64encode(b"synthetic state").decode(),
        "delta": {
            "from_version": 41,
            "sha256": synthetic_sha256("delta"),
            "size": 5120,
            "records": 12,
        },
        "snapshot": {"version": 40, "sha256": synthetic_sha256("snapshot"), "size": 1 << 20},
    }
    base.update(overrides)
    return base


def keyring(
    version: int = 1,
    *,
    roots: Sequence[SigningKey] = (ROOT_A,),
    threshold: int = 1,
    online: Sequence[SigningKeyEntry] | None = None,
    issued_at: datetime = NOW - 30 * DAY,
    expires_at: datetime = NOW + 300 * DAY,
) -> Keyring:
    if online is None:
        online = [SigningKeyEntry.of(ONLINE_1, valid_from=NOW - 60 * DAY, valid_until=NOW + DAY)]
    return build_keyring(
        version=version,
        issued_at=issued_at,
        expires_at=expires_at,
        root_keys=list(roots),
        root_threshold=threshold,
        signing_keys=list(online),
    )


def pins(*keys: SigningKey) -> set[str]:
    return {key.keyid for key in keys}


def rewrite(envelope: bytes, **changes: Any) -> bytes:
    """The envelope with top-level fields replaced (for tampering), re-encoded canonically."""
    obj = json.loads(envelope)
    obj.update(changes)
    return canonical_json(obj)


def assert_refused(code: str, call: Any, *args: Any, **kwargs: Any) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    return info.value


# --- canonical JSON and timestamps -----------------------------------------------------------


def test_canonical_json_sorts_keys_without_spaces_in_utf8() -> None:
    assert (
        canonical_json({"b": [1, True, None], "a": "é"}) == '{"a":"é","b":[1,true,null]}'.encode()
    )


@pytest.mark.parametrize("value", [1.0, {"a": [0.5]}, float("nan"), {1: "x"}, {"a": b"x"}])
def test_canonical_json_refuses_floats_non_string_keys_and_other_types(value: Any) -> None:
    with pytest.raises(TypeError):
        canonical_json(value)


def test_timestamps_are_utc_whole_seconds_with_z() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2025, 1, 31, 13, 0, 0, 999_999, tzinfo=ZoneInfo("Europe/London"))
    assert format_timestamp(local) == "2025-01-31T13:00:00Z"
    assert parse_timestamp("2025-01-31T13:00:00Z") == datetime(2025, 1, 31, 13, tzinfo=UTC)
    for bad in ("2025-01-31T13:00:00+00:00", "2025-01-31 13:00:00Z", "2025-01-31T13:00:00.5Z"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2025, 1, 31))


# --- DSSE envelopes --------------------------------------------------------------------------


def test_pae_matches_the_dsse_specification_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_envelope_round_trip_with_threshold_of_two() -> None:
    envelope = sign_envelope(b"payload \x00\xff", "application/x-test", [ROOT_B, ROOT_A])
    trusted = {ROOT_A.keyid: ROOT_A.public_key, ROOT_B.keyid: ROOT_B.public_key}
    payload = open_envelope(
        envelope, payload_type="application/x-test", trusted=trusted, threshold=2
    )
    assert payload == b"payload \x00\xff"


def test_envelope_is_canonical_json_with_signatures_sorted_by_keyid() -> None:
    envelope = sign_envelope(b"x", "application/x-test", [ROOT_B, ROOT_A, ROOT_C, ROOT_A])
    obj = json.loads(envelope)
    assert canonical_json(obj) == envelope
    assert list(obj) == ["payload", "payloadType", "signatures"]
    keyids = [entry["keyid"] for entry in obj["signatures"]]
    assert keyids == sorted({ROOT_A.keyid, ROOT_B.keyid, ROOT_C.keyid})
    assert all(list(entry) == ["keyid", "sig"] for entry in obj["signatures"])


def test_envelope_signatures_names_each_signer_without_checking() -> None:
    envelope = sign_envelope(b"x", "application/x-test", [ROOT_B, ROOT_A])
    found = envelope_signatures(envelope, payload_type="application/x-test")
    assert [keyid for keyid, _ in found] == sorted([ROOT_A.keyid, ROOT_B.keyid])
    message = pae("application/x-test", b"x")
    for keyid, sig in found:
        key = ROOT_A if keyid == ROOT_A.keyid else ROOT_B
        key.public_key.verify(sig, message)  # the raw signature bytes, as signed
    with pytest.raises(SignatureError) as refused:
        envelope_signatures(envelope, payload_type="application/x-other")
    assert refused.value.code == "wrong_payload_type"


def test_keyid_is_sha256_of_the_raw_public_key() -> None:
    raw = ROOT_A.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert ROOT_A.keyid == hashlib.sha256(raw).hexdigest() == keyid_of(ROOT_A.public_key)


def open_a(envelope: bytes, threshold: int = 1) -> bytes:
    return open_envelope(
        envelope,
        payload_type="application/x-test",
        trusted={ROOT_A.keyid: ROOT_A.public_key, ROOT_B.keyid: ROOT_B.public_key},
        threshold=threshold,
    )


def test_tampered_payload_byte_is_refused() -> None:
    envelope = sign_envelope(b"version 42", "application/x-test", [ROOT_A])
    tampered = rewrite(envelope, payload=base64.b64encode(b"version 43").decode())
    assert_refused("signature_threshold", open_a, tampered)


def test_tampered_signature_is_refused() -> None:
    envelope = sign_envelope(b"version 42", "application/x-test", [ROOT_A])
    obj = json.loads(envelope)
    sig = bytearray(base64.b64decode(obj["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    obj["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    assert_refused("signature_threshold", open_a, canonical_json(obj))


def test_wrong_payload_type_is_refused() -> None:
    envelope = sign_envelope(b"x", KEYRING_PAYLOAD_TYPE, [ROOT_A])
    error = assert_refused("wrong_payload_type", open_a, envelope)
    assert KEYRING_PAYLOAD_TYPE in str(error)
    # Relabelling the type does not help: the type is inside the signed PAE.
    assert_refused(
        "signature_threshold", open_a, rewrite(envelope, payloadType="application/x-test")
    )


def test_signature_from_an_unknown_key_is_refused() -> None:
    envelope = sign_envelope(b"x", "application/x-test", [ATTACKER])
    error = assert_refused("signature_threshold", open_a, envelope)
    assert "none of its signatures is from a trusted key" in str(error)


def test_unknown_key_claiming_a_trusted_keyid_is_refused() -> None:
    envelope = sign_envelope(b"x", "application/x-test", [ATTACKER])
    obj = json.loads(envelope)
    obj["signatures"][0]["keyid"] = ROOT_A.keyid
    assert_refused("signature_threshold", open_a, canonical_json(obj))


def test_threshold_not_met_is_refused() -> None:
    envelope = sign_envelope(b"x", "application/x-test", [ROOT_A, ATTACKER])
    assert open_a(envelope, threshold=1) == b"x"
    error = assert_refused("signature_threshold", open_a, envelope, threshold=2)
    assert "1 trusted key(s), 2 required" in str(error)


def test_duplicate_signatures_from_one_key_count_once() -> None:
    envelope = sign_envelope(b"x", "application/x-test", [ROOT_A])
    obj = json.loads(envelope)
    obj["signatures"] = obj["signatures"] * 3
    assert open_a(canonical_json(obj), threshold=1) == b"x"
    assert_refused("signature_threshold", open_a, canonical_json(obj), threshold=2)


def test_one_key_under_two_keyids_is_a_caller_error() -> None:
    envelope = sign_envelope(b"x", "application/x-test", [ROOT_A])
    with pytest.raises(ValueError, match="not the keyid of its public key"):
        open_envelope(
            envelope,
            payload_type="application/x-test",
            trusted={ROOT_A.keyid: ROOT_A.public_key, "alias": ROOT_A.public_key},
            threshold=2,
        )


def test_oversized_envelope_is_refused_before_parsing() -> None:
    assert_refused("envelope_too_large", open_a, b"{" * (MAX_ENVELOPE_BYTES + 1))
    with pytest.raises(ValueError, match="MAX_ENVELOPE_BYTES"):
        sign_envelope(b"x" * MAX_ENVELOPE_BYTES, "application/x-test", [ROOT_A])


GOOD = sign_envelope(b"x", "application/x-test", [ROOT_A])
GOOD_SIG = json.loads(GOOD)["signatures"][0]


@pytest.mark.parametrize(
    "envelope",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"payload":"eA==","payloadType":"application/x-test"}',
        b'{"payload":"eA==","payloadType":"application/x-test","signatures":{}}',
        b'{"payload":"e!A=","payloadType":"application/x-test","signatures":[]}',
        b'{"payload":1,"payloadType":"application/x-test","signatures":[]}',
        b'{"payloadType":"application/x-test","signatures":[]}',
        b'{"payload":"eA==","signatures":[]}',
        b'{"payload":"eA==","payload":"eQ==","payloadType":"application/x-test","signatures":[]}',
        canonical_json({"payload": "eA==", "payloadType": "application/x-test", "signatures": [1]}),
        canonical_json(
            {
                "payload": "eA==",
                "payloadType": "application/x-test",
                "signatures": [{"sig": GOOD_SIG["sig"]}],
            }
        ),
        canonical_json(
            {
                "payload": "eA==",
                "payloadType": "application/x-test",
                "signatures": [{"keyid": GOOD_SIG["keyid"], "sig": "***"}],
            }
        ),
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_envelope_is_refused(envelope: bytes) -> None:
    assert_refused("envelope_malformed", open_a, envelope)


def test_url_safe_unpadded_base64_is_accepted_as_dsse_requires() -> None:
    obj = json.loads(sign_envelope(b"\xfb\xff" * 10, "application/x-test", [ROOT_A]))
    obj["payload"] = base64.urlsafe_b64encode(b"\xfb\xff" * 10).decode().rstrip("=")
    obj["signatures"][0]["sig"] = (
        base64.urlsafe_b64encode(base64.b64decode(obj["signatures"][0]["sig"])).decode().rstrip("=")
    )
    assert "-" in obj["payload"] or "_" in obj["payload"]
    assert open_a(canonical_json(obj)) == b"\xfb\xff" * 10


def _with_payload_text(text: str) -> bytes:
    obj = json.loads(sign_envelope(b"\xfb\xff" * 10, "application/x-test", [ROOT_A]))
    obj["payload"] = text
    return canonical_json(obj)


_PAYLOAD = b"\xfb\xff" * 10  # 20 bytes: standard "+/v/" ... "+/8=", one padding character


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(_PAYLOAD).decode(),
        base64.b64encode(_PAYLOAD).decode().rstrip("="),
        base64.urlsafe_b64encode(_PAYLOAD).decode(),
        base64.urlsafe_b64encode(_PAYLOAD).decode().rstrip("="),
    ],
)
def test_either_alphabet_with_or_without_padding_is_accepted(text: str) -> None:
    assert open_a(_with_payload_text(text)) == _PAYLOAD


@pytest.mark.parametrize(
    "text",
    [
        "+/v_" + base64.b64encode(_PAYLOAD).decode()[4:],  # two alphabets in one string
        base64.b64encode(_PAYLOAD).decode() + "=",  # one "=" too many
        base64.b64encode(_PAYLOAD).decode()[:-1] + "==",  # wrong padding for the length
        base64.b64encode(_PAYLOAD).decode()[:-2] + "9=",  # unused bits not zero ("8" is right)
        base64.b64encode(_PAYLOAD).decode()[:10] + "\n" + base64.b64encode(_PAYLOAD).decode()[10:],
        base64.b64encode(_PAYLOAD).decode().rstrip("=")[:-2],  # a length of 1 mod 4
    ],
)
def test_other_base64_variations_are_refused(text: str) -> None:
    assert_refused("envelope_malformed", open_a, _with_payload_text(text))


@pytest.mark.parametrize("number", [b"9007199254740992", b"-1", b"18446744073709551616"])
def test_integers_outside_0_to_2_53_minus_1_are_refused_in_signed_payloads(number: bytes) -> None:
    payload = canonical_json(manifest()).replace(b'"entry_count":1000', b'"entry_count":' + number)
    assert number in payload
    envelope = sign_envelope(payload, MANIFEST_PAYLOAD_TYPE, [ONLINE_1])
    ring = verify_keyring_chain(
        [sign_keyring(keyring(1), [ROOT_A])], pinned_root_keyids=pins(ROOT_A), now=NOW
    )
    assert_refused("manifest_malformed", verify_manifest, envelope, keyring=ring, now=NOW)


def test_the_largest_exact_integer_is_accepted_in_a_signed_payload() -> None:
    payload = canonical_json(manifest(entry_count=2**53 - 1))
    envelope = sign_envelope(payload, MANIFEST_PAYLOAD_TYPE, [ONLINE_1])
    ring = verify_keyring_chain(
        [sign_keyring(keyring(1), [ROOT_A])], pinned_root_keyids=pins(ROOT_A), now=NOW
    )
    assert verify_manifest(envelope, keyring=ring, now=NOW)["entry_count"] == 2**53 - 1


def test_a_public_key_has_one_text_padded_with_zero_unused_bits() -> None:
    text = public_key_b64(ROOT_A)
    assert text.endswith("=")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(text[-2])
    other = (
        text[:-2]
        + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last ^ 1]
        + "="
    )
    for bad in (text.rstrip("="), other, text.replace("+", "-").replace("/", "_")):
        if bad == text:
            continue
        with pytest.raises(KeyFormatError):
            load_public_key_b64(bad)


def test_cosign_adds_a_second_signature_for_a_threshold() -> None:
    first = sign_envelope(b"x", "application/x-test", [ROOT_A])
    assert_refused("signature_threshold", open_a, first, threshold=2)
    both = cosign_envelope(first, payload_type="application/x-test", keys=[ROOT_B])
    assert open_a(both, threshold=2) == b"x"
    assert both == sign_envelope(b"x", "application/x-test", [ROOT_A, ROOT_B])
    assert_refused(
        "wrong_payload_type", cosign_envelope, first, payload_type="other", keys=[ROOT_B]
    )


def test_signing_needs_a_key_and_checking_needs_a_positive_threshold() -> None:
    with pytest.raises(ValueError):
        sign_envelope(b"x", "application/x-test", [])
    with pytest.raises(ValueError):
        open_a(GOOD, threshold=0)


# --- keys ------------------------------------------------------------------------------------


def test_private_key_file_is_0600_round_trips_and_leaves_no_temporary(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "online.pem"
    old_umask = os.umask(0)  # a permissive umask must not loosen the file
    try:
        write_private_key(path, key)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_private_key(path).keyid == key.keyid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["online.pem"]


def test_private_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "online.pem"
    write_private_key(path, ROOT_A)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_private_key(path, ROOT_B)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["online.pem"]


def test_key_file_created_by_someone_else_after_the_check_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "online.pem"
    path.write_bytes(b"written by a concurrent process")

    # The file "appears" between the early existence check and the final link.
    monkeypatch.setattr("hashsync_client.signing.keys.os.path.lexists", lambda _path: False)
    with pytest.raises(FileExistsError):
        write_private_key(path, ROOT_A)
    assert path.read_bytes() == b"written by a concurrent process"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["online.pem"]


def test_encrypted_private_key_needs_its_password(tmp_path: Path) -> None:
    path = tmp_path / "root.pem"
    write_private_key(path, ROOT_A, password=b"correct horse")
    assert b"ENCRYPTED" in path.read_bytes()
    assert load_private_key(path, password=b"correct horse").keyid == ROOT_A.keyid
    with pytest.raises(KeyFormatError):
        load_private_key(path, password=b"wrong")
    with pytest.raises(KeyFormatError):
        load_private_key(path)


def test_loading_a_non_ed25519_or_garbage_key_file_is_refused(tmp_path: Path) -> None:
    ec_path = tmp_path / "ec.pem"
    ec_path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ec_path.chmod(0o600)
    with pytest.raises(KeyFormatError, match="expected an Ed25519 key"):
        load_private_key(ec_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    with pytest.raises(KeyFormatError):
        load_private_key(garbage)


def test_loose_key_file_permissions_are_warned_about_without_key_material(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "online.pem"
    write_private_key(path, ROOT_A)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="hashsync_client.signing"):
        assert load_private_key(path).keyid == ROOT_A.keyid
    assert "group or others" in caplog.text
    pem_body = path.read_text().splitlines()[1]
    assert pem_body not in caplog.text


def test_signing_key_repr_shows_the_keyid_only() -> None:
    raw = ROOT_A.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    text = repr(ROOT_A) + str(ROOT_A)
    assert ROOT_A.keyid in text
    assert raw.hex() not in text and base64.b64encode(raw).decode() not in text


def test_public_key_base64_round_trip_and_refusals() -> None:
    text = public_key_b64(ROOT_A)
    assert text == public_key_b64(ROOT_A.public_key)
    assert keyid_of(load_public_key_b64(text)) == ROOT_A.keyid
    for bad in ("", "not base64!", base64.b64encode(b"\x00" * 31).decode(), 42):
        with pytest.raises(KeyFormatError):
            load_public_key_b64(bad)  # type: ignore[arg-type]


# --- keyrings --------------------------------------------------------------------------------


def test_keyring_round_trip_from_a_pinned_root() -> None:
    ring = keyring()
    trusted = verify_keyring_chain(
        [sign_keyring(ring, [ROOT_A])], pinned_root_keyids=pins(ROOT_A), now=NOW
    )
    assert trusted == ring
    assert trusted.root_keyids == {ROOT_A.keyid}
    payload = json.loads(ring.to_payload())
    assert payload["type"] == "hashsync/keyring"
    assert payload["root"] == {
        "threshold": 1,
        "keys": [{"keyid": ROOT_A.keyid, "public_key": public_key_b64(ROOT_A)}],
    }
    assert payload["signing_keys"][0]["valid_until"] == format_timestamp(NOW + DAY)


def test_signing_key_validity_window_is_half_open() -> None:
    entry = SigningKeyEntry.of(ONLINE_1, valid_from=NOW, valid_until=NOW + DAY)
    ring = keyring(online=[entry])
    assert ring.signing_key_valid_at(ONLINE_1.keyid, NOW) is not None
    assert ring.signing_key_valid_at(ONLINE_1.keyid, NOW + DAY - timedelta(seconds=1)) is not None
    assert ring.signing_key_valid_at(ONLINE_1.keyid, NOW - timedelta(seconds=1)) is None
    assert ring.signing_key_valid_at(ONLINE_1.keyid, NOW + DAY) is None
    assert ring.signing_key_valid_at(ONLINE_2.keyid, NOW) is None


def test_signing_key_rotation_under_the_same_root_needs_one_set_of_signatures() -> None:
    v1 = keyring(1)
    v2 = keyring(
        2,
        online=[
            SigningKeyEntry.of(ONLINE_1, valid_from=NOW - 60 * DAY, valid_until=NOW),
            SigningKeyEntry.of(ONLINE_2, valid_from=NOW - DAY, valid_until=NOW + 90 * DAY),
        ],
    )
    chain = [sign_keyring(v1, [ROOT_A]), sign_keyring(v2, [ROOT_A])]
    trusted = verify_keyring_chain(chain, pinned_root_keyids=pins(ROOT_A), now=NOW)
    assert trusted.version == 2
    assert trusted.signing_key_valid_at(ONLINE_2.keyid, NOW) is not None
    assert trusted.signing_key_valid_at(ONLINE_1.keyid, NOW) is None


def test_root_rotation_signed_by_old_and_new_root_is_accepted() -> None:
    v1 = keyring(1, roots=[ROOT_A])
    v2 = keyring(2, roots=[ROOT_B])
    v3 = keyring(3, roots=[ROOT_B])
    chain = [
        sign_keyring(v1, [ROOT_A]),
        sign_keyring(v2, [ROOT_A, ROOT_B]),
        sign_keyring(v3, [ROOT_B]),
    ]
    trusted = verify_keyring_chain(chain, pinned_root_keyids=pins(ROOT_A), now=NOW)
    assert trusted.version == 3 and trusted.root_keyids == {ROOT_B.keyid}
    # The client re-pins to the root it now trusts and walks only the rest of the chain.
    again = verify_keyring_chain(
        chain[2:], pinned_root_keyids=trusted.root_keyids, now=NOW, min_version=trusted.version
    )
    assert again == trusted


def test_root_rotation_signed_only_by_the_new_root_is_refused() -> None:
    chain = [
        sign_keyring(keyring(1, roots=[ROOT_A]), [ROOT_A]),
        sign_keyring(keyring(2, roots=[ATTACKER]), [ATTACKER]),
    ]
    error = assert_refused(
        "signature_threshold", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
    )
    assert "previous root" in str(error)


def test_root_rotation_signed_only_by_the_old_root_is_refused() -> None:
    chain = [
        sign_keyring(keyring(1, roots=[ROOT_A]), [ROOT_A]),
        sign_keyring(keyring(2, roots=[ROOT_B]), [ROOT_A]),
    ]
    error = assert_refused(
        "signature_threshold", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
    )
    assert "its own root" in str(error)


def test_threshold_root_needs_a_threshold_of_old_root_signatures() -> None:
    v1 = keyring(1, roots=[ROOT_A, ROOT_B, ROOT_C], threshold=2)
    v2 = keyring(2, roots=[ROOT_A, ROOT_B, ROOT_C], threshold=2)
    one_signature = [sign_keyring(v1, [ROOT_A, ROOT_B]), sign_keyring(v2, [ROOT_A])]
    assert_refused(
        "signature_threshold",
        verify_keyring_chain,
        one_signature,
        pinned_root_keyids=pins(ROOT_A, ROOT_B, ROOT_C),
        now=NOW,
    )
    two = [one_signature[0], sign_keyring(v2, [ROOT_C, ROOT_B])]
    assert verify_keyring_chain(two, pinned_root_keyids=pins(ROOT_A, ROOT_B, ROOT_C), now=NOW) == v2


def test_keyring_version_gap_is_refused() -> None:
    chain = [sign_keyring(keyring(1), [ROOT_A]), sign_keyring(keyring(3), [ROOT_A])]
    assert_refused(
        "version_gap", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
    )


def test_keyring_rollback_within_the_chain_is_refused() -> None:
    v1, v2 = sign_keyring(keyring(1), [ROOT_A]), sign_keyring(keyring(2), [ROOT_A])
    for chain in ([v1, v2, v1], [v1, v2, v2], [v2, v1]):
        assert_refused(
            "rollback", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
        )


def test_keyring_older_than_the_version_already_trusted_is_refused() -> None:
    chain = [sign_keyring(keyring(1), [ROOT_A]), sign_keyring(keyring(2), [ROOT_A])]
    verify = verify_keyring_chain
    assert verify(chain, pinned_root_keyids=pins(ROOT_A), now=NOW, min_version=2).version == 2
    assert_refused(
        "rollback", verify, chain[:1], pinned_root_keyids=pins(ROOT_A), now=NOW, min_version=2
    )


def test_keyring_from_a_root_that_is_not_pinned_is_refused() -> None:
    chain = [sign_keyring(keyring(1, roots=[ATTACKER]), [ATTACKER])]
    error = assert_refused(
        "untrusted_root", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
    )
    assert "not the one this client pins" in str(error)


def test_listing_a_pinned_keyid_without_its_signature_is_refused() -> None:
    # The attacker's root names the pinned key next to their own, threshold 1, self-signed.
    forged = keyring(1, roots=[ROOT_A, ATTACKER], threshold=1)
    chain = [sign_keyring(forged, [ATTACKER])]
    assert_refused(
        "untrusted_root", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
    )


def test_pinned_threshold_stops_one_stolen_root_key_from_re_rooting() -> None:
    # Holder of ROOT_A alone (of a 2-of-3 root) mints a root of just ROOT_A, threshold 1.
    forged = [sign_keyring(keyring(1, roots=[ROOT_A], threshold=1), [ROOT_A])]
    three = pins(ROOT_A, ROOT_B, ROOT_C)
    assert_refused(
        "untrusted_root",
        verify_keyring_chain,
        forged,
        pinned_root_keyids=three,
        now=NOW,
        pinned_threshold=2,
    )
    genuine = keyring(1, roots=[ROOT_A, ROOT_B, ROOT_C], threshold=2)
    chain = [sign_keyring(genuine, [ROOT_A, ROOT_C])]
    assert verify_keyring_chain(chain, pinned_root_keyids=three, now=NOW, pinned_threshold=2)


def test_expired_final_keyring_is_refused() -> None:
    chain = [sign_keyring(keyring(1, expires_at=NOW), [ROOT_A])]
    assert_refused(
        "keyring_expired", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
    )


def test_expired_intermediate_keyring_is_accepted() -> None:
    old = keyring(1, issued_at=NOW - 400 * DAY, expires_at=NOW - 35 * DAY)
    chain = [sign_keyring(old, [ROOT_A]), sign_keyring(keyring(2), [ROOT_A])]
    assert verify_keyring_chain(chain, pinned_root_keyids=pins(ROOT_A), now=NOW).version == 2


def test_manifest_envelope_is_not_accepted_as_a_keyring() -> None:
    chain = [sign_envelope(keyring(1).to_payload(), MANIFEST_PAYLOAD_TYPE, [ROOT_A])]
    assert_refused(
        "wrong_payload_type", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
    )


def test_empty_chain_and_empty_pins() -> None:
    assert_refused(
        "keyring_chain_empty", verify_keyring_chain, [], pinned_root_keyids=pins(ROOT_A), now=NOW
    )
    with pytest.raises(ValueError, match="pinned"):
        verify_keyring_chain([GOOD], pinned_root_keyids=set(), now=NOW)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.replace(b'"version":1', b'"version":0'),
        lambda p: p.replace(b'"version":1', b'"version":true'),
        lambda p: p.replace(b'"threshold":1', b'"threshold":2'),
        lambda p: p.replace(b'"type":"hashsync/keyring"', b'"type":"hashsync/manifest"'),
        lambda p: p.replace(b'"signing_keys":[', b'"signing_keyz":['),
        lambda p: p.replace(b"Z", b"+00:00", 1),
        lambda p: p.replace(b'"version":1', b'"version":1.0'),
        lambda p: p[:-1] + b', "x":1}',  # not canonical
        lambda p: p.replace(b'"keys":[{"keyid":"', b'"keys":[{"keyid":"00'),  # keyid mismatch
    ],
)
def test_malformed_keyring_payload_is_refused_even_when_properly_signed(mutate: Any) -> None:
    payload = mutate(keyring(1).to_payload())
    chain = [sign_envelope(payload, KEYRING_PAYLOAD_TYPE, [ROOT_A])]
    assert_refused(
        "keyring_malformed", verify_keyring_chain, chain, pinned_root_keyids=pins(ROOT_A), now=NOW
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"roots": []}, "at least one root key"),
        ({"threshold": 2}, "exceeds"),
        ({"threshold": 0}, "threshold"),
        ({"version": 0}, "version"),
        ({"expires_at": NOW - 30 * DAY}, "expires_at"),
        ({"roots": [ROOT_A, ROOT_A]}, "listed twice"),
        (
            {"online": [SigningKeyEntry.of(ROOT_A, valid_from=NOW, valid_until=NOW + DAY)]},
            "root key cannot also be",
        ),
        (
            {"online": [SigningKeyEntry.of(ONLINE_1, valid_from=NOW, valid_until=NOW)]},
            "valid_until",
        ),
    ],
)
def test_build_keyring_refuses_an_invalid_keyring(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        keyring(**overrides)


def test_parse_keyring_unverified_reads_without_checking_signatures() -> None:
    envelope = sign_keyring(keyring(7), [ATTACKER])
    assert parse_keyring_unverified(envelope).version == 7


def test_naive_now_is_a_caller_error() -> None:
    chain = [sign_keyring(keyring(1), [ROOT_A])]
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_keyring_chain(chain, pinned_root_keyids=pins(ROOT_A), now=datetime(2025, 6, 1))


# --- manifests -------------------------------------------------------------------------------

RING = keyring()


def check(envelope: bytes, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"keyring": RING, "now": NOW}
    options.update(kwargs)
    return verify_manifest(envelope, **options)


def test_manifest_round_trip() -> None:
    envelope = sign_manifest(manifest(), ONLINE_1)
    assert json.loads(envelope)["payloadType"] == MANIFEST_PAYLOAD_TYPE
    assert check(envelope, feed="pdq-baseline", min_version=42) == manifest()


def test_manifest_payload_lays_out_format_1_as_documented() -> None:
    # manifest() above is written out by hand from docs/signing.md: the layout function used
    # by the server, the fake server and the vectors must give exactly that object.
    built = manifest_payload(
        feed="pdq-baseline",
        version=42,
        previous_manifest_sha256=synthetic_sha256("manifest 41"),
        issued_at=NOW - timedelta(hours=1) + timedelta(microseconds=999_999),  # cut to seconds
        expires_at=NOW + 7 * DAY,
        entry_count=1000,
        state_digest="lthash16:" + base64.b64encode(b"synthetic state").decode(),
        delta=DeltaRef(from_version=41, sha256=synthetic_sha256("delta"), size=5120, records=12),
        snapshot=SnapshotRef(version=40, sha256=synthetic_sha256("snapshot"), size=1 << 20),
    )
    assert built == manifest()
    assert check(sign_manifest(built, ONLINE_1), feed="pdq-baseline") == manifest()


def test_a_first_manifest_without_bundles_is_laid_out_with_nulls() -> None:
    first = manifest_payload(
        feed="pdq-baseline",
        version=0,
        previous_manifest_sha256=None,
        issued_at=NOW - timedelta(hours=1),
        expires_at=NOW + DAY,
        entry_count=0,
        state_digest="lthash16:" + base64.b64encode(b"synthetic empty").decode(),
        delta=None,
        snapshot=None,
    )
    assert (first["previous_manifest_sha256"], first["delta"], first["snapshot"]) == (None,) * 3
    assert check(sign_manifest(first, ONLINE_1))["version"] == 0


def test_manifest_sha256_is_the_sha256_of_the_signed_payload() -> None:
    envelope = sign_manifest(manifest(), ONLINE_1)
    payload = base64.b64decode(json.loads(envelope)["payload"])
    assert manifest_sha256(manifest()) == hashlib.sha256(payload).hexdigest()


def test_expired_manifest_is_refused() -> None:
    envelope = sign_manifest(manifest(expires_at=format_timestamp(NOW)), ONLINE_1)
    assert_refused("manifest_expired", check, envelope)
    assert check(envelope, now=NOW - timedelta(seconds=1))["version"] == 42


def test_manifest_signed_before_its_key_was_valid_is_refused() -> None:
    entry = SigningKeyEntry.of(ONLINE_1, valid_from=NOW, valid_until=NOW + 30 * DAY)
    ring = keyring(online=[entry])
    envelope = sign_manifest(manifest(issued_at=format_timestamp(NOW - DAY)), ONLINE_1)
    assert_refused("key_not_valid", check, envelope, keyring=ring)


def test_manifest_signed_after_its_key_expired_is_refused() -> None:
    entry = SigningKeyEntry.of(ONLINE_1, valid_from=NOW - 30 * DAY, valid_until=NOW - DAY)
    ring = keyring(online=[entry])
    envelope = sign_manifest(manifest(issued_at=format_timestamp(NOW - DAY)), ONLINE_1)
    assert_refused("key_not_valid", check, envelope, keyring=ring)
    # Issued while the key was valid: still good after the key was retired, until it expires.
    earlier = sign_manifest(manifest(issued_at=format_timestamp(NOW - 2 * DAY)), ONLINE_1)
    assert check(earlier, keyring=ring)["version"] == 42


def test_manifest_signed_by_a_key_not_in_the_keyring_is_refused() -> None:
    assert_refused("signature_threshold", check, sign_manifest(manifest(), ONLINE_2))
    # Nor by a root key: roots sign keyrings, not manifests.
    assert_refused("signature_threshold", check, sign_manifest(manifest(), ROOT_A))


def test_tampered_manifest_is_refused() -> None:
    envelope = sign_manifest(manifest(), ONLINE_1)
    forged = canonical_json(manifest(entry_count=0))
    tampered = rewrite(envelope, payload=base64.b64encode(forged).decode())
    assert_refused("signature_threshold", check, tampered)


def test_manifest_for_another_feed_is_refused() -> None:
    envelope = sign_manifest(manifest(feed="md5-sha1-category-a"), ONLINE_1)
    assert_refused("wrong_feed", check, envelope, feed="pdq-baseline")


def test_manifest_older_than_the_version_held_is_refused_and_equal_is_accepted() -> None:
    envelope = sign_manifest(manifest(version=42), ONLINE_1)
    assert_refused("rollback", check, envelope, min_version=43)
    assert check(envelope, min_version=42)["version"] == 42


def test_manifest_issued_in_the_future_beyond_the_skew_is_refused() -> None:
    soon = sign_manifest(manifest(issued_at=format_timestamp(NOW + MAX_CLOCK_SKEW)), ONLINE_1)
    assert check(soon)["version"] == 42
    later = NOW + MAX_CLOCK_SKEW + timedelta(seconds=1)
    assert_refused(
        "issued_in_future",
        check,
        sign_manifest(manifest(issued_at=format_timestamp(later)), ONLINE_1),
    )


def test_manifest_checked_against_an_expired_keyring_is_refused() -> None:
    envelope = sign_manifest(manifest(), ONLINE_1)
    assert_refused("keyring_expired", check, envelope, keyring=keyring(expires_at=NOW))


def test_keyring_envelope_is_not_accepted_as_a_manifest() -> None:
    envelope = sign_envelope(canonical_json(manifest()), KEYRING_PAYLOAD_TYPE, [ONLINE_1])
    assert_refused("wrong_payload_type", check, envelope)


def test_unknown_manifest_format_is_refused() -> None:
    envelope = sign_envelope(canonical_json(manifest(format=2)), MANIFEST_PAYLOAD_TYPE, [ONLINE_1])
    assert_refused("unsupported_format", check, envelope)


def test_unknown_manifest_fields_are_ignored() -> None:
    envelope = sign_envelope(
        canonical_json(manifest(note="added by a later server")), MANIFEST_PAYLOAD_TYPE, [ONLINE_1]
    )
    assert check(envelope)["note"] == "added by a later server"


MALFORMED_MANIFESTS = [
    {"type": "hashsync/keyring"},
    {"feed": ""},
    {"feed": 7},
    {"version": -1},
    {"version": True},
    {"version": "42"},
    {"previous_manifest_sha256": "ABC"},
    {"previous_manifest_sha256": synthetic_sha256("x").upper()},
    {"issued_at": "yesterday"},
    {"expires_at": format_timestamp(NOW - 2 * DAY)},
    {"entry_count": -1},
    {"state_digest": ""},
    {"state_digest": None},
    {"delta": []},
    {"delta": {"from_version": 41, "sha256": synthetic_sha256("d"), "size": 1}},
    {"delta": {"from_version": 42, "sha256": synthetic_sha256("d"), "size": 1, "records": 1}},
    {"delta": {"from_version": 41, "sha256": "zz", "size": 1, "records": 1}},
    {"snapshot": {"version": 43, "sha256": synthetic_sha256("s"), "size": 1}},
    {"snapshot": {"version": 40, "sha256": synthetic_sha256("s"), "size": -5}},
]


@pytest.mark.parametrize("overrides", MALFORMED_MANIFESTS)
def test_malformed_manifest_is_refused_on_both_sides(overrides: dict[str, Any]) -> None:
    bad = manifest(**overrides)
    with pytest.raises(ValueError):
        sign_manifest(bad, ONLINE_1)
    envelope = sign_envelope(canonical_json(bad), MANIFEST_PAYLOAD_TYPE, [ONLINE_1])
    assert_refused("manifest_malformed", check, envelope)


@pytest.mark.parametrize("field", ["feed", "version", "delta", "snapshot", "state_digest"])
def test_manifest_missing_a_field_is_refused(field: str) -> None:
    bad = manifest()
    del bad[field]
    with pytest.raises(ValueError, match=field):
        sign_manifest(bad, ONLINE_1)
    envelope = sign_envelope(canonical_json(bad), MANIFEST_PAYLOAD_TYPE, [ONLINE_1])
    error = assert_refused("manifest_malformed", check, envelope)
    assert field in str(error)


def test_manifest_with_null_delta_and_snapshot_and_no_previous_is_valid() -> None:
    first = manifest(version=0, previous_manifest_sha256=None, delta=None, snapshot=None)
    assert check(sign_manifest(first, ONLINE_1))["version"] == 0


def test_manifest_with_floats_cannot_be_signed() -> None:
    with pytest.raises(TypeError):
        sign_manifest(manifest(entry_count=1.0), ONLINE_1)


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(manifest(), sort_keys=True).encode(),  # spaces: not canonical
        canonical_json(manifest()).replace(b'"feed"', b'"feed":"other","feed"'),  # duplicate key
        b"[1,2,3]",
        b"\xff",
    ],
)
def test_non_canonical_or_non_object_manifest_payload_is_refused(payload: bytes) -> None:
    envelope = sign_envelope(payload, MANIFEST_PAYLOAD_TYPE, [ONLINE_1])
    assert_refused("manifest_malformed", check, envelope)


def test_sign_manifest_refuses_a_key_the_keyring_does_not_allow() -> None:
    with pytest.raises(ValueError, match="does not allow"):
        sign_manifest(manifest(), ONLINE_2, keyring=RING)
    assert sign_manifest(manifest(), ONLINE_1, keyring=RING)


# --- known answers and the documentation -----------------------------------------------------

DOC_TEST_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def test_known_answer_manifest_envelope_bytes() -> None:
    """Ed25519 is deterministic: a fixed key and manifest give fixed envelope bytes. If this
    changes, every published envelope and third-party test vector changes with it."""
    fixed = {  # literal, so that editing the manifest() helper cannot move the answer
        "type": "hashsync/manifest",
        "format": 1,
        "feed": "example-feed",
        "version": 7,
        "previous_manifest_sha256": hashlib.sha256(b"synthetic manifest 6").hexdigest(),
        "issued_at": "2025-06-01T00:00:00Z",
        "expires_at": "2025-06-08T00:00:00Z",
        "entry_count": 3,
        "state_digest": "synthetic-state-digest",
        "delta": {
            "from_version": 6,
            "sha256": hashlib.sha256(b"synthetic delta 6-7").hexdigest(),
            "size": 120,
            "records": 1,
        },
        "snapshot": None,
    }
    envelope = sign_manifest(fixed, DOC_TEST_KEY)
    assert DOC_TEST_KEY.keyid == "56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c"
    assert hashlib.sha256(envelope).hexdigest() == (
        "921ae3484ced9c0f36e4e46b8bce7d4189a007551a0fb8ca2041898db52f7ef7"
    )


def doc_block(name: str) -> str:
    match = re.search(
        rf"<!-- example: {re.escape(name)} -->\n```[a-z]*\n(.*?)```", DOCS.read_text(), re.S
    )
    assert match, f"docs/signing.md has no example block {name!r}"
    return match.group(1)


def test_documented_test_key_pae_and_envelope_match_the_code() -> None:
    key_block = doc_block("test-public-key")
    assert public_key_b64(DOC_TEST_KEY) in key_block
    assert DOC_TEST_KEY.keyid in key_block
    payload = b'{"feed":"example"}'
    assert doc_block("pae").rstrip("\n").encode() == pae(MANIFEST_PAYLOAD_TYPE, payload)
    envelope = sign_envelope(payload, MANIFEST_PAYLOAD_TYPE, [DOC_TEST_KEY])
    assert doc_block("envelope").rstrip("\n").encode() == envelope


def test_documented_verification_example_runs_and_refuses_forgeries() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(doc_block("verify-manifest"), str(DOCS), "exec"), namespace)  # noqa: S102
    check_manifest = namespace["check_manifest"]
    ring_payload = json.loads(RING.to_payload())

    envelope = sign_manifest(manifest(), ONLINE_1)
    assert check_manifest(envelope, ring_payload, NOW) == manifest()

    tampered = rewrite(
        envelope, payload=base64.b64encode(canonical_json(manifest(version=43))).decode()
    )
    for forged in (tampered, sign_manifest(manifest(), ONLINE_2)):
        with pytest.raises(ValueError, match="no valid signature"):
            check_manifest(forged, ring_payload, NOW)
    with pytest.raises(ValueError, match="expired"):
        check_manifest(envelope, ring_payload, NOW + 30 * DAY)
    with pytest.raises(ValueError, match="not a manifest"):
        check_manifest(sign_keyring(RING, [ROOT_A]), ring_payload, NOW)
