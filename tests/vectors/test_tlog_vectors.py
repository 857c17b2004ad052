"""The committed transparency log vectors regenerate byte for byte, and the independent RFC 9162
transcription (tests/rfc9162.py) and hand-written note checks agree with every one of them."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hashsync_client.tlog import (
    parse_note,
    parse_verifier_key,
    verify_consistency,
    verify_cosignature,
    verify_inclusion,
    verify_log_signature,
)
from tests import rfc9162
from tests.vectors.make_tlog_vectors import generate

HERE = Path(__file__).resolve().parent
VECTORS = json.loads((HERE / "tlog.json").read_text(encoding="utf-8"))
LEAVES = [leaf.encode("ascii") for leaf in VECTORS["leaves"]]


def _hashes(items: list[str]) -> list[bytes]:
    return [base64.b64decode(item) for item in items]


def test_tlog_vectors_regenerate_byte_for_byte():
    assert generate() == VECTORS


def test_leaf_format_is_five_lines():
    first = VECTORS["leaves"][0]
    assert first == "hashsync/tlog-leaf/v1\nmd5-all\n1\n" + f"{1:064x}" + "\n-\n"


def test_roots_and_proofs_match_the_rfc_transcription():
    for size, root in VECTORS["roots"].items():
        assert base64.b64decode(root) == rfc9162.mth(LEAVES[: int(size)])
    for case in VECTORS["inclusion"]:
        m, n = case["index"], case["size"]
        proof = _hashes(case["proof"])
        assert proof == rfc9162.path(m, LEAVES[:n])
        leaf = hashlib.sha256(b"\x00" + LEAVES[m]).digest()
        verify_inclusion(leaf, m, n, proof, rfc9162.mth(LEAVES[:n]))
    for case in VECTORS["consistency"]:
        m, n = case["from"], case["to"]
        proof = _hashes(case["proof"])
        assert proof == (rfc9162.proof(m, LEAVES[:n]) if m < n else [])
        verify_consistency(m, n, proof, rfc9162.mth(LEAVES[:m]), rfc9162.mth(LEAVES[:n]))


def _raw_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def test_checkpoint_note_by_hand():
    """The signed note, checked without the note module: body, em-dash line, key hash."""
    text = VECTORS["checkpoint"]
    body, signatures = text.split("\n\n")
    origin, size, root = body.split("\n")
    assert (origin, int(size), base64.b64decode(root)) == (
        "hashsync.example/log",
        21,
        base64.b64decode(VECTORS["roots"]["21"]),
    )
    dash, name, blob = signatures.rstrip("\n").split(" ")
    assert dash == "\u2014" and name == origin
    raw = base64.b64decode(blob)
    public = base64.b64decode(VECTORS["log_public_key"])
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    _raw_key(VECTORS["log_public_key"]).verify(raw[4:], (body + "\n").encode())
    assert verify_log_signature(parse_note(text), [_raw_key(VECTORS["log_public_key"])])


def test_cosignature_by_hand():
    text = VECTORS["cosigned_checkpoint"]
    body = text.split("\n\n")[0] + "\n"
    line = text.rstrip("\n").split("\n")[-1]
    _, name, blob = line.split(" ")
    raw = base64.b64decode(blob)
    public = base64.b64decode(VECTORS["witness_public_key"])
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    (timestamp,) = struct.unpack(">Q", raw[4:12])
    assert timestamp == VECTORS["cosignature_timestamp"]
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()
    _raw_key(VECTORS["witness_public_key"]).verify(raw[12:], message)
    witness = parse_verifier_key(VECTORS["witness_verifier_key"])
    assert verify_cosignature(parse_note(text), witness) == timestamp
