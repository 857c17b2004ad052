"""What a member client needs to go from the version it holds to a feed's current version.

A plan is built from published rows only (manifests, feed versions), so it never shows a
half-cut release: the cutter publishes feed versions and manifests in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from distribution import selectors
from distribution.models import Feed, FeedVersion, Manifest
from hashsync.errors import Conflict


@dataclass(frozen=True)
class Step:
    kind: str  # "snapshot" | "delta"
    from_version: int
    to_version: int
    sha256: str
    size: int
    records: int | None
    manifest: bytes  # envelope of a manifest whose version is ``to_version``


@dataclass
class Plan:
    feed: str
    from_version: int
    version: int
    status: str  # "up_to_date" | "deltas" | "snapshot"
    manifest: bytes | None
    steps: list[Step] = field(default_factory=list)
    manifest_sha256: str | None = None


def plan_etag(manifest_sha256: str | None, from_version: int) -> str:
    """Changes exactly when the answer would: a new manifest (new version, new snapshot or a
    re-signing) or a different starting version."""
    basis = f"{manifest_sha256 or '-'}:{from_version}".encode()
    return '"' + hashlib.sha256(basis).hexdigest()[:40] + '"'


def _payload(envelope: bytes) -> dict[str, Any]:
    # The envelope was produced and verified by this server; the client verifies it again.
    outer = json.loads(envelope)
    return dict(json.loads(base64.b64decode(outer["payload"])))


def _delta_chain(
    feed: Feed, start: int, end: int, *, limit: int | None = None
) -> list[FeedVersion] | None:
    """The feed versions whose deltas lead from ``start`` to ``end``; None if there is no such
    unbroken chain (``start`` is not a version of the feed) or it is longer than ``limit``."""
    rows = FeedVersion.objects.filter(feed=feed, version__gt=start, version__lte=end)
    chain = list(rows.order_by("version")[: limit + 1] if limit else rows.order_by("version"))
    if not chain or (limit and len(chain) > limit) or chain[-1].version != end:
        return None
    previous = start
    for fv in chain:
        if not fv.delta_sha256 or (fv.previous_version or 0) != previous:
            return None
        previous = fv.version
    return chain


def _step_manifests(feed: Feed, versions: set[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    rows = Manifest.objects.filter(feed=feed, version__in=versions).order_by("version", "-id")
    for manifest in rows.only("version", "envelope"):
        found.setdefault(manifest.version, bytes(manifest.envelope))
    return found


def plan_build(feed: Feed, from_version: int) -> Plan:
    manifest = selectors.manifest_latest(feed.pk)
    current = manifest.version if manifest is not None else 0
    # Checked before the "not yet published" answer too: a client holding a version of a feed
    # that has none must be told to discard it, not that it is up to date.
    if from_version > current:
        raise Conflict(
            f"You hold version {from_version} of {feed.name}, but its newest version is "
            f"{current}: discard your copy and sync from version 0.",
            code="version_unknown",
        )
    if manifest is None:
        return Plan(feed.name, from_version, 0, "up_to_date", None)
    envelope = bytes(manifest.envelope)
    if from_version == current:
        return Plan(feed.name, from_version, current, "up_to_date", envelope, [], manifest.sha256)
    snapshot = _payload(envelope).get("snapshot")
    deltas = _delta_chain(feed, from_version, current, limit=settings.HASHSYNC_PLAN_MAX_DELTAS)
    delta_bytes = sum(fv.delta_size or 0 for fv in deltas) if deltas else 0
    use_snapshot = deltas is None or (snapshot is not None and delta_bytes > snapshot["size"])
    steps_spec: list[tuple[str, int, int, str, int, int | None]] = []
    if use_snapshot:
        if snapshot is None:  # only if a feed's first snapshot were lost; never in operation
            raise Conflict(
                f"Feed {feed.name} has no snapshot to start from; try again later.",
                code="snapshot_unavailable",
            )
        start = snapshot["version"]
        records = (
            FeedVersion.objects.filter(feed=feed, version=start)
            .values_list("entry_count", flat=True)
            .first()
        )
        steps_spec.append(("snapshot", 0, start, snapshot["sha256"], snapshot["size"], records))
        # However many deltas follow the newest snapshot, they are the only way forward (the
        # snapshot policy, releases.snapshot_due, keeps them fewer and smaller than it).
        deltas = _delta_chain(feed, start, current) if start < current else []
        if deltas is None:
            raise Conflict(
                f"Feed {feed.name}'s deltas after its snapshot are incomplete; try later.",
                code="snapshot_unavailable",
            )
    for fv in deltas or []:
        steps_spec.append(
            (
                "delta",
                fv.previous_version or 0,
                fv.version,
                fv.delta_sha256,
                fv.delta_size or 0,
                fv.delta_records,
            )
        )
    manifests = _step_manifests(feed, {spec[2] for spec in steps_spec})
    manifests[current] = envelope
    steps = [
        Step(kind, start, end, sha, size, records, manifests[end])
        for kind, start, end, sha, size, records in steps_spec
    ]
    return Plan(
        feed.name,
        from_version,
        current,
        "snapshot" if use_snapshot else "deltas",
        envelope,
        steps,
        manifest.sha256,
    )


def state_digest_of(feed: Feed, version: int) -> str | None:
    return (
        FeedVersion.objects.filter(feed=feed, version=version)
        .values_list("state_digest", flat=True)
        .first()
    )
