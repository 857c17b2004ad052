"""What an analyst records of an image once, whatever framework a member grades in: the facts.

Pure vocabulary (no database): every framework's rules (``rules``) are stated over these names
and values, and ``UNKNOWN`` is a value of every fact but the content type — an analyst records
what they can see, never a guess. ``age_group`` is the entry's existing age assessment (the
bundle format's age groups), so a fact and a delivered field are one and the same column.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from hashsync.errors import InvalidInput
from hashsync_client.format import AGE_GROUPS, CONTENT_TYPES

UNKNOWN: Final = "unknown"

# The known values of each fact, in the order people read them (most serious first where that
# means something). "unknown" is stored as well, except for the content type, which is always
# known. Never reorder silently: the order is shown on pages and in docs/grading.md.
FACTS: Final[MappingProxyType[str, tuple[str, ...]]] = MappingProxyType(
    {
        "age_group": tuple(v for v in AGE_GROUPS if v != UNKNOWN),
        "pubertal_stage": ("prepubescent", "pubescent", "post_pubescent"),
        "activity": (
            "penetrative",
            "animal",
            "sadism",
            "non_penetrative",
            "lascivious_exhibition",
            "nudity_posing",
            "other",
        ),
        "origin": ("real", "computer_generated"),
        "self_generated": ("yes", "no"),
        "content_type": tuple(CONTENT_TYPES),
    }
)
FACT_NAMES: Final[tuple[str, ...]] = tuple(FACTS)
# Facts an analyst may leave unknown (the content type of a file is always known).
MAY_BE_UNKNOWN: Final = frozenset(FACT_NAMES) - {"content_type"}
# The facts that are new columns of an entry (the others already were grading fields).
NEW_FACTS: Final[tuple[str, ...]] = ("pubertal_stage", "activity", "origin", "self_generated")

LABELS: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        "age_group": "Age band",
        "pubertal_stage": "Pubertal stage",
        "activity": "Most serious activity",
        "origin": "Real or computer-generated",
        "self_generated": "Self-generated",
        "content_type": "Content type",
        "prepubescent": "Prepubescent",
        "pubescent": "Pubescent",
        "post_pubescent": "Post-pubescent",
        "penetrative": "Penetrative sexual activity",
        "animal": "Sexual activity with an animal",
        "sadism": "Sadism",
        "non_penetrative": "Non-penetrative sexual activity",
        "lascivious_exhibition": "Lascivious exhibition of the genitals",
        "nudity_posing": "Nudity or posing, no sexual activity",
        "other": "Other",
        "real": "Real child",
        "computer_generated": "Computer-generated",
        "yes": "Yes",
        "no": "No",
        "unknown": "Unknown",
    }
)

Facts = Mapping[str, str]


def allowed(name: str) -> tuple[str, ...]:
    """Every value fact ``name`` may hold (its known values, then "unknown" if allowed)."""
    return FACTS[name] + ((UNKNOWN,) if name in MAY_BE_UNKNOWN else ())


def all_unknown(*, age_group: str = UNKNOWN, content_type: str = "image") -> dict[str, str]:
    facts = {name: UNKNOWN for name in FACT_NAMES}
    facts.update(age_group=age_group, content_type=content_type)
    return facts


def validate_facts(data: Any, *, partial_of: Facts | None = None) -> dict[str, str]:
    """A complete, normalised set of facts. Missing facts are unknown, or, with ``partial_of``,
    keep that entry's values. Every message names the fact and what it expected; a value is
    echoed only when short (a long one is usually a hash pasted into the wrong column)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidInput("facts must be an object of fact name to value.", code="invalid_facts")
    unknown_names = sorted(str(k)[:40] for k in data if k not in FACTS)
    if unknown_names:
        raise InvalidInput(
            f"unknown fact(s): {', '.join(unknown_names)}; expected {', '.join(FACT_NAMES)}.",
            code="invalid_facts",
        )
    merged: dict[str, Any] = {**(partial_of or all_unknown()), **data}
    clean: dict[str, str] = {}
    for name in FACT_NAMES:
        value = merged.get(name)
        text = value.strip().lower() if isinstance(value, str) else value
        if text in (None, "") and name in MAY_BE_UNKNOWN:
            text = UNKNOWN
        if text not in allowed(name):
            shown = repr(value) if isinstance(value, str) and len(value) <= 24 else "that value"
            raise InvalidInput(
                f"{name} must be one of {', '.join(allowed(name))}; got {shown}.",
                code="invalid_facts",
            )
        clean[name] = text
    return clean


def facts_key(facts: Facts) -> tuple[str, ...]:
    """The facts as a tuple in ``FACT_NAMES`` order (hashable: a cache key)."""
    return tuple(facts[name] for name in FACT_NAMES)
