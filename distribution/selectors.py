"""Reads of distribution: feeds, releases, manifests, bundles and keyrings.

Views, serializers, tasks and commands read through these (writes are in ``services``,
``releases`` and ``keys``). "The newest manifest of a feed" is defined here once:
``manifests_newest_first`` is the statement; ``manifest_latest``, ``manifest_latest_sha256``,
the ``latest_manifest_sha256`` annotation and the member poll's feed head
(``members.selectors.feed_heads``, compiled into the poll's one query) all read it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from distribution.models import BundleObject, Feed, FeedVersion, Keyring, Manifest, Release

# The report charts' reads, in their own module.
from distribution.reports import bundle_bytes_per_week as bundle_bytes_per_week
from distribution.reports import feed_sizes_per_week as feed_sizes_per_week
from distribution.reports import releases_per_week as releases_per_week
from hashlist.models import Change


def manifests_newest_first(feed_id: Any) -> QuerySet[Manifest]:
    """A feed's manifests, newest first. ``feed_id`` is an id or an ``OuterRef``.

    Manifests of a feed are created one at a time under the release lock, so the highest id
    is the newest; served by ``manifest_feed_latest_idx`` (feed, -id)."""
    return Manifest.objects.filter(feed_id=feed_id).order_by("-id")


def manifest_latest(feed_id: int) -> Manifest | None:
    """The feed's newest signed manifest (None: never published)."""
    return manifests_newest_first(feed_id).first()


def manifest_latest_sha256(feed_id: int) -> str | None:
    """The SHA-256 of the feed's newest manifest, without loading the envelope."""
    return manifests_newest_first(feed_id).values_list("sha256", flat=True).first()


def _feeds_with_manifest_sha256() -> QuerySet[Feed]:
    newest = manifests_newest_first(OuterRef("pk")).values("sha256")[:1]
    return Feed.objects.annotate(latest_manifest_sha256=Subquery(newest))


def feed_list() -> QuerySet[Feed]:
    """Every feed, each with ``latest_manifest_sha256`` (None: never published)."""
    return _feeds_with_manifest_sha256()


def feed_get(*, name: str) -> Feed | None:
    """The feed of that name, with ``latest_manifest_sha256``; None if there is none."""
    return _feeds_with_manifest_sha256().filter(name=name).first()


def feed_list_published(*, names: Iterable[str] | None = None) -> QuerySet[Feed]:
    """Active feeds that have a published version, in creation order (optionally only those
    named)."""
    feeds = Feed.objects.filter(active=True).exclude(version=0).order_by("id")
    return feeds if names is None else feeds.filter(name__in=list(names))


def feeds_with_manifest_expiring_before(horizon: dt.datetime) -> list[str]:
    """Names of the published feeds whose newest manifest expires before ``horizon`` (one
    query: a correlated subquery per feed on ``manifest_feed_latest_idx``)."""
    newest_expiry = manifests_newest_first(OuterRef("pk")).values("expires_at")[:1]
    return list(
        feed_list_published()
        .annotate(newest_expires_at=Subquery(newest_expiry))
        .filter(newest_expires_at__lt=horizon)
        .values_list("name", flat=True)
    )


def release_list() -> QuerySet[Release]:
    return Release.objects.all()


def bundle_exists(sha256: str) -> bool:
    """Whether a bundle of that SHA-256 was stored (and indexed) by a release or snapshot."""
    return BundleObject.objects.filter(sha256=sha256).exists()


def bundle_get(sha256: str) -> BundleObject | None:
    """The stored bundle of that SHA-256 (its kind and size), or None."""
    return BundleObject.objects.filter(sha256=sha256).first()


def bundle_feed_names(sha256: str) -> list[str]:
    """The feeds whose published versions reference the bundle (as delta or snapshot)."""
    versions = FeedVersion.objects.filter(Q(delta_sha256=sha256) | Q(snapshot_sha256=sha256))
    return sorted(set(versions.values_list("feed__name", flat=True)))


def keyring_envelopes() -> list[bytes]:
    """Every keyring version's DSSE envelope, oldest first."""
    return [bytes(row.envelope) for row in Keyring.objects.order_by("version")]


def keyring_latest_envelope() -> bytes | None:
    row = Keyring.objects.order_by("-version").first()
    return bytes(row.envelope) if row else None


def keyring_exists() -> bool:
    return Keyring.objects.exists()


def changes_unreleased_exist() -> bool:
    """Whether approved changes wait for a release (the cutter takes a bounded batch); a
    withheld, unapproved change is not one."""
    return Change.objects.filter(release__isnull=True).approved_by_another().exists()


# --- The staff pages --------------------------------------------------------------------------


def release_latest() -> Release | None:
    """The newest release (None on a new install)."""
    return Release.objects.order_by("-version").first()


def releases_by_version(versions: Iterable[int | None]) -> dict[int, Release]:
    """The releases of those versions, by version (the ones that carried an entry's changes)."""
    wanted = {v for v in versions if v is not None}
    return {r.version: r for r in Release.objects.filter(version__in=wanted)} if wanted else {}
