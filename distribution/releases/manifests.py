"""Signed manifests: what a feed's newest manifest says, publishing the next one, and
re-signing before expiry."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from distribution import keys, selectors
from distribution.models import Feed, FeedVersion, Manifest
from distribution.releases.lock import lock_release_state
from hashsync_client.signing import SigningKey, manifest_sha256, sign_manifest

FORMAT_VERSION = 1


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_payload(feed: Feed, *, now: dt.datetime, previous: Manifest | None) -> dict:
    latest = FeedVersion.objects.filter(feed=feed).order_by("-version").first()
    if latest is None:
        raise ValueError(f"feed {feed.name} has no published version")
    snapshot = (
        FeedVersion.objects.filter(feed=feed, version__lte=latest.version)
        .exclude(snapshot_sha256="")
        .order_by("-version")
        .first()
    )
    ttl = dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS)
    return {
        "type": "hashsync/manifest",
        "format": FORMAT_VERSION,
        "feed": feed.name,
        "version": latest.version,
        "previous_manifest_sha256": previous.sha256 if previous else None,
        "issued_at": iso(now),
        "expires_at": iso(now + ttl),
        "entry_count": latest.entry_count,
        "state_digest": latest.state_digest,
        "delta": (
            {
                "from_version": latest.previous_version or 0,
                "sha256": latest.delta_sha256,
                "size": latest.delta_size,
                "records": latest.delta_records,
            }
            if latest.delta_sha256
            else None
        ),
        "snapshot": (
            {
                "version": snapshot.version,
                "sha256": snapshot.snapshot_sha256,
                "size": snapshot.snapshot_size,
            }
            if snapshot
            else None
        ),
    }


def manifest_publish(feed: Feed, *, signer: SigningKey, now: dt.datetime) -> Manifest:
    """Sign and store the feed's next manifest. Call with the release lock held."""
    previous = selectors.manifest_latest(feed.pk)
    payload = manifest_payload(feed, now=now, previous=previous)
    envelope = sign_manifest(payload, signer)
    return Manifest.objects.create(
        feed=feed,
        version=payload["version"],
        envelope=envelope,
        sha256=manifest_sha256(payload),
        previous_sha256=previous.sha256 if previous else "",
        issued_at=now,
        expires_at=now + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS),
    )


def manifest_resign(*, now: dt.datetime | None = None) -> list[str]:
    """Re-sign every feed whose newest manifest expires soon, so clients never see a frozen
    feed go stale merely because nothing changed. Returns the feeds re-signed."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS)
    resigned = []
    with transaction.atomic():
        lock_release_state()
        signer = None
        for feed in selectors.feed_list_published():
            latest = selectors.manifest_latest(feed.pk)
            if latest is not None and latest.expires_at > horizon:
                continue
            signer = signer or keys.online_signing_key()
            manifest_publish(feed, signer=signer, now=now)
            resigned.append(feed.name)
    return resigned
