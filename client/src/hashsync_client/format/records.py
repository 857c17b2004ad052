"""Records and bundle headers: what a bundle holds and how its header is checked and written."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from hashsync_client.format.constants import (
    FORMAT_VERSION,
    FORMAT_VERSION_FRAMEWORK,
    KINDS,
    MAX_FRAMEWORK_CLASSES,
    MAX_VERSION,
    UNASSESSED,
)
from hashsync_client.format.grading import GRADING_COUNT


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
class FrameworkRef:
    """The grading framework a format-2 bundle delivers classes in: its slug, the version of
    its rules, and its classes in index order, ``"unassessed"`` last (docs/bundle-format.md
    §3.1). A record's code is ``class index * 630 + grading code`` (``classed_code``)."""

    slug: str
    version: int
    classes: tuple[str, ...]

    @property
    def code_count(self) -> int:
        """Codes a record of this framework may carry: 0 .. code_count - 1."""
        return GRADING_COUNT * len(self.classes)

    def to_json(self) -> dict[str, object]:
        return {"slug": self.slug, "version": self.version, "classes": list(self.classes)}

    @classmethod
    def from_json(cls, data: object) -> FrameworkRef:
        """A framework object as a manifest carries it; ``ValueError`` saying what is wrong."""
        if not isinstance(data, dict) or set(data) != {"slug", "version", "classes"}:
            raise ValueError("framework must be an object with exactly slug, version, classes")
        classes = data["classes"]
        ref = cls(
            data["slug"],
            data["version"],
            tuple(classes) if isinstance(classes, list) else (),
        )
        problem = framework_problem(ref)
        if problem:
            raise ValueError(problem)
        return ref


def classed_code(grading: int, class_index: int) -> int:
    """A format-2 record's code: the entry's class index in the header's classes, and its
    grading code (0..629)."""
    return class_index * GRADING_COUNT + grading


def split_code(code: int) -> tuple[int, int]:
    """(grading code, class index) of a record's code; format 1 codes have class index 0."""
    index, grading = divmod(code, GRADING_COUNT)
    return grading, index


_SLUG_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_CLASS_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}")


def framework_problem(ref: FrameworkRef) -> str | None:
    """What is wrong with a framework reference, or None."""
    if not isinstance(ref.slug, str) or not _SLUG_RE.fullmatch(ref.slug):
        return "framework must be 1-32 characters of a-z, 0-9 and '-'"
    if type(ref.version) is not int or not 1 <= ref.version <= MAX_VERSION:
        return "framework_version must be an integer 1..2**53-1"
    classes = ref.classes
    if (
        not 2 <= len(classes) <= MAX_FRAMEWORK_CLASSES
        or not all(isinstance(c, str) and _CLASS_RE.fullmatch(c) for c in classes)
        or len(set(classes)) != len(classes)
        or classes[-1] != UNASSESSED
    ):
        return (
            f"classes must be 2 to {MAX_FRAMEWORK_CLASSES} distinct names of letters, digits, "
            f"'_' and '-' (at most 16 characters), {UNASSESSED!r} last"
        )
    return None


@dataclass(frozen=True, slots=True)
class BundleHeader:
    format: int
    kind: str
    feed: str
    from_version: int
    to_version: int
    record_count: int
    # Format 2 only (None in format 1): the framework its records' classes are in.
    framework: FrameworkRef | None = None

    @property
    def code_count(self) -> int:
        """Codes a record may carry: 630 in format 1, 630 per class in format 2."""
        return GRADING_COUNT if self.framework is None else self.framework.code_count


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """What a writer produced: the SHA-256 (hex) and size of the bytes, and the record count."""

    sha256: str
    size: int
    record_count: int


def header_format(framework: FrameworkRef | None) -> int:
    return FORMAT_VERSION if framework is None else FORMAT_VERSION_FRAMEWORK


class BundleFormatError(ValueError):
    """The bytes are not a valid bundle (malformed, truncated, corrupted or over a limit)."""

    code = "bundle_format"


_FEED_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEADER_KEYS: Final = frozenset(
    ("format", "kind", "feed", "from_version", "to_version", "record_count")
)
_HEADER_KEYS_V2: Final = _HEADER_KEYS | {"framework", "framework_version", "classes"}


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
    document: dict[str, object] = {
        "format": header.format,
        "kind": header.kind,
        "feed": header.feed,
        "from_version": header.from_version,
        "to_version": header.to_version,
        "record_count": header.record_count,
    }
    if header.framework is not None:
        document["framework"] = header.framework.slug
        document["framework_version"] = header.framework.version
        document["classes"] = list(header.framework.classes)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )
