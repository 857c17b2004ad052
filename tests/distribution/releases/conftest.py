"""Helpers of the release tests: a published feed, and what a member would verify and read."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from distribution import releases, selectors
from distribution.models import Feed, FeedEntry
from distribution.storage import bundle_storage
from hashsync_client.format import read_bundle
from hashsync_client.lthash import LtHash16, element
from hashsync_client.signing import parse_keyring_unverified, verify_keyring_chain, verify_manifest


def make_feed(name: str = "all", **filters: Any) -> Feed:
    feed = Feed.objects.create(name=name, **filters)
    releases.release_cut()  # publishes the new feed (empty or not)
    feed.refresh_from_db()
    return feed


def trusted_keyring():
    envelopes = selectors.keyring_envelopes()
    first = parse_keyring_unverified(envelopes[0])
    return verify_keyring_chain(envelopes, pinned_root_keyids=first.root_keyids, now=timezone.now())


def latest_manifest(feed: Feed) -> dict:
    row = selectors.manifest_latest(feed.pk)
    assert row is not None
    return verify_manifest(
        bytes(row.envelope), keyring=trusted_keyring(), now=timezone.now(), feed=feed.name
    )


def bundle_records(sha256: str) -> list:
    with bundle_storage().open(sha256) as handle:
        _, records = read_bundle(handle)
        return list(records)


def member_digest(feed: Feed) -> str:
    digest = LtHash16()
    digest.add(
        element(m.algorithm, bytes(m.value), m.grading) for m in FeedEntry.objects.filter(feed=feed)
    )
    return digest.hexdigest()
