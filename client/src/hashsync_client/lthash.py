"""LtHash16, the state digest of a feed (``docs/bundle-format.md``, "State digest").

A homomorphic multiset hash (Lewi et al., "Securing update propagation with homomorphic
hashing", 2019): the state is 1024 unsigned 16-bit lanes; each element is expanded by
SHAKE128 to 1024 lanes, and adding or removing the element adds or subtracts them lane-wise
modulo 2**16. The state of a set is therefore independent of order and updatable in
O(changes), on the server when a release is cut and on the client when it applies a delta.
Members compare ``hexdigest()``, the SHA-256 of the state, with the signed manifest.

Shared with the member client: standard library and numpy only, no Django.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from hashsync_client.format import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    ALGORITHM_NAMES,
    GRADING_COUNT,
    MAX_FRAMEWORK_CLASSES,
)

# A record's code: a grading code (format 1), or a class index and grading code (format 2).
_CODE_COUNT = GRADING_COUNT * MAX_FRAMEWORK_CLASSES

LTHASH_BYTES: Final = 2048
LANES: Final = LTHASH_BYTES // 2
DOMAIN: Final = b"hashsync-lthash-v1"
# Elements expanded per numpy sum: 512 * 2 KiB = 1 MiB of expansions held at once. Measured
# (bench/client_catchup.py, docs/benchmarks.md): 4096 (8 MiB, past the caches) cost ~30% more
# CPU per element than 256-512 for the same SHAKE128 work.
BATCH: Final = 512

_LITTLE_U16: Final = np.dtype("<u2")

logger = logging.getLogger(__name__)


def element(algorithm: str, value: bytes, grading: int) -> bytes:
    """The canonical element of one feed record: algorithm id, key bytes, grading (u16 BE).

    ``ValueError`` for an unknown algorithm, a value of the wrong length or a grading code
    outside 0..629 (the message never contains the value).
    """
    number = ALGORITHM_IDS.get(algorithm)
    if number is None:
        raise ValueError(f"unknown algorithm; expected one of {', '.join(ALGORITHM_IDS)}")
    if len(value) != ALGORITHM_LENGTHS[algorithm]:
        raise ValueError(
            f"{algorithm} value must be {ALGORITHM_LENGTHS[algorithm]} bytes, got {len(value)}"
        )
    if type(grading) is not int or not 0 <= grading < _CODE_COUNT:
        raise ValueError(f"grading must be an integer 0..{_CODE_COUNT - 1}")
    return bytes((number,)) + bytes(value) + grading.to_bytes(2, "big")


def row_elements(rows: Iterable[tuple[int, bytes, int]]) -> Iterator[bytes]:
    """The elements of (algorithm id, value, grading) rows, as a store keeps them, checked
    like ``element`` (``ValueError``, ``KeyError`` for an unknown id)."""
    for algorithm, value, grading in rows:
        yield element(ALGORITHM_NAMES[algorithm], bytes(value), grading)


def _expanded_sum(batch: list[bytes]) -> npt.NDArray[np.uint16]:
    """Lane-wise sum (mod 2**16) of the SHAKE128 expansions of ``batch``."""
    shake = hashlib.shake_128
    # DOMAIN + item: one allocation per element is cheaper than copying a primed hasher.
    expansions = b"".join([shake(DOMAIN + item).digest(LTHASH_BYTES) for item in batch])
    lanes = np.frombuffer(expansions, dtype=_LITTLE_U16).reshape(len(batch), LANES)
    # Integer arithmetic in uint16 wraps around: exactly the mod 2**16 the scheme needs.
    return np.add.reduce(lanes, axis=0, dtype=np.uint16)


def _records_sum(
    number: int, values: Sequence[bytes], gradings: Sequence[int]
) -> npt.NDArray[np.uint16]:
    """``_expanded_sum`` of the elements of records of one algorithm (``element`` without its
    checks: id byte, value, grading as u16 big-endian), built with the domain in one step."""
    prefix = DOMAIN + bytes((number,))
    shake = hashlib.shake_128
    expansions = b"".join(
        [
            shake(prefix + value + grading.to_bytes(2, "big")).digest(LTHASH_BYTES)
            for value, grading in zip(values, gradings, strict=True)
        ]
    )
    lanes = np.frombuffer(expansions, dtype=_LITTLE_U16).reshape(len(values), LANES)
    return np.add.reduce(lanes, axis=0, dtype=np.uint16)


class LtHash16:
    """A multiset of byte strings, as 1024 lanes of 16 bits (empty set: all zeros)."""

    __slots__ = ("_lanes",)

    def __init__(self, state: bytes | None = None) -> None:
        if state is None:
            self._lanes = np.zeros(LANES, dtype=np.uint16)
            return
        raw = bytes(state)
        if len(raw) != LTHASH_BYTES:
            raise ValueError(f"an LtHash16 state is {LTHASH_BYTES} bytes, got {len(raw)}")
        self._lanes = np.frombuffer(raw, dtype=_LITTLE_U16).astype(np.uint16)

    def _combine(self, elements: Iterable[bytes], sign: int) -> None:
        items = iter(elements)
        while batch := list(itertools.islice(items, BATCH)):
            if not all(type(item) is bytes for item in batch):
                raise TypeError("LtHash16 elements must be bytes")
            if sign > 0:
                self._lanes += _expanded_sum(batch)
            else:
                self._lanes -= _expanded_sum(batch)

    def add(self, elements: Iterable[bytes]) -> None:
        """Add each element (a multiset: adding one twice counts it twice)."""
        self._combine(elements, 1)

    def remove(self, elements: Iterable[bytes]) -> None:
        """Remove each element; removing what was never added is not detected."""
        self._combine(elements, -1)

    def state(self) -> bytes:
        """The 2048-byte state: lane ``i`` as little-endian u16 at offset ``2 * i``."""
        return self._lanes.astype(_LITTLE_U16).tobytes()

    def hexdigest(self) -> str:
        """SHA-256 of ``state()`` in hex: the "state digest" that manifests publish."""
        return hashlib.sha256(self.state()).hexdigest()

    def copy(self) -> LtHash16:
        twin = LtHash16.__new__(LtHash16)
        twin._lanes = self._lanes.copy()
        return twin

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LtHash16):
            return NotImplemented
        return bool(np.array_equal(self._lanes, other._lanes))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"LtHash16({self.hexdigest()[:16]}…)"


# --- The sum over two cores -------------------------------------------------------------------
#
# SHAKE128 holds the GIL (hashlib releases it only for inputs of 2 KiB or more; ours are
# 19-147 bytes, and the cost is in squeezing 2 KiB out), so threads cannot share the
# expansion. ``LtHashSum`` shares it with one helper process instead: the caller's thread hands
# the helper a frame of elements whenever the helper has room, and expands the rest itself.
# The two partial sums are added at the end: the state of a set does not depend on how it is
# split, so the value is exactly the serial one (tests/hashsync_client/test_lthash_parallel.py).
#
# Pipe protocol (integers little-endian unless said). To the helper, per frame: u8 kind, u32
# element count n, u32 payload size, then the payload: for kind 0 (elements), n u16 lengths
# and the n elements back to back; for kind 1 (records of one algorithm), the u8 algorithm id,
# the u16 value length L, the n values (n * L bytes) and the n gradings as u16 BIG-endian,
# the element being id || value || grading as ``element`` builds it. From the helper: one byte
# b"." per frame summed, and after the end of its input b"=", the u64 number of elements it
# summed and its 2048-byte state.

FRAME: Final = 512  # elements per frame (the helper's BATCH)
# Frames handed to the helper and not yet summed by it. Two keep it busy (one being summed,
# one waiting) without the caller's thread ever blocking on a full pipe.
FRAMES_AHEAD: Final = 2
_PIPE_BYTES: Final = 1 << 20
_RESULT: Final = 1 + 8 + LTHASH_BYTES
_HEAD: Final = struct.Struct("<BII")
_ELEMENTS, _RECORDS = 0, 1
_BIG_U16: Final = np.dtype(">u2")
# Once the helper has summed a frame it is alive; it then owes at most FRAMES_AHEAD frames.
RESULT_TIMEOUT_SECONDS: Final = 60.0


class HelperFailed(RuntimeError):
    """The helper process summed part of the elements and then failed to return its sum:
    the caller must compute the state again another way (the elements are gone)."""


class LtHashSum:
    """An LtHash16 being added to, with the SHAKE128 work shared with a helper process.

    ``add`` takes elements (bytes) as ``LtHash16.add`` does; ``result()`` returns the
    LtHash16 of everything added. ``helper=False``, a system without ``fork`` (the helper is
    POSIX only), or a helper that cannot be started or dies before summing anything, gives the
    same value computed in this thread. Use as a context manager (or call ``close``): the
    helper is ended when it is not waited for.

    How the helper starts (``method``): ``"fork"`` when this process runs no other thread
    (the client's own case: ready in milliseconds, nothing imported again); ``"spawn"`` (a
    fresh interpreter importing this module, ~0.1 s of CPU) when it does, since forking a
    process whose other threads may hold locks is unsafe. The helper only ever runs
    ``_helper`` on its two pipes, then ``os._exit``.

    Memory: the caller's batch plus at most FRAMES_AHEAD frames awaiting the helper.
    """

    def __init__(self, *, helper: bool = True, method: str | None = None) -> None:
        self._local = LtHash16()
        self._pid = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._to = -1  # our end of the helper's input
        self._from = -1  # our end of the helper's output
        # Frames handed to the helper and not yet acknowledged: what to sum here if it fails.
        self._pending: collections.deque[_Frame] = collections.deque()
        self._acked = 0
        self._sent_elements = 0
        self._capacity = 0
        self._acks = b""
        self._lost = ""  # why the helper's part of the sum is lost, if it is
        if helper and os.name == "posix" and hasattr(os, "fork"):
            if method is None:
                method = "fork" if threading.active_count() == 1 else "spawn"
            try:
                self._fork() if method == "fork" else self._spawn()
            except (OSError, ValueError) as exc:
                logger.warning("digest helper not started (%s); computing it here", exc)
                self._kill()
                return
            self._capacity = _pipe_capacity(self._to)
            os.set_blocking(self._from, False)

    # The helper ------------------------------------------------------------------------------

    @property
    def _running(self) -> bool:
        return self._to >= 0

    def _fork(self) -> None:
        helper_in, self._to = os.pipe()
        self._from, helper_out = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(helper_in)
            os.close(helper_out)
            raise
        if pid == 0:  # the helper
            code = 1
            try:
                os.close(self._to)
                os.close(self._from)
                with open(helper_in, "rb") as source, open(helper_out, "wb", buffering=0) as sink:
                    _helper(source, sink)
                code = 0
            finally:
                os._exit(code)
        self._pid = pid
        os.close(helper_in)
        os.close(helper_out)

    def _spawn(self) -> None:
        package_root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, *filter(None, [path])])}
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from hashsync_client.lthash import _helper; "
                "_helper(sys.stdin.buffer, sys.stdout.buffer)",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._to = self._proc.stdin.fileno()
        self._from = self._proc.stdout.fileno()

    def _drop_helper(self, reason: str) -> None:
        """End a helper that never summed a frame and take its frames back."""
        logger.warning("digest helper not used (%s); computing it here", reason)
        self._kill()
        while self._pending:
            self._sum_here(self._pending.popleft())

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        pid, self._pid = self._pid, 0
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        else:
            for fd in (self._to, self._from):
                if fd >= 0:
                    os.close(fd)
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        self._to = self._from = -1

    def _read_acks(self) -> None:
        try:
            data = os.read(self._from, 4096)
        except BlockingIOError:
            return
        if not data:  # end of file: the helper is gone
            raise _HelperGone
        self._take_acks(data)

    def _take_acks(self, data: bytes) -> None:
        data = self._acks + data
        dots = len(data) - len(data.lstrip(b"."))
        if dots > len(self._pending):
            raise _HelperGone("it acknowledged frames it was never sent")
        self._acks = data[dots:]
        for _ in range(dots):
            self._pending.popleft()
        self._acked += dots

    def _sum_here(self, frame: _Frame) -> None:
        if len(frame) == 2:
            self._local.add(frame[1])
        else:
            self._local._lanes += _records_sum(frame[1], frame[2], frame[3])

    def _has_room(self) -> bool:
        if not self._running:
            return False
        if len(self._pending) >= FRAMES_AHEAD:
            # Only then ask whether it has summed some (one system call, never a wait).
            try:
                self._read_acks()
            except _HelperGone as exc:
                return self._helper_failed(str(exc) or "it exited")
        return len(self._pending) < FRAMES_AHEAD

    def _send(self, frame: _Frame, count: int, payload: bytes) -> bool:
        """Hand ``frame`` (``payload`` on the wire) to the helper; False to sum it here."""
        data = memoryview(_HEAD.pack(frame[0], count, len(payload)) + payload)
        if len(data) > self._capacity // FRAMES_AHEAD:
            return False  # would not fit the pipe beside the other frame: never block on it
        try:
            while data:
                data = data[os.write(self._to, data) :]
        except OSError:  # BrokenPipeError: it exited
            return self._helper_failed("it exited")
        self._pending.append(frame)
        self._sent_elements += count
        return True

    def _helper_failed(self, reason: str) -> bool:
        """Stop using the helper. Its frames are summed here if it had summed none yet;
        otherwise its part is lost (a partial write may have reached it too) and ``result``
        says so, while ``add`` goes on here."""
        if self._acked:
            logger.warning("digest helper failed (%s)", reason)
            self._lost = reason
            self._kill()
            self._pending.clear()
        else:
            self._drop_helper(reason)
        return False

    # The interface ---------------------------------------------------------------------------

    def add(self, elements: Iterable[bytes]) -> None:
        """Add each element (a multiset, as ``LtHash16.add``)."""
        items = iter(elements)
        while batch := list(itertools.islice(items, FRAME)):
            if not all(type(item) is bytes for item in batch):
                raise TypeError("LtHash16 elements must be bytes")
            frame: _Frame = (_ELEMENTS, batch)
            if self._has_room():
                lengths = np.fromiter(map(len, batch), dtype=_LITTLE_U16, count=len(batch))
                if self._send(frame, len(batch), lengths.tobytes() + b"".join(batch)):
                    continue
            self._sum_here(frame)

    def add_records(self, number: int, values: Sequence[bytes], gradings: Sequence[int]) -> None:
        """Add the elements of records of one algorithm (id ``number``): the same as
        ``add(element(name, value, grading) ...)`` without its checks, which the bundle codec
        made (every value of the algorithm's length, gradings 0..629); only the lengths are
        checked here, since a frame relies on them."""
        if len(values) != len(gradings):
            raise ValueError("as many gradings as values are needed")
        if not values:
            return
        size = len(values[0])
        if any(len(value) != size for value in values):
            raise ValueError("the values of one algorithm must all have the same length")
        for start in range(0, len(values), FRAME):
            chunk, grades = values[start : start + FRAME], gradings[start : start + FRAME]
            frame: _Frame = (_RECORDS, number, chunk, grades)
            if self._has_room():
                payload = b"".join(
                    (
                        struct.pack("<BH", number, size),
                        *chunk,
                        np.asarray(grades, dtype=_BIG_U16).tobytes(),
                    )
                )
                if self._send(frame, len(chunk), payload):
                    continue
            self._sum_here(frame)

    def result(self) -> LtHash16:
        """The LtHash16 of every element added; ``HelperFailed`` if the helper's part is lost."""
        if self._lost:
            raise HelperFailed(
                f"the digest helper failed after summing part of the elements: {self._lost}"
            )
        if not self._running:
            return self._local.copy()
        if not self._acked:
            # Still starting (or unable to): do its frames here rather than wait for it.
            self._drop_helper("it had not started")
            return self._local.copy()
        try:
            if self._proc is not None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            else:
                os.close(self._to)
            self._to = -1
            answer = self._answer()
        finally:
            self._kill()
        total = LtHash16(answer)
        total._lanes += self._local._lanes
        return total

    def _answer(self) -> bytes:
        deadline = time.monotonic() + RESULT_TIMEOUT_SECONDS
        while len(self._acks) < _RESULT:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from], [], [], remaining)[0]:
                raise HelperFailed("the digest helper did not answer in time")
            data = os.read(self._from, _RESULT + 4096)
            if not data:
                raise HelperFailed("the digest helper exited without its sum")
            try:
                self._take_acks(data)
            except _HelperGone as exc:
                raise HelperFailed(str(exc)) from None
        if self._pending or len(self._acks) != _RESULT or self._acks[:1] != b"=":
            raise HelperFailed("the digest helper's answer is malformed")
        (count,) = struct.unpack("<Q", self._acks[1:9])
        if count != self._sent_elements:
            raise HelperFailed(
                f"the digest helper summed {count} elements; it was sent {self._sent_elements}"
            )
        return self._acks[9:]

    def close(self) -> None:
        """End the helper if it is still running (after ``result`` it is already gone)."""
        self._kill()

    def __enter__(self) -> LtHashSum:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _HelperGone(Exception):
    pass


# A frame, kept until the helper acknowledges it: (_ELEMENTS, elements) or
# (_RECORDS, algorithm id, values, gradings).
_Frame = tuple[int, list[bytes]] | tuple[int, int, Sequence[bytes], Sequence[int]]


def _pipe_capacity(fd: int) -> int:
    """Bytes the pipe ``fd`` holds before a write blocks: 1 MiB asked for on Linux."""
    try:
        import fcntl

        set_size = getattr(fcntl, "F_SETPIPE_SZ", 1031)
        get_size = getattr(fcntl, "F_GETPIPE_SZ", 1032)
        # Above /proc/sys/fs/pipe-max-size it fails: keep what we have (frames that would not
        # fit are summed here).
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_size, _PIPE_BYTES)
        return int(fcntl.fcntl(fd, get_size))
    except (ImportError, OSError):
        return 16384  # the smallest pipe buffer of the systems we run on


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the digest helper's input ended inside a frame")
    return data


def _helper(source: BinaryIO, sink: BinaryIO) -> None:
    """The helper process: sum the frames read from ``source``, acknowledge each on ``sink``,
    and at the end of its input write the count and the state."""
    lanes = np.zeros(LANES, dtype=np.uint16)
    count = 0
    while head := source.read(_HEAD.size):
        if len(head) != _HEAD.size:
            raise EOFError("the digest helper's input ended inside a frame header")
        kind, number, size = _HEAD.unpack(head)
        body = _read_exactly(source, size)
        if number == 0:
            raise ValueError("the digest helper got an empty frame")
        if kind == _ELEMENTS:
            lanes += _expanded_sum(_split_elements(body, number))
        elif kind == _RECORDS:
            algorithm, length = struct.unpack_from("<BH", body)
            if size != 3 + number * (length + 2):
                raise ValueError("the digest helper's records frame has the wrong size")
            end = 3 + number * length
            values = [body[start : start + length] for start in range(3, end, length)]
            gradings = np.frombuffer(body, dtype=_BIG_U16, offset=end).tolist()
            lanes += _records_sum(algorithm, values, gradings)
        else:
            raise ValueError("the digest helper got a frame of an unknown kind")
        count += number
        sink.write(b".")
        sink.flush()
    sink.write(b"=" + struct.pack("<Q", count) + lanes.astype(_LITTLE_U16).tobytes())
    sink.flush()


def _split_elements(body: bytes, number: int) -> list[bytes]:
    if len(body) < 2 * number:
        raise ValueError("the digest helper's elements frame is short")
    ends = np.cumsum(np.frombuffer(body, dtype=_LITTLE_U16, count=number), dtype=np.int64)
    ends += 2 * number
    if ends[-1] != len(body):
        raise ValueError("the digest helper's frame sizes do not add up")
    starts = [2 * number, *ends[:-1].tolist()]
    return [body[start:end] for start, end in zip(starts, ends.tolist(), strict=True)]
