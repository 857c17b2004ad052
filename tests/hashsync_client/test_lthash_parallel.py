"""``LtHashSum``: the LtHash16 state computed with a helper process is the serial one, for
every size around the frame boundaries and every way the helper can fail.

Every element here is synthetic: seeded random bytes of each algorithm's length.
"""

from __future__ import annotations

import json
import os
import random
import select
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from hashsync_client import lthash
from hashsync_client.format import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    GRADING_COUNT,
    read_bundle_bytes,
)
from hashsync_client.lthash import FRAME, FRAMES_AHEAD, HelperFailed, LtHash16, LtHashSum, element
from tests.hashsync_client.test_lthash import KAT_DIGEST, KAT_ELEMENTS, naive_state

VECTORS_DIR = Path(__file__).parent.parent / "vectors"
VECTORS = json.loads((VECTORS_DIR / "vectors.json").read_text())


def mixed_elements(n: int, seed: int) -> list[bytes]:
    """``n`` synthetic elements of every algorithm (so frames hold elements of mixed lengths)."""
    rng = random.Random(seed)  # test data, not secrets
    names = sorted(ALGORITHM_LENGTHS)
    return [
        element(name, rng.randbytes(ALGORITHM_LENGTHS[name]), rng.randrange(GRADING_COUNT))
        for name in (names[i % len(names)] for i in range(n))
    ]


def serial(elements: list[bytes]) -> LtHash16:
    state = LtHash16()
    state.add(elements)
    return state


def summed(
    elements: list[bytes], *, method: str | None, batch: int = 8192, helper: bool = True
) -> tuple[LtHash16, int]:
    """The state from ``LtHashSum`` fed in batches as the apply does; and how many
    elements the helper summed."""
    with LtHashSum(helper=helper, method=method) as adder:
        for start in range(0, len(elements), batch):
            adder.add(elements[start : start + batch])
        sent = adder._sent_elements
        return adder.result(), sent


SIZES = [0, 1, FRAME - 1, FRAME, FRAME + 1, 2 * FRAME - 1, 2 * FRAME + 1, 8192 + 1]


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("size", SIZES)
def test_the_parallel_state_is_the_serial_one_around_every_boundary(method, size):
    elements = mixed_elements(size, seed=size)

    state, _ = summed(elements, method=method, batch=FRAME + 3)

    assert state == serial(elements)
    assert state.state() == serial(elements).state()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_large_set_is_shared_with_the_helper_and_gives_the_serial_state(method):
    elements = mixed_elements(40_000, seed=7)

    state, sent = summed(elements, method=method)

    assert state.hexdigest() == serial(elements).hexdigest()
    # The helper took part (at least the frames handed to it before it answered).
    assert sent >= FRAME


def test_the_known_answer_and_the_committed_vectors_come_out_of_the_parallel_sum():
    kat, _ = summed(KAT_ELEMENTS, method="fork")
    assert kat.hexdigest() == KAT_DIGEST
    assert kat.state() == naive_state(KAT_ELEMENTS)

    vectors = VECTORS["lthash"]
    records = read_bundle_bytes((VECTORS_DIR / "snapshot.bin").read_bytes())[1]
    elements = [element(r.algorithm, r.value, r.grading) for r in records]
    state, _ = summed(elements, method="fork", batch=1)
    assert state.hexdigest() == vectors["snapshot_digest"]
    assert state.state().hex() == vectors["snapshot_state_hex"]
    assert summed([], method="fork")[0].hexdigest() == vectors["empty_digest"]


def test_without_a_helper_the_state_is_computed_here():
    elements = mixed_elements(3 * FRAME, seed=3)

    state, sent = summed(elements, method=None, helper=False)

    assert sent == 0
    assert state == serial(elements)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_helper_that_cannot_be_started_leaves_the_work_here(monkeypatch, method):
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("no processes allowed")

    monkeypatch.setattr(lthash.os, "fork", refuse)
    monkeypatch.setattr(lthash.subprocess, "Popen", refuse)
    elements = mixed_elements(3 * FRAME, seed=4)

    state, sent = summed(elements, method=method)

    assert sent == 0
    assert state == serial(elements)


# The tests below replace ``lthash._helper`` with a misbehaving one; the forked helper runs it
# (a fork copies the patched module).


def wait_for_an_ack(adder: LtHashSum) -> None:
    while not adder._acked:
        select.select([adder._from], [], [])
        adder._read_acks()


def test_a_helper_that_exits_before_summing_anything_has_its_frames_taken_back(monkeypatch):
    monkeypatch.setattr(lthash, "_helper", lambda source, sink: None)
    elements = mixed_elements(6 * FRAME, seed=5)

    with LtHashSum(method="fork") as adder:
        adder.add(elements)
        state = adder.result()
        assert adder._acked == 0

    assert state == serial(elements)


def test_a_helper_that_never_answers_is_not_waited_for(monkeypatch):
    def stalls(source: BinaryIO, sink: BinaryIO) -> None:
        time.sleep(600)  # never reads its input, never acknowledges

    monkeypatch.setattr(lthash, "_helper", stalls)
    elements = mixed_elements(6 * FRAME, seed=6)

    with LtHashSum(method="fork") as adder:
        adder.add(elements)
        pid = adder._pid
        state = adder.result()

    assert state == serial(elements)
    with pytest.raises(ChildProcessError):  # ended and reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)


def test_a_helper_that_dies_after_summing_part_makes_the_result_fail(monkeypatch):
    def one_frame_then_die(source: BinaryIO, sink: BinaryIO) -> None:
        head = source.read(lthash._HEAD.size)
        _kind, _number, size = lthash._HEAD.unpack(head)
        source.read(size)
        sink.write(b".")
        sink.flush()
        os._exit(3)

    monkeypatch.setattr(lthash, "_helper", one_frame_then_die)
    elements = mixed_elements(2 * FRAME, seed=8)

    with LtHashSum(method="fork") as adder:
        adder.add(elements[:FRAME])
        # Wait (no clock involved) until it has acknowledged that frame and died.
        wait_for_an_ack(adder)
        os.waitpid(adder._pid, 0)
        adder._pid = 0
        adder.add(elements[FRAME:] * (FRAMES_AHEAD + 1))
        with pytest.raises(HelperFailed):
            adder.result()


def test_a_helper_that_miscounts_is_not_believed(monkeypatch):
    def miscounts(source: BinaryIO, sink: BinaryIO) -> None:
        while head := source.read(lthash._HEAD.size):
            _kind, _number, size = lthash._HEAD.unpack(head)
            source.read(size)
            sink.write(b".")
            sink.flush()
        sink.write(b"=" + lthash.struct.pack("<Q", 1) + bytes(lthash.LTHASH_BYTES))
        sink.flush()

    monkeypatch.setattr(lthash, "_helper", miscounts)
    elements = mixed_elements(2 * FRAME, seed=9)

    with LtHashSum(method="fork") as adder:
        adder.add(elements)
        # It may not have acknowledged a frame yet: wait for one, so result() must ask it.
        wait_for_an_ack(adder)
        with pytest.raises(HelperFailed, match="summed 1 elements"):
            adder.result()


def test_non_bytes_elements_are_refused_before_reaching_the_helper():
    with LtHashSum(method="fork") as adder, pytest.raises(TypeError):
        adder.add([b"\x01" + bytes(18), "not bytes"])


def test_close_ends_and_reaps_the_helper():
    adder = LtHashSum(method="fork")
    adder.add(mixed_elements(FRAME, seed=10))
    pid = adder._pid
    assert pid

    adder.close()

    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def mixed_records(n: int, seed: int) -> list[tuple[int, list[bytes], list[int]]]:
    """``n`` synthetic records per algorithm, as (algorithm id, values, gradings) blocks."""
    rng = random.Random(seed)  # test data, not secrets
    return [
        (
            ALGORITHM_IDS[name],
            [rng.randbytes(ALGORITHM_LENGTHS[name]) for _ in range(n)],
            [rng.randrange(GRADING_COUNT) for _ in range(n)],
        )
        for name in sorted(ALGORITHM_LENGTHS)
    ]


def record_elements(blocks: list[tuple[int, list[bytes], list[int]]]) -> list[bytes]:
    names = {number: name for name, number in ALGORITHM_IDS.items()}
    return [
        element(names[number], value, grading)
        for number, values, gradings in blocks
        for value, grading in zip(values, gradings, strict=True)
    ]


@pytest.mark.parametrize("method", ["fork", "spawn", "none"])
@pytest.mark.parametrize("size", SIZES)
def test_records_summed_in_parallel_give_the_state_of_their_elements(method, size):
    blocks = mixed_records(size, seed=size + 100)

    with LtHashSum(helper=method != "none", method=None if method == "none" else method) as adder:
        for number, values, gradings in blocks:
            adder.add_records(number, values, gradings)
        state = adder.result()

    assert state.state() == serial(record_elements(blocks)).state()


def test_records_and_elements_can_be_mixed():
    blocks = mixed_records(700, seed=13)
    extra = mixed_elements(900, seed=14)

    with LtHashSum(method="fork") as adder:
        adder.add(extra[:450])
        for number, values, gradings in blocks:
            adder.add_records(number, values, gradings)
        adder.add(extra[450:])
        state = adder.result()

    assert state == serial(record_elements(blocks) + extra)


def test_records_of_uneven_lengths_or_counts_are_refused():
    with LtHashSum(helper=False) as adder:
        with pytest.raises(ValueError, match="same length"):
            adder.add_records(ALGORITHM_IDS["md5"], [bytes(16), bytes(15)], [0, 1])
        with pytest.raises(ValueError, match="as many gradings"):
            adder.add_records(ALGORITHM_IDS["md5"], [bytes(16)], [0, 1])
        adder.add_records(ALGORITHM_IDS["md5"], [], [])
        assert adder.result() == LtHash16()
