"""The bundle codec: the bytes of snapshot and delta bundles (``docs/bundle-format.md``).

This package is shared with the member client, so it imports no Django: standard library,
numpy and zstandard only (and the pure-Python hash registry for the key lengths).

A bundle is ``b"HSB1"``, a length-prefixed canonical-JSON header, and one zstd frame holding
blocks of at most 65,536 records of one algorithm each, stored as columns. Records are sorted
by ``(algorithm id, value)``; the first four bytes of each key are stored as a LEB128 delta
from the previous key in the block, the rest raw. Both directions stream: the writer holds
one block at a time, the reader one block plus the zstd window.

Format 2 adds a grading framework to the header and each record's class to its code
(``FrameworkRef``); readers read both formats.

Modules: ``constants`` (what format 1 fixes, algorithm ids both ways), ``grading`` (the grading
vocabulary and its codes), ``records`` (records and headers), ``columns`` (the column
encodings), ``writer`` and ``reader``.

Privacy rule (as in ``hashsync_client.algorithms``): no error message contains a hash value or any
part of one, only positions, counts and the nature of the problem.
"""

from __future__ import annotations

from hashsync_client.format.constants import (
    ALGORITHM_IDS,
    ALGORITHM_LENGTHS,
    ALGORITHM_NAMES,
    BLOCK_RECORDS,
    END_OF_BLOCKS,
    ESCAPE,
    FORMAT_VERSION,
    FORMAT_VERSION_FRAMEWORK,
    FORMAT_VERSIONS,
    KINDS,
    MAGIC,
    MAX_FRAMEWORK_CLASSES,
    MAX_HEADER_BYTES,
    MAX_VERSION,
    MAX_WINDOW_BYTES,
    PALETTE_MAX,
    PREFIX_BYTES,
    UNASSESSED,
    ZSTD_LEVEL,
    ZSTD_MAGIC,
)
from hashsync_client.format.grading import (
    AGE_GROUPS,
    BASELINES,
    CATEGORIES,
    CONTENT_TYPES,
    GRADING_COUNT,
    GRADING_FIELD_NAMES,
    GRADING_FIELDS,
    INDUSTRY_CLASSES,
    Grading,
    decode_grading,
    encode_grading,
)
from hashsync_client.format.reader import (
    Block,
    read_bundle,
    read_bundle_blocks,
    read_bundle_bytes,
)
from hashsync_client.format.records import (
    BundleFormatError,
    BundleHeader,
    BundleInfo,
    FrameworkRef,
    Op,
    Record,
    classed_code,
    split_code,
)
from hashsync_client.format.writer import write_bundle

__all__ = [
    "AGE_GROUPS",
    "ALGORITHM_IDS",
    "ALGORITHM_LENGTHS",
    "ALGORITHM_NAMES",
    "BASELINES",
    "BLOCK_RECORDS",
    "CATEGORIES",
    "CONTENT_TYPES",
    "END_OF_BLOCKS",
    "ESCAPE",
    "FORMAT_VERSION",
    "FORMAT_VERSIONS",
    "FORMAT_VERSION_FRAMEWORK",
    "GRADING_COUNT",
    "GRADING_FIELDS",
    "GRADING_FIELD_NAMES",
    "INDUSTRY_CLASSES",
    "KINDS",
    "MAGIC",
    "MAX_FRAMEWORK_CLASSES",
    "MAX_HEADER_BYTES",
    "MAX_VERSION",
    "MAX_WINDOW_BYTES",
    "PALETTE_MAX",
    "PREFIX_BYTES",
    "UNASSESSED",
    "ZSTD_LEVEL",
    "ZSTD_MAGIC",
    "Block",
    "BundleFormatError",
    "BundleHeader",
    "BundleInfo",
    "FrameworkRef",
    "Grading",
    "Op",
    "Record",
    "classed_code",
    "decode_grading",
    "encode_grading",
    "read_bundle",
    "read_bundle_blocks",
    "read_bundle_bytes",
    "split_code",
    "write_bundle",
]
