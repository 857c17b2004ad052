#!/usr/bin/env python
"""Write the transparency log test vectors, tests/vectors/tlog.json (docs/transparency.md).

TEST KEYS ONLY: the log and witness keys are derived from fixed public seeds below, so anyone
can reproduce every byte. The leaves are leaf_bytes() of made-up manifest digests (counters,
not hashes of anything). Ed25519 signatures are deterministic, so the file never changes.

    .venv/bin/python tests/vectors/make_tlog_vectors.py
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashsync_client.signing import SigningKey, public_key_b64
from hashsync_client.tlog import (
    SIG_COSIGNATURE_V1,
    Checkpoint,
    MemoryTree,
    SignedNote,
    consistency_proof,
    cosign,
    inclusion_proof,
    leaf_bytes,
    leaf_hash,
    parse_note,
    sign_checkpoint,
    verifier_key,
)

HERE = Path(__file__).resolve().parent
LOG_SEED = bytes(range(64, 96))  # TEST KEY — public on purpose
WITNESS_SEED = bytes(range(96, 128))  # TEST KEY — public on purpose
ORIGIN = "hashsync.example/log"
WITNESS = "witness.example/w1"
SIZE = 21
TIMESTAMP = 1_800_000_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _leaves() -> list[bytes]:
    """Two feeds' manifests interleaved, each naming its own feed's previous one."""
    leaves = []
    previous = {"md5-all": "", "pdq-baseline": ""}
    for i in range(SIZE):
        digest = f"{i + 1:064x}"
        feed = "md5-all" if i % 2 == 0 else "pdq-baseline"
        leaves.append(
            leaf_bytes(
                feed=feed, version=i + 1, manifest_sha256=digest, previous_sha256=previous[feed]
            )
        )
        previous[feed] = digest
    return leaves


def generate() -> dict[str, Any]:
    leaves = _leaves()
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    log_key = SigningKey(Ed25519PrivateKey.from_private_bytes(LOG_SEED))
    witness_key = SigningKey(Ed25519PrivateKey.from_private_bytes(WITNESS_SEED))
    checkpoint = Checkpoint(ORIGIN, SIZE, tree.root())
    note = sign_checkpoint(checkpoint, log_key)
    cosigned = SignedNote(parse_note(note).checkpoint, parse_note(note).signatures)
    cosigned = cosigned.with_signatures(
        [cosign(checkpoint, witness_key, name=WITNESS, timestamp=TIMESTAMP)]
    )
    return {
        "about": "Transparency log vectors (docs/transparency.md). TEST KEYS from public seeds; "
        "leaves are made-up manifest digests. Regenerate: tests/vectors/make_tlog_vectors.py",
        "leaves": [leaf.decode("ascii") for leaf in leaves],
        "leaf_hashes": [_b64(leaf_hash(leaf)) for leaf in leaves],
        "roots": {str(n): _b64(tree.root(n)) for n in range(0, SIZE + 1)},
        "inclusion": [
            {"index": m, "size": n, "proof": [_b64(h) for h in inclusion_proof(m, n, tree)]}
            for n, m in [(1, 0), (7, 0), (7, 3), (7, 6), (8, 5), (16, 15), (21, 0), (21, 20)]
        ],
        "consistency": [
            {"from": m, "to": n, "proof": [_b64(h) for h in consistency_proof(m, n, tree)]}
            for m, n in [(1, 1), (1, 2), (3, 7), (4, 8), (6, 8), (7, 21), (16, 21), (20, 21)]
        ],
        "log_public_key": public_key_b64(log_key),
        "log_verifier_key": verifier_key(ORIGIN, log_key.public_key),
        "witness_public_key": public_key_b64(witness_key),
        "witness_verifier_key": verifier_key(WITNESS, witness_key.public_key, SIG_COSIGNATURE_V1),
        "checkpoint": note,
        "cosigned_checkpoint": cosigned.text(),
        "cosignature_timestamp": TIMESTAMP,
    }


def main() -> None:
    text = json.dumps(generate(), indent=2, ensure_ascii=False) + "\n"
    (HERE / "tlog.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
