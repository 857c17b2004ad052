"""The PDQ index answers exactly what a brute-force scan answers, at every threshold, on
random and adversarial synthetic values (never real PDQ hashes): for the default layout (11
blocks, two flipped bits), the layout used at 10M, other block layouts (the exactness argument
must hold for any), batches split into many small steps, after additions and removals that fold
into new tables, and after a save and a memory-mapped load."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashsync_client import pdqindex
from hashsync_client.pdqindex import MIH_MAX_DISTANCE, PdqIndex, as_words, widths_for

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


# (widths, flips): the default for small indexes, the old 16 x 16 one-flip layout, few wide
# blocks, and few narrow blocks with no flips (exact only to 3 bits: the rest by scan).
layouts = st.sampled_from(
    [
        (None, 2),
        ((16,) * 16, 1),
        ((8,) * 11, 2),
        ((5, 7, 9, 11), 2),
        ((6,) * 4, 0),
    ]
)
# Tiny steps and buffers, so one small case takes every path a large index takes.
tiny = {"_PROBES_PER_STEP": 7, "_CANDIDATES_PER_STEP": 3, "_BUFFER_MAX": 3, "_MIN_MERGE": 5}


def make(held: list[bytes], layout: tuple[tuple[int, ...] | None, int]) -> PdqIndex:
    widths, flips = layout
    return PdqIndex(held, widths=widths, flips=flips)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=neighbourhoods(), max_distance=thresholds, layout=layouts, small_steps=st.booleans())
def test_every_answer_equals_a_brute_force_scan(case, max_distance, layout, small_steps):
    held, queries = case
    index = make(held, layout)

    steps = tiny if small_steps else {"_PROBES_PER_STEP": pdqindex._PROBES_PER_STEP}
    with mock.patch.multiple(pdqindex, **steps):
        q, rows, distances = index.within_many(as_words(queries), max_distance)
    together: list[list[tuple[int, int]]] = [[] for _ in queries]
    for number, row, d in zip(q.tolist(), rows.tolist(), distances.tolist(), strict=True):
        together[number].append((row, d))
    assert together == [brute(dict(enumerate(held)), query, max_distance) for query in queries]


def apply_changes(
    index: PdqIndex, held: dict[int, bytes], bases: list[bytes], changes: list
) -> None:
    for adding, pick, bits in changes:
        base = bases[pick % len(bases)]
        if adding:
            value = flip(base, bits)
            held[index.add(value)] = value
        else:
            removed = index.remove(base)
            assert sorted(removed) == sorted(r for r, v in held.items() if v == base)
            for row in removed:
                del held[row]
    assert len(index) == len(held)


changes_lists = st.lists(st.tuples(st.booleans(), st.integers(0, 1000), bit_positions), max_size=30)


@settings(max_examples=100, deadline=None)
@given(case=neighbourhoods(), changes=changes_lists, max_distance=thresholds, layout=layouts)
def test_answers_after_adds_and_removes_equal_a_brute_force_scan(
    case, changes, max_distance, layout
):
    held_values, queries = case
    with mock.patch.multiple(pdqindex, **tiny):  # the buffer folds, and so do the tables
        index = make(held_values, layout)
        held = dict(enumerate(held_values))
        apply_changes(index, held, held_values, changes)

        for query in queries:
            assert answer(index, query, max_distance) == brute(held, query, max_distance)
            assert index.find(query) == sorted(r for r, v in held.items() if v == query)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    case=neighbourhoods(),
    before=changes_lists,
    after=changes_lists,
    max_distance=thresholds,
    mapped=st.booleans(),
)
def test_a_saved_and_loaded_index_answers_as_before_and_keeps_changing(
    tmp_path_factory, case, before, after, max_distance, mapped
):
    held_values, queries = case
    folder = tmp_path_factory.mktemp("index") / "saved"
    with mock.patch.multiple(pdqindex, **tiny):
        index = PdqIndex(held_values)
        held = dict(enumerate(held_values))
        apply_changes(index, held, held_values, before)  # main, recent and buffer all in use
        index.save(folder, extra={"per_row": np.arange(5)})
        files = {f.name: f.read_bytes() for f in folder.iterdir()}

        loaded = PdqIndex.load(folder, mmap=mapped)
        for query in queries:
            assert answer(loaded, query, max_distance) == brute(held, query, max_distance)
        apply_changes(loaded, held, held_values, after)
        for query in queries:
            assert answer(loaded, query, max_distance) == brute(held, query, max_distance)

    # Changes after loading never reach the files (other processes map them).
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == files
    assert np.load(folder / "per_row.npy").tolist() == [0, 1, 2, 3, 4]


def test_the_layout_used_at_10m_is_exact_at_31_and_32_bits():
    """The widths chosen for 10M values (3 x 24 + 8 x 23 bits), on few values: the same code
    paths, with queries exactly 31, 32 and 33 bits away, and 3 bits in each of the 11 blocks
    (33 bits: the nearest value no probe can reach, so found by the scan above 32)."""
    rng = np.random.default_rng(10)
    held = [rng.bytes(32) for _ in range(2000)]
    index = PdqIndex(held, widths=widths_for(10_000_000))
    assert index.widths == (24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23)
    assert index.exact_up_to == 32
    offsets = np.cumsum([0, *index.widths])
    spread = flip(held[0], [int(o) + i for o in offsets[:-1] for i in (0, 5, 9)])
    queries = [
        flip(held[1], list(rng.choice(256, 31, replace=False))),
        flip(held[2], list(rng.choice(256, 32, replace=False))),
        flip(held[3], list(rng.choice(256, 33, replace=False))),
        spread,
    ]
    for max_distance in (31, 32, 33):
        for query in queries:
            assert answer(index, query, max_distance) == brute(
                dict(enumerate(held)), query, max_distance
            )
    assert answer(index, spread, 32) == []
    assert answer(index, spread, 33) == [(0, 33)]


def test_a_directory_that_is_not_a_complete_index_is_refused(tmp_path):
    index = PdqIndex([bytes(32)])
    index.save(tmp_path / "index")
    (tmp_path / "index" / "pdq-main-starts.npy").write_bytes(b"damaged")

    with pytest.raises(ValueError, match="not a complete PDQ index"):
        PdqIndex.load(tmp_path / "index")
    with pytest.raises(ValueError, match="not a complete PDQ index"):
        PdqIndex.load(tmp_path / "missing")


def test_saving_over_an_index_replaces_it_whole(tmp_path: Path):
    PdqIndex([bytes(32)]).save(tmp_path / "index")
    PdqIndex([ONES, ONES]).save(tmp_path / "index")

    assert len(PdqIndex.load(tmp_path / "index")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_a_value_exactly_at_the_threshold_matches_and_one_bit_further_does_not():
    rng = np.random.default_rng(1)
    query = rng.bytes(32)
    at = flip(query, list(range(0, 256, 8))[:31])  # 31 bits, one in each of 31 bytes
    beyond = flip(query, list(range(0, 256, 8))[:32])
    index = PdqIndex([at, beyond, *(rng.bytes(32) for _ in range(1000))])

    assert answer(index, query, 31) == [(0, 31)]
    assert answer(index, query, 32) == [(0, 31), (1, 32)]


def test_two_bits_in_every_block_is_found_by_the_scan_above_what_the_probes_reach():
    """32 bits spread two per 16-bit block defeat 16 one-flip probes (exact to 31): only the
    scan finds it, which is why thresholds above a layout's reach scan."""
    query = bytes(32)
    spread = flip(query, [b * 16 + i for b in range(16) for i in (0, 9)])
    index = PdqIndex([spread], widths=(16,) * 16, flips=1)

    assert index.exact_up_to == 31
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
    monkeypatch.setattr("hashsync_client.pdqindex._BUFFER_MAX", 3)
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


@pytest.mark.parametrize("count", [0, 1, 999, 1000, 1001, 5000])
def test_an_index_built_to_disk_is_the_one_saved_from_memory(tmp_path: Path, count: int) -> None:
    # Synthetic random values, with duplicates so that equal keys meet in the sort.
    rng = np.random.default_rng(count)
    values = rng.integers(0, 256, size=(count, 32), dtype=np.uint8)
    if count > 10:
        values[count // 2 :: 7] = values[0]
    PdqIndex(values).save(tmp_path / "memory")
    # A chunk smaller than the list, and not dividing it, so the chunk edges are exercised.
    PdqIndex.build_to(tmp_path / "disk", values, chunk=333)

    files = sorted(p.name for p in (tmp_path / "memory").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "disk").iterdir())
    for name in files:
        if name.endswith(".npy"):
            expected = np.load(tmp_path / "memory" / name)
            found = np.load(tmp_path / "disk" / name)
            assert found.dtype == expected.dtype, name
            assert np.array_equal(found, expected), name
        else:
            assert (tmp_path / "disk" / name).read_text() == (
                tmp_path / "memory" / name
            ).read_text()
    loaded = PdqIndex.load(tmp_path / "disk")
    if count:
        query = values[count - 1 : count]
        assert (
            loaded.within_many(as_words(query), 31)[0].tolist()
            == PdqIndex(values).within_many(as_words(query), 31)[0].tolist()
        )
