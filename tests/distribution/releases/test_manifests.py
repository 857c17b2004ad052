"""Signed manifests: each names the one before it; re-signing renews only those close to
expiry."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json

import pytest
from django.db import transaction
from django.utils import timezone

from distribution import keys, releases, selectors
from distribution.models import Manifest
from distribution.releases.lock import lock_release_state
from distribution.releases.manifests import manifest_publish
from hashsync_client.plan.chain import check_chain
from tests.distribution.releases.conftest import make_feed
from tests.factories import approved_entry

pytestmark = pytest.mark.django_db


def test_manifests_of_a_feed_form_a_chain(analyst, reviewer):
    feed = make_feed()
    for _ in range(2):
        approved_entry(analyst, reviewer)
        releases.release_cut()
    rows = list(Manifest.objects.filter(feed=feed).order_by("id"))
    assert len(rows) == 3
    assert rows[0].previous_sha256 == ""
    for earlier, later in itertools.pairwise(rows):
        assert later.previous_sha256 == earlier.sha256


def test_resigning_renews_only_manifests_close_to_expiry(analyst, reviewer, settings):
    feed = make_feed()
    approved_entry(analyst, reviewer)
    releases.release_cut()
    assert releases.manifest_resign() == []
    later = timezone.now() + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS - 1)
    assert releases.manifest_resign(now=later) == [feed.name]
    newest = selectors.manifest_latest(feed.pk)
    assert newest is not None and newest.issued_at == later


def _payload(manifest: Manifest) -> dict:
    return json.loads(base64.b64decode(json.loads(bytes(manifest.envelope))["payload"]))


def test_a_feeds_manifests_are_issued_in_strictly_increasing_whole_seconds(
    analyst, reviewer, settings
):
    """A re-signing that read the clock later than the cut that follows it (or in the same
    second) must not give the cut's manifest an issue time at or before its predecessor's:
    a client holding the version before, that never saw the re-signing, would refuse the
    history as broken (hashsync_client.plan.chain)."""
    feed = make_feed()
    approved_entry(analyst, reviewer)
    releases.release_cut()
    held = selectors.manifest_latest(feed.pk)
    assert held is not None
    # A re-signing issued ahead of the clock the next cut reads.
    ahead = timezone.now() + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS - 1)
    assert releases.manifest_resign(now=ahead) == [feed.name]
    resigned = selectors.manifest_latest(feed.pk)
    approved_entry(analyst, reviewer)
    releases.release_cut()
    newest = selectors.manifest_latest(feed.pk)
    assert newest is not None and resigned is not None
    assert newest.previous_sha256 == resigned.sha256
    assert newest.issued_at == resigned.issued_at.replace(microsecond=0) + dt.timedelta(seconds=1)
    assert _payload(newest)["issued_at"] > _payload(resigned)["issued_at"]
    # A client that holds the first version and never saw the re-signing accepts the link.
    assert check_chain(feed.name, _payload(held), [_payload(newest)]) == 0


def test_manifests_published_within_one_second_are_a_second_apart(analyst, reviewer):
    feed = make_feed()
    approved_entry(analyst, reviewer)
    releases.release_cut()
    before = Manifest.objects.filter(feed=feed).count()
    signer = keys.online_signing_key()
    now = timezone.now()
    with transaction.atomic():
        lock_release_state()
        for _ in range(3):
            manifest_publish(feed, signer=signer, now=now)
    issued = [_payload(m)["issued_at"] for m in Manifest.objects.filter(feed=feed).order_by("id")]
    assert len(issued) == before + 3
    assert all(earlier < later for earlier, later in itertools.pairwise(issued)), issued
