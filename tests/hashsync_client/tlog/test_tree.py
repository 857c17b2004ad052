"""The tree maths against the independent RFC 9162 transcription (tests/rfc9162.py), for every
tree size from 1 to 130 (every index, every old size) and spot checks up to 300; and tampered
proofs refused. Leaves are synthetic bytes, not hashes of anything."""

from __future__ import annotations

import pytest

from hashsync_client.tlog import (
    MemoryTree,
    ProofError,
    consistency_proof,
    empty_root,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from tests import rfc9162

LEAVES = [f"synthetic leaf {i}".encode() for i in range(300)]


@pytest.fixture(scope="module")
def tree() -> MemoryTree:
    tree = MemoryTree()
    for leaf in LEAVES:
        tree.append(leaf)
    return tree


def test_empty_tree_root_is_sha256_of_nothing():
    assert MemoryTree().root() == rfc9162.mth([])
    assert empty_root() == rfc9162.mth([])


def test_roots_match_the_rfc_for_every_size(tree):
    for n in range(1, 301):
        assert tree.root(n) == rfc9162.mth(LEAVES[:n]), n


def test_inclusion_proofs_match_the_rfc_and_verify(tree):
    for n in [*range(1, 131), 255, 256, 257, 300]:
        root = rfc9162.mth(LEAVES[:n])
        for m in range(n):
            proof = inclusion_proof(m, n, tree)
            assert proof == rfc9162.path(m, LEAVES[:n]), (m, n)
            verify_inclusion(leaf_hash(LEAVES[m]), m, n, proof, root)


def test_consistency_proofs_match_the_rfc_and_verify(tree):
    for n in [*range(1, 131), 256, 257, 300]:
        new_root = rfc9162.mth(LEAVES[:n])
        for m in range(1, n + 1):
            proof = consistency_proof(m, n, tree)
            assert proof == (rfc9162.proof(m, LEAVES[:n]) if m < n else []), (m, n)
            verify_consistency(m, n, proof, rfc9162.mth(LEAVES[:m]), new_root)


def test_a_rewritten_leaf_fails_inclusion(tree):
    proof = inclusion_proof(5, 20, tree)
    with pytest.raises(ProofError) as caught:
        verify_inclusion(leaf_hash(b"not leaf 5"), 5, 20, proof, tree.root(20))
    assert caught.value.code == "inclusion_invalid"


def test_a_proof_for_another_index_or_size_fails(tree):
    proof = inclusion_proof(5, 20, tree)
    for index, size in [(4, 20), (5, 21), (5, 19), (6, 20)]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(LEAVES[5]), index, size, proof, tree.root(size))


def test_truncated_or_extended_inclusion_proofs_fail(tree):
    proof = inclusion_proof(7, 40, tree)
    for bad in (proof[:-1], [*proof, proof[0]], []):
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(LEAVES[7]), 7, 40, bad, tree.root(40))


def test_a_forked_log_fails_consistency():
    """Two logs agree on 10 leaves, then one rewrites leaf 3: no proof links them."""
    honest, forked = MemoryTree(), MemoryTree()
    for i, leaf in enumerate(LEAVES[:20]):
        honest.append(leaf)
        forked.append(b"rewritten" if i == 3 else leaf)
    proof = consistency_proof(10, 20, forked)
    with pytest.raises(ProofError) as caught:
        verify_consistency(10, 20, proof, honest.root(10), forked.root(20))
    assert caught.value.code == "consistency_invalid"


def test_every_tampered_consistency_element_fails(tree):
    proof = consistency_proof(13, 77, tree)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes(32)
        with pytest.raises(ProofError):
            verify_consistency(13, 77, bad, tree.root(13), tree.root(77))


def test_shrinking_log_is_not_consistent(tree):
    with pytest.raises(ProofError) as caught:
        verify_consistency(20, 10, [], tree.root(20), tree.root(10))
    assert caught.value.code == "log_size_invalid"


def test_same_size_needs_same_root(tree):
    verify_consistency(9, 9, [], tree.root(9), tree.root(9))
    with pytest.raises(ProofError):
        verify_consistency(9, 9, [], tree.root(9), tree.root(10))


def test_out_of_range_requests_raise_stable_codes(tree):
    with pytest.raises(ProofError) as caught:
        inclusion_proof(20, 20, tree)
    assert caught.value.code == "log_index_invalid"
    with pytest.raises(ProofError) as caught:
        consistency_proof(0, 20, tree)
    assert caught.value.code == "log_size_invalid"
