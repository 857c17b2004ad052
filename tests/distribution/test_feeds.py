"""Feed filters in words, as a member's feed list shows them."""

from __future__ import annotations

import pytest

from distribution.feeds import FeedFilter


def _filter(**given: object) -> FeedFilter:
    fields: dict[str, object] = {
        "algorithms": frozenset(),
        "categories": frozenset(),
        "age_groups": frozenset(),
        "industry_classes": frozenset(),
        "content_types": frozenset(),
        "baseline_only": False,
    }
    fields.update({k: frozenset(v) if isinstance(v, list) else v for k, v in given.items()})
    return FeedFilter(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({}, "every entry, every algorithm"),
        ({"algorithms": ["sha1", "md5"], "categories": ["A"]}, "md5, sha1; category A"),
        ({"algorithms": ["pdq"], "baseline_only": True}, "pdq; INTERPOL baseline only"),
        (
            {"age_groups": ["0-2", "3-6"], "industry_classes": ["A1"], "content_types": ["video"]},
            "age groups 0-2, 3-6; industry class A1; video",
        ),
    ],
)
def test_a_filter_is_described_in_words(given, said):
    assert _filter(**given).describe() == said
