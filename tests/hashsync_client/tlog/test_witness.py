"""The witness (C2SP tlog-witness add-checkpoint): cosigns a log that grows, refuses a fork,
a wrong old size, an unknown log and an unknown key, and keeps its state across restarts."""

from __future__ import annotations

import pytest

from hashsync_client.signing import generate_key
from hashsync_client.tlog import (
    SIG_COSIGNATURE_V1,
    Checkpoint,
    MemoryTree,
    consistency_proof,
    parse_note,
    parse_signature_lines,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
    verify_cosignature,
)
from hashsync_client.witness import Witness, WitnessState, add_checkpoint_body

ORIGIN = "hashsync.test/log"


@pytest.fixture
def log_key():
    return generate_key()


@pytest.fixture
def witness_key():
    return generate_key()


def _tree(n: int, *, fork_at: int | None = None) -> MemoryTree:
    tree = MemoryTree()
    for i in range(n):
        tree.append(b"forked" if i == fork_at else f"synthetic leaf {i}".encode())
    return tree


def _note(tree: MemoryTree, key, size: int | None = None, origin: str = ORIGIN) -> str:
    size = tree.size if size is None else size
    return sign_checkpoint(Checkpoint(origin, size, tree.root(size)), key)


def _witness(tmp_path, log_key, witness_key) -> Witness:
    log = parse_verifier_key(verifier_key(ORIGIN, log_key.public_key))
    return Witness(
        name="w1.test",
        key=witness_key,
        logs=[log],
        state=WitnessState(tmp_path / "state.json"),
        clock=lambda: 1_800_000_000,
    )


def _cosigned(witness_key, note: str, answer: bytes) -> int | None:
    cosigned = parse_note(note).with_signatures(parse_signature_lines(answer.decode()))
    w = parse_verifier_key(verifier_key("w1.test", witness_key.public_key, SIG_COSIGNATURE_V1))
    return verify_cosignature(cosigned, w)


def test_a_growing_log_is_cosigned_and_the_state_survives_a_restart(tmp_path, log_key, witness_key):
    tree = _tree(20)
    witness = _witness(tmp_path, log_key, witness_key)
    first = _note(tree, log_key, 7)
    answer = witness.add_checkpoint(add_checkpoint_body(0, [], first))
    assert answer.status == 200
    assert _cosigned(witness_key, first, answer.body) == 1_800_000_000
    again = _witness(tmp_path, log_key, witness_key)  # a restart reads its state
    second = _note(tree, log_key, 20)
    proof = consistency_proof(7, 20, tree)
    answer = again.add_checkpoint(add_checkpoint_body(7, proof, second))
    assert answer.status == 200
    assert _cosigned(witness_key, second, answer.body) is not None


def test_a_wrong_old_size_answers_409_with_the_size_held(tmp_path, log_key, witness_key):
    tree = _tree(10)
    witness = _witness(tmp_path, log_key, witness_key)
    assert witness.add_checkpoint(add_checkpoint_body(0, [], _note(tree, log_key, 4))).status == 200
    answer = witness.add_checkpoint(add_checkpoint_body(0, [], _note(tree, log_key, 10)))
    assert (answer.status, answer.body, answer.content_type) == (409, b"4\n", "text/x.tlog.size")


def test_a_forked_log_is_refused_and_not_remembered(tmp_path, log_key, witness_key):
    honest, forked = _tree(12), _tree(12, fork_at=2)
    witness = _witness(tmp_path, log_key, witness_key)
    assert (
        witness.add_checkpoint(add_checkpoint_body(0, [], _note(honest, log_key, 5))).status == 200
    )
    proof = consistency_proof(5, 12, forked)
    answer = witness.add_checkpoint(add_checkpoint_body(5, proof, _note(forked, log_key)))
    assert answer.status == 422
    assert witness.state.held(ORIGIN)[0] == 5
    same_size = _note(forked, log_key, 5)
    assert witness.add_checkpoint(add_checkpoint_body(5, [], same_size)).status == 409


def test_unknown_logs_keys_and_malformed_requests_are_refused(tmp_path, log_key, witness_key):
    tree = _tree(3)
    witness = _witness(tmp_path, log_key, witness_key)
    other_log = _note(tree, log_key, origin="elsewhere.test/log")
    assert witness.add_checkpoint(add_checkpoint_body(0, [], other_log)).status == 404
    stranger = _note(tree, generate_key())
    assert witness.add_checkpoint(add_checkpoint_body(0, [], stranger)).status == 403
    for body in [
        b"",
        b"old x\n\n",
        b"old 1\nnot base64!\n\n" + _note(tree, log_key).encode(),
        b"\xff\xfe",
        b"old 01\n\n" + _note(tree, log_key).encode(),
    ]:
        assert witness.add_checkpoint(body).status == 400, body
    assert witness.add_checkpoint(add_checkpoint_body(5, [], _note(tree, log_key))).status == 400
    assert witness.state.held(ORIGIN) == (0, None)
