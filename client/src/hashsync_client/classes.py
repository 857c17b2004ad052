"""Which grading framework a held feed is in, and an entry's class in it.

A feed's signed manifest names its framework, rule version and classes when the feed is
published in bundle format 2; a format-1 feed names none and is in the UK framework, whose
class is the grading's category (docs/bundle-format.md §3.1). The client keeps the manifest
it accepted for each feed, so this needs nothing else stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hashsync_client.format import FrameworkRef, Grading, decode_grading, split_code
from hashsync_client.signing import manifest_framework

# The framework of a format-1 feed: the grading code's category is its class.
FORMAT_1_FRAMEWORK = "uk"


@dataclass(frozen=True)
class FeedFramework:
    slug: str
    version: int | None  # None: a format-1 feed, whose manifest names no rule version
    classes: tuple[str, ...] | None  # format 2: the header's classes, "unassessed" last

    @classmethod
    def of_manifest(cls, manifest: Mapping[str, Any] | None) -> FeedFramework:
        ref: FrameworkRef | None = manifest_framework(manifest) if manifest else None
        if ref is None:
            return cls(FORMAT_1_FRAMEWORK, None, None)
        return cls(ref.slug, ref.version, ref.classes)

    @classmethod
    def of_stored(cls, manifest: bytes | None) -> FeedFramework:
        """From the canonical manifest payload the store keeps for a feed (None: none yet)."""
        return cls.of_manifest(json.loads(manifest) if manifest else None)

    @property
    def label(self) -> str:
        """``interpol-baseline v2``; ``uk`` for a format-1 feed (no version named)."""
        return self.slug if self.version is None else f"{self.slug} v{self.version}"

    def read(self, code: int) -> tuple[Grading, str]:
        """(grading, class) of a held record's code."""
        if self.classes is None:
            grading = decode_grading(code)
            return grading, grading.category
        grading_code, index = split_code(code)
        return decode_grading(grading_code), self.classes[index]


def feed_frameworks(feeds: Any) -> dict[str, FeedFramework]:
    """Feed name → its framework, for the store's ``FeedState`` rows."""
    return {state.name: FeedFramework.of_stored(state.manifest) for state in feeds}
