"""Reads of the grading frameworks, and the rule that ties an entry's stored fields to its facts.

The current rules of each framework are the newest ``FrameworkVersion``; ``definitions()`` reads
them once per call (a handful of rows). ``reconcile`` is used by every proposal that sets facts
or a grading (API, pages, bulk import), so the stored fields can no longer drift from the facts:
where the facts determine a framework's class, its stored field is filled from it, and a given
value that disagrees is refused. Where they do not, the analyst's stored field stands.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from hashlist.frameworks.facts import FACT_NAMES, NEW_FACTS, UNKNOWN, validate_facts
from hashlist.frameworks.impact import Impact, looked_at, regraded
from hashlist.frameworks.legacy import LEGACY_FIELDS, disagreements, field_value
from hashlist.frameworks.rules import UNASSESSED, Definition, classify
from hashlist.grading import GRADING_FIELDS, validate_grading, validate_shared_field
from hashlist.models import Entry, EntryStatus, Framework, FrameworkVersion
from hashsync.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Current:
    slug: str
    name: str
    version: int
    definition: Definition


def frameworks_current() -> list[Current]:
    """Every framework with its newest rules, in slug order."""
    newest = FrameworkVersion.objects.filter(framework=OuterRef("pk")).order_by("-version")
    rows = Framework.objects.annotate(
        newest_version=Subquery(newest.values("version")[:1]),
        newest_definition=Subquery(newest.values("definition")[:1]),
    ).order_by("slug")
    return [
        Current(f.slug, f.name, f.newest_version, Definition.parse(f.newest_definition))
        for f in rows
        if f.newest_version is not None
    ]


def ensure_frameworks() -> None:
    """The built-in frameworks at version 1 where they are missing (the migration seeds them;
    this is for databases emptied since, such as the flush between transactional tests).
    A framework that exists keeps every version it has."""
    from hashlist.frameworks.initial import FRAMEWORKS

    for slug, data in FRAMEWORKS.items():
        framework, _ = Framework.objects.get_or_create(slug=slug, defaults={"name": data["name"]})
        if not FrameworkVersion.objects.filter(framework=framework).exists():
            FrameworkVersion.objects.create(
                framework=framework, version=1, definition=data["definition"]
            )


def definitions() -> dict[str, Definition]:
    return {current.slug: current.definition for current in frameworks_current()}


def framework_versions(*, slug: str) -> QuerySet[FrameworkVersion]:
    """Every version of a framework, newest first, with the proposal that made it."""
    return (
        FrameworkVersion.objects.filter(framework__slug=slug)
        .select_related("proposal__author", "proposal__reviewer")
        .order_by("-version")
    )


def facts_of(entry: Any) -> dict[str, str]:
    """An entry's facts (an ``Entry`` or anything with the same attributes)."""
    return {name: getattr(entry, name) for name in FACT_NAMES}


def classes_of(facts: Mapping[str, str], defs: Mapping[str, Definition]) -> dict[str, str]:
    """Every framework's class for ``facts`` (``UNASSESSED`` where undetermined)."""
    return {slug: classify(definition, facts) for slug, definition in defs.items()}


def reconcile(
    *,
    grading: Mapping[str, Any] | None,
    facts: Any,
    current: Any = None,
    defs: Mapping[str, Definition] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(stored grading, facts) for a proposal, validated and agreeing with each other.

    ``grading`` and ``facts`` are what the person sent (either may be partial or missing); with
    ``current`` (an entry), missing values keep the entry's. The age group and content type
    are both a grading field and a fact: given in either place, they must not differ."""
    grading_in = dict(grading or {})
    if facts is not None and not isinstance(facts, Mapping):
        validate_facts(facts)  # raises the usual message
    facts_in = dict(facts or {})
    for shared in ("age_group", "content_type"):
        if shared in facts_in and shared in grading_in:
            if str(facts_in[shared]).strip().lower() != str(grading_in[shared]).strip().lower():
                raise InvalidInput(
                    f"{shared} is given twice, as a grading field and as a fact, with "
                    "different values.",
                    code="grading_disagrees_with_facts",
                )
        elif shared in grading_in:
            facts_in[shared] = validate_shared_field(shared, grading_in[shared])
    clean_facts = validate_facts(facts_in, partial_of=facts_of(current) if current else None)
    defs = definitions() if defs is None else defs
    derived = {}
    for slug, field in LEGACY_FIELDS.items():
        klass = classify(defs[slug], clean_facts) if slug in defs else UNASSESSED
        if klass != UNASSESSED:
            derived[field] = field_value(slug, klass)
    base = {field: getattr(current, field) for field in GRADING_FIELDS} if current else None
    merged = {
        **derived,
        **grading_in,
        "age_group": clean_facts["age_group"],
        "content_type": clean_facts["content_type"],
    }
    clean = validate_grading(merged, partial_of=base)
    wrong = sorted(field for field, value in derived.items() if clean[field] != value)
    if wrong:
        said = "; ".join(
            f"{field} {clean[field]!r}, the facts give {derived[field]!r}" for field in wrong
        )
        raise InvalidInput(
            f"The grading disagrees with the facts: {said}. Leave the field out to take the "
            "facts' class, or correct the facts.",
            code="grading_disagrees_with_facts",
            details={"fields": wrong},
        )
    return clean, clean_facts


def new_facts(facts: Mapping[str, str]) -> dict[str, str]:
    """The facts that are not also grading fields: what a proposal's payload adds."""
    return {name: facts[name] for name in NEW_FACTS}


# --- For analysts and auditors: unassessed entries and disagreeing stored fields -------------

_KEY = (*GRADING_FIELDS, *NEW_FACTS)


@dataclass(frozen=True, slots=True)
class Finding:
    grading: dict[str, Any]
    facts: dict[str, str]
    reasons: list[str]
    count: int
    entry_ids: list[int]


def _groups() -> QuerySet[Any]:
    # Entries grouped by stored fields and facts: a few thousand groups at most, whatever the
    # size of the list, so the rules run once per group, not per entry.
    return (
        Entry.objects.filter(status=EntryStatus.ACTIVE)
        .values(*_KEY)
        .annotate(count=Count("id"))
        .order_by(*_KEY)
    )


def _sample_ids(row: Mapping[str, Any], limit: int) -> list[int]:
    where = {field: row[field] for field in _KEY}
    return list(
        Entry.objects.filter(status=EntryStatus.ACTIVE, **where)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def grading_disagreements(*, sample: int = 20) -> Iterator[Finding]:
    """Groups of active entries whose stored fields disagree with each other or with the
    class their facts determine under the current rules, with up to ``sample`` entry ids each."""
    defs = definitions()
    for row in _groups():
        grading = {field: row[field] for field in GRADING_FIELDS}
        facts = {name: row[name] for name in FACT_NAMES}
        reasons = disagreements(grading, facts, defs)
        if reasons:
            yield Finding(grading, facts, reasons, row["count"], _sample_ids(row, sample))


def unassessed_counts() -> dict[str, int]:
    """Per framework, how many active entries its current rules leave unassessed."""
    defs = definitions()
    counts = dict.fromkeys(defs, 0)
    for row in _groups():
        facts = {name: row[name] for name in FACT_NAMES}
        for slug, klass in classes_of(facts, defs).items():
            if klass == UNASSESSED:
                counts[slug] += row["count"]
    return counts


def unassessed_entries(*, slug: str, limit: int = 100) -> list[int]:
    """Ids of active entries (oldest first, up to ``limit``) the framework leaves unassessed:
    the analysts' list of facts to record."""
    definition = definitions().get(slug)
    if definition is None:
        return []
    ids: list[int] = []
    for row in _groups():
        facts = {name: row[name] for name in FACT_NAMES}
        if classify(definition, facts) == UNASSESSED:
            ids.extend(_sample_ids(row, limit))
    return sorted(ids)[:limit]


# --- A rule change's impact, and the analysts' list of unassessed entries --------------------


def rule_change_impact(*, old: Definition, new: Definition) -> Impact:
    """How many active entries' class the change from ``old`` to ``new`` moves: one GROUP BY
    over the facts either definition looks at, the rules once per combination."""
    names = looked_at(old, new)
    active = Entry.objects.filter(status=EntryStatus.ACTIVE)
    if not names:  # rules without conditions: every entry is one combination
        total = active.count()
        return regraded([({}, total)] if total else [], old, new)
    rows = active.values(*names).annotate(count=Count("id")).order_by()
    return regraded((({n: row[n] for n in names}, row["count"]) for row in rows), old, new)


def _unassessed_filter(definition: Definition) -> Q | None:
    """Active entries the definition leaves unassessed, as a filter on the facts it looks at
    (None: no entry is unassessed). Built from the distinct combinations present."""
    names = definition.used_facts
    active = Entry.objects.filter(status=EntryStatus.ACTIVE)
    if not names:
        facts = {name: UNKNOWN for name in FACT_NAMES} | {"content_type": "image"}
        return Q() if classify(definition, facts) == UNASSESSED else None
    combos = []
    for row in active.values(*names).distinct().order_by():
        facts = {name: UNKNOWN for name in FACT_NAMES} | {"content_type": "image"} | row
        if classify(definition, facts) == UNASSESSED:
            combos.append(Q(**row))
    if not combos:
        return None
    return functools.reduce(operator.or_, combos)


@dataclass(frozen=True, slots=True)
class UnassessedRow:
    entry_id: int
    unknown: tuple[str, ...]  # the facts the framework looks at that are unknown
    facts: dict[str, str]


def unassessed_page(
    *, slug: str, after: int = 0, limit: int = 50
) -> tuple[list[UnassessedRow], int | None] | None:
    """A page of the active entries framework ``slug`` leaves unassessed, by entry id after
    ``after`` (keyset), and the id to continue after (None: the last page). None: no such
    framework."""
    current = next((c for c in frameworks_current() if c.slug == slug), None)
    if current is None:
        return None
    where = _unassessed_filter(current.definition)
    if where is None:
        return [], None
    names = current.definition.used_facts
    entries = list(
        Entry.objects.filter(where, status=EntryStatus.ACTIVE, id__gt=after)
        .order_by("id")
        .values("id", *FACT_NAMES)[: limit + 1]
    )
    rows = [
        UnassessedRow(
            entry_id=e["id"],
            unknown=tuple(n for n in names if e[n] == UNKNOWN),
            facts={n: e[n] for n in FACT_NAMES},
        )
        for e in entries[:limit]
    ]
    more = len(entries) > limit
    return rows, (rows[-1].entry_id if more and rows else None)
