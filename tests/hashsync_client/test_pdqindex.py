"""The PDQ index answers exactly what a brute-force scan answers, at every threshold, on
random and adversarial synthetic values (never real PDQ hashes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashsync_client.pdqindex import MIH_MAX_DISTANCE, PdqIndex, as_words

ZERO = bytes(32)
ONES = b"\xff" * 32


def flip(value: bytes, bits: list[int]) -> bytes:
    number = int.from_bytes(value, "big")
    for bit in bits:
        number ^= 1 << int(bit)
    return number.to_bytes(32, "big")


def distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def brute(held: dict[int, bytes], query: bytes, max_distance: int) -> list[tuple[int, int]]:
    """(row, distance), nearest first, ties by row: what the index must answer."""
    found = [(row, distance(v, query)) for row, v in held.items()]
    return sorted(((r, d) for r, d in found if d <= max_distance), key=lambda p: (p[1], p[0]))


def answer(index: PdqIndex, query: bytes, max_distance: int) -> list[tuple[int, int]]:
    rows, distances = index.within(query, max_distance)
    return list(zip(rows.tolist(), distances.tolist(), strict=True))


values = st.binary(min_size=32, max_size=32)
bit_positions = st.lists(st.integers(0, 255), unique=True, max_size=40)


@st.composite
def neighbourhoods(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Values clustered around a few centres (all-zero and all-one among the candidates), and
    queries at chosen distances from them: exactly 31 and 32 bits included."""
    centres = draw(
        st.lists(st.one_of(st.sampled_from([ZERO, ONES]), values), min_size=1, max_size=4)
    )
    held = []
    for centre in centres:
        held.append(centre)
        held.extend(flip(centre, bits) for bits in draw(st.lists(bit_positions, max_size=12)))
    held.extend(draw(st.lists(values, max_size=20)))
    queries = []
    for _ in range(draw(st.integers(1, 6))):
        centre = draw(st.sampled_from(held))
        count = draw(st.sampled_from([0, 1, 2, 15, 16, 17, 30, 31, 32, 33, 47, 64]))
        bits = draw(st.lists(st.integers(0, 255), unique=True, min_size=count, max_size=count))
        queries.append(flip(centre, bits))
    return held, queries


thresholds = st.sampled_from([0, 1, 2, 16, 30, 31, 32, 33, 48, 64, 128, 256])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=neighbourhoods(), max_distance=thresholds)
def test_every_answer_equals_a_brute_force_scan(case, max_distance):
    held, queries = case
    index = PdqIndex(held)

    for query in queries:
        assert answer(index, query, max_distance) == brute(
            dict(enumerate(held)), query, max_distance
        )


@settings(max_examples=100, deadline=None)
@given(
    case=neighbourhoods(),
    changes=st.lists(st.tuples(st.booleans(), st.integers(0, 1000), bit_positions), max_size=30),
    max_distance=thresholds,
)
def test_answers_after_adds_and_removes_equal_a_brute_force_scan(case, changes, max_distance):
    held_values, queries = case
    index = PdqIndex(held_values)
    held = dict(enumerate(held_values))
    for adding, pick, bits in changes:
        base = held_values[pick % len(held_values)]
        if adding:
            value = flip(base, bits)
            held[index.add(value)] = value
        else:
            removed = index.remove(base)
            assert sorted(removed) == sorted(r for r, v in held.items() if v == base)
            for row in removed:
                del held[row]

    assert len(index) == len(held)
    for query in queries:
        assert answer(index, query, max_distance) == brute(held, query, max_distance)


def test_a_value_exactly_at_the_threshold_matches_and_one_bit_further_does_not():
    rng = np.random.default_rng(1)
    query = rng.bytes(32)
    at = flip(query, list(range(0, 256, 8))[:31])  # 31 bits, one in each of 31 bytes
    beyond = flip(query, list(range(0, 256, 8))[:32])
    index = PdqIndex([at, beyond, *(rng.bytes(32) for _ in range(1000))])

    assert answer(index, query, 31) == [(0, 31)]
    assert answer(index, query, 32) == [(0, 31), (1, 32)]


def test_two_bits_in_every_block_is_found_by_the_scan_above_31():
    """32 bits spread two per 16-bit block defeat the one-flip probes: only the scan finds it,
    which is why thresholds above 31 scan."""
    query = bytes(32)
    spread = flip(query, [b * 16 + i for b in range(16) for i in (0, 9)])
    index = PdqIndex([spread])

    assert answer(index, query, 31) == []
    assert answer(index, query, 32) == [(0, 32)]


def test_many_queries_at_once_answer_as_each_alone():
    rng = np.random.default_rng(2)
    held = [rng.bytes(32) for _ in range(5000)]
    queries = [flip(held[i], list(rng.choice(256, i % 40, replace=False))) for i in range(200)]
    index = PdqIndex(held)

    q, rows, distances = index.within_many(as_words(queries), MIH_MAX_DISTANCE)

    together = [[] for _ in queries]
    for number, row, d in zip(q.tolist(), rows.tolist(), distances.tolist(), strict=True):
        together[number].append((row, d))
    assert together == [answer(index, query, MIH_MAX_DISTANCE) for query in queries]
    assert sum(map(len, together)) >= 160  # the near copies (≤ 31 flipped bits) are all found


def test_adds_fold_into_the_tables_and_keep_their_row_numbers(monkeypatch):
    monkeypatch.setattr("hashsync_client.pdqindex._MIN_MERGE", 8)
    rng = np.random.default_rng(3)
    index = PdqIndex([rng.bytes(32) for _ in range(4)])
    index.remove(index.value(1))
    added = {index.add(value): value for value in (rng.bytes(32) for _ in range(20))}

    assert len(index) == 23
    for row, value in added.items():
        assert answer(index, value, 0) == [(row, 0)]
        assert index.value(row) == value


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33)])
def test_a_value_of_the_wrong_length_is_refused(bad):
    index = PdqIndex()
    with pytest.raises(ValueError, match="32 bytes"):
        index.add(bad)
    with pytest.raises(ValueError, match="32 bytes"):
        index.remove(bad)


def test_an_empty_index_finds_nothing():
    assert answer(PdqIndex(), ZERO, 31) == []
    assert answer(PdqIndex(), ZERO, 256) == []
