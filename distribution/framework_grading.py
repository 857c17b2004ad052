"""The class a feed delivers for an entry: its framework's rules applied to the entry's facts.

A feed names a grading framework (``Feed.framework``, default ``uk``). What members receive for
an entry is its grading code (the stored fields, as always) and its class in that framework:

- the class is the one the framework's rules derive from the entry's facts; where they leave it
  ``unassessed`` and the framework is one of the three the stored fields always carried (uk,
  interpol-baseline, industry), the class those fields state stands — an analyst's grading from
  before facts existed is not thrown away, and no rule guesses it either;
- a ``uk`` feed is published in bundle format 1, whose grading code already has a category
  digit: that digit is the UK class, so every UK feed's bytes are what they were, and a UK rule
  change regrades it by changing that digit;
- any other framework's feed is published in bundle format 2, whose header names the framework,
  its rule version and classes, and whose record code is ``class index * 630 + grading code``.

docs/bundle-format.md §3.1 and docs/grading.md ("Feeds in a framework").
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from hashlist.changelog import EntryState
from hashlist.frameworks.legacy import LEGACY_FIELDS, stated_class
from hashlist.frameworks.rules import UNASSESSED, Definition, classify
from hashlist.models import FrameworkVersion
from hashsync.errors import NotFound
from hashsync_client.format import CATEGORIES, FrameworkRef, classed_code, encode_grading

# Feeds in this framework keep bundle format 1: the grading code's category is its class.
FORMAT_1_FRAMEWORK = "uk"


@dataclass(frozen=True)
class FeedGrader:
    """One framework at one rule version, as a feed delivers it."""

    slug: str
    version: int
    definition: Definition

    @property
    def ref(self) -> FrameworkRef | None:
        """What a format-2 bundle header and manifest name; None for a format-1 (uk) feed."""
        if self.slug == FORMAT_1_FRAMEWORK:
            return None
        return FrameworkRef(self.slug, self.version, (*self.definition.classes, UNASSESSED))

    def klass(self, state: EntryState) -> str:
        """The entry's class in this framework (module docstring)."""
        derived = classify(self.definition, state.facts)
        if derived == UNASSESSED and self.slug in LEGACY_FIELDS:
            stated = stated_class(
                self.slug,
                {
                    "category": state.category,
                    "baseline": state.baseline,
                    "industry_class": state.industry_class,
                },
            )
            if stated is not None and stated in self.definition.classes:
                return stated
        return derived

    def code(self, state: EntryState) -> int:
        """The record code members receive for the entry (its grading, and its class)."""
        grading = state.grading
        klass = self.klass(state)
        ref = self.ref
        if ref is None:
            if klass in CATEGORIES:
                grading = grading._replace(category=klass)
            return encode_grading(*grading)
        return classed_code(encode_grading(*grading), ref.classes.index(klass))


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Definition:
    return Definition.parse(json.loads(text))


def _definition(slug: str, version: int) -> Definition:
    # Read every time (one small row): only the parsing is cached, by the rules' own text.
    row = FrameworkVersion.objects.filter(framework__slug=slug, version=version).first()
    if row is None:
        raise NotFound(f"Framework {slug} has no version {version}.", code="framework_not_found")
    return _parsed(json.dumps(row.definition, sort_keys=True))


def latest_version(slug: str) -> int:
    """The newest rule version of a framework; ``NotFound`` (framework_not_found) if none."""
    version = (
        FrameworkVersion.objects.filter(framework__slug=slug)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    if version is None:
        raise NotFound(f"Framework {slug} does not exist.", code="framework_not_found")
    return version


def grader(slug: str, version: int | None = None) -> FeedGrader:
    """The framework ``slug`` at ``version`` (default: its newest rules)."""
    version = latest_version(slug) if version is None else version
    return FeedGrader(slug, version, _definition(slug, version))


def feed_framework(feed: Any) -> FrameworkRef | None:
    """What a feed's bundles and manifests name: its framework at the rule version its
    published state reflects (None for a format-1, uk, feed)."""
    if feed.framework == FORMAT_1_FRAMEWORK:
        return None
    return grader(feed.framework, feed.framework_version or None).ref
