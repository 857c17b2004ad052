"""Encoding records into a bundle, storing it under its SHA-256, and indexing what was stored."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable

from distribution.models import BundleObject
from distribution.storage import bundle_storage
from hashsync_client.format import BundleInfo, FrameworkRef, Record, write_bundle


def store_bundle(
    records: Iterable[Record],
    *,
    kind: str,
    feed: str,
    from_version: int,
    to_version: int,
    framework: FrameworkRef | None = None,
) -> BundleInfo:
    """Encode records into a temporary file and store it under its SHA-256 (bundle format 2,
    naming ``framework``, when one is given; format 1 otherwise)."""
    with tempfile.TemporaryFile() as handle:
        info = write_bundle(
            handle,
            kind=kind,
            feed=feed,
            from_version=from_version,
            to_version=to_version,
            records=records,
            framework=framework,
        )
        bundle_storage().put(handle, sha256=info.sha256, size=info.size)
    return info


def index_bundle(info: BundleInfo, kind: str) -> None:
    BundleObject.objects.get_or_create(
        sha256=info.sha256, defaults={"size": info.size, "kind": kind}
    )
