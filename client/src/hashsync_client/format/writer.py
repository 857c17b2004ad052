"""Writing bundles: records checked and encoded block by block into one zstd frame."""

from __future__ import annotations

import hashlib
import itertools
import shutil
import tempfile
from collections.abc import Iterable
from operator import attrgetter
from typing import IO, BinaryIO

import numpy as np
import zstandard

from hashsync_client.format.columns import I64, _first_unsorted, _palette, _u32, _varint_encode
from hashsync_client.format.constants import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    BLOCK_RECORDS,
    END_OF_BLOCKS,
    MAGIC,
    PREFIX_BYTES,
    ZSTD_LEVEL,
)
from hashsync_client.format.grading import GRADING_COUNT
from hashsync_client.format.records import (
    _OPS,
    BundleHeader,
    BundleInfo,
    FrameworkRef,
    Op,
    Record,
    _header_bytes,
    _header_problem,
    framework_problem,
    header_format,
)


class _HashingWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self.sha256.update(data)
        self.size += len(data)


def _compressor() -> zstandard.ZstdCompressor:
    # Fixed parameters so that the same records give the same bytes (for a zstd version):
    # level 3, one thread, no dictionary, content checksum on, no content size (streamed).
    return zstandard.ZstdCompressor(
        level=ZSTD_LEVEL,
        write_checksum=True,
        write_content_size=False,
        write_dict_id=False,
        threads=0,
    )


class _BlockEncoder:
    """Checks and encodes records block by block into one zstd frame."""

    def __init__(self, sink: _HashingWriter, *, kind: str, code_count: int = GRADING_COUNT) -> None:
        self._sink = sink
        self._snapshot = kind == "snapshot"
        self._code_count = code_count
        self._zstd = _compressor().compressobj()
        self._previous: tuple[int, bytes] | None = None  # last key written
        self.count = 0

    def add(self, algorithm: str, chunk: list[Record]) -> None:
        first = self.count  # position of chunk[0] in the input, for messages
        number = ALGORITHM_IDS.get(algorithm) if isinstance(algorithm, str) else None
        if number is None:
            raise ValueError(
                f"record {first}: unknown algorithm; expected one of {', '.join(ALGORITHM_IDS)}"
            )
        length = ALGORITHM_LENGTHS[algorithm]
        n = len(chunk)
        values = [r.value for r in chunk]
        if set(map(type, values)) != {bytes}:
            raise ValueError(f"records {first}..{first + n - 1}: values must be bytes")
        sizes = np.fromiter(map(len, values), dtype=np.int64, count=n)
        wrong = np.flatnonzero(sizes != length)
        if len(wrong):
            raise ValueError(
                f"record {first + int(wrong[0])}: {algorithm} value must be {length} bytes, "
                f"got {int(sizes[wrong[0]])}"
            )
        try:
            ops = np.fromiter(map(attrgetter("op"), chunk), dtype=np.int64, count=n)
            gradings = np.fromiter(map(attrgetter("grading"), chunk), dtype=np.int64, count=n)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(
                f"records {first}..{first + n - 1}: op and grading must be integers"
            ) from None
        self._check_ops(first, ops, gradings)

        keys = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(n, length)
        prefixes = keys[:, :PREFIX_BYTES].copy().view(">u4").ravel().astype(np.int64)
        tails = keys[:, PREFIX_BYTES:]
        deltas = np.diff(prefixes, prepend=0)
        bad = _first_unsorted(deltas, tails)
        if bad >= 0:
            raise ValueError(
                f"record {first + bad}: records must be sorted by (algorithm, value) "
                "without duplicates"
            )
        key = (number, values[0])
        if self._previous is not None and not self._previous < key:
            raise ValueError(
                f"record {first}: records must be sorted by (algorithm, value) without duplicates"
            )
        self._previous = (number, values[-1])

        palette, index, escaped = _palette(gradings)
        encoded_prefixes = _varint_encode(deltas)
        block = b"".join(
            (
                bytes((number,)),
                _u32(n),
                _u32(len(encoded_prefixes)),
                bytes((len(palette),)),
                palette.astype("<u2").tobytes(),
                ops.astype(np.uint8).tobytes(),
                index.tobytes(),
                escaped.astype("<u2").tobytes(),
                encoded_prefixes,
                tails.tobytes(),
            )
        )
        self._sink.write(self._zstd.compress(block))
        self.count += n

    def _check_ops(self, first: int, ops: I64, gradings: I64) -> None:
        bad_op = np.flatnonzero((ops < 0) | (ops >= len(_OPS)))
        if len(bad_op):
            raise ValueError(f"record {first + int(bad_op[0])}: op must be 0..{len(_OPS) - 1}")
        if self._snapshot and np.any(ops != Op.UPSERT):
            at = first + int(np.flatnonzero(ops != Op.UPSERT)[0])
            raise ValueError(f"record {at}: a snapshot holds only UPSERT records")
        bad_grading = np.flatnonzero((gradings < 0) | (gradings >= self._code_count))
        if len(bad_grading):
            raise ValueError(
                f"record {first + int(bad_grading[0])}: grading must be 0..{self._code_count - 1}"
            )
        removal_graded = np.flatnonzero((ops != Op.UPSERT) & (gradings != 0))
        if len(removal_graded):
            raise ValueError(f"record {first + int(removal_graded[0])}: a removal has grading 0")

    def finish(self) -> None:
        self._sink.write(self._zstd.compress(bytes((END_OF_BLOCKS,))))
        self._sink.write(self._zstd.flush())


def _encode_records(encoder: _BlockEncoder, records: Iterable[Record]) -> None:
    # groupby + islice keep the per-record work in C: blocks split where the algorithm
    # changes and every BLOCK_RECORDS records, which is the canonical split readers check.
    for algorithm, group in itertools.groupby(records, attrgetter("algorithm")):
        while chunk := list(itertools.islice(group, BLOCK_RECORDS)):
            encoder.add(algorithm, chunk)
    encoder.finish()


def write_bundle(
    out: BinaryIO,
    *,
    kind: str,
    feed: str,
    from_version: int,
    to_version: int,
    records: Iterable[Record],
    record_count: int | None = None,
    framework: FrameworkRef | None = None,
) -> BundleInfo:
    """Write a bundle of ``records`` to ``out``, holding one block in memory at a time.

    ``records`` must be sorted by ``(ALGORITHM_IDS[algorithm], value)`` with no key twice; a
    snapshot (``from_version`` 0) holds only UPSERTs; removals carry grading 0. Anything else
    raises ``ValueError`` naming the record's position (never its value).

    The header states the record count before the body, so without ``record_count`` the
    compressed body is spooled to a temporary file (in memory up to 8 MiB) and copied to
    ``out`` at the end. Give ``record_count`` when known to stream straight to ``out``; if the
    records then do not number exactly that, ``ValueError`` is raised after bytes were written
    and ``out`` must be discarded (so must it after any error).

    With ``framework`` the bundle is format 2: its header names the framework, and each
    record's grading is a ``classed_code`` below ``framework.code_count``. Without it, format 1,
    byte for byte as before format 2 existed.
    """
    count = 0 if record_count is None else record_count
    problem = _header_problem(kind, feed, from_version, to_version, count)
    if problem is None and framework is not None:
        problem = framework_problem(framework)
    if problem:
        raise ValueError(problem)
    code_count = GRADING_COUNT if framework is None else framework.code_count

    def header(count: int) -> bytes:
        text = _header_bytes(
            BundleHeader(
                header_format(framework), kind, feed, from_version, to_version, count, framework
            )
        )
        return MAGIC + _u32(len(text)) + text

    sink = _HashingWriter(out)
    if record_count is not None:
        sink.write(header(record_count))
        encoder = _BlockEncoder(sink, kind=kind, code_count=code_count)
        _encode_records(encoder, records)
        if encoder.count != record_count:
            raise ValueError(
                f"record_count was given as {record_count} but {encoder.count} records came"
            )
    else:
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            encoder = _BlockEncoder(_HashingWriter(spool), kind=kind, code_count=code_count)
            _encode_records(encoder, records)
            sink.write(header(encoder.count))
            spool.seek(0)
            shutil.copyfileobj(spool, sink, 1 << 20)
    return BundleInfo(sha256=sink.sha256.hexdigest(), size=sink.size, record_count=encoder.count)
