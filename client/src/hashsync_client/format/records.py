"""Records and bundle headers: what a bundle holds and how its header is checked and written."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from hashsync_client.format.constants import KINDS, MAX_VERSION


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
