"""Signed manifests: each names the one before it; re-signing renews only those close to
expiry."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from distribution import releases, selectors
from distribution.models import Manifest
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
