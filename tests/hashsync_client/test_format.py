"""The bundle codec: round trips, block boundaries, determinism, bounded memory, and refusal
of every kind of malformed input with ``BundleFormatError``.

Malformed bundles are assembled by hand with ``spec_block``/``spec_bundle``, a second encoder
written from docs/bundle-format.md rather than from the codec (``hashsync_client.format``); a
test checks that the two agree byte for byte on valid input.

Every hash value here is synthetic: seeded random bytes or counters. No real hash-list entry
may ever appear in this repository.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import subprocess
import sys
import tracemalloc
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from hashsync_client.algorithms import ALGORITHMS
from hashsync_client.format import (
    AGE_GROUPS,
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    ALGORITHM_NAMES,
    BASELINES,
    BLOCK_RECORDS,
    CATEGORIES,
    CONTENT_TYPES,
    GRADING_COUNT,
    GRADING_FIELD_NAMES,
    GRADING_FIELDS,
    INDUSTRY_CLASSES,
    MAGIC,
    BundleFormatError,
    BundleHeader,
    BundleInfo,
    Grading,
    Op,
    Record,
    decode_grading,
    encode_grading,
    read_bundle,
    read_bundle_bytes,
    write_bundle,
)

hypothesis_settings = settings(database=None, deadline=None, max_examples=40)
EVERY_ALGORITHM = list(ALGORITHM_IDS)
MiB = 1 << 20


# --- helpers ------------------------------------------------------------------------------------


def sort_key(record: Record) -> tuple[int, bytes]:
    return ALGORITHM_IDS[record.algorithm], record.value


def synthetic_records(
    n: int,
    *,
    seed: int,
    algorithms: tuple[str, ...] = ("md5",),
    removals: bool = False,
) -> list[Record]:
    """``n`` sorted records with random (synthetic) keys; removals mixed in when asked."""
    rng = random.Random(seed)  # test data, not secrets
    keys: set[tuple[str, bytes]] = set()
    while len(keys) < n:
        algorithm = rng.choice(algorithms)
        keys.add((algorithm, rng.randbytes(ALGORITHM_LENGTHS[algorithm])))
    records = []
    for algorithm, value in keys:
        op = Op(rng.randrange(4)) if removals else Op.UPSERT
        grading = rng.randrange(GRADING_COUNT) if op is Op.UPSERT else 0
        records.append(Record(algorithm, value, op, grading))
    return sorted(records, key=sort_key)


def encode(records, *, kind="snapshot", feed="synthetic-feed", from_version=0, to_version=7):
    out = io.BytesIO()
    info = write_bundle(
        out,
        kind=kind,
        feed=feed,
        from_version=from_version,
        to_version=to_version,
        records=records,
    )
    return out.getvalue(), info


def split(data: bytes) -> tuple[bytes, bytes]:
    """(header JSON, compressed body) of a bundle."""
    size = int.from_bytes(data[4:8], "little")
    return data[8 : 8 + size], data[8 + size :]


def body_of(data: bytes) -> bytes:
    """The decompressed body of a bundle written by write_bundle."""
    return zstandard.ZstdDecompressor().decompressobj().decompress(split(data)[1])


def varint(n: int) -> bytes:
    assert n >= 0, "deltas are unsigned: keys must be sorted by their first 4 bytes"
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def spec_block(algorithm_id: int, keys, ops=None, gradings=None, **override) -> bytes:
    """One block, written record by record from the spec. ``override`` replaces a field:
    count, prefix_bytes, palette_size, palette, ops_column, index, escapes, prefixes, tails."""
    n = len(keys)
    ops = [0] * n if ops is None else ops
    gradings = [0] * n if gradings is None else gradings
    counts = Counter(gradings)
    ranked = sorted(counts, key=lambda code: (-counts[code], code))
    palette = ranked[:255]
    rank = {code: i for i, code in enumerate(palette)}
    index = bytes(rank.get(code, 255) for code in gradings)
    escapes = b"".join(code.to_bytes(2, "little") for code in gradings if code not in rank)
    prefixes = b""
    previous = 0
    for key in keys:
        prefix = int.from_bytes(key[:4], "big")
        prefixes += varint(prefix - previous)
        previous = prefix
    fields = {
        "count": n.to_bytes(4, "little"),
        "prefix_bytes": len(prefixes).to_bytes(4, "little"),
        "palette_size": bytes([len(palette)]),
        "palette": b"".join(code.to_bytes(2, "little") for code in palette),
        "ops_column": bytes(ops),
        "index": index,
        "escapes": escapes,
        "prefixes": prefixes,
        "tails": b"".join(key[4:] for key in keys),
    }
    for name, value in override.items():
        assert name in fields, name
        fields[name] = value
    return bytes([algorithm_id]) + b"".join(fields.values())


def spec_header(**fields) -> bytes:
    document = {
        "format": 1,
        "kind": "snapshot",
        "feed": "synthetic-feed",
        "from_version": 0,
        "to_version": 1,
        "record_count": 0,
    }
    document.update(fields)
    text = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + len(text).to_bytes(4, "little") + text


def spec_bundle(body: bytes, *, checksum: bool = True, **header) -> bytes:
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=checksum)
    return spec_header(**header) + compressor.compress(body)


def sorted_keys(n: int, length: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return sorted({rng.randbytes(length) for _ in range(n)})


def refused(data: bytes, match: str | None = None, **limits) -> BundleFormatError:
    with pytest.raises(BundleFormatError, match=match) as caught:
        read_bundle_bytes(data, **limits)
    return caught.value


# --- gradings -----------------------------------------------------------------------------------


def test_grading_codes_are_the_documented_mixed_radix():
    assert GRADING_COUNT == 630
    for code in range(GRADING_COUNT):
        grading = decode_grading(code)
        digits = [GRADING_FIELDS[f].index(v) for f, v in zip(GRADING_FIELDS, grading, strict=True)]
        c, a, b, i, t = digits
        assert code == (((c * 7 + a) * 3 + b) * 5 + i) * 2 + t
        assert encode_grading(*grading) == code


def test_the_grading_vocabulary_is_the_one_format_1_encodes():
    assert GRADING_FIELD_NAMES == (
        "category",
        "age_group",
        "baseline",
        "industry_class",
        "content_type",
    )
    assert tuple(GRADING_FIELDS.values()) == (
        CATEGORIES,
        AGE_GROUPS,
        BASELINES,
        INDUSTRY_CLASSES,
        CONTENT_TYPES,
    )
    assert CATEGORIES == ("A", "B", "C")
    assert AGE_GROUPS == ("0-2", "3-6", "7-10", "11-13", "14-15", "16-17", "unknown")
    assert INDUSTRY_CLASSES == ("", "A1", "A2", "B1", "B2")
    assert CONTENT_TYPES == ("image", "video")


def test_grading_code_examples():
    assert decode_grading(0) == Grading("A", "0-2", None, "", "image")
    assert decode_grading(629) == Grading("C", "unknown", False, "B2", "video")
    assert encode_grading("B", "11-13", True, "A1", "video") == 313
    assert decode_grading(313).baseline is True


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("a", "0-2", None, "", "image"), "category"),
        (("A", "0-1", None, "", "image"), "age_group"),
        (("A", "0-2", 1, "", "image"), "baseline"),
        (("A", "0-2", 0, "", "image"), "baseline"),
        (("A", "0-2", "true", "", "image"), "baseline"),
        (("A", "0-2", None, None, "image"), "industry_class"),
        (("A", "0-2", None, "C1", "image"), "industry_class"),
        (("A", "0-2", None, "", "Image"), "content_type"),
        (("A", "0-2", None, "", ["image"]), "content_type"),
    ],
)
def test_invalid_gradings_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        encode_grading(*fields)


@pytest.mark.parametrize("code", [-1, 630, 65535, True, "1", 1.0, None])
def test_invalid_grading_codes_are_refused(code):
    with pytest.raises(ValueError, match="grading code"):
        decode_grading(code)


def test_algorithm_ids_and_lengths_are_fixed_by_the_format():
    assert dict(ALGORITHM_IDS) == {"md5": 1, "sha1": 2, "sha256": 3, "pdq": 4, "photodna": 5}
    assert {n: ALGORITHMS[n].length for n in ALGORITHM_IDS} == dict(ALGORITHM_LENGTHS)
    assert dict(ALGORITHM_NAMES) == {1: "md5", 2: "sha1", 3: "sha256", 4: "pdq", 5: "photodna"}


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", EVERY_ALGORITHM)
def test_round_trip_each_algorithm(algorithm):
    records = synthetic_records(300, seed=1, algorithms=(algorithm,))
    data, info = encode(records)
    header, back = read_bundle_bytes(data)
    assert back == records
    assert header == BundleHeader(1, "snapshot", "synthetic-feed", 0, 7, 300)
    assert info.record_count == 300 and info.size == len(data)


def test_round_trip_mixed_algorithms_with_removals():
    records = synthetic_records(2000, seed=2, algorithms=tuple(EVERY_ALGORITHM), removals=True)
    assert {r.op for r in records} == set(Op)
    data, _ = encode(records, kind="delta", from_version=6, to_version=7)
    header, back = read_bundle_bytes(data)
    assert back == records
    assert all(type(r.op) is Op and type(r.value) is bytes for r in back)
    assert header.kind == "delta" and (header.from_version, header.to_version) == (6, 7)


@pytest.mark.parametrize("op", list(Op))
def test_every_op_round_trips(op):
    grading = 123 if op is Op.UPSERT else 0
    records = [Record("sha1", bytes([i]) * 20, op, grading) for i in range(5)]
    data, _ = encode(records, kind="delta", from_version=1, to_version=2)
    assert read_bundle_bytes(data)[1] == records


@pytest.mark.parametrize("kind", ["snapshot", "delta"])
def test_empty_bundle(kind):
    data, info = encode([], kind=kind, from_version=0, to_version=1)
    header, back = read_bundle_bytes(data)
    assert back == [] and header.record_count == 0 and info.record_count == 0
    assert body_of(data) == b"\x00"


@pytest.mark.parametrize("n", [BLOCK_RECORDS - 1, BLOCK_RECORDS, BLOCK_RECORDS + 1])
def test_block_boundary(n):
    records = [
        Record("md5", i.to_bytes(4, "big") + bytes(12), Op.UPSERT, i % GRADING_COUNT)
        for i in range(n)
    ]
    data, _ = encode(iter(records))
    assert read_bundle_bytes(data)[1] == records
    body = body_of(data)
    assert body[1:5] == min(n, BLOCK_RECORDS).to_bytes(4, "little")
    assert body[-1] == 0  # end-of-blocks marker


def test_many_distinct_gradings_use_the_escape_column():
    # 630 distinct codes in one block: 255 in the palette, the rest escaped.
    records = [
        Record("md5", i.to_bytes(4, "big") + bytes(12), Op.UPSERT, i % GRADING_COUNT)
        for i in range(2000)
    ]
    data, _ = encode(records)
    assert read_bundle_bytes(data)[1] == records
    assert body_of(data)[9] == 255  # palette size


def test_values_keep_equal_prefixes_in_order():
    # keys sharing their first 4 bytes are ordered by the rest
    records = [Record("sha256", bytes(4) + bytes([i]) * 28, Op.UPSERT, 1) for i in range(50)]
    records += [Record("sha256", b"\xff" * 32, Op.UPSERT, 2)]
    data, _ = encode(records)
    assert read_bundle_bytes(data)[1] == records


def _record_parts(algorithm: str) -> st.SearchStrategy:
    length = ALGORITHM_LENGTHS[algorithm]
    return st.tuples(
        st.just(algorithm),
        st.binary(min_size=length, max_size=length),
        st.sampled_from(list(Op)),
        st.integers(0, GRADING_COUNT - 1),
    )


@hypothesis_settings
@given(st.lists(st.sampled_from(EVERY_ALGORITHM).flatmap(_record_parts), max_size=200))
def test_property_round_trip(items):
    records = {
        (algorithm, value): Record(algorithm, value, op, grading if op is Op.UPSERT else 0)
        for algorithm, value, op, grading in items
    }
    ordered = sorted(records.values(), key=sort_key)
    data, info = encode(ordered, kind="delta", from_version=1, to_version=2)
    header, back = read_bundle_bytes(data)
    assert back == ordered and header.record_count == info.record_count == len(ordered)
    assert encode(iter(ordered), kind="delta", from_version=1, to_version=2)[0] == data


# --- the layout, checked against an independent encoder ----------------------------------------


def test_layout_matches_the_spec():
    md5 = sorted_keys(40, 16, seed=3)
    photodna = sorted_keys(3, 144, seed=4)
    records = [Record("md5", k, Op.UPSERT, i % 3) for i, k in enumerate(md5)]
    records += [Record("photodna", k, Op.UPSERT, 600) for k in photodna]
    data, _ = encode(records, to_version=9)

    assert data[:4] == b"HSB1"
    header, compressed = split(data)
    assert header == (
        b'{"feed":"synthetic-feed","format":1,"from_version":0,"kind":"snapshot",'
        b'"record_count":43,"to_version":9}'
    )
    assert compressed[:4] == b"\x28\xb5\x2f\xfd"
    expected_body = (
        spec_block(1, md5, gradings=[i % 3 for i in range(40)])
        + spec_block(5, photodna, gradings=[600] * 3)
        + b"\x00"
    )
    assert body_of(data) == expected_body
    hand_made = spec_bundle(expected_body, record_count=43, to_version=9)
    assert read_bundle_bytes(hand_made)[1] == records


def test_delta_layout_matches_the_spec():
    keys = sorted_keys(6, 20, seed=5)
    ops = [0, 1, 2, 3, 0, 1]
    gradings = [5, 0, 0, 0, 7, 0]
    records = [Record("sha1", k, Op(o), g) for k, o, g in zip(keys, ops, gradings, strict=True)]
    data, _ = encode(records, kind="delta", from_version=3, to_version=4)
    assert body_of(data) == spec_block(2, keys, ops, gradings) + b"\x00"


# --- determinism --------------------------------------------------------------------------------


def test_same_records_give_identical_bytes():
    records = synthetic_records(BLOCK_RECORDS + 100, seed=6, algorithms=("md5", "pdq"))
    first, info = encode(records)
    again, info_again = encode(iter(records))
    assert first == again and info == info_again
    streamed = io.BytesIO()
    direct = write_bundle(
        streamed,
        kind="snapshot",
        feed="synthetic-feed",
        from_version=0,
        to_version=7,
        records=iter(records),
        record_count=len(records),
    )
    assert streamed.getvalue() == first and direct == info


def test_info_describes_the_bytes():
    data, info = encode(synthetic_records(10, seed=7))
    assert info == BundleInfo(hashlib.sha256(data).hexdigest(), len(data), 10)


# --- what the writer refuses --------------------------------------------------------------------


def write(records, **kwargs):
    arguments = {"kind": "delta", "feed": "synthetic-feed", "from_version": 1, "to_version": 2}
    arguments.update(kwargs)
    return write_bundle(io.BytesIO(), records=records, **arguments)


def key(i: int, length: int = 16) -> bytes:
    return i.to_bytes(4, "big") + bytes(length - 4)


@pytest.mark.parametrize(
    "records",
    [
        [Record("md5", key(2), Op.UPSERT, 0), Record("md5", key(1), Op.UPSERT, 0)],
        [Record("md5", key(1), Op.UPSERT, 0), Record("md5", key(1), Op.RETRACTED, 0)],
        [Record("sha1", key(1, 20), Op.UPSERT, 0), Record("md5", key(2), Op.UPSERT, 0)],
        [
            Record("md5", bytes(4) + b"\x02" + bytes(11), Op.UPSERT, 0),
            Record("md5", bytes(4) + b"\x01" + bytes(11), Op.UPSERT, 0),
        ],
        # the same algorithm again after another one: not contiguous, so not sorted
        [
            Record("md5", key(1), Op.UPSERT, 0),
            Record("sha1", key(1, 20), Op.UPSERT, 0),
            Record("md5", key(2), Op.UPSERT, 0),
        ],
    ],
    ids=["descending", "duplicate", "algorithms descending", "equal prefix", "interleaved"],
)
def test_unsorted_or_duplicate_input_is_refused(records):
    with pytest.raises(ValueError, match="sorted"):
        write(records)


def test_unsorted_across_a_block_boundary_is_refused():
    records = [Record("md5", key(2 * i + 2), Op.UPSERT, 0) for i in range(BLOCK_RECORDS)]
    records.append(Record("md5", key(1), Op.UPSERT, 0))
    with pytest.raises(ValueError, match=f"record {BLOCK_RECORDS}: records must be sorted"):
        write(records)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (Record("crc32", bytes(4), Op.UPSERT, 0), "unknown algorithm"),
        (Record("MD5", bytes(16), Op.UPSERT, 0), "unknown algorithm"),
        (Record("md5", bytes(15), Op.UPSERT, 0), "16 bytes"),
        (Record("photodna", bytes(145), Op.UPSERT, 0), "144 bytes"),
        (Record("md5", "00" * 16, Op.UPSERT, 0), "bytes"),  # type: ignore[arg-type]
        (Record("md5", bytes(16), 4, 0), "op"),  # type: ignore[arg-type]
        (Record("md5", bytes(16), -1, 0), "op"),  # type: ignore[arg-type]
        (Record("md5", bytes(16), Op.UPSERT, GRADING_COUNT), "grading"),
        (Record("md5", bytes(16), Op.UPSERT, -1), "grading"),
        (Record("md5", bytes(16), Op.UPSERT, "A"), "integers"),  # type: ignore[arg-type]
        (Record("md5", bytes(16), Op.RETRACTED, 5), "removal has grading 0"),
    ],
)
def test_bad_records_are_refused(record, message):
    with pytest.raises(ValueError, match=message) as caught:
        write([record])
    assert "0000" not in str(caught.value)  # no hash value in messages


def test_snapshot_refuses_removals():
    with pytest.raises(ValueError, match="only UPSERT"):
        write([Record("md5", bytes(16), Op.RETRACTED, 0)], kind="snapshot", from_version=0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "full"}, "kind"),
        ({"feed": ""}, "feed"),
        ({"feed": "a b"}, "feed"),
        ({"feed": "x" * 65}, "feed"),
        ({"feed": "ü"}, "feed"),
        ({"kind": "snapshot", "from_version": 1}, "from_version 0"),
        ({"from_version": 2, "to_version": 2}, "from_version < to_version"),
        ({"from_version": -1}, "from_version"),
        ({"to_version": 2**53}, "to_version"),
        ({"to_version": True}, "to_version"),
        ({"record_count": -1}, "record_count"),
    ],
)
def test_bad_header_fields_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        write([], **fields)


def test_record_count_must_be_right_when_given():
    with pytest.raises(ValueError, match="record_count was given as 3 but 2"):
        write(
            [Record("md5", key(1), Op.UPSERT, 0), Record("md5", key(2), Op.UPSERT, 0)],
            record_count=3,
        )


# --- what the reader refuses --------------------------------------------------------------------

SMALL = synthetic_records(30, seed=8, algorithms=("md5", "sha256"), removals=True)


@pytest.fixture(scope="module")
def small_bundle() -> bytes:
    return encode(SMALL, kind="delta", from_version=4, to_version=5)[0]


def test_every_header_byte_flip_is_refused_or_changes_the_header(small_bundle):
    header_end = 8 + int.from_bytes(small_bundle[4:8], "little")
    original = read_bundle_bytes(small_bundle)[0]
    for position in range(header_end):
        for mask in (0x01, 0x20, 0x80):
            damaged = bytearray(small_bundle)
            damaged[position] ^= mask
            try:
                header, _ = read_bundle_bytes(bytes(damaged))
            except BundleFormatError:
                continue
            # A digit can change into another digit; the manifest's sha256 catches that.
            assert header != original, (position, mask)


def test_every_body_byte_flip_is_refused_or_harmless(small_bundle):
    header_end = 8 + int.from_bytes(small_bundle[4:8], "little")
    harmless = 0
    for position in range(header_end, len(small_bundle)):
        for mask in (0x01, 0x80):
            damaged = bytearray(small_bundle)
            damaged[position] ^= mask
            try:
                _, records = read_bundle_bytes(bytes(damaged))
            except BundleFormatError:
                continue
            # Only the zstd window size can change without changing the content.
            assert records == SMALL
            assert position == header_end + 5, position
            harmless += 1
    assert harmless <= 2


@pytest.mark.parametrize("cut", [0, 1, 3, 4, 5, 7, 8, 9, 20, -100, -40, -9, -5, -4, -3, -1])
def test_truncation_is_refused(small_bundle, cut):
    refused(small_bundle[:cut], "truncated|magic|not a zstd frame|corrupt|header")


def test_truncation_at_every_offset_is_refused(small_bundle):
    for cut in range(len(small_bundle)):
        refused(small_bundle[:cut])


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"x" * 1000, zstandard.ZstdCompressor(write_checksum=True).compress(b"\x00")],
    ids=["one byte", "text", "second frame"],
)
def test_trailing_garbage_is_refused(small_bundle, garbage):
    refused(small_bundle + garbage, "trailing bytes")


def test_wrong_record_count_is_refused(small_bundle):
    text, compressed = split(small_bundle)
    for count in (0, 29, 31, 10**6):
        changed = text.replace(b'"record_count":30', f'"record_count":{count}'.encode())
        damaged = MAGIC + len(changed).to_bytes(4, "little") + changed + compressed
        refused(damaged, "record|announces|more than")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"{}", "exactly the keys"),
        (b"[]", "exactly the keys"),
        (b'{"feed":"f"', "JSON"),
        (b"\xff\xfe", "ASCII JSON"),
        (
            b'{"feed": "f","format":1,"from_version":0,"kind":"snapshot",'
            b'"record_count":0,"to_version":1}',
            "canonical",
        ),
        (
            b'{"format":1,"feed":"f","from_version":0,"kind":"snapshot",'
            b'"record_count":0,"to_version":1}',
            "canonical",
        ),
        (
            # Format 2 needs its framework, rule version and classes (bundle-format.md §3.1).
            b'{"feed":"f","format":2,"from_version":0,"kind":"snapshot",'
            b'"record_count":0,"to_version":1}',
            "a format 2 header must have exactly the keys",
        ),
        (
            b'{"feed":"f","format":3,"from_version":0,"kind":"snapshot",'
            b'"record_count":0,"to_version":1}',
            "unsupported bundle format 3",
        ),
        (
            b'{"extra":1,"feed":"f","format":1,"from_version":0,"kind":"snapshot",'
            b'"record_count":0,"to_version":1}',
            "exactly the keys",
        ),
        (
            b'{"feed":"f","format":1,"from_version":0,"kind":"snapshot",'
            b'"record_count":0.0,"to_version":1}',
            "record_count",
        ),
        (
            b'{"feed":"f","format":1,"from_version":0,"kind":"snapshot",'
            b'"record_count":0,"to_version":1,"to_version":2}',
            "canonical",
        ),
    ],
)
def test_bad_headers_are_refused(header, message):
    body = zstandard.ZstdCompressor(write_checksum=True).compress(b"\x00")
    refused(MAGIC + len(header).to_bytes(4, "little") + header + body, message)


@pytest.mark.parametrize("size", [0, 1, 4097, 2**32 - 1])
def test_impossible_header_length_is_refused(size):
    refused(MAGIC + size.to_bytes(4, "little") + b"{}", "header length")


def test_bad_magic_is_refused(small_bundle):
    refused(b"HSB2" + small_bundle[4:], "magic")
    refused(b"", "magic")


def test_frame_without_checksum_is_refused():
    refused(spec_bundle(b"\x00", checksum=False), "checksum")


def test_frame_with_dictionary_is_refused():
    # Frame header descriptor 0x05: content checksum, one-byte dictionary id (then id 7).
    refused(spec_header() + b"\x28\xb5\x2f\xfd\x05\x58\x07" + bytes(8), "dictionary")


def test_valid_hand_built_bundle_is_accepted():
    keys = sorted_keys(10, 16, seed=9)
    header, records = read_bundle_bytes(
        spec_bundle(spec_block(1, keys, gradings=[3] * 10) + b"\x00", record_count=10)
    )
    assert [r.value for r in records] == keys and header.record_count == 10


KEYS = sorted_keys(10, 16, seed=10)


@pytest.mark.parametrize(
    ("body", "count", "message"),
    [
        (b"", 0, "ends inside a block header"),
        (spec_block(1, KEYS), 10, "ends inside a block header"),  # no end marker
        (spec_block(1, KEYS) + b"\x00\x00", 10, "after the end-of-blocks marker"),
        (spec_block(1, KEYS) + b"\x00", 9, "more records than"),
        (spec_block(1, KEYS) + b"\x00", 11, "announces 11 records but the body holds 10"),
        (spec_block(1, KEYS)[:-1], 10, "ends inside a key column"),
        (spec_block(6, KEYS) + b"\x00", 10, "unknown algorithm id 6"),
        (spec_block(255, KEYS) + b"\x00", 10, "unknown algorithm id 255"),
        (spec_block(1, KEYS, count=(0).to_bytes(4, "little")) + b"\x00", 10, "record count 0"),
        (
            spec_block(1, KEYS, count=(BLOCK_RECORDS + 1).to_bytes(4, "little")) + b"\x00",
            10**6,
            "record count 65537",
        ),
        # ordering
        (spec_block(1, [KEYS[0], KEYS[0]]) + b"\x00", 2, "not strictly increasing"),
        (
            spec_block(1, [KEYS[0][:4] + b"\x02" * 12, KEYS[0][:4] + b"\x01" * 12]) + b"\x00",
            2,
            "not strictly increasing",
        ),
        (spec_block(1, KEYS[5:]) + spec_block(1, KEYS[:5]) + b"\x00", 10, "short block"),
        (
            spec_block(2, sorted_keys(2, 20, seed=11)) + spec_block(1, KEYS) + b"\x00",
            12,
            "not sorted by algorithm",
        ),
        # key prefix column
        (
            spec_block(1, KEYS, prefix_bytes=(9).to_bytes(4, "little")) + b"\x00",
            10,
            "prefix column size 9",
        ),
        (
            spec_block(
                1, KEYS[:1], prefixes=b"\x80\x80\x80\x80\x80\x00", prefix_bytes=b"\x06\0\0\0"
            )
            + b"\x00",
            1,
            "prefix column size",
        ),
        (
            spec_block(1, KEYS[:1], prefixes=b"\x81\x00", prefix_bytes=b"\x02\0\0\0") + b"\x00",
            1,
            "shortest form",
        ),
        (
            spec_block(1, KEYS[:1], prefixes=b"\xff\xff\xff\xff\x1f", prefix_bytes=b"\x05\0\0\0")
            + b"\x00",
            1,
            "32 bits",
        ),
        (
            spec_block(
                1,
                KEYS[:2],
                prefixes=b"\xff\xff\xff\xff\x0f\x01",
                prefix_bytes=b"\x06\0\0\0",
            )
            + b"\x00",
            2,
            "overflow",
        ),
        (
            spec_block(1, KEYS[:2], prefixes=b"\x81\x81\x01", prefix_bytes=b"\x03\0\0\0") + b"\x00",
            2,
            "complete varints",
        ),
        # gradings
        (spec_block(1, KEYS, gradings=[630] * 10) + b"\x00", 10, "grading code >= 630"),
        (spec_block(1, KEYS, gradings=[65535] * 10) + b"\x00", 10, "grading code >= 630"),
        (
            spec_block(1, KEYS, palette_size=b"\x00", palette=b"") + b"\x00",
            10,
            "palette size 0",
        ),
        (
            spec_block(1, KEYS[:2], palette_size=b"\x03", palette=b"\x00\x00\x01\x00\x02\x00")
            + b"\x00",
            2,
            "palette size 3",
        ),
        (
            spec_block(1, KEYS, palette_size=b"\x02", palette=b"\x00\x00\x00\x00") + b"\x00",
            10,
            "repeats",
        ),
        (
            spec_block(1, KEYS, palette_size=b"\x02", palette=b"\x00\x00\x01\x00") + b"\x00",
            10,
            "unused",
        ),
        (spec_block(1, KEYS, index=b"\x00" * 9 + b"\x01") + b"\x00", 10, "beyond the palette"),
        (spec_block(1, KEYS, index=b"\x00" * 9 + b"\xff") + b"\x00", 10, "beyond the palette"),
        # ops
        (spec_block(1, KEYS, ops=[4] * 10) + b"\x00", 10, "op code 4"),
        (spec_block(1, KEYS, ops=[0] * 9 + [255]) + b"\x00", 10, "record 9: op code 255"),
        (spec_block(1, KEYS, ops=[1] * 10) + b"\x00", 10, "snapshot holds a removal"),
    ],
)
def test_malformed_snapshot_bodies_are_refused(body, count, message):
    refused(spec_bundle(body, record_count=count), message)


def test_removal_with_a_grading_is_refused():
    body = spec_block(1, KEYS, ops=[1] * 10, gradings=[2] * 10) + b"\x00"
    refused(
        spec_bundle(body, kind="delta", from_version=1, to_version=2, record_count=10),
        "removal has a grading",
    )


def test_escaped_grading_out_of_range_is_refused():
    gradings = [*range(256), 629]
    keys = sorted_keys(len(gradings), 16, seed=12)
    block = spec_block(1, keys, gradings=gradings)
    assert read_bundle_bytes(spec_bundle(block + b"\x00", record_count=257))[1][-1].grading
    bad = spec_block(1, keys, gradings=gradings, escapes=b"\x76\x02\x76\x02")  # 630
    refused(spec_bundle(bad + b"\x00", record_count=257), "grading code >= 630")


def test_a_record_that_is_not_sorted_after_the_previous_block_is_refused():
    keys = [i.to_bytes(4, "big") + bytes(12) for i in range(BLOCK_RECORDS + 1)]
    body = spec_block(1, keys[1:]) + spec_block(1, keys[:1]) + b"\x00"
    refused(spec_bundle(body, record_count=BLOCK_RECORDS + 1), "record 65536")


def test_messages_never_contain_key_bytes():
    keys = [bytes.fromhex("deadbeef") * 4] * 2
    error = refused(spec_bundle(spec_block(1, keys) + b"\x00", record_count=2))
    assert "dead" not in str(error) and "beef" not in str(error)


# --- limits -------------------------------------------------------------------------------------


def test_max_records_is_enforced_before_decompressing(small_bundle):
    refused(small_bundle, "more than the 29 allowed", max_records=29)
    assert len(read_bundle_bytes(small_bundle, max_records=30)[1]) == 30


def zip_bomb(decompressed: int, record_count: int) -> bytes:
    """A valid-looking start followed by ``decompressed`` bytes of zeros, compressed."""
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True).compressobj()
    keys = [i.to_bytes(4, "big") + bytes(140) for i in range(BLOCK_RECORDS)]
    first = spec_block(5, keys)
    parts = [compressor.compress(first)]
    zeros = bytes(MiB)
    for _ in range((decompressed - len(first)) // MiB):
        parts.append(compressor.compress(zeros))
    parts.append(compressor.flush())
    return spec_header(record_count=record_count) + b"".join(parts)


def test_max_decompressed_stops_a_zip_bomb():
    bomb = zip_bomb(256 * MiB, record_count=4 * BLOCK_RECORDS)
    assert len(bomb) < MiB
    tracemalloc.start()
    try:
        refused(bomb, "more than the 16777216 bytes allowed", max_decompressed=16 * MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB


def test_the_record_count_bounds_the_decompressed_size():
    bomb = zip_bomb(256 * MiB, record_count=BLOCK_RECORDS)
    tracemalloc.start()
    try:
        refused(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB


def test_max_decompressed_allows_a_bundle_that_fits(small_bundle):
    needed = len(body_of(small_bundle))
    assert len(read_bundle_bytes(small_bundle, max_decompressed=needed)[1]) == 30
    refused(small_bundle, "allowed", max_decompressed=needed - 1)


# --- streaming ----------------------------------------------------------------------------------


class CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.size += len(data)
        return len(data)


def counter_records(n: int) -> Iterator[Record]:
    """Sorted synthetic md5 keys (an evenly spaced 4-byte counter, then 12 random bytes),
    made 10,000 at a time with numpy so that the generator itself allocates little."""
    rng = np.random.default_rng(13)
    step = (1 << 32) // n
    for start in range(0, n, 10_000):
        size = min(10_000, n - start)
        keys = np.empty((size, 16), dtype=np.uint8)
        counters = np.arange(start, start + size, dtype=np.uint64) * np.uint64(step)
        keys[:, :4] = counters.astype(">u4").view(np.uint8).reshape(size, 4)
        keys[:, 4:] = rng.integers(0, 256, size=(size, 12), dtype=np.uint8)
        flat = keys.tobytes()
        values = [flat[i : i + 16] for i in range(0, 16 * size, 16)]
        gradings = rng.integers(0, 40, size=size).tolist()
        yield from map(
            Record, itertools.repeat("md5"), values, itertools.repeat(Op.UPSERT), gradings
        )


def test_a_million_records_stream_in_bounded_memory(tmp_path):
    # tracemalloc sees Python and numpy allocations, not zstd's own (a few MiB of context).
    n = 1_000_000
    path = tmp_path / "snapshot.bin"
    tracemalloc.start()
    try:
        with path.open("wb") as out:
            info = write_bundle(
                out,
                kind="snapshot",
                feed="synthetic-feed",
                from_version=0,
                to_version=1,
                records=counter_records(n),
            )
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        inp = path.open("rb")
        header, records = read_bundle(inp)
        # Reading holds one block whatever the position: 300,000 records cross 4 blocks.
        # (Tracing every record's allocations makes the whole million slow.)
        head = sum(1 for _ in itertools.islice(records, 300_000))
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with inp:
        count = head + sum(1 for _ in records)
    assert info.record_count == header.record_count == count == n
    assert info.size == path.stat().st_size
    assert write_peak < 64 * MiB, write_peak
    assert read_peak < 64 * MiB, read_peak


def test_records_arrive_before_the_end_is_checked():
    keys = sorted_keys(BLOCK_RECORDS + 10, 16, seed=14)
    body = spec_block(1, keys[:BLOCK_RECORDS]) + spec_block(1, keys[BLOCK_RECORDS:])
    data = spec_bundle(body + b"\x00\x00", record_count=len(keys))  # junk after the marker
    _, records = read_bundle(io.BytesIO(data))
    first = list(itertools.islice(records, BLOCK_RECORDS))
    assert [r.value for r in first] == keys[:BLOCK_RECORDS]
    with pytest.raises(BundleFormatError, match="after the end-of-blocks marker"):
        list(records)


def test_short_reads_are_retried(small_bundle):
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = memoryview(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            n = min(3, len(buffer), len(self._data))
            buffer[:n] = self._data[:n]
            self._data = self._data[n:]
            return n

    header, records = read_bundle(Trickle(small_bundle))
    assert list(records) == SMALL and header.record_count == 30


def test_the_codec_imports_no_django():
    # The member client shares these modules; run in a fresh interpreter (this one has Django).
    code = (
        "import sys, hashsync_client.format, hashsync_client.lthash; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
