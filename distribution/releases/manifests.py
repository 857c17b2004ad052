"""Signed manifests: what a feed's newest manifest says, publishing the next one, and
re-signing before expiry."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from distribution import keys, selectors
from distribution.framework_grading import feed_framework
from distribution.models import Feed, FeedVersion, Manifest
from distribution.releases.lock import lock_release_state
from hashsync_client.signing import (
    DeltaRef,
    SigningKey,
    SnapshotRef,
    manifest_sha256,
    sign_manifest,
)
from hashsync_client.signing import manifest_payload as core_manifest_payload
from transparency.services import log_append, one_checkpoint


def manifest_payload(feed: Feed, *, now: dt.datetime, previous: Manifest | None) -> dict:
    """The feed's next manifest (the layout is the protocol core's ``manifest_payload``)."""
    latest = FeedVersion.objects.filter(feed=feed).order_by("-version").first()
    if latest is None:
        raise ValueError(f"feed {feed.name} has no published version")
    snapshot = (
        FeedVersion.objects.filter(feed=feed, version__lte=latest.version)
        .exclude(snapshot_sha256="")
        .order_by("-version")
        .first()
    )
    delta = snapshot_ref = None
    if latest.delta_sha256:
        # A version's delta columns are written together (FeedVersion), so all are set here.
        assert latest.delta_size is not None and latest.delta_records is not None
        delta = DeltaRef(
            from_version=latest.previous_version or 0,
            sha256=latest.delta_sha256,
            size=latest.delta_size,
            records=latest.delta_records,
        )
    if snapshot is not None:
        assert snapshot.snapshot_size is not None
        snapshot_ref = SnapshotRef(
            version=snapshot.version,
            sha256=snapshot.snapshot_sha256,
            size=snapshot.snapshot_size,
        )
    return core_manifest_payload(
        feed=feed.name,
        version=latest.version,
        previous_manifest_sha256=previous.sha256 if previous else None,
        issued_at=now,
        expires_at=now + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS),
        entry_count=latest.entry_count,
        state_digest=latest.state_digest,
        delta=delta,
        snapshot=snapshot_ref,
        framework=feed_framework(feed),
    )


def _issued_at(previous: Manifest | None, now: dt.datetime) -> dt.datetime:
    """When the feed's next manifest is issued: ``now``, unless that is not a whole second
    after the feed's newest manifest — then one second after it.

    Manifests carry whole seconds, and a client that sees a manifest naming a predecessor it
    never received accepts the gap only if the manifest is issued strictly after the one it
    holds (``hashsync_client.plan.chain``): a re-signing and a cut in the same second, or a
    re-signing whose ``now`` was read before it waited for the release lock, would otherwise
    publish a history that honest clients refuse."""
    if previous is None:
        return now
    floor = previous.issued_at.replace(microsecond=0) + dt.timedelta(seconds=1)
    return now if now.replace(microsecond=0) >= floor else floor


def manifest_publish(feed: Feed, *, signer: SigningKey, now: dt.datetime) -> Manifest:
    """Sign and store the feed's next manifest and enter it in the transparency log. Call with
    the release lock held."""
    previous = selectors.manifest_latest(feed.pk)
    now = _issued_at(previous, now)
    payload = manifest_payload(feed, now=now, previous=previous)
    envelope = sign_manifest(payload, signer)
    manifest = Manifest.objects.create(
        feed=feed,
        version=payload["version"],
        envelope=envelope,
        sha256=manifest_sha256(payload),
        previous_sha256=previous.sha256 if previous else "",
        issued_at=now,
        expires_at=now + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS),
    )
    # Every signed manifest is a leaf of the transparency log, in this same transaction.
    log_append(
        feed=feed.name,
        version=manifest.version,
        manifest_sha256=manifest.sha256,
        previous_sha256=manifest.previous_sha256,
        signer=signer,
    )
    return manifest


def manifest_resign(*, now: dt.datetime | None = None) -> list[str]:
    """Re-sign every feed whose newest manifest expires soon, so clients never see a frozen
    feed go stale merely because nothing changed. Returns the feeds re-signed."""
    resigned = []
    with transaction.atomic(), one_checkpoint():  # one log checkpoint for all the feeds
        lock_release_state()
        # Read the clock once the lock is held: a cut that held it meanwhile published later.
        now = now or timezone.now()
        horizon = now + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS)
        signer = None
        for feed in selectors.feed_list_published():
            latest = selectors.manifest_latest(feed.pk)
            if latest is not None and latest.expires_at > horizon:
                continue
            signer = signer or keys.online_signing_key()
            manifest_publish(feed, signer=signer, now=now)
            resigned.append(feed.name)
    return resigned
