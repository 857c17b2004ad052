"""LtHash16, the feed state digest: set algebra, a known answer, and bad input.

Every element here is synthetic: digests of made-up strings or seeded random bytes.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashsync_client.format import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    GRADING_COUNT,
    MAX_FRAMEWORK_CLASSES,
)
from hashsync_client.lthash import BATCH, LTHASH_BYTES, LtHash16, element, row_elements

hypothesis_settings = settings(database=None, deadline=None, max_examples=30)

EMPTY_DIGEST = hashlib.sha256(bytes(LTHASH_BYTES)).hexdigest()

# Known answer: the elements of three synthetic records (values are digests of made-up strings).
KAT_ELEMENTS = [
    element("md5", hashlib.md5(b"synthetic-kat-1", usedforsecurity=False).digest(), 0),
    element("sha1", hashlib.sha1(b"synthetic-kat-2", usedforsecurity=False).digest(), 345),
    element("sha256", hashlib.sha256(b"synthetic-kat-3").digest(), 629),
]
KAT_DIGEST = "6e015587ed424c4293b6c90d647595a98d9e4703aa1c733da8c817bbcebe049c"


def naive_state(elements: list[bytes]) -> bytes:
    """The scheme written out lane by lane in pure Python, independent of numpy."""
    lanes = [0] * 1024
    for item in elements:
        expansion = hashlib.shake_128(b"hashsync-lthash-v1" + item).digest(2048)
        for i in range(1024):
            lane = expansion[2 * i] | (expansion[2 * i + 1] << 8)
            lanes[i] = (lanes[i] + lane) % 65536
    return b"".join(lane.to_bytes(2, "little") for lane in lanes)


def synthetic_elements(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)  # test data, not secrets
    return [element("md5", rng.randbytes(16), rng.randrange(GRADING_COUNT)) for _ in range(n)]


def digest_of(elements: list[bytes]) -> LtHash16:
    state = LtHash16()
    state.add(elements)
    return state


def test_empty_set_is_all_zero_lanes():
    state = LtHash16()
    assert state.state() == bytes(LTHASH_BYTES)
    assert state.hexdigest() == EMPTY_DIGEST
    assert LtHash16(bytes(LTHASH_BYTES)) == state


def test_known_answer_matches_the_naive_implementation():
    state = digest_of(KAT_ELEMENTS)
    assert state.state() == naive_state(KAT_ELEMENTS)
    assert state.hexdigest() == hashlib.sha256(naive_state(KAT_ELEMENTS)).hexdigest()
    assert state.hexdigest() == KAT_DIGEST


def test_known_element_encoding():
    value = bytes(range(16))
    assert element("md5", value, 0x0102) == b"\x01" + value + b"\x01\x02"
    assert element("photodna", bytes(144), 629)[0] == 5
    assert element("photodna", bytes(144), 629)[-2:] == (629).to_bytes(2, "big")


def test_order_does_not_matter():
    items = synthetic_elements(500, seed=1)
    shuffled = items[:]
    random.Random(2).shuffle(shuffled)
    assert digest_of(items) == digest_of(shuffled)
    assert digest_of(items).state() == digest_of(shuffled).state()


def test_add_then_remove_is_identity():
    before = digest_of(synthetic_elements(10, seed=3))
    state = before.copy()
    extra = synthetic_elements(BATCH + 7, seed=4)  # crosses a batch boundary
    state.add(extra)
    assert state != before
    state.remove(reversed(extra))
    assert state == before
    assert state.hexdigest() == before.hexdigest()


def test_it_is_a_multiset():
    item = synthetic_elements(1, seed=5)
    once, twice = digest_of(item), digest_of(item * 2)
    assert once != twice
    twice.remove(item)
    assert twice == once
    twice.remove(item)
    assert twice == LtHash16()


def test_union_is_the_sum_of_the_parts():
    a, b = synthetic_elements(300, seed=6), synthetic_elements(200, seed=7)
    split = digest_of(a)
    split.add(b)
    assert split == digest_of(a + b)
    # and from saved states, as server and client do
    resumed = LtHash16(digest_of(a).state())
    resumed.add(iter(b))
    assert resumed.state() == digest_of(a + b).state()


def test_removing_what_was_never_added_wraps_around():
    item = synthetic_elements(1, seed=8)
    state = LtHash16()
    state.remove(item)
    state.add(item)
    assert state == LtHash16()


def test_copy_is_independent():
    original = digest_of(synthetic_elements(3, seed=9))
    twin = original.copy()
    twin.add(synthetic_elements(1, seed=10))
    assert twin != original
    assert original == digest_of(synthetic_elements(3, seed=9))


def test_large_batches_agree_with_the_naive_implementation():
    items = synthetic_elements(BATCH + 3, seed=11)
    head = items[:40]
    state = digest_of(items)
    state.remove(items[40:])
    assert state.state() == naive_state(head)


@pytest.mark.parametrize("size", [0, 1, LTHASH_BYTES - 1, LTHASH_BYTES + 1, 4096])
def test_wrong_state_length_is_refused(size):
    with pytest.raises(ValueError, match="2048 bytes"):
        LtHash16(bytes(size))


def test_state_round_trips_and_is_not_shared():
    raw = bytearray(digest_of(synthetic_elements(2, seed=12)).state())
    state = LtHash16(bytes(raw))
    raw[0] ^= 1
    assert state.state() != bytes(raw)
    assert LtHash16(state.state()) == state


def test_non_bytes_elements_are_refused():
    with pytest.raises(TypeError):
        LtHash16().add(["not bytes"])


@pytest.mark.parametrize(
    ("algorithm", "value", "grading", "message"),
    [
        ("crc32", bytes(4), 0, "unknown algorithm"),
        ("md5", bytes(15), 0, "16 bytes"),
        ("photodna", bytes(143), 0, "144 bytes"),
        ("md5", bytes(16), -1, "grading"),
        # A code: a grading, or a class index and a grading (format 2): at most 17 classes.
        ("md5", bytes(16), GRADING_COUNT * MAX_FRAMEWORK_CLASSES, "grading"),
        ("md5", bytes(16), True, "grading"),
    ],
)
def test_bad_elements_are_refused(algorithm, value, grading, message):
    with pytest.raises(ValueError, match=message):
        element(algorithm, value, grading)


def test_element_lengths_follow_the_registry():
    for name, length in ALGORITHM_LENGTHS.items():
        assert len(element(name, bytes(length), 1)) == 1 + length + 2


@hypothesis_settings
@given(
    st.lists(st.binary(min_size=1, max_size=40), max_size=30),
    st.lists(st.binary(min_size=1, max_size=40), max_size=30),
    st.randoms(use_true_random=False),
)
def test_property_digest_depends_only_on_the_multiset(a, b, rnd):
    combined = a + b
    rnd.shuffle(combined)
    left = digest_of(a)
    left.add(b)
    assert left == digest_of(combined)
    left.remove(a)
    assert left == digest_of(b)


def test_row_elements_are_the_elements_of_stored_rows():
    rows = [
        (ALGORITHM_IDS["md5"], hashlib.md5(b"synthetic-row-1", usedforsecurity=False).digest(), 7),
        (ALGORITHM_IDS["sha256"], memoryview(hashlib.sha256(b"synthetic-row-2").digest()), 629),
    ]
    assert list(row_elements(rows)) == [
        element("md5", bytes(rows[0][1]), 7),
        element("sha256", bytes(rows[1][1]), 629),
    ]
    with pytest.raises(ValueError):
        list(row_elements([(ALGORITHM_IDS["md5"], b"short", 0)]))
