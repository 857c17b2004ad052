"""The bundle codec: the bytes of snapshot and delta bundles (``docs/bundle-format.md``).

This module is shared with the member client, so it imports no Django: standard library,
numpy and zstandard only (and the pure-Python hash registry for the key lengths).

A bundle is ``b"HSB1"``, a length-prefixed canonical-JSON header, and one zstd frame holding
blocks of at most 65,536 records of one algorithm each, stored as columns. Records are sorted
by ``(algorithm id, value)``; the first four bytes of each key are stored as a LEB128 delta
from the previous key in the block, the rest raw. Both directions stream: the writer holds
one block at a time, the reader one block plus the zstd window.

Privacy rule (as in ``hashsync_client.algorithms``): no error message contains a hash value or any
part of one, only positions, counts and the nature of the problem.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from operator import attrgetter
from types import MappingProxyType
from typing import IO, Any, BinaryIO, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import zstandard

from hashsync_client.algorithms import ALGORITHMS

# --- Constants fixed by format 1 ---------------------------------------------------------------

MAGIC: Final = b"HSB1"
FORMAT_VERSION: Final = 1
KINDS: Final = ("snapshot", "delta")
MAX_HEADER_BYTES: Final = 4096
BLOCK_RECORDS: Final = 65_536
MAX_VERSION: Final = 2**53 - 1  # the largest integer every JSON implementation reads exactly
ZSTD_LEVEL: Final = 3
MAX_WINDOW_BYTES: Final = 1 << 23  # readers refuse zstd frames that need a larger window
PREFIX_BYTES: Final = 4  # key bytes stored as a delta; the rest of the key is stored raw
PALETTE_MAX: Final = 255  # grading palette entries per block; index 255 means "escaped"
ESCAPE: Final = 255
END_OF_BLOCKS: Final = 0  # an "algorithm id" of 0 ends the block sequence
ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"

# Fixed by the format, not derived from the registry's order: never renumber.
ALGORITHM_IDS: Final[MappingProxyType[str, int]] = MappingProxyType(
    {"md5": 1, "sha1": 2, "sha256": 3, "pdq": 4, "photodna": 5}
)
ALGORITHM_NAMES: Final[MappingProxyType[int, str]] = MappingProxyType(
    {number: name for name, number in ALGORITHM_IDS.items()}
)
ALGORITHM_LENGTHS: Final[MappingProxyType[str, int]] = MappingProxyType(
    {name: ALGORITHMS[name].length for name in ALGORITHM_IDS}
)
# The format spec fixes these lengths too; a registry change must not silently change bundles.
if dict(ALGORITHM_LENGTHS) != {"md5": 16, "sha1": 20, "sha256": 32, "pdq": 32, "photodna": 144}:
    raise RuntimeError("hash registry lengths disagree with bundle format 1")
if set(ALGORITHMS) - set(ALGORITHM_IDS):
    raise RuntimeError("an algorithm in the hash registry has no bundle format id")

# --- Gradings -----------------------------------------------------------------------------------

# Mixed radix, first field most significant: code = ((((c*7 + a)*3 + b)*5 + i)*2 + t), where
# each digit is the value's position in its tuple here. Never reorder or extend a tuple.
GRADING_FIELDS: Final[MappingProxyType[str, tuple[Any, ...]]] = MappingProxyType(
    {
        "category": ("A", "B", "C"),
        "age_group": ("0-2", "3-6", "7-10", "11-13", "14-15", "16-17", "unknown"),
        "baseline": (None, True, False),
        "industry_class": ("", "A1", "A2", "B1", "B2"),
        "content_type": ("image", "video"),
    }
)
GRADING_COUNT: Final = math.prod(len(values) for values in GRADING_FIELDS.values())  # 630


class Grading(NamedTuple):
    category: str
    age_group: str
    baseline: bool | None
    industry_class: str
    content_type: str


_GRADINGS: Final[tuple[Grading, ...]] = tuple(
    Grading(*values) for values in itertools.product(*GRADING_FIELDS.values())
)
# Keyed with the type of baseline so that 1/0 are not taken for True/False (1 == True).
_GRADING_CODES: Final[dict[tuple[Any, ...], int]] = {
    (*grading, type(grading.baseline)): code for code, grading in enumerate(_GRADINGS)
}


def encode_grading(
    category: str,
    age_group: str,
    baseline: bool | None,
    industry_class: str,
    content_type: str,
) -> int:
    """The grading code 0..629 of a grading; ``ValueError`` if any field is not a known value.

    Values are compared exactly (``"a"`` is not ``"A"``); normalise with
    ``hashlist.grading.validate_grading`` first.
    """
    key = (category, age_group, baseline, industry_class, content_type, type(baseline))
    try:
        return _GRADING_CODES[key]
    except (KeyError, TypeError):  # TypeError: an unhashable value
        pass
    for (field, allowed), value in zip(GRADING_FIELDS.items(), key, strict=False):
        if field == "baseline":
            valid = value is None or type(value) is bool
        else:
            valid = type(value) is str and value in allowed
        if not valid:
            choices = ", ".join(map(repr, allowed))
            raise ValueError(f"{field} must be one of {choices}; got {_short(value)}")
    raise AssertionError("unreachable: every valid grading has a code")


def decode_grading(code: int) -> Grading:
    """The grading of a code 0..629; ``ValueError`` for anything else."""
    if type(code) is not int or not 0 <= code < GRADING_COUNT:
        raise ValueError(f"grading code must be an integer 0..{GRADING_COUNT - 1}")
    return _GRADINGS[code]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 12 else f"a value of {len(text)} characters"


# --- Records and headers ------------------------------------------------------------------------


class Op(IntEnum):
    """What a record does. Snapshots hold only UPSERT; the others are removal reasons."""

    UPSERT = 0
    RETRACTED = 1  # the entry was retracted (found to be wrong)
    REGRADED_OUT = 2  # the entry's new grading no longer matches the feed's filter
    HASH_REMOVED = 3  # this hash was removed from an entry that stays on the list


_OPS: Final = tuple(Op)


@dataclass(frozen=True, slots=True)
class Record:
    """One keyed change. ``grading`` is a grading code for UPSERT and 0 for removals."""

    algorithm: str
    value: bytes
    op: Op
    grading: int


@dataclass(frozen=True, slots=True)
class BundleHeader:
    format: int
    kind: str
    feed: str
    from_version: int
    to_version: int
    record_count: int


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """What a writer produced: the SHA-256 (hex) and size of the bytes, and the record count."""

    sha256: str
    size: int
    record_count: int


class BundleFormatError(ValueError):
    """The bytes are not a valid bundle (malformed, truncated, corrupted or over a limit)."""

    code = "bundle_format"


_FEED_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEADER_KEYS: Final = frozenset(
    ("format", "kind", "feed", "from_version", "to_version", "record_count")
)


def _header_problem(
    kind: object, feed: object, from_version: object, to_version: object, record_count: object
) -> str | None:
    """What is wrong with these header fields, or None."""
    if kind not in KINDS:
        return "kind must be 'snapshot' or 'delta'"
    if not isinstance(feed, str) or not _FEED_RE.fullmatch(feed):
        return "feed must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'"
    for name, number in (
        ("from_version", from_version),
        ("to_version", to_version),
        ("record_count", record_count),
    ):
        if type(number) is not int or not 0 <= number <= MAX_VERSION:
            return f"{name} must be an integer 0..2**53-1"
    assert isinstance(from_version, int) and isinstance(to_version, int)
    if kind == "snapshot" and from_version != 0:
        return "a snapshot must have from_version 0"
    if kind == "delta" and not from_version < to_version:
        return "a delta must have from_version < to_version"
    return None


def _header_bytes(header: BundleHeader) -> bytes:
    document = {
        "format": header.format,
        "kind": header.kind,
        "feed": header.feed,
        "from_version": header.from_version,
        "to_version": header.to_version,
        "record_count": header.record_count,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


# --- Columns --------------------------------------------------------------------------------------

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def _varint_encode(values: I64) -> bytes:
    """Unsigned LEB128 of each value (all 0..2**32-1), concatenated; vectorised."""
    v = values.astype(np.uint64)
    sizes = np.ones(len(v), dtype=np.int64)
    for k in range(1, 5):
        sizes += v >= np.uint64(1 << (7 * k))
    starts = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    for k in range(5):
        has = sizes > k
        byte = ((v[has] >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        byte[sizes[has] > k + 1] |= 0x80
        out[starts[has] + k] = byte
    return out.tobytes()


def _varint_decode(data: bytes, count: int) -> U64:
    """Exactly ``count`` canonical LEB128 values below 2**32 filling ``data``; vectorised."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw < 0x80)
    if len(ends) != count or (count and ends[-1] != len(raw) - 1):
        raise BundleFormatError(
            f"key prefix column holds {len(ends)} complete varints, expected {count}"
        )
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    starts = np.empty(count, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    sizes = ends - starts + 1
    if sizes.max() > 5:
        raise BundleFormatError("key prefix varint longer than 5 bytes")
    # Canonical: no redundant trailing zero group (0x80 0x00), and at most 32 bits.
    if np.any((sizes > 1) & (raw[ends] == 0)):
        raise BundleFormatError("key prefix varint is not in its shortest form")
    if np.any((sizes == 5) & (raw[ends] > 0x0F)):
        raise BundleFormatError("key prefix delta does not fit in 32 bits")
    position = np.arange(len(raw), dtype=np.int64) - np.repeat(starts, sizes)
    groups = (raw & 0x7F).astype(np.uint64) << (position * 7).astype(np.uint64)
    return np.add.reduceat(groups, starts).astype(np.uint64)


def _first_unsorted(deltas: I64, tails: U8) -> int:
    """Index (>= 1) of the first row not strictly greater than the row before it, or -1.

    ``deltas`` are the differences of consecutive key prefixes; rows whose prefixes are equal
    are compared on their remaining bytes.
    """
    bad = np.flatnonzero(deltas[1:] < 0) + 1
    ties = np.flatnonzero(deltas[1:] == 0) + 1
    if len(ties):
        before, after = tails[ties - 1], tails[ties]
        differs = before != after
        first = differs.argmax(axis=1)
        rows = np.arange(len(ties))
        greater = differs.any(axis=1) & (after[rows, first] > before[rows, first])
        bad = np.concatenate([bad, ties[~greater]])
    return int(bad.min()) if len(bad) else -1


def _palette(gradings: I64) -> tuple[I64, U8, I64]:
    """(palette, index column, escaped codes) for one block's grading codes.

    The palette lists the block's distinct codes by descending frequency, ties by ascending
    code, at most 255 of them; records whose code is not in it get index 255 and their code
    is stored in the escape column, in record order.
    """
    codes, inverse, counts = np.unique(gradings, return_inverse=True, return_counts=True)
    order = np.lexsort((codes, -counts))
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes))
    record_rank = rank[inverse.ravel()]
    escaped = record_rank >= PALETTE_MAX
    index = np.where(escaped, ESCAPE, record_rank).astype(np.uint8)
    return codes[order[:PALETTE_MAX]].astype(np.int64), index, gradings[escaped]


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


# --- Writing ------------------------------------------------------------------------------------


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

    def __init__(self, sink: _HashingWriter, *, kind: str) -> None:
        self._sink = sink
        self._snapshot = kind == "snapshot"
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
        bad_grading = np.flatnonzero((gradings < 0) | (gradings >= GRADING_COUNT))
        if len(bad_grading):
            raise ValueError(
                f"record {first + int(bad_grading[0])}: grading must be 0..{GRADING_COUNT - 1}"
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
    """
    count = 0 if record_count is None else record_count
    problem = _header_problem(kind, feed, from_version, to_version, count)
    if problem:
        raise ValueError(problem)

    def header(count: int) -> bytes:
        text = _header_bytes(
            BundleHeader(FORMAT_VERSION, kind, feed, from_version, to_version, count)
        )
        return MAGIC + _u32(len(text)) + text

    sink = _HashingWriter(out)
    if record_count is not None:
        sink.write(header(record_count))
        encoder = _BlockEncoder(sink, kind=kind)
        _encode_records(encoder, records)
        if encoder.count != record_count:
            raise ValueError(
                f"record_count was given as {record_count} but {encoder.count} records came"
            )
    else:
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            encoder = _BlockEncoder(_HashingWriter(spool), kind=kind)
            _encode_records(encoder, records)
            sink.write(header(encoder.count))
            spool.seek(0)
            shutil.copyfileobj(spool, sink, 1 << 20)
    return BundleInfo(sha256=sink.sha256.hexdigest(), size=sink.size, record_count=encoder.count)


# --- Reading ------------------------------------------------------------------------------------

_FEED_CHUNK: Final = 1024  # compressed bytes per decompress() call: caps one call's output
_READ_CHUNK: Final = 1 << 16
_MAX_BLOCK_HEADER: Final = 1 + 4 + 4 + 1 + 2 * PALETTE_MAX
_MAX_RECORD_BYTES: Final = 1 + 1 + 2 + 5 + max(ALGORITHM_LENGTHS.values()) - PREFIX_BYTES


def _max_body_bytes(record_count: int) -> int:
    """An upper bound on the decompressed body of a bundle of ``record_count`` records."""
    blocks = -(-record_count // BLOCK_RECORDS) + len(ALGORITHM_IDS)
    return 1 + blocks * _MAX_BLOCK_HEADER + record_count * _MAX_RECORD_BYTES


def _read_exact(inp: IO[bytes], n: int) -> bytes:
    """``n`` bytes, or fewer only at the end of ``inp`` (short reads from pipes are retried)."""
    data = inp.read(n)
    while len(data) < n:
        more = inp.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _check_frame_start(inp: IO[bytes]) -> bytes:
    """Read and check the zstd frame's magic and descriptor; return the bytes read."""
    start = _read_exact(inp, 5)
    if len(start) < 5:
        raise BundleFormatError("truncated: the bundle ends before its compressed body")
    if start[:4] != ZSTD_MAGIC:
        raise BundleFormatError("the body is not a zstd frame")
    descriptor = start[4]
    if not descriptor & 0x04 or descriptor & 0x03 or descriptor & 0x08:
        raise BundleFormatError("the zstd frame must carry a content checksum and no dictionary id")
    return start


class _Body:
    """The decompressed body, pulled from ``inp`` as the reader needs it."""

    def __init__(self, inp: IO[bytes], limit: int, limit_message: str) -> None:
        self._inp = inp
        self._zstd = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_BYTES).decompressobj()
        self._buffer = bytearray()
        self._position = 0
        self._pending = memoryview(b"")
        self._started = False
        self._limit = limit
        self._limit_message = limit_message
        self.decompressed = 0
        self.frame_done = False

    def _pull(self) -> bool:
        """Decompress a little more into the buffer; False once the frame has ended."""
        if self.frame_done:
            return False
        if not self._started:
            self._pending = memoryview(_check_frame_start(self._inp))
            self._started = True
        if not self._pending:
            chunk = self._inp.read(_READ_CHUNK)
            if not chunk:
                raise BundleFormatError("truncated: the compressed body ends before its frame")
            self._pending = memoryview(chunk)
        piece, self._pending = self._pending[:_FEED_CHUNK], self._pending[_FEED_CHUNK:]
        try:
            output = self._zstd.decompress(piece)
        except zstandard.ZstdError as exc:
            raise BundleFormatError(f"corrupt compressed body ({exc})") from None
        self.decompressed += len(output)
        if self.decompressed > self._limit:
            raise BundleFormatError(self._limit_message)
        if self._position > (1 << 20):
            del self._buffer[: self._position]
            self._position = 0
        self._buffer += output
        if self._zstd.eof:
            self.frame_done = True
            unused = self._zstd.unused_data + bytes(self._pending)
            if unused or self._inp.read(1):
                raise BundleFormatError("trailing bytes after the compressed body")
        return True

    def read(self, n: int, what: str) -> bytes:
        while len(self._buffer) - self._position < n:
            if not self._pull():
                raise BundleFormatError(f"truncated: the body ends inside {what}")
        start = self._position
        self._position += n
        with memoryview(self._buffer) as view:
            return bytes(view[start : self._position])

    def finish(self) -> None:
        """Check that nothing follows the end-of-blocks marker and the frame is complete."""
        while True:
            if len(self._buffer) > self._position:
                raise BundleFormatError("data after the end-of-blocks marker")
            if not self._pull():
                return


class _BlockDecoder:
    def __init__(self, header: BundleHeader, body: _Body) -> None:
        self._header = header
        self._body = body
        self._seen = 0
        self._previous: tuple[int, bytes] | None = None
        self._previous_full = True

    def blocks(self) -> Iterator[tuple[str, list[bytes], U8, I64]]:
        """(algorithm, values, ops, gradings) per block, every check done."""
        body = self._body
        while True:
            number = body.read(1, "a block header")[0]
            if number == END_OF_BLOCKS:
                break
            yield self._block(number)
        if self._seen != self._header.record_count:
            raise BundleFormatError(
                f"the header announces {self._header.record_count} records "
                f"but the body holds {self._seen}"
            )
        body.finish()

    def _block(self, number: int) -> tuple[str, list[bytes], U8, I64]:
        body = self._body
        where = f"block at record {self._seen}"
        algorithm = ALGORITHM_NAMES.get(number)
        if algorithm is None:
            raise BundleFormatError(f"{where}: unknown algorithm id {number}")
        length = ALGORITHM_LENGTHS[algorithm]
        fixed = body.read(9, "a block header")
        count = int.from_bytes(fixed[0:4], "little")
        prefix_bytes = int.from_bytes(fixed[4:8], "little")
        palette_size = fixed[8]
        if not 1 <= count <= BLOCK_RECORDS:
            raise BundleFormatError(f"{where}: record count {count} is not 1..{BLOCK_RECORDS}")
        if self._seen + count > self._header.record_count:
            raise BundleFormatError(
                f"{where}: more records than the header's record_count "
                f"({self._header.record_count})"
            )
        if self._previous is not None:
            if number < self._previous[0]:
                raise BundleFormatError(f"{where}: blocks are not sorted by algorithm id")
            if number == self._previous[0] and not self._previous_full:
                raise BundleFormatError(
                    f"{where}: follows a short block of the same algorithm "
                    f"(blocks must hold {BLOCK_RECORDS} records until the algorithm changes)"
                )
        if not count <= prefix_bytes <= 5 * count:
            raise BundleFormatError(f"{where}: key prefix column size {prefix_bytes} impossible")
        if not 1 <= palette_size <= min(count, PALETTE_MAX):
            raise BundleFormatError(f"{where}: grading palette size {palette_size} impossible")

        palette = np.frombuffer(body.read(2 * palette_size, "a grading palette"), "<u2")
        if palette.max() >= GRADING_COUNT:
            raise BundleFormatError(f"{where}: grading code >= {GRADING_COUNT} in the palette")
        if len(np.unique(palette)) != palette_size:
            raise BundleFormatError(f"{where}: grading palette repeats a code")
        ops = np.frombuffer(body.read(count, "an op column"), np.uint8)
        if ops.max() >= len(_OPS):
            at = self._seen + int(np.flatnonzero(ops >= len(_OPS))[0])
            raise BundleFormatError(f"record {at}: op code {int(ops.max())} is not 0..3")
        if self._header.kind == "snapshot" and ops.any():
            raise BundleFormatError(f"{where}: a snapshot holds a removal")
        index = np.frombuffer(body.read(count, "a grading index column"), np.uint8)
        escaped = index == ESCAPE
        if palette_size == PALETTE_MAX:
            escaped_count = int(escaped.sum())
        else:
            escaped_count = 0
            if index.max() >= palette_size:
                raise BundleFormatError(f"{where}: grading index beyond the palette")
        used = np.bincount(index[~escaped], minlength=palette_size)
        if not used.all():
            raise BundleFormatError(f"{where}: grading palette holds an unused code")
        gradings = palette.astype(np.int64)[np.where(escaped, 0, index)]
        if escaped_count:
            codes = np.frombuffer(body.read(2 * escaped_count, "a grading escape column"), "<u2")
            if codes.max() >= GRADING_COUNT:
                raise BundleFormatError(f"{where}: grading code >= {GRADING_COUNT}")
            gradings[escaped] = codes
        if np.any((ops != Op.UPSERT) & (gradings != 0)):
            raise BundleFormatError(f"{where}: a removal has a grading other than 0")

        deltas = _varint_decode(body.read(prefix_bytes, "a key prefix column"), count)
        prefixes = np.cumsum(deltas, dtype=np.uint64)
        if prefixes[-1] > 0xFFFFFFFF:
            raise BundleFormatError(f"{where}: key prefixes overflow 32 bits")
        tails = np.frombuffer(
            body.read(count * (length - PREFIX_BYTES), "a key column"), np.uint8
        ).reshape(count, length - PREFIX_BYTES)
        # Deltas are unsigned, so only equal prefixes can be out of order.
        bad = _first_unsorted(deltas.astype(np.int64), tails)
        if bad >= 0:
            raise BundleFormatError(f"record {self._seen + bad}: keys are not strictly increasing")
        keys = np.empty((count, length), dtype=np.uint8)
        keys[:, :PREFIX_BYTES] = prefixes.astype(">u4").view(np.uint8).reshape(count, 4)
        keys[:, PREFIX_BYTES:] = tails
        flat = keys.tobytes()
        values = [flat[i : i + length] for i in range(0, count * length, length)]
        key = (number, values[0])
        if self._previous is not None and not self._previous < key:
            raise BundleFormatError(f"record {self._seen}: keys are not strictly increasing")
        self._previous = (number, values[-1])
        self._previous_full = count == BLOCK_RECORDS
        self._seen += count
        return algorithm, values, ops, gradings


def _read_header(inp: IO[bytes]) -> BundleHeader:
    start = _read_exact(inp, 8)
    if len(start) < 4 or start[:4] != MAGIC:
        raise BundleFormatError("not a hashsync bundle (bad magic)")
    if len(start) < 8:
        raise BundleFormatError("truncated: the bundle ends inside its header length")
    size = int.from_bytes(start[4:8], "little")
    if not 2 <= size <= MAX_HEADER_BYTES:
        raise BundleFormatError(f"header length {size} is not 2..{MAX_HEADER_BYTES}")
    text = _read_exact(inp, size)
    if len(text) != size:
        raise BundleFormatError("truncated: the bundle ends inside its header")
    try:
        document = json.loads(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise BundleFormatError("header is not ASCII JSON") from None
    if not isinstance(document, dict) or set(document) != _HEADER_KEYS:
        raise BundleFormatError(f"header must have exactly the keys {sorted(_HEADER_KEYS)}")
    if type(document["format"]) is not int or document["format"] != FORMAT_VERSION:
        raise BundleFormatError(f"unsupported bundle format {_short(document['format'])}")
    problem = _header_problem(
        document["kind"],
        document["feed"],
        document["from_version"],
        document["to_version"],
        document["record_count"],
    )
    if problem:
        raise BundleFormatError(f"bad header: {problem}")
    header = BundleHeader(**document)
    if _header_bytes(header) != text:
        raise BundleFormatError("header is not in canonical JSON form")
    return header


def _open_bundle(
    inp: IO[bytes], max_records: int | None, max_decompressed: int | None
) -> tuple[BundleHeader, _BlockDecoder]:
    header = _read_header(inp)
    if max_records is not None and header.record_count > max_records:
        raise BundleFormatError(
            f"bundle announces {header.record_count} records, more than the {max_records} allowed"
        )
    limit = _max_body_bytes(header.record_count)
    message = "the body decompresses to more than its record count can need"
    if max_decompressed is not None and max_decompressed < limit:
        limit = max_decompressed
        message = f"the body decompresses to more than the {max_decompressed} bytes allowed"
    return header, _BlockDecoder(header, _Body(inp, limit, message))


def read_bundle(
    inp: BinaryIO, *, max_records: int | None = None, max_decompressed: int | None = None
) -> tuple[BundleHeader, Iterator[Record]]:
    """Read and check the header now; return it with an iterator over the records.

    The iterator decompresses and checks block by block, so records arrive before the whole
    bundle has been checked: it raises ``BundleFormatError`` wherever the bytes turn out bad
    (including at the very end: wrong count, missing end marker, checksum, trailing bytes).
    Apply records to a staging copy and keep it only once the iterator is exhausted.

    ``max_records`` refuses a header announcing more records; ``max_decompressed`` caps the
    decompressed body in bytes (it is also capped by what the record count can need).
    """
    header, decoder = _open_bundle(inp, max_records, max_decompressed)

    def records() -> Iterator[Record]:
        # map() keeps the per-record work in C; one Python step per block.
        for algorithm, values, ops, gradings in decoder.blocks():
            yield from map(
                Record,
                itertools.repeat(algorithm),
                values,
                map(_OPS.__getitem__, ops.tolist()),
                gradings.tolist(),
            )

    return header, records()


def read_bundle_bytes(
    data: bytes, *, max_records: int | None = None, max_decompressed: int | None = None
) -> tuple[BundleHeader, list[Record]]:
    """Read a whole bundle held in memory; every record is checked before this returns."""
    header, records = read_bundle(
        io.BytesIO(data), max_records=max_records, max_decompressed=max_decompressed
    )
    return header, list(records)


class Block(NamedTuple):
    """One decoded block: up to 65,536 records of one algorithm, as columns.

    ``values[i]``, ``ops[i]`` (an ``Op`` code) and ``gradings[i]`` (0 for removals) are record
    ``i``; values are sorted and distinct, as in the bundle.
    """

    algorithm: str
    values: list[bytes]
    ops: npt.NDArray[np.uint8]
    gradings: npt.NDArray[np.int64]


def read_bundle_blocks(
    inp: BinaryIO, *, max_records: int | None = None, max_decompressed: int | None = None
) -> tuple[BundleHeader, Iterator[Block]]:
    """``read_bundle``, one block at a time instead of one ``Record`` at a time.

    For readers that apply records in bulk (the member client writes a block with one
    ``executemany``), where a ``Record`` object per record would cost more than the decoding.
    The same checks and errors as ``read_bundle``, with the same caveat: a later block, or the
    end of the bundle, can still turn out bad, so apply to a staging copy (a transaction) and
    keep it only once the iterator is exhausted.
    """
    header, decoder = _open_bundle(inp, max_records, max_decompressed)

    def blocks() -> Iterator[Block]:
        for algorithm, values, ops, gradings in decoder.blocks():
            yield Block(algorithm, values, ops, gradings)

    return header, blocks()
