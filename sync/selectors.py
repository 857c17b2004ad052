"""Reads of the member sync API. Each starts from what the member may receive
(``members.selectors.entitled_feeds``), so nothing here answers about another member's feeds."""

from __future__ import annotations

from typing import Any

from distribution.feeds import FeedFilter
from distribution.framework_grading import feed_framework
from distribution.models import BundleObject
from distribution.plans import state_digest_of
from distribution.selectors import manifest_latest
from hashsync_client.algorithms import get_algorithm
from hashsync_client.format import decode_grading, split_code
from members import selectors as member_selectors
from members.models import Feedback, Member
from sync.matcher import PDQ, matcher_for


def feed_list(member: Member) -> list[dict[str, Any]]:
    """The member's feeds as the feed list shows them: each feed's newest published state."""
    feeds = []
    for feed in member_selectors.entitled_feeds(member):
        manifest = manifest_latest(feed.pk)
        published = manifest is not None
        feeds.append(
            {
                "name": feed.name,
                "description": feed.description,
                "algorithms": feed.algorithms or [],
                "categories": feed.categories or [],
                "age_groups": feed.age_groups or [],
                "industry_classes": feed.industry_classes or [],
                "content_types": feed.content_types or [],
                "baseline_only": feed.baseline_only,
                "framework": feed.framework,
                "classes": feed.classes or [],
                "filter": FeedFilter.of(feed).describe(),
                "version": manifest.version if manifest else 0,
                "entry_count": feed.entry_count if published else 0,
                "state_digest": state_digest_of(feed, manifest.version) if manifest else None,
                "manifest_sha256": manifest.sha256 if manifest else None,
                "published": published,
            }
        )
    return feeds


def bundle_feeds(member: Member, sha256: str) -> list[str]:
    """The names of the member's feeds that published the bundle with this SHA-256 (empty if
    none did, or if the bundle is not in storage's index)."""
    entitled = {f.pk: f.name for f in member_selectors.entitled_feeds(member)}
    holders = member_selectors.feeds_holding_bundle(sha256) & set(entitled)
    if not holders or not BundleObject.objects.filter(sha256=sha256).exists():
        return []
    return sorted(entitled[pk] for pk in holders)


def lookup_results(member: Member, pairs: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """For each (algorithm, value), in order: whether a feed the member receives lists it,
    which feeds, and its grading (from the first of them, by name)."""
    feeds = member_selectors.entitled_feeds(member)
    found = member_selectors.feed_entries_for([f.pk for f in feeds], pairs)
    results = []
    for algorithm, value in pairs:
        rows = found.get((algorithm, value), [])
        # A format-2 feed's code also carries the entry's class (split_code); the grading is
        # the same in every feed.
        grading = decode_grading(split_code(rows[0].grading)[0]) if rows else None
        results.append(
            {
                "algorithm": algorithm,
                "value": get_algorithm(algorithm).canonical(value),
                "matched": bool(rows),
                "feeds": [row.feed.name for row in rows],
                "category": grading.category if grading else None,
                "age_group": grading.age_group if grading else None,
                "baseline": grading.baseline if grading else None,
                "industry_class": grading.industry_class if grading else None,
                "content_type": grading.content_type if grading else None,
            }
        )
    return results


def match_results(
    member: Member, pairs: list[tuple[str, bytes]], *, threshold: int
) -> list[dict[str, Any]]:
    """For each (algorithm, value), in order: the entries of the member's feeds that match it,
    nearest first — PDQ within ``threshold`` bits (the exact index of ``sync.matcher``), every
    other algorithm exactly. A feed the member may not receive is never searched."""
    feeds = member_selectors.entitled_feeds(member)
    frameworks = {feed.name: feed_framework(feed) for feed in feeds}
    results: list[dict[str, Any]] = [
        {
            "algorithm": algorithm,
            "value": get_algorithm(algorithm).canonical(value),
            "matched": False,
            "matches": [],
        }
        for algorithm, value in pairs
    ]

    def found(position: int, feed: str, algorithm: str, value: bytes, distance: int, code: int):
        listed = get_algorithm(algorithm).canonical(value)
        match = {"feed": feed, "value": listed, "distance": distance}
        grading, index = split_code(code)
        framework = frameworks[feed]
        classed: dict[str, Any] = (
            {
                "framework": "uk",
                "framework_version": None,
                "class": decode_grading(grading).category,
            }
            if framework is None
            else {
                "framework": framework.slug,
                "framework_version": framework.version,
                "class": framework.classes[index],
            }
        )
        results[position]["matches"].append(
            {**match, **decode_grading(grading)._asdict(), **classed}
        )

    exact = [(i, pair) for i, pair in enumerate(pairs) if pair[0] != PDQ]
    rows = member_selectors.feed_entries_for([f.pk for f in feeds], [p for _, p in exact])
    for position, (algorithm, value) in exact:
        for row in rows.get((algorithm, value), []):
            found(position, row.feed.name, algorithm, value, 0, row.grading)
    pdq = [(i, value) for i, (algorithm, value) in enumerate(pairs) if algorithm == PDQ]
    if pdq:
        for feed in feeds:
            if not FeedFilter.of(feed).admits_algorithm(PDQ):
                continue
            for hit in matcher_for(feed).search([v for _, v in pdq], threshold):
                found(pdq[hit.query][0], feed.name, PDQ, hit.value, hit.distance, hit.grading)
    for result in results:
        result["matches"].sort(key=lambda m: (m["distance"], m["feed"], m["value"]))
        result["matched"] = bool(result["matches"])
    return results


def feedback_of(member: Member) -> list[Feedback]:
    """The member's own feedback, newest first (at most 1,000)."""
    return list(Feedback.objects.filter(member=member).order_by("-id")[:1000])
