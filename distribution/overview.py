"""Reads for the staff pages about what is published: releases with their feeds, each feed's
signed manifests and bundles, and the keyring chain — as people read them, checked as a member's
client would check them.

Signatures are read from the stored envelopes with the protocol core
(``hashsync_client.signing``: ``envelope_signatures``, ``parse_keyring_unverified``,
``verify_keyring_chain``, ``verify_manifest_history``), never parsed again here. Every reader
runs a bounded number of queries, whatever the number of releases: a page of releases is one
query for the releases and one for the feeds they touched; a release's page is one per kind of
row (feed versions, manifests, previous manifests, keyrings).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from distribution.models import Feed, FeedVersion, Keyring, Manifest, Release
from distribution.selectors import manifests_newest_first
from hashsync_client.signing import (
    KEYRING_PAYLOAD_TYPE,
    MANIFEST_PAYLOAD_TYPE,
    SignatureError,
    envelope_signatures,
    parse_keyring_unverified,
    verify_keyring_chain,
    verify_manifest_history,
)
from hashsync_client.signing import Keyring as KeyringPayload

# Every signature of the protocol is Ed25519 (docs/signing.md): the envelope does not name it.
SIGNATURE_ALGORITHM = "Ed25519"
# How much of a signature or digest the pages show before the copy button.
SHORT = 16


def short(text: str, length: int = SHORT) -> str:
    return text if len(text) <= length else text[:length] + "…"


# --- The keyring chain ----------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature of an envelope, as the pages show it."""

    keyid: str
    value: str  # base64, as in the envelope
    algorithm: str = SIGNATURE_ALGORITHM

    @property
    def short_value(self) -> str:
        return short(self.value, 24)

    @property
    def short_keyid(self) -> str:
        return short(self.keyid)


def _signatures(envelope: bytes, payload_type: str) -> list[Signature]:
    return [
        Signature(keyid=keyid, value=base64.b64encode(sig).decode("ascii"))
        for keyid, sig in envelope_signatures(envelope, payload_type=payload_type)
    ]


@dataclass
class OnlineKey:
    """An online signing key across the keyring versions that list it."""

    keyid: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    listed_in: list[int] = field(default_factory=list)
    # The root keys of the keyring that first listed it: who vouched for it.
    vouched_by: frozenset[str] = frozenset()
    # Set when a later keyring dropped it before its window ended: withdrawn early.
    revoked_in: int | None = None
    revoked_at: dt.datetime | None = None

    @property
    def short_keyid(self) -> str:
        return short(self.keyid)

    def state(self, now: dt.datetime) -> str:
        if self.revoked_in is not None:
            return "revoked"
        if now < self.valid_from:
            return "not yet valid"
        if now >= self.valid_until:
            return "expired"
        return "valid"


@dataclass
class KeyringVersion:
    version: int
    issued_at: dt.datetime
    expires_at: dt.datetime
    stored_at: dt.datetime
    root_keyids: list[str]
    root_threshold: int
    signatures: list[Signature]
    # What changed from the version before it.
    root_rotated: bool = False
    keys_added: list[str] = field(default_factory=list)
    keys_dropped: list[str] = field(default_factory=list)
    problem: str = ""  # the envelope could not be read
    # keyid → "this root", "previous root", "both roots" or "not a root": whose signature it is.
    signer_roles: dict[str, str] = field(default_factory=dict)

    @property
    def signed_by(self) -> list[tuple[Signature, str]]:
        return [(s, self.signer_roles.get(s.keyid, "not a root")) for s in self.signatures]

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at <= now


@dataclass
class KeyringChain:
    versions: list[KeyringVersion]  # oldest first
    keys: dict[str, OnlineKey]
    parsed: dict[int, KeyringPayload]  # by version, to check manifests against
    # Why the chain does not verify from its first version's root (as a client pinning that
    # root would walk it), or "" when it does.
    problem: str = ""

    @property
    def newest(self) -> KeyringVersion | None:
        return self.versions[-1] if self.versions else None

    def keyring_listing(self, keyid: str) -> KeyringPayload | None:
        """The newest keyring version that lists the online key ``keyid``."""
        key = self.keys.get(keyid)
        return self.parsed.get(key.listed_in[-1]) if key and key.listed_in else None


def keyring_chain(*, now: dt.datetime | None = None) -> KeyringChain:
    """Every keyring version (one query), what each changed, and whether the chain verifies."""
    now = now or timezone.now()
    rows = list(Keyring.objects.order_by("version"))
    chain = KeyringChain(versions=[], keys={}, parsed={})
    previous: KeyringPayload | None = None
    for row in rows:
        envelope = bytes(row.envelope)
        try:
            keyring = parse_keyring_unverified(envelope)
            signatures = _signatures(envelope, KEYRING_PAYLOAD_TYPE)
        except SignatureError as error:
            chain.versions.append(
                KeyringVersion(
                    version=row.version,
                    issued_at=row.created_at,
                    expires_at=row.created_at,
                    stored_at=row.created_at,
                    root_keyids=[],
                    root_threshold=0,
                    signatures=[],
                    problem=str(error),
                )
            )
            continue
        chain.parsed[keyring.version] = keyring
        listed = [entry.keyid for entry in keyring.signing_keys]
        before = [entry.keyid for entry in previous.signing_keys] if previous else []
        version = KeyringVersion(
            version=keyring.version,
            issued_at=keyring.issued_at,
            expires_at=keyring.expires_at,
            stored_at=row.created_at,
            root_keyids=sorted(keyring.root_keyids),
            root_threshold=keyring.root_threshold,
            signatures=signatures,
            root_rotated=previous is not None and previous.root_keyids != keyring.root_keyids,
            keys_added=[k for k in listed if k not in before],
            keys_dropped=[k for k in before if k not in listed],
            signer_roles={s.keyid: _signer_role(s.keyid, keyring, previous) for s in signatures},
        )
        chain.versions.append(version)
        for entry in keyring.signing_keys:
            key = chain.keys.setdefault(
                entry.keyid,
                OnlineKey(
                    keyid=entry.keyid,
                    valid_from=entry.valid_from,
                    valid_until=entry.valid_until,
                    vouched_by=keyring.root_keyids,
                ),
            )
            key.listed_in.append(keyring.version)
        for keyid in version.keys_dropped:
            dropped = chain.keys[keyid]
            if keyring.issued_at < dropped.valid_until:
                dropped.revoked_in, dropped.revoked_at = keyring.version, keyring.issued_at
        previous = keyring
    chain.problem = _chain_problem([bytes(row.envelope) for row in rows], chain, now)
    return chain


def _signer_role(keyid: str, keyring: KeyringPayload, previous: KeyringPayload | None) -> str:
    """Whose signature on a keyring version ``keyid`` is: its own root's, the root before it
    (which must vouch for a rotation), or both."""
    mine = keyid in keyring.root_keyids
    before = previous is not None and keyid in previous.root_keyids
    rotated = previous is not None and previous.root_keyids != keyring.root_keyids
    if mine and before:
        return "this root and the previous one" if rotated else "this root"
    if mine:
        return "this root"
    return "previous root" if before else "not a root"


def _chain_problem(envelopes: list[bytes], chain: KeyringChain, now: dt.datetime) -> str:
    if not envelopes:
        return ""
    first = chain.parsed.get(chain.versions[0].version)
    if first is None:
        return chain.versions[0].problem or "The first keyring cannot be read."
    try:
        verify_keyring_chain(
            envelopes,
            pinned_root_keyids=first.root_keyids,
            pinned_threshold=first.root_threshold,
            now=now,
        )
    except SignatureError as error:
        return str(error)
    return ""


# --- Manifests ------------------------------------------------------------------------------


@dataclass
class ManifestView:
    manifest: Manifest
    signatures: list[Signature]
    verified: bool
    problem: str  # why the signature does not verify ("" when it does)
    keyring_version: int | None  # the keyring version it was checked against
    expiry: str  # "ok" | "soon" | "expired" | "superseded"

    @property
    def signature(self) -> Signature | None:
        return self.signatures[0] if self.signatures else None


def expiry_state(manifest: Manifest, *, newest: bool, now: dt.datetime) -> str:
    """How a manifest's expiry reads: only a feed's newest manifest is served, so an older one
    expiring is history ("superseded"); the newest one is "soon" once it is inside the window
    in which the worker should already have re-signed it, and "expired" after."""
    if not newest:
        return "superseded"
    if manifest.expires_at <= now:
        return "expired"
    if manifest.expires_at - now <= dt.timedelta(
        hours=settings.HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS
    ):
        return "soon"
    return "ok"


def manifest_view(
    manifest: Manifest, chain: KeyringChain, *, newest: bool, now: dt.datetime
) -> ManifestView:
    """The manifest with its signature, checked as a member's client checks a manifest of its
    history: signed by an online key that the keyring listing it allowed when it was issued."""
    envelope = bytes(manifest.envelope)
    view = ManifestView(
        manifest=manifest,
        signatures=[],
        verified=False,
        problem="",
        keyring_version=None,
        expiry=expiry_state(manifest, newest=newest, now=now),
    )
    try:
        view.signatures = _signatures(envelope, MANIFEST_PAYLOAD_TYPE)
    except SignatureError as error:
        view.problem = str(error)
        return view
    keyring = next(
        (k for s in view.signatures if (k := chain.keyring_listing(s.keyid)) is not None), None
    )
    if keyring is None:
        view.problem = "No stored keyring lists the key that signed it."
        return view
    view.keyring_version = keyring.version
    try:
        verify_manifest_history(envelope, keyring=keyring, feed=manifest.feed.name)
    except SignatureError as error:
        view.problem = str(error)
    else:
        view.verified = True
    return view


# --- Releases -------------------------------------------------------------------------------


@dataclass
class ReleaseRow:
    release: Release
    feeds: list[str]


def release_page(*, before: int | None, size: int) -> tuple[list[ReleaseRow], int | None]:
    """Releases newest first, below version ``before`` (keyset paging on the unique version),
    each with the feeds it changed; and the ``before`` of the next page (None: last page)."""
    releases = Release.objects.order_by("-version")
    if before:
        releases = releases.filter(version__lt=before)
    rows = list(releases[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    touched = feeds_touched(r.version for r in rows)
    page = [ReleaseRow(release=r, feeds=touched.get(r.version, [])) for r in rows]
    return page, (rows[-1].version if more and rows else None)


def feeds_touched(versions: Iterable[int]) -> dict[int, list[str]]:
    """version → names of the feeds that release changed (or first published), by name."""
    found: dict[int, list[str]] = {}
    rows = FeedVersion.objects.filter(version__in=list(versions)).values_list(
        "version", "feed__name"
    )
    for version, name in rows.order_by("version", "feed__name"):
        found.setdefault(version, []).append(name)
    return found


@dataclass
class FeedAtRelease:
    feed: Feed
    version: FeedVersion
    # The manifest the release published, and (when there were more at this version: a
    # snapshot added, re-signed before expiry) the newest one of this version.
    published: ManifestView | None
    newest: ManifestView | None
    manifests_at_version: int
    previous_manifest_version: int | None
    current: bool  # the feed is still at this version


@dataclass
class ReleaseDetail:
    release: Release
    feeds: list[FeedAtRelease]
    chain: KeyringChain
    previous_version: int | None
    next_version: int | None


def release_get(*, version: int, now: dt.datetime | None = None) -> ReleaseDetail | None:
    """A release with, per feed it changed, the feed version, its manifests and bundles."""
    now = now or timezone.now()
    release = Release.objects.filter(version=version).first()
    if release is None:
        return None
    feed_versions = list(
        FeedVersion.objects.filter(version=version)
        .select_related("feed")
        .annotate(
            newest_manifest_id=Subquery(
                manifests_newest_first(OuterRef("feed_id")).values("id")[:1]
            )
        )
        .order_by("feed__name")
    )
    manifests: dict[int, list[Manifest]] = {}
    rows = Manifest.objects.filter(
        version=version, feed_id__in=[fv.feed_id for fv in feed_versions]
    ).select_related("feed")
    for manifest in rows.order_by("id"):
        manifests.setdefault(manifest.feed_id, []).append(manifest)
    wanted = {ms[0].previous_sha256 for ms in manifests.values() if ms and ms[0].previous_sha256}
    previous = dict(
        Manifest.objects.filter(sha256__in=wanted).values_list("sha256", "version")
        if wanted
        else []
    )
    chain = keyring_chain(now=now)
    feeds = []
    for fv in feed_versions:
        ms = manifests.get(fv.feed_id, [])
        newest_id = getattr(fv, "newest_manifest_id", None)
        first = ms[0] if ms else None
        last = ms[-1] if len(ms) > 1 else None
        feeds.append(
            FeedAtRelease(
                feed=fv.feed,
                version=fv,
                published=manifest_view(first, chain, newest=first.pk == newest_id, now=now)
                if first
                else None,
                newest=manifest_view(last, chain, newest=last.pk == newest_id, now=now)
                if last
                else None,
                manifests_at_version=len(ms),
                previous_manifest_version=previous.get(first.previous_sha256) if first else None,
                current=fv.feed.version == version,
            )
        )
    neighbours = Release.objects.values_list("version", flat=True)
    return ReleaseDetail(
        release=release,
        feeds=feeds,
        chain=chain,
        previous_version=neighbours.filter(version__lt=version).order_by("-version").first(),
        next_version=neighbours.filter(version__gt=version).order_by("version").first(),
    )


# --- Feeds ----------------------------------------------------------------------------------


def feed_overview() -> QuerySet[Feed]:
    """Every feed by name, with its newest manifest's sha256 and expiry (one query)."""
    newest = manifests_newest_first(OuterRef("pk"))
    return Feed.objects.annotate(
        latest_manifest_sha256=Subquery(newest.values("sha256")[:1]),
        latest_manifest_expires_at=Subquery(newest.values("expires_at")[:1]),
    ).order_by("name")


@dataclass
class FeedDetail:
    feed: Feed
    manifest: ManifestView | None
    versions: list[FeedVersion]  # newest first, at most ``history``
    more_versions: bool
    chain: KeyringChain


def feed_detail(
    *, name: str, history: int = 20, now: dt.datetime | None = None
) -> FeedDetail | None:
    """A feed with its newest manifest (signature checked) and its most recent versions."""
    now = now or timezone.now()
    feed = Feed.objects.filter(name=name).first()
    if feed is None:
        return None
    newest = manifests_newest_first(feed.pk).select_related("feed").first()
    chain = keyring_chain(now=now)
    versions = list(FeedVersion.objects.filter(feed=feed).order_by("-version")[: history + 1])
    return FeedDetail(
        feed=feed,
        manifest=manifest_view(newest, chain, newest=True, now=now) if newest else None,
        versions=versions[:history],
        more_versions=len(versions) > history,
        chain=chain,
    )
