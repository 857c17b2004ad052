"""Feed membership rules: which (algorithm, hash, grading) records of an entry state belong
to a feed. Pure functions over the change log's ``EntryState`` (``hashlist.changelog``), shared
by the release cutter, feed population and the auditors' hash-holders."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from distribution.framework_grading import FORMAT_1_FRAMEWORK, FeedGrader, grader
from hashlist.changelog import EntryState
from hashsync_client.format import ALGORITHM_IDS, Op

PHOTODNA = "photodna"
Key = tuple[int, bytes]  # (algorithm id, hash bytes): the bundle sort order


@dataclass(frozen=True)
class FeedFilter:
    algorithms: frozenset[str]
    categories: frozenset[str]
    age_groups: frozenset[str]
    industry_classes: frozenset[str]
    content_types: frozenset[str]
    baseline_only: bool
    # The framework the feed delivers classes in, and the classes it admits (empty: any).
    framework: str = FORMAT_1_FRAMEWORK
    classes: frozenset[str] = frozenset()
    # The framework's rules at a given version; None: its newest, read when first needed.
    given_grader: FeedGrader | None = field(default=None, compare=False)

    @classmethod
    def of(cls, feed: Any, *, framework_version: int | None = None) -> FeedFilter:
        """The feed's filter; its classes are judged by the framework's rules at
        ``framework_version`` (default: the newest)."""
        slug = getattr(feed, "framework", None) or FORMAT_1_FRAMEWORK
        return cls(
            algorithms=frozenset(feed.algorithms or ()),
            categories=frozenset(feed.categories or ()),
            age_groups=frozenset(feed.age_groups or ()),
            industry_classes=frozenset(feed.industry_classes or ()),
            content_types=frozenset(feed.content_types or ()),
            baseline_only=bool(feed.baseline_only),
            framework=slug,
            classes=frozenset(getattr(feed, "classes", None) or ()),
            given_grader=None if framework_version is None else grader(slug, framework_version),
        )

    @functools.cached_property
    def grader(self) -> FeedGrader:
        return self.given_grader or grader(self.framework)

    def admits_grading(self, state: EntryState) -> bool:
        return (
            (not self.classes or self.grader.klass(state) in self.classes)
            and (not self.categories or state.category in self.categories)
            and (not self.age_groups or state.age_group in self.age_groups)
            and (not self.industry_classes or state.industry_class in self.industry_classes)
            and (not self.content_types or state.content_type in self.content_types)
            and (not self.baseline_only or state.baseline is True)
        )

    def admits_algorithm(self, algorithm: str) -> bool:
        return not self.algorithms or algorithm in self.algorithms

    @property
    def carries_photodna(self) -> bool:
        """Whether the feed can carry PhotoDNA hashes, which only members holding a PhotoDNA
        licence may receive: stored on the feed (``Feed.carries_photodna``) when it is
        created, since its filter never changes, so entitlement is one query."""
        return self.admits_algorithm(PHOTODNA)

    def describe(self) -> str:
        """The filter in words, for people reading a feed list: "md5, sha1; category A"."""
        parts = [
            ", ".join(sorted(self.algorithms)),
            _named("category", "categories", self.categories),
            _named("age group", "age groups", self.age_groups),
            _named("industry class", "industry classes", self.industry_classes),
            ", ".join(sorted(self.content_types)),
            "INTERPOL baseline only" if self.baseline_only else "",
            "" if self.framework == FORMAT_1_FRAMEWORK else f"graded in {self.framework}",
            _named(f"{self.framework} class", f"{self.framework} classes", self.classes),
        ]
        said = "; ".join(part for part in parts if part)
        return said or "every entry, every algorithm"


def _named(one: str, many: str, values: frozenset[str]) -> str:
    if not values:
        return ""
    return f"{one if len(values) == 1 else many} {', '.join(sorted(values))}"


def state_keys(state: EntryState | None) -> Iterator[tuple[str, Key]]:
    """Every (algorithm, key) of an entry state, whatever its status."""
    if state is None:
        return
    for name, value in state.hash_values():
        yield name, (ALGORITHM_IDS[name], value)


def records_in_feed(feed_filter: FeedFilter, state: EntryState | None) -> dict[Key, int]:
    """The feed's records for an entry state: key → record code (empty if not admitted):
    the grading code with the entry's class in the feed's framework (``FeedGrader.code``)."""
    if state is None or not state.active or not feed_filter.admits_grading(state):
        return {}
    code = feed_filter.grader.code(state)
    return {key: code for name, key in state_keys(state) if feed_filter.admits_algorithm(name)}


def removal_reason(key: Key, after: EntryState | None) -> Op:
    """Why a key left a feed, judged from the entry's state after the change."""
    if after is None or not after.active:
        return Op.RETRACTED
    if all(k != key for _, k in state_keys(after)):
        return Op.HASH_REMOVED
    return Op.REGRADED_OUT
