"""Feed membership rules: which (algorithm, hash, grading) records of an entry state belong
to a feed. Pure functions over the change log's entry states (see ``hashlist.services.
entry_state``), shared by the release cutter and feed population."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hashsync_client.algorithms import get_algorithm
from hashsync_client.format import ALGORITHM_IDS, Op, encode_grading

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

    @classmethod
    def of(cls, feed: Any) -> FeedFilter:
        return cls(
            algorithms=frozenset(feed.algorithms or ()),
            categories=frozenset(feed.categories or ()),
            age_groups=frozenset(feed.age_groups or ()),
            industry_classes=frozenset(feed.industry_classes or ()),
            content_types=frozenset(feed.content_types or ()),
            baseline_only=bool(feed.baseline_only),
        )

    def admits_grading(self, state: Mapping[str, Any]) -> bool:
        return (
            (not self.categories or state["category"] in self.categories)
            and (not self.age_groups or state["age_group"] in self.age_groups)
            and (not self.industry_classes or state["industry_class"] in self.industry_classes)
            and (not self.content_types or state["content_type"] in self.content_types)
            and (not self.baseline_only or state["baseline"] is True)
        )

    def admits_algorithm(self, algorithm: str) -> bool:
        return not self.algorithms or algorithm in self.algorithms

    @property
    def carries_photodna(self) -> bool:
        """Whether the feed can carry PhotoDNA hashes, which only members holding a PhotoDNA
        licence may receive: stored on the feed (``Feed.carries_photodna``) when it is
        created, since its filter never changes, so entitlement is one query."""
        return self.admits_algorithm(PHOTODNA)


def grading_code(state: Mapping[str, Any]) -> int:
    return encode_grading(
        state["category"],
        state["age_group"],
        state["baseline"],
        state["industry_class"],
        state["content_type"],
    )


def state_keys(state: Mapping[str, Any] | None) -> Iterator[tuple[str, Key]]:
    """Every (algorithm, key) of an entry state, whatever its status."""
    if not state:
        return
    for name, text in state["hashes"]:
        yield name, (ALGORITHM_IDS[name], get_algorithm(name).parse(text))


def records_in_feed(feed_filter: FeedFilter, state: Mapping[str, Any] | None) -> dict[Key, int]:
    """The feed's records for an entry state: key → grading code (empty if not admitted)."""
    if not state or state["status"] != "active" or not feed_filter.admits_grading(state):
        return {}
    code = grading_code(state)
    return {key: code for name, key in state_keys(state) if feed_filter.admits_algorithm(name)}


def removal_reason(key: Key, after: Mapping[str, Any] | None) -> Op:
    """Why a key left a feed, judged from the entry's state after the change."""
    if not after or after["status"] != "active":
        return Op.RETRACTED
    if all(k != key for _, k in state_keys(after)):
        return Op.HASH_REMOVED
    return Op.REGRADED_OUT
