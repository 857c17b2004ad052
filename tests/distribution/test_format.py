"""The server's grading choices against the protocol core's grading vocabulary.

The rest of the codec's tests live in tests/hashsync_client/test_format.py; this one imports
the server's models, so it stays on the server's side of the tree.
"""

from __future__ import annotations

from hashsync_client.format import GRADING_FIELDS


def test_grading_fields_match_the_domain_model():
    from hashlist.models import AgeGroup, Category, ContentType, IndustryClass

    assert set(GRADING_FIELDS["category"]) == set(Category.values)
    assert set(GRADING_FIELDS["age_group"]) == set(AgeGroup.values)
    assert set(GRADING_FIELDS["industry_class"]) == set(IndustryClass.values)
    assert set(GRADING_FIELDS["content_type"]) == set(ContentType.values)
