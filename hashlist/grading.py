"""Validation of gradings and hash inputs, shared by the API, bulk import and commands.

Every failure is an ``InvalidInput`` whose message names the field and what was expected.
Hash values are never echoed back in messages (they must not reach logs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hashsync.errors import InvalidInput
from hashsync_client import format
from hashsync_client.algorithms import HashParseError, UnknownAlgorithmError, get_algorithm

# The grading fields, in the bundle format's order (the protocol core defines them).
GRADING_FIELDS = format.GRADING_FIELD_NAMES
CATEGORIES = frozenset(format.CATEGORIES)
AGE_GROUPS = frozenset(format.AGE_GROUPS)
INDUSTRY_CLASSES = frozenset(format.INDUSTRY_CLASSES)
CONTENT_TYPES = frozenset(format.CONTENT_TYPES)

_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


def _choice(field: str, value: Any, allowed: frozenset[str], *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{field} is required; expected one of {_listing(allowed)}.")
        return ""
    text = str(value).strip()
    if field == "category" or field == "industry_class":
        text = text.upper()
    elif field == "content_type":
        text = text.lower()
    if text not in allowed:
        raise InvalidInput(f"{field} must be one of {_listing(allowed)}; got {_got(value)}.")
    return text


def _got(value: Any) -> str:
    # Grading values are at most 7 characters. A long one is usually a hash in the wrong column
    # (bulk import), and even a prefix of a hash must not reach a message, a log or a report.
    text = str(value)
    return repr(text) if len(text) <= 12 else f"a value of {len(text)} characters"


def _listing(allowed: Iterable[str]) -> str:
    return ", ".join(sorted(v for v in allowed if v))


def parse_baseline(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"baseline must be true, false or empty; got {_got(value)}.")


def validate_shared_field(field: str, value: Any) -> str:
    """Validate a grading field that is also a fact (age group, content type) on its own."""
    allowed = AGE_GROUPS if field == "age_group" else CONTENT_TYPES
    return _choice(field, value, allowed)


def validate_grading(
    data: Mapping[str, Any],
    *,
    partial_of: Mapping[str, Any] | None = None,
    category_optional: bool = False,
) -> dict[str, Any]:
    """Return a complete, normalised grading. With ``partial_of``, missing fields keep the
    values of that existing grading (for regrades that change one field). With
    ``category_optional`` a missing category is "" (the facts may determine it later)."""
    base = dict(partial_of or {})
    unknown = set(data) - set(GRADING_FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown grading field(s): {', '.join(sorted(unknown))}; "
            f"expected {', '.join(GRADING_FIELDS)}."
        )
    merged = {**base, **data}
    return {
        "category": _choice(
            "category", merged.get("category"), CATEGORIES, required=not category_optional
        ),
        "age_group": _choice("age_group", merged.get("age_group"), AGE_GROUPS),
        "baseline": parse_baseline(merged.get("baseline")),
        "industry_class": _choice(
            "industry_class", merged.get("industry_class"), INDUSTRY_CLASSES, required=False
        ),
        "content_type": _choice(
            "content_type", merged.get("content_type") or "image", CONTENT_TYPES
        ),
    }


def parse_hash(algorithm: Any, value: Any, *, where: str = "hash") -> tuple[str, bytes]:
    """Parse one (algorithm, value) pair into (algorithm name, raw bytes)."""
    if not isinstance(algorithm, str) or not isinstance(value, str):
        raise InvalidInput(f"{where}: algorithm and value must both be strings.")
    try:
        algo = get_algorithm(algorithm)
        return algo.name, algo.parse(value)
    except (HashParseError, UnknownAlgorithmError) as exc:
        raise InvalidInput(f"{where}: {exc}", code=exc.code) from None


def parse_hash_list(items: Any) -> list[tuple[str, bytes]]:
    """Parse a list of ``{"algorithm": ..., "value": ...}``; at least one, no repeats."""
    if not isinstance(items, list) or not items:
        raise InvalidInput("hashes must be a non-empty list of {algorithm, value} objects.")
    if len(items) > 32:
        raise InvalidInput("an entry can have at most 32 hashes.")
    parsed: list[tuple[str, bytes]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"hashes[{index}] must be an object with algorithm and value.")
        pair = parse_hash(item.get("algorithm"), item.get("value"), where=f"hashes[{index}]")
        if pair in parsed:
            raise InvalidInput(f"hashes[{index}] repeats an earlier hash of this entry.")
        parsed.append(pair)
    return parsed


def canonical_pairs(pairs: Iterable[tuple[str, bytes]]) -> list[list[str]]:
    """Sorted ``[algorithm, canonical text]`` pairs: the form stored in payloads and states."""
    return sorted([name, get_algorithm(name).canonical(value)] for name, value in pairs)
