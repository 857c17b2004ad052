"""The log's leaf: the canonical bytes one signed manifest is entered as (docs/transparency.md).

It commits to the feed, the version, the manifest's SHA-256 (of its signed payload, as
``manifest_sha256`` computes it) and the previous manifest's — nothing else about the feed, so
the hashes a member sees in a proof tell it nothing about feeds it does not receive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hashsync_client.signing.manifests import manifest_sha256

LEAF_FORMAT = "hashsync/tlog-leaf/v1"
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")
_SHA = re.compile(r"[0-9a-f]{64}")


def leaf_bytes(*, feed: str, version: int, manifest_sha256: str, previous_sha256: str) -> bytes:
    """``previous_sha256`` is ``""`` for a feed's first manifest (written as ``-``)."""
    if not _SLUG.fullmatch(feed) or version < 0:
        raise ValueError("a leaf names a feed slug and a version ≥ 0")
    if not _SHA.fullmatch(manifest_sha256) or not (
        previous_sha256 == "" or _SHA.fullmatch(previous_sha256)
    ):
        raise ValueError("manifest digests are 64 lowercase hex digits")
    lines = [LEAF_FORMAT, feed, str(version), manifest_sha256, previous_sha256 or "-"]
    return ("\n".join(lines) + "\n").encode("ascii")


def manifest_leaf(manifest: Mapping[str, Any]) -> bytes:
    """The leaf of a (verified) manifest payload, as the server entered it."""
    return leaf_bytes(
        feed=manifest["feed"],
        version=manifest["version"],
        manifest_sha256=manifest_sha256(manifest),
        previous_sha256=manifest.get("previous_manifest_sha256") or "",
    )
