"""Reading bundles: the header, then the body block by block, every check done on the way.

Both the record reader and the block reader stream: they hold one block plus the zstd window.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from typing import IO, BinaryIO, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import zstandard

from hashsync_client.format.columns import I64, U8, _first_unsorted, _varint_decode
from hashsync_client.format.constants import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    ALGORITHM_NAMES,
    BLOCK_RECORDS,
    END_OF_BLOCKS,
    ESCAPE,
    FORMAT_VERSION,
    FORMAT_VERSION_FRAMEWORK,
    MAGIC,
    MAX_HEADER_BYTES,
    MAX_WINDOW_BYTES,
    PALETTE_MAX,
    PREFIX_BYTES,
    ZSTD_MAGIC,
)
from hashsync_client.format.grading import _short
from hashsync_client.format.records import (
    _HEADER_KEYS,
    _HEADER_KEYS_V2,
    _OPS,
    BundleFormatError,
    BundleHeader,
    FrameworkRef,
    Op,
    Record,
    _header_bytes,
    _header_problem,
    framework_problem,
)

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

        code_count = self._header.code_count
        palette = np.frombuffer(body.read(2 * palette_size, "a grading palette"), "<u2")
        if palette.max() >= code_count:
            raise BundleFormatError(f"{where}: grading code >= {code_count} in the palette")
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
            if codes.max() >= code_count:
                raise BundleFormatError(f"{where}: grading code >= {code_count}")
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
    if not isinstance(document, dict) or "format" not in document:
        raise BundleFormatError(f"header must have exactly the keys {sorted(_HEADER_KEYS)}")
    version = document["format"]
    if type(version) is not int or version not in (FORMAT_VERSION, FORMAT_VERSION_FRAMEWORK):
        raise BundleFormatError(f"unsupported bundle format {_short(version)}")
    keys = _HEADER_KEYS if version == FORMAT_VERSION else _HEADER_KEYS_V2
    if set(document) != keys:
        raise BundleFormatError(
            f"a format {version} header must have exactly the keys {sorted(keys)}"
        )
    framework = None
    if version == FORMAT_VERSION_FRAMEWORK:
        classes = document.pop("classes")
        framework = FrameworkRef(
            document.pop("framework"),
            document.pop("framework_version"),
            tuple(classes) if isinstance(classes, list) else (),
        )
        problem = framework_problem(framework)
        if problem:
            raise BundleFormatError(f"bad header: {problem}")
    problem = _header_problem(
        document["kind"],
        document["feed"],
        document["from_version"],
        document["to_version"],
        document["record_count"],
    )
    if problem:
        raise BundleFormatError(f"bad header: {problem}")
    header = BundleHeader(**document, framework=framework)
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
