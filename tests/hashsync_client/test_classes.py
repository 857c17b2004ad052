"""The class of a held entry in its feed's grading framework, read from the feed's manifest
(hashsync_client.classes): format 1 is the UK's, its class the category; format 2 names it."""

from __future__ import annotations

import json

import pytest

from hashsync_client.classes import FeedFramework
from hashsync_client.format import classed_code, encode_grading

GRADING = ("B", "7-10", True, "A1", "image")
MANIFEST = {"framework": {"slug": "industry", "version": 3, "classes": ["A1", "A2", "unassessed"]}}


def test_a_format_1_feed_is_in_the_uk_framework_and_its_class_is_the_category():
    framework = FeedFramework.of_stored(None)
    assert (framework.slug, framework.version, framework.label) == ("uk", None, "uk")
    grading, klass = framework.read(encode_grading(*GRADING))
    assert (tuple(grading), klass) == (GRADING, "B")


def test_a_format_2_feed_names_its_framework_version_and_each_class():
    framework = FeedFramework.of_stored(json.dumps(MANIFEST).encode())
    assert framework.label == "industry v3"
    for index, name in enumerate(("A1", "A2", "unassessed")):
        grading, klass = framework.read(classed_code(encode_grading(*GRADING), index))
        assert (tuple(grading), klass) == (GRADING, name)


@pytest.mark.parametrize(
    "framework",
    [
        {"slug": "industry", "version": 3, "classes": ["A1", "A2"]},  # unassessed not last
        {"slug": "industry", "version": 0, "classes": ["A1", "unassessed"]},
        {"slug": "Industry", "version": 1, "classes": ["A1", "unassessed"]},
        {"slug": "industry", "version": 1},
    ],
)
def test_a_malformed_framework_in_a_manifest_is_refused(framework):
    with pytest.raises(ValueError):
        FeedFramework.of_manifest({"framework": framework})
