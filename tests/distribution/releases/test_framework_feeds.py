"""Feeds in a member's grading framework: bundle format 2 names the framework, rule version and
each entry's class; a UK feed stays format 1; a reviewed rule change (or a change of an entry's
facts) releases exactly the regrades ``regrade_impact`` announced. Synthetic hashes only."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from distribution import releases
from distribution.models import Feed, FeedEntry, FeedVersion
from distribution.regrade import regrade_impact
from distribution.storage import bundle_storage
from hashlist import services
from hashlist.frameworks.initial import FRAMEWORKS
from hashlist.models import Entry
from hashsync_client.format import (
    FrameworkRef,
    Op,
    classed_code,
    decode_grading,
    encode_grading,
    read_bundle_bytes,
    split_code,
)
from hashsync_client.signing import manifest_framework
from tests.conftest import synthetic
from tests.distribution.releases.conftest import latest_manifest

pytestmark = pytest.mark.django_db

BASELINE_V1 = FrameworkRef("interpol-baseline", 1, ("yes", "no", "unassessed"))
SEVERE_UNDER_13 = {"activity": "penetrative", "pubertal_stage": "prepubescent"}


def _entry(analyst: Any, reviewer: Any, *, age_group: str, **facts: str) -> tuple[Entry, str]:
    value = synthetic("md5")
    proposal = services.proposal_create_entry(
        actor=analyst,
        grading={"age_group": age_group, "content_type": "image"},
        facts=facts,
        hashes=[{"algorithm": "md5", "value": value}],
        source="synthetic-test",
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.entry is not None
    return proposal.entry, value


def _bundle(sha256: str) -> tuple[Any, list[Any]]:
    with bundle_storage().open(sha256) as handle:
        return read_bundle_bytes(handle.read())


def _latest(feed: str) -> FeedVersion:
    found = FeedVersion.objects.filter(feed__name=feed).order_by("-version").first()
    assert found is not None
    return found


def _manifest(feed: str) -> dict[str, Any]:
    """The feed's newest manifest, verified as a client verifies it."""
    return latest_manifest(Feed.objects.get(name=feed))


def _held(feed: str) -> dict[bytes, int]:
    return {
        bytes(v): g
        for v, g in FeedEntry.objects.filter(feed__name=feed).values_list("value", "grading")
    }


@pytest.fixture
def world(analyst: Any, reviewer: Any) -> dict[str, Any]:
    Feed.objects.create(name="md5-uk", algorithms=["md5"])
    Feed.objects.create(
        name="md5-baseline", algorithms=["md5"], framework="interpol-baseline", classes=["yes"]
    )
    Feed.objects.create(name="md5-interpol", algorithms=["md5"], framework="interpol-baseline")
    yes, yes_value = _entry(analyst, reviewer, age_group="7-10", origin="real", **SEVERE_UNDER_13)
    no, no_value = _entry(
        analyst, reviewer, age_group="14-15", origin="real", activity="nudity_posing"
    )
    # Origin unknown: a real child or not decides the baseline, so it is unassessed there.
    open_, open_value = _entry(analyst, reviewer, age_group="7-10", **SEVERE_UNDER_13)
    releases.release_cut()
    return {
        "yes": (yes, yes_value),
        "no": (no, no_value),
        "open": (open_, open_value),
    }


def _raw(value: str) -> bytes:
    return bytes.fromhex(value)


def test_a_uk_feed_stays_format_1_and_an_interpol_feed_is_format_2_with_each_class(world):
    uk_header, uk_records = _bundle(_latest("md5-uk").snapshot_sha256)
    assert (uk_header.format, uk_header.framework) == (1, None)
    assert sorted(decode_grading(r.grading).category for r in uk_records) == ["A", "A", "C"]
    assert "framework" not in _manifest("md5-uk")

    header, records = _bundle(_latest("md5-interpol").snapshot_sha256)
    assert (header.format, header.framework) == (2, BASELINE_V1)
    classes = {r.value: BASELINE_V1.classes[split_code(r.grading)[1]] for r in records}
    assert classes == {
        _raw(world["yes"][1]): "yes",
        _raw(world["no"][1]): "no",
        _raw(world["open"][1]): "unassessed",
    }
    # The grading code is the stored grading, as in a format-1 feed.
    yes_entry = world["yes"][0]
    grading = encode_grading(
        yes_entry.category, yes_entry.age_group, yes_entry.baseline, "A1", "image"
    )
    assert _held("md5-interpol")[_raw(world["yes"][1])] == classed_code(grading, 0)
    assert manifest_framework(_manifest("md5-interpol")) == BASELINE_V1

    # "INTERPOL Baseline only": the class filter admits only the yes entry.
    header, records = _bundle(_latest("md5-baseline").snapshot_sha256)
    assert header.framework == BASELINE_V1
    assert [r.value for r in records] == [_raw(world["yes"][1])]


def _baseline_any_origin() -> dict[str, Any]:
    """INTERPOL's rules with the origin condition dropped (a hypothetical change for the test:
    computer-generated material counted like photographs)."""
    definition = copy.deepcopy(FRAMEWORKS["interpol-baseline"]["definition"])
    for rule in definition["rules"]:
        rule["when"].pop("origin", None)
    return definition


def _delta_entries(feed: str, version: int) -> dict[bytes, tuple[Op, int]]:
    found = FeedVersion.objects.get(feed__name=feed, version=version)
    _, records = _bundle(found.delta_sha256)
    return {r.value: (r.op, r.grading) for r in records}


def test_a_reviewed_rule_change_releases_exactly_the_regrades_it_announced(
    world, analyst, reviewer
):
    uk_version = _latest("md5-uk").version
    impact = regrade_impact("interpol-baseline", _baseline_any_origin())
    # Only the entry whose origin was unknown moves (unassessed -> yes); the UK feed is another
    # framework's and is not touched.
    assert (impact.entries, impact.feeds) == (1, 2)
    assert impact.feed_names == ("md5-baseline", "md5-interpol")

    proposal = services.proposal_framework(
        actor=analyst,
        framework="interpol-baseline",
        definition=_baseline_any_origin(),
        comment="synthetic test change",
    )
    assert releases.release_cut() is None  # not approved: nothing to publish
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    release = releases.release_cut()
    assert release is not None

    opened = _raw(world["open"][1])
    v2 = FrameworkRef("interpol-baseline", 2, BASELINE_V1.classes)
    # It enters the baseline-only feed and is regraded in the unfiltered one, and nothing else.
    assert _delta_entries("md5-baseline", release.version) == {
        opened: (Op.UPSERT, _held("md5-baseline")[opened])
    }
    assert split_code(_held("md5-baseline")[opened])[1] == 0  # "yes"
    delta = _delta_entries("md5-interpol", release.version)
    assert set(delta) == {opened} and split_code(delta[opened][1])[1] == 0
    changed = {
        name
        for name in ("md5-uk", "md5-baseline", "md5-interpol")
        if _latest(name).version == release.version
    }
    assert changed == set(impact.feed_names)
    assert _latest("md5-uk").version == uk_version
    for name in impact.feed_names:
        header, _ = _bundle(_latest(name).delta_sha256)
        assert header.framework == v2
        assert manifest_framework(_manifest(name)) == v2
        assert Feed.objects.get(name=name).framework_version == 2
    # The state digest the manifest signs is the digest of what the feed holds.
    assert releases.release_cut() is None


def test_a_uk_rule_change_regrades_uk_feeds_in_format_1(world, analyst, reviewer):
    definition = copy.deepcopy(FRAMEWORKS["uk"]["definition"])
    # Hypothetical: nudity or posing graded B (the rule for C keeps the rest).
    definition["rules"][1]["when"]["activity"].append("nudity_posing")
    definition["rules"][2]["when"]["activity"].remove("nudity_posing")
    impact = regrade_impact("uk", definition)
    assert (impact.entries, impact.feeds, impact.feed_names) == (1, 1, ("md5-uk",))

    proposal = services.proposal_framework(
        actor=analyst, framework="uk", definition=definition, comment="synthetic test change"
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    release = releases.release_cut()
    assert release is not None
    header, records = _bundle(_latest("md5-uk").delta_sha256)
    assert (header.format, header.framework) == (1, None)
    [record] = records
    assert record.value == _raw(world["no"][1])
    assert decode_grading(record.grading).category == "B"
    assert _latest("md5-interpol").version < release.version


def test_an_unchanged_class_regrades_nothing(world):
    definition = copy.deepcopy(FRAMEWORKS["interpol-baseline"]["definition"])
    definition["rules"][0]["source"] += " (citation corrected)"
    assert tuple(regrade_impact("interpol-baseline", definition)) == (0, 0, ())


def test_a_change_of_facts_moves_an_entry_into_a_class_filtered_feed(world, analyst, reviewer):
    entry, value = world["open"]
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, facts={"origin": "real"}, comment="origin seen"
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    release = releases.release_cut()
    assert release is not None
    delta = _delta_entries("md5-baseline", release.version)
    assert list(delta) == [_raw(value)] and delta[_raw(value)][0] == Op.UPSERT
    assert split_code(delta[_raw(value)][1])[1] == 0  # yes

    # And out again: the facts say computer-generated, so the baseline feed removes it.
    entry.refresh_from_db()
    proposal = services.proposal_regrade(
        actor=analyst,
        entry_id=entry.pk,
        facts={"origin": "computer_generated"},
        comment="origin corrected",
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    release = releases.release_cut()
    assert release is not None
    assert _delta_entries("md5-baseline", release.version) == {_raw(value): (Op.REGRADED_OUT, 0)}
    interpol = _delta_entries("md5-interpol", release.version)
    assert split_code(interpol[_raw(value)][1])[1] == 1  # no


def test_the_review_page_announces_the_regrades_a_rule_change_releases(world, analyst, reviewer):
    import re

    from django.test import Client
    from django.urls import reverse

    from tests.web.conftest import signed_in

    proposal = services.proposal_framework(
        actor=analyst,
        framework="interpol-baseline",
        definition=_baseline_any_origin(),
        comment="synthetic test change",
    )
    page = signed_in(Client(), reviewer).get(reverse("web-proposal", args=[proposal.pk]))
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    # The figures regrade_impact gives (and the release then carries, test above).
    assert "Members receive it: 1 entry regraded in 2 feeds ( md5-baseline , md5-interpol )" in (
        text
    )
