"""The fields hashsync stored before facts (category, baseline, industry class) read as classes
of the frameworks they came from, and what those fields say about the facts.

Pure (no database): migration 0007 derives an existing entry's facts with ``facts_from_grading``
and the grading report (``hashlist.grading_report``) lists entries whose stored fields disagree
with each other or with their facts. A stored field that says nothing (baseline not assessed,
industry class not classified) constrains nothing.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from typing import Any, Final

from hashlist.frameworks.facts import FACT_NAMES, FACTS, NEW_FACTS, UNKNOWN, Facts
from hashlist.frameworks.rules import UNASSESSED, Definition, classify

# framework slug → the entry field that has always carried its class.
LEGACY_FIELDS: Final = {
    "uk": "category",
    "interpol-baseline": "baseline",
    "industry": "industry_class",
}
_BASELINE = {True: "yes", False: "no"}


def stated_class(slug: str, grading: Mapping[str, Any]) -> str | None:
    """The class a stored field states, or None if it states none."""
    field = LEGACY_FIELDS[slug]
    value = grading[field]
    if field == "baseline":
        return _BASELINE.get(value)
    return value or None


def field_value(slug: str, klass: str) -> Any:
    """The stored field's value for a derived class (``UNASSESSED`` is not one)."""
    if LEGACY_FIELDS[slug] == "baseline":
        return {"yes": True, "no": False}[klass]
    if LEGACY_FIELDS[slug] == "industry_class" and klass == "none":
        return ""
    return klass


def _stated(grading: Mapping[str, Any], definitions: Mapping[str, Definition]) -> tuple:
    return tuple(
        (slug, klass)
        for slug in sorted(LEGACY_FIELDS)
        if slug in definitions and (klass := stated_class(slug, grading)) is not None
    )


def facts_from_grading(
    grading: Mapping[str, Any],
    definitions: Mapping[str, Definition],
    *,
    known: Facts | None = None,
) -> dict[str, str] | None:
    """The facts a stored grading determines: each new fact is set where every set of facts
    that gives all the stored classes agrees on it, and unknown otherwise; the age group and
    content type are the grading's own. None when no set of facts gives them all — the stored
    fields contradict each other.

    With ``known`` (facts an analyst recorded beside the stored fields, as a bulk import's
    fact columns), those facts are fixed too: None then also means the stored fields
    contradict the recorded facts."""
    stated = _stated(grading, definitions)
    fixed = dict.fromkeys(NEW_FACTS, UNKNOWN)
    if known is not None:
        fixed.update({name: known[name] for name in NEW_FACTS})
    fixed.update(age_group=grading["age_group"], content_type=grading["content_type"])
    return _facts_from(
        tuple(fixed[name] for name in FACT_NAMES),
        tuple((definitions[slug], klass) for slug, klass in stated),
    )


@functools.lru_cache(maxsize=4096)
def _facts_from(
    fixed: tuple[str, ...], stated: tuple[tuple[Definition, str], ...]
) -> dict[str, str] | None:
    choices = [
        FACTS[name] if value == UNKNOWN else (value,)
        for name, value in zip(FACT_NAMES, fixed, strict=True)
    ]
    seen: dict[str, set[str]] = {name: set() for name in NEW_FACTS}
    for key in itertools.product(*choices):
        if all(definition.first_match(key) == klass for definition, klass in stated):
            for name in NEW_FACTS:
                seen[name].add(key[FACT_NAMES.index(name)])
    if not seen[NEW_FACTS[0]]:
        return None
    facts = dict(zip(FACT_NAMES, fixed, strict=True))
    facts.update({name: next(iter(v)) if len(v) == 1 else UNKNOWN for name, v in seen.items()})
    return facts


def disagreements(
    grading: Mapping[str, Any], facts: Facts, definitions: Mapping[str, Definition]
) -> list[str]:
    """Why an entry's stored fields disagree, in words (empty: they agree): with each other
    (no facts could give them all), or with the class its recorded facts determine."""
    stated = _stated(grading, definitions)
    if facts_from_grading(grading, definitions) is None:
        said = ", ".join(f"{slug} {klass}" for slug, klass in stated)
        return [f"the stored fields contradict each other ({said}): no facts give them all"]
    found = []
    for slug, klass in stated:
        derived = classify(definitions[slug], facts)
        if derived not in (UNASSESSED, klass):
            found.append(f"{LEGACY_FIELDS[slug]} says {slug} {klass}; the facts give {derived}")
    return found
