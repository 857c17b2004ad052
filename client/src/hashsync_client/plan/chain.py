"""The manifest history chain (docs/signing.md §4, check 10).

Each manifest names the one it supersedes (``previous_manifest_sha256``). The client checks
every link it can see: from the manifest it holds to the first new one, then from each step's
manifest to the next, then to the newest. A link is *verified* when it names the manifest
before it exactly.

A server re-signs an unchanged version before it expires, and a plan carries only the newest
manifest of each version (and a snapshot skips versions), so an honest link may name a
manifest this client never saw. Such a gap is accepted only where an unseen manifest could
fit; a link is *broken*, and the sync refused with the store untouched, when:

- it is null (claims to be the feed's first manifest) while an earlier one is known;
- it names the manifest itself, or any other manifest known here that is not its predecessor;
- it goes back in version;
- it names an unseen predecessor although nothing can have been skipped — the same version
  (a re-signing), or the version right after (its delta starts at the one before) — and the
  manifest is not issued after its predecessor: a manifest is always issued after the one it
  supersedes, so no unseen manifest fits in between.

What this cannot catch: a key holder who forges a later-issued manifest naming an unseen
predecessor. Closing that needs the plan to carry the first manifest of each version (or the
links between), which the server does not send today.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from hashsync_client.errors import ChainBroken
from hashsync_client.signing import manifest_sha256, parse_timestamp

logger = logging.getLogger(__name__)


def check_chain(
    feed: str, held: Mapping[str, Any] | None, manifests: Sequence[Mapping[str, Any]]
) -> int:
    """Check the links through ``manifests`` (a plan's, oldest first) and from ``held`` (the
    manifest the client holds, if any) to the first of them not older than it (a plan from
    version 0 replays older history first); return how many links were verified exactly.
    ``ChainBroken`` if one is broken."""
    known = {manifest_sha256(m): m for m in ([held] if held else []) + list(manifests)}
    verified = 0
    for before, manifest in itertools.pairwise(manifests):
        verified += _check_link(feed, before, manifest, known)
    if held is not None:
        later = [m for m in manifests if m["version"] >= held["version"]]
        if later:
            verified += _check_link(feed, held, later[0], known)
    return verified


def _check_link(
    feed: str,
    before: Mapping[str, Any],
    manifest: Mapping[str, Any],
    known: Mapping[str, Mapping[str, Any]],
) -> int:
    link = manifest["previous_manifest_sha256"]
    own = manifest_sha256(manifest)
    expected = manifest_sha256(before)
    if own == expected:  # the same manifest twice (the last step's is the newest)
        return 0
    where = f"{feed}: the manifest of version {manifest['version']} issued {manifest['issued_at']}"
    if link == expected:
        return 1
    if link is None:
        problem = f"claims to be the feed's first, but follows version {before['version']}"
    elif link == own:
        problem = "names itself as its predecessor"
    elif link in known:
        problem = (
            f"names the manifest of version {known[link]['version']} as its predecessor, not "
            f"the one of version {before['version']} issued {before['issued_at']}"
        )
    elif manifest["version"] < before["version"]:
        problem = f"goes back from version {before['version']}"
    elif manifest["version"] > before["version"] and not _follows(before, manifest):
        # Versions in between were skipped (a snapshot): their manifests are not in the plan.
        return 0
    elif parse_timestamp(manifest["issued_at"]) <= parse_timestamp(before["issued_at"]):
        problem = (
            f"names an unknown predecessor, yet is not issued after version "
            f"{before['version']}'s manifest, so no re-signing fits in between"
        )
    else:
        # A re-signing we never saw sits in between (see the module docstring).
        logger.info("%s: links to a re-signing this plan does not carry", where)
        return 0
    raise ChainBroken(f"{where} {problem}: history chain broken, sync refused")


def _follows(before: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    """``manifest``'s version comes straight after ``before``'s (its delta starts there)."""
    delta = manifest["delta"] or {}
    return bool(delta.get("from_version") == before["version"])
