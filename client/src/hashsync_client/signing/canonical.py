"""Canonical JSON, timestamps and the strict reading of signed payloads.

A signed payload must be canonical JSON so that its SHA-256 is well defined and every client
reads the same object out of it; timestamps are UTC with whole seconds in one exact text form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hashsync_client.signing.errors import SignatureError

_TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 (not ASCII-escaped). Floats are refused (``TypeError``):
    their text form differs between languages, so a signed payload carries integers or strings.
    """
    return json.dumps(
        _plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _plain(obj: Any) -> Any:
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        raise TypeError("floats are not allowed in canonical JSON; use integers or strings")
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical JSON object keys must be strings, not {type(key)}")
            out[key] = _plain(value)
        return out
    if isinstance(obj, list | tuple):
        return [_plain(item) for item in obj]
    raise TypeError(f"{type(obj).__name__} is not allowed in canonical JSON")


def format_timestamp(when: datetime) -> str:
    """``2025-01-31T12:00:00Z``: UTC, whole seconds (a sub-second part is dropped)."""
    _require_aware(when, "timestamp")
    return when.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_timestamp(text: str) -> datetime:
    """Inverse of ``format_timestamp``; accepts only that exact form. ``ValueError`` otherwise."""
    if not isinstance(text, str) or not _TIMESTAMP_RE.fullmatch(text):
        raise ValueError(f"expected a UTC timestamp like 2025-01-31T12:00:00Z, got {text!r:.40}")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _require_aware(when: datetime, name: str) -> None:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _whole_seconds(when: datetime) -> datetime:
    _require_aware(when, "timestamp")
    return when.astimezone(UTC).replace(microsecond=0)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        # Two parsers may keep different duplicates; refusing them removes the ambiguity.
        raise ValueError("duplicate key in JSON object")
    return out


def _reject_number(text: str) -> Any:
    raise ValueError(f"non-integer number {text[:20]!r} is not allowed")


# The largest integer every JSON implementation reads exactly (IEEE 754 doubles); no field of a
# signed payload needs a negative one. Documented in docs/signing.md §1.
MAX_JSON_INTEGER = 2**53 - 1


def _bounded_int(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_JSON_INTEGER:
        # Beyond 2**53 - 1, parsers that read numbers as doubles see another value than we do.
        raise ValueError(f"integer {text[:20]!r} is outside 0..2**53-1")
    return value


def _strict_loads(data: bytes) -> Any:
    return json.loads(
        data.decode("utf-8"),
        object_pairs_hook=_reject_duplicates,
        parse_float=_reject_number,
        parse_int=_bounded_int,
        parse_constant=_reject_number,
    )


def _load_canonical_object(payload: bytes, what: str) -> dict[str, Any]:
    """Parse a signed payload and insist it is canonical JSON, so its SHA-256 is well defined and
    every client reads the same object out of it."""
    try:
        obj = _strict_loads(payload)
        canonical = canonical_json(obj)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise SignatureError(
            f"{what} payload is not valid JSON: {exc}", code=f"{what}_malformed"
        ) from None
    if not isinstance(obj, dict):
        raise SignatureError(f"{what} payload is not a JSON object", code=f"{what}_malformed")
    if canonical != payload:
        raise SignatureError(
            f"{what} payload is not canonical JSON (sorted keys, no spaces, UTF-8)",
            code=f"{what}_malformed",
        )
    return obj


def _require_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}")
    return value
