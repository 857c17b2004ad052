"""Cutting releases, building snapshots and publishing signed manifests.

Every function here that changes what members can see takes the ``ReleaseState`` row lock
first (``lock``), so releases, snapshot publication and re-signing are serialised across all
workers, and the manifest chain of each feed is linear. Bundles are written to
content-addressed storage (``bundles``) before the transaction that references them commits: a
worker killed at any point leaves either the previous release or the new one, never half of
one.

``cutter``: the release cutter (deltas, and a new feed's first publication); ``snapshots``: the
snapshot writer and its policy; ``manifests``: signed manifests and their re-signing;
``resume``: publishing afresh after a database restore.
"""

from __future__ import annotations

from distribution.releases.bundles import index_bundle, store_bundle
from distribution.releases.cutter import QUERY_CHUNK, release_cut
from distribution.releases.lock import lock_release_state
from distribution.releases.manifests import (
    manifest_payload,
    manifest_publish,
    manifest_resign,
)
from distribution.releases.resume import ResumeRefused, release_resume
from distribution.releases.snapshots import (
    SNAPSHOT_DELTA_RATIO,
    feed_rows,
    snapshot_build,
    snapshot_due,
)

__all__ = [
    "QUERY_CHUNK",
    "SNAPSHOT_DELTA_RATIO",
    "ResumeRefused",
    "feed_rows",
    "index_bundle",
    "lock_release_state",
    "manifest_payload",
    "manifest_publish",
    "manifest_resign",
    "release_cut",
    "release_resume",
    "snapshot_build",
    "snapshot_due",
    "store_bundle",
]
