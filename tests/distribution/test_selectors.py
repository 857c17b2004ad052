"""Reads of distribution, above all "the newest manifest of a feed" in each of its forms."""

from __future__ import annotations

import pytest

from distribution import keys, releases, selectors
from distribution.models import BundleObject, Feed, Manifest
from tests.factories import approved_entry

pytestmark = pytest.mark.django_db


@pytest.fixture
def feeds(analyst, reviewer) -> dict[str, Feed]:
    """A feed re-signed once (two manifests), a feed with one, and one never published."""
    resigned = Feed.objects.create(name="resigned")
    once = Feed.objects.create(name="once")
    approved_entry(analyst, reviewer)
    releases.release_cut()
    releases.manifest_publish(resigned, signer=keys.online_signing_key(), now=resigned.created_at)
    unpublished = Feed.objects.create(name="unpublished")
    return {"resigned": resigned, "once": once, "unpublished": unpublished}


def test_the_newest_manifest_is_the_last_published(feeds):
    newest = Manifest.objects.filter(feed=feeds["resigned"]).order_by("id").last()
    assert newest is not None and newest.previous_sha256  # the re-signed one, second
    assert selectors.manifest_latest(feeds["resigned"].pk) == newest
    assert selectors.manifest_latest_sha256(feeds["resigned"].pk) == newest.sha256


def test_a_feed_never_published_has_no_newest_manifest(feeds):
    assert selectors.manifest_latest(feeds["unpublished"].pk) is None
    assert selectors.manifest_latest_sha256(feeds["unpublished"].pk) is None


def test_feeds_are_read_with_the_sha256_of_their_newest_manifest(feeds):
    listed = {f.name: f.latest_manifest_sha256 for f in selectors.feed_list()}
    assert listed == {name: selectors.manifest_latest_sha256(f.pk) for name, f in feeds.items()}
    found = selectors.feed_get(name="resigned")
    assert found is not None
    assert found.latest_manifest_sha256 == selectors.manifest_latest_sha256(found.pk)


def test_an_unknown_feed_is_none():
    assert selectors.feed_get(name="nope") is None


def test_published_feeds_are_the_active_ones_with_a_version(feeds):
    retired = feeds["once"]
    retired.active = False
    retired.save(update_fields=["active"])
    assert [f.name for f in selectors.feed_list_published()] == ["resigned"]
    assert list(selectors.feed_list_published(names=["once", "unpublished"])) == []


def test_a_bundle_exists_once_indexed():
    assert not selectors.bundle_exists("0" * 64)
    BundleObject.objects.create(sha256="0" * 64, size=1, kind="delta")
    assert selectors.bundle_exists("0" * 64)


def test_unreleased_changes_wait_until_a_cut(analyst, reviewer):
    assert not selectors.changes_unreleased_exist()
    approved_entry(analyst, reviewer)
    assert selectors.changes_unreleased_exist()
    releases.release_cut()
    assert not selectors.changes_unreleased_exist()


def test_keyrings_are_read_oldest_first():
    assert selectors.keyring_envelopes() == [] and selectors.keyring_latest_envelope() is None
    keys.ensure_development_keys()
    envelopes = selectors.keyring_envelopes()
    assert len(envelopes) == 1 and selectors.keyring_latest_envelope() == envelopes[-1]
    assert keys.current_keyring() is not None


def test_the_latest_release_is_none_on_a_new_install_then_the_highest_version(analyst, reviewer):
    assert selectors.release_latest() is None
    approved_entry(analyst, reviewer)
    first = releases.release_cut()
    approved_entry(analyst, reviewer)
    second = releases.release_cut()
    assert first is not None and second is not None

    assert selectors.release_latest() == second
    assert selectors.releases_by_version([first.version, None, 999]) == {first.version: first}
    assert selectors.releases_by_version([None]) == {}
