"""Regrades: which entries a framework rule change moves, found in O(changed entries).

An entry's class depends only on its facts (and, where the rules leave it unassessed, on the
stored field of the three frameworks that always had one: ``FeedGrader.klass``). A list of
millions of entries has a few thousand distinct such combinations, so a rule change is judged
per combination — one GROUP BY, the rules run under the old and the new version for each —
and only the entries of combinations whose class (or class index) changed are read.

``regrade_impact`` tells a reviewer, before approving a framework proposal, how many entries
the change regrades in how many feeds; ``regrade_records`` gives the release cutter the records
those entries now have in one feed, so the release carries exactly those regrades (and the
entries that enter or leave a feed filtering on classes, as adds and removes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from django.db.models import Count

from distribution.feeds import FeedFilter, Key, records_in_feed, state_keys
from distribution.framework_grading import FeedGrader, grader
from distribution.models import Feed
from hashlist.changelog import EntryState
from hashlist.frameworks.facts import FACT_NAMES
from hashlist.frameworks.legacy import LEGACY_FIELDS
from hashlist.frameworks.rules import Definition
from hashlist.models import Entry, EntryStatus
from hashsync_client.format import CATEGORIES, Op, decode_grading, split_code

QUERY_CHUNK = 2000


class RegradeImpact(NamedTuple):
    """What a rule change does to the published feeds: ``entries`` regraded (an entry counted
    once however many feeds carry it) in ``feeds`` feeds (the names in ``feed_names``)."""

    entries: int
    feeds: int
    feed_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Group:
    values: dict[str, Any]  # column -> value: the entries' facts (and stored field)
    count: int


def _columns(slug: str) -> list[str]:
    legacy = LEGACY_FIELDS.get(slug)
    return [*FACT_NAMES, *([legacy] if legacy else [])]


def _state_of(values: Mapping[str, Any]) -> EntryState:
    """A stand-in state carrying one group's facts and stored fields (enough for ``klass``)."""
    return EntryState(
        category=values.get("category", "C"),
        age_group=values["age_group"],
        baseline=values.get("baseline"),
        industry_class=values.get("industry_class", ""),
        content_type=values["content_type"],
        status="active",
        hashes=(),
        pubertal_stage=values["pubertal_stage"],
        activity=values["activity"],
        origin=values["origin"],
        self_generated=values["self_generated"],
    )


def _token(graded: FeedGrader, state: EntryState) -> tuple[str, int]:
    """The part of a record's code a rule change can move: the class, and the class digit of
    the code (the category in format 1, the class index in format 2)."""
    code = graded.code(state)
    if graded.ref is None:
        return graded.klass(state), CATEGORIES.index(decode_grading(code).category)
    return graded.klass(state), split_code(code)[1]


def changed_groups(slug: str, old: FeedGrader, new: FeedGrader) -> list[_Group]:
    """The combinations of facts (and stored field) of active entries whose class or class
    digit differs between ``old`` and ``new``: one GROUP BY, the rules once per group."""
    columns = _columns(slug)
    rows = (
        Entry.objects.filter(status=EntryStatus.ACTIVE)
        .values(*columns)
        .annotate(count=Count("id"))
        .order_by(*columns)
    )
    changed = []
    for row in rows:
        values = {column: row[column] for column in columns}
        state = _state_of(values)
        if _token(old, state) != _token(new, state):
            changed.append(_Group(values, row["count"]))
    return changed


def changed_entries(groups: list[_Group]) -> Iterator[tuple[int, EntryState]]:
    """(entry id, state) of the active entries in ``groups``, with their hashes."""
    for group in groups:
        rows = (
            Entry.objects.filter(status=EntryStatus.ACTIVE, **group.values)
            .prefetch_related("hashes")
            .order_by("id")
        )
        for entry in rows.iterator(chunk_size=QUERY_CHUNK):
            yield entry.pk, EntryState.of(entry)


def regrade_records(
    feed_filter: FeedFilter, entries: list[tuple[int, EntryState]]
) -> dict[Key, tuple]:
    """For the cutter: key → (code or None, removal reason or None, entry id) of each hash of
    ``entries`` under the filter's rules (a key the feed no longer admits is a removal, taken
    only if it is on the feed now)."""
    final: dict[Key, tuple] = {}
    for entry_id, state in entries:
        admitted = records_in_feed(feed_filter, state)
        for name, key in state_keys(state):
            if not feed_filter.admits_algorithm(name):
                continue
            code = admitted.get(key)
            final[key] = (code, None if code is not None else Op.REGRADED_OUT, entry_id)
    return final


def _feeds_in(slug: str) -> list[Feed]:
    return list(
        Feed.objects.filter(active=True, framework=slug, populated_at__isnull=False).order_by("id")
    )


def regrade_impact(framework_slug: str, new_definition: Any) -> RegradeImpact:
    """How many active entries a change of ``framework_slug``'s rules to ``new_definition``
    (JSON, as a framework proposal carries it) regrades, in how many published feeds — the
    releases that approving it produces carry exactly these (given no other change meanwhile).

    An entry counts when its record in some feed of that framework changes: a new class (or
    class digit), or entering or leaving a feed that filters on classes. Feeds not yet
    published are not counted (their first snapshot has the new rules anyway).
    ``InvalidInput`` (invalid_framework_rules) for a bad definition, ``NotFound``
    (framework_not_found) for an unknown framework."""
    definition = Definition.parse(new_definition)
    old = grader(framework_slug)
    new = FeedGrader(framework_slug, old.version + 1, definition)
    feeds = _feeds_in(framework_slug)
    groups = changed_groups(framework_slug, old, new)
    if not feeds or not groups:
        return RegradeImpact(0, 0)
    filters = [
        (
            feed.name,
            FeedFilter.of(feed, framework_version=old.version),
            _with_grader(FeedFilter.of(feed, framework_version=old.version), new),
        )
        for feed in feeds
    ]
    entries: set[int] = set()
    touched: set[str] = set()
    for entry_id, state in changed_entries(groups):
        for name, before, after in filters:
            if records_in_feed(before, state) != records_in_feed(after, state):
                entries.add(entry_id)
                touched.add(name)
    names = tuple(feed.name for feed in feeds if feed.name in touched)
    return RegradeImpact(len(entries), len(names), names)


def _with_grader(feed_filter: FeedFilter, graded: FeedGrader) -> FeedFilter:
    return replace(feed_filter, given_grader=graded)
