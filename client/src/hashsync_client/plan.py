"""Reading and verifying what the server says: the feed list and a feed's sync plan.

Two stages, kept apart on purpose:

1. ``parse_*``: the JSON has the shape ``docs/sync-api.md`` gives it (types, ranges), or
   ``BadResponse``. Nothing here is trusted yet.
2. ``verify_plan``: the checks of "What the client checks" in ``docs/sync-api.md``, in its
   order — keyring chain from the pinned root, the newest manifest (signature, expiry, feed,
   no replay), each step's manifest and how it names the step's bundle — or
   ``VerificationError``. The result says exactly which bytes to download and which state
   digest each step must end in.

The feed list is never trusted: it only lets a sync skip asking for a plan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hashsync_client.errors import BadResponse, VerificationError
from hashsync_client.signing import (
    Keyring,
    SignatureError,
    canonical_json,
    manifest_sha256,
    parse_keyring_unverified,
    verify_keyring_chain,
    verify_manifest,
    verify_manifest_history,
)

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_FEED_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_VERSION = 2**63 - 1
STATUSES = ("up_to_date", "deltas", "snapshot")


# --- shapes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedInfo:
    name: str
    version: int
    published: bool
    manifest_sha256: str | None


@dataclass(frozen=True)
class FeedList:
    poll_interval: int | None
    feeds: tuple[FeedInfo, ...]


@dataclass(frozen=True)
class RawStep:
    kind: str
    from_version: int
    to_version: int
    sha256: str
    size: int
    records: int | None
    url: str
    manifest: bytes


@dataclass(frozen=True)
class RawPlan:
    feed: str
    from_version: int
    version: int
    status: str
    poll_interval: int | None
    manifest: bytes | None
    keyrings: tuple[bytes, ...]
    steps: tuple[RawStep, ...]


def _field(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise BadResponse(f"{where} is not a JSON object")
    if key not in obj:
        raise BadResponse(f"{where} lacks {key!r}")
    return obj[key]


def _int(obj: Any, key: str, where: str, *, optional: bool = False) -> Any:
    value = _field(obj, key, where)
    if value is None and optional:
        return None
    if type(value) is not int or not 0 <= value <= MAX_VERSION:
        raise BadResponse(f"{where}.{key} must be a non-negative integer")
    return value


def _str(obj: Any, key: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
    value = _field(obj, key, where)
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        raise BadResponse(f"{where}.{key} is not a valid string")
    return value


def _envelope(value: Any, where: str) -> bytes:
    # The signatures cover the payload bytes inside, never this JSON, so re-encoding the
    # object the server embedded is safe; the size cap applies to what we re-encoded.
    if not isinstance(value, dict):
        raise BadResponse(f"{where} is not a signed envelope (a JSON object)")
    try:
        return canonical_json(value)
    except (TypeError, ValueError):
        raise BadResponse(f"{where} is not a valid envelope") from None


# An unsigned value: a hostile or broken server must not be able to put a client to sleep for
# years (it would never notice an expired manifest) or overflow the wait.
MAX_POLL_INTERVAL = 86_400


def _poll_interval(data: Any, where: str) -> int | None:
    value = _int(data, "poll_interval_seconds", where, optional=True)
    return None if value is None else min(value, MAX_POLL_INTERVAL)


def parse_feed_list(data: Any) -> FeedList:
    where = "feed list"
    interval = _poll_interval(data, where)
    items = _field(data, "feeds", where)
    if not isinstance(items, list):
        raise BadResponse("feed list: feeds is not a list")
    feeds = []
    for index, item in enumerate(items):
        at = f"feeds[{index}]"
        published = _field(item, "published", at)
        if type(published) is not bool:
            raise BadResponse(f"{at}.published is not a boolean")
        sha = _field(item, "manifest_sha256", at)
        if sha is not None and not (isinstance(sha, str) and _SHA256_RE.fullmatch(sha)):
            raise BadResponse(f"{at}.manifest_sha256 is not a SHA-256")
        feeds.append(
            FeedInfo(
                name=_str(item, "name", at, _FEED_RE),
                version=_int(item, "version", at),
                published=published,
                manifest_sha256=sha,
            )
        )
    return FeedList(interval, tuple(feeds))


def parse_plan(data: Any, *, feed: str, from_version: int) -> RawPlan:
    where = f"plan for {feed}"
    if _str(data, "feed", where) != feed:
        raise BadResponse(f"{where}: the answer is for another feed")
    if _int(data, "from_version", where) != from_version:
        raise BadResponse(f"{where}: the answer is for another starting version")
    status = _str(data, "status", where)
    if status not in STATUSES:
        raise BadResponse(f"{where}: unknown status")
    manifest_obj = _field(data, "manifest", where)
    keyrings = _field(data, "keyrings", where)
    steps = _field(data, "steps", where)
    if not isinstance(keyrings, list) or not isinstance(steps, list):
        raise BadResponse(f"{where}: keyrings and steps must be lists")
    parsed_steps = []
    for index, item in enumerate(steps):
        at = f"{where}: steps[{index}]"
        kind = _str(item, "kind", at)
        if kind not in ("snapshot", "delta"):
            raise BadResponse(f"{at}.kind is unknown")
        parsed_steps.append(
            RawStep(
                kind=kind,
                from_version=_int(item, "from_version", at),
                to_version=_int(item, "to_version", at),
                sha256=_str(item, "sha256", at, _SHA256_RE),
                size=_int(item, "size", at),
                records=_int(item, "records", at, optional=True),
                url=_str(item, "url", at),
                manifest=_envelope(_field(item, "manifest", at), f"{at}.manifest"),
            )
        )
    return RawPlan(
        feed=feed,
        from_version=from_version,
        version=_int(data, "version", where),
        status=status,
        # Optional in a plan (the feed list always has it).
        poll_interval=_poll_interval(data, where) if "poll_interval_seconds" in data else None,
        manifest=None if manifest_obj is None else _envelope(manifest_obj, f"{where}: manifest"),
        keyrings=tuple(_envelope(k, f"{where}: keyrings[{i}]") for i, k in enumerate(keyrings)),
        steps=tuple(parsed_steps),
    )


# --- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKeyring:
    """The keyring this client trusted last: its version (anti-rollback) and root (to re-pin
    to, TUF style, if the server stops serving the start of the chain)."""

    version: int
    root_keyids: tuple[str, ...]
    root_threshold: int


@dataclass(frozen=True)
class VerifiedStep:
    kind: str
    from_version: int
    to_version: int
    sha256: str
    size: int
    url: str
    max_records: int  # the bundle's header may not announce more
    state_digest: str  # what our list's digest must be after this step
    entry_count: int
    manifest: dict[str, Any]


@dataclass(frozen=True)
class VerifiedPlan:
    feed: str
    status: str
    version: int
    manifest: dict[str, Any] | None
    steps: tuple[VerifiedStep, ...]
    keyring: TrustedKeyring | None

    @property
    def manifest_payload(self) -> bytes | None:
        return None if self.manifest is None else canonical_json(self.manifest)

    @property
    def manifest_sha256(self) -> str | None:
        return None if self.manifest is None else manifest_sha256(self.manifest)


def _refuse(exc: SignatureError, what: str) -> VerificationError:
    return VerificationError(f"{what}: {exc.message}", code=exc.code)


def verify_keyrings(
    envelopes: Sequence[bytes],
    *,
    pinned_root_keyids: Sequence[str],
    pinned_threshold: int,
    trusted: TrustedKeyring | None,
    now: datetime,
) -> Keyring:
    """The last keyring of the chain, trusted from the configured pins (docs/signing.md §3).

    If the chain no longer starts at a keyring the pins sign (the server pruned old versions
    after a root rotation), it is walked from the root of the keyring we trusted last instead,
    which is what re-pinning means; never from anything the server alone vouches for.
    """
    minimum = trusted.version if trusted else None
    try:
        return verify_keyring_chain(
            envelopes,
            pinned_root_keyids=pinned_root_keyids,
            pinned_threshold=pinned_threshold,
            now=now,
            min_version=minimum,
        )
    except SignatureError as exc:
        if exc.code != "untrusted_root" or trusted is None:
            raise _refuse(exc, "keyring chain") from None
        first_error = exc
    tail = []
    for envelope in envelopes:
        try:
            version = parse_keyring_unverified(envelope).version
        except SignatureError:
            continue
        if version >= trusted.version:
            tail.append(envelope)
    if not tail:
        raise _refuse(first_error, "keyring chain")
    try:
        return verify_keyring_chain(
            tail,
            pinned_root_keyids=trusted.root_keyids,
            pinned_threshold=trusted.root_threshold,
            now=now,
            min_version=trusted.version,
        )
    except SignatureError:
        raise _refuse(first_error, "keyring chain") from None


def verify_plan(
    plan: RawPlan,
    *,
    pinned_root_keyids: Sequence[str],
    pinned_threshold: int,
    trusted_keyring: TrustedKeyring | None,
    held_version: int,
    min_manifest_version: int,
    max_bundle_bytes: int,
    max_entries: int,
    now: datetime,
) -> VerifiedPlan:
    """Every check of docs/sync-api.md before a byte of a bundle is fetched."""
    feed = plan.feed
    if plan.manifest is None:
        # Never published. A server that says so about a feed we hold (or saw a signed
        # manifest of) is either reset or lying; either way we keep what we have.
        if held_version or min_manifest_version:
            raise VerificationError(
                f"{feed}: the server says the feed is unpublished, but version "
                f"{max(held_version, min_manifest_version)} was signed before: refused",
                code="rollback",
            )
        if plan.version != 0 or plan.status != "up_to_date" or plan.steps:
            raise VerificationError(f"{feed}: a plan without a manifest must be empty")
        return VerifiedPlan(feed, "up_to_date", 0, None, (), None)

    keyring = verify_keyrings(
        plan.keyrings,
        pinned_root_keyids=pinned_root_keyids,
        pinned_threshold=pinned_threshold,
        trusted=trusted_keyring,
        now=now,
    )
    try:
        manifest = verify_manifest(
            plan.manifest,
            keyring=keyring,
            now=now,
            feed=feed,
            min_version=max(held_version, min_manifest_version),
        )
    except SignatureError as exc:
        raise _refuse(exc, f"{feed}: manifest") from None
    version = manifest["version"]
    if version != plan.version:
        raise VerificationError(
            f"{feed}: the plan says version {plan.version}, its signed manifest {version}",
            code="plan_mismatch",
        )
    if manifest["entry_count"] > max_entries:
        raise VerificationError(
            f"{feed}: {manifest['entry_count']} entries exceed the configured maximum "
            f"({max_entries})",
            code="too_many_entries",
        )
    steps = _verify_steps(plan, manifest, keyring, held_version, max_bundle_bytes)
    trusted = TrustedKeyring(
        version=keyring.version,
        root_keyids=tuple(sorted(keyring.root_keyids)),
        root_threshold=keyring.root_threshold,
    )
    status = plan.status
    if (status == "up_to_date") != (not steps):
        raise VerificationError(f"{feed}: plan status and steps disagree", code="plan_mismatch")
    if status == "up_to_date" and version != held_version:
        raise VerificationError(
            f"{feed}: the plan says up to date at version {version}, but we hold {held_version}",
            code="plan_mismatch",
        )
    if steps and (status == "snapshot") != (steps[0].kind == "snapshot"):
        raise VerificationError(f"{feed}: plan status and steps disagree", code="plan_mismatch")
    return VerifiedPlan(feed, status, version, manifest, steps, trusted)


def _verify_steps(
    plan: RawPlan,
    manifest: dict[str, Any],
    keyring: Keyring,
    held_version: int,
    max_bundle_bytes: int,
) -> tuple[VerifiedStep, ...]:
    feed = plan.feed
    verified = []
    position = held_version
    for index, step in enumerate(plan.steps):
        where = f"{feed}: step {index + 1} ({step.kind} to version {step.to_version})"
        if step.kind == "snapshot":
            if index != 0 or step.from_version != 0:
                raise VerificationError(
                    f"{where}: only the first step may be a snapshot", code="plan_mismatch"
                )
            position = 0
        if step.from_version != position or step.to_version <= position:
            raise VerificationError(
                f"{where}: does not continue from version {position}", code="plan_mismatch"
            )
        if step.to_version > manifest["version"]:
            raise VerificationError(
                f"{where}: beyond the signed version {manifest['version']}", code="plan_mismatch"
            )
        try:
            step_manifest = verify_manifest_history(step.manifest, keyring=keyring, feed=feed)
        except SignatureError as exc:
            raise _refuse(exc, f"{where}: manifest") from None
        if step_manifest["version"] != step.to_version:
            raise VerificationError(
                f"{where}: its manifest is for version {step_manifest['version']}",
                code="plan_mismatch",
            )
        if step.kind == "delta":
            signed = step_manifest["delta"] or {}
            named = {k: signed.get(k) for k in ("from_version", "sha256", "size")}
            max_records = signed.get("records")
            if step.records is not None and step.records != max_records:
                raise VerificationError(
                    f"{where}: record count differs from its manifest", code="plan_mismatch"
                )
        else:
            signed = manifest["snapshot"] or {}
            named = {
                "from_version": 0 if signed.get("version") == step.to_version else None,
                "sha256": signed.get("sha256"),
                "size": signed.get("size"),
            }
            max_records = step_manifest["entry_count"]
        if named != {"from_version": step.from_version, "sha256": step.sha256, "size": step.size}:
            raise VerificationError(
                f"{where}: the bundle is not the one its signed manifest names",
                code="plan_mismatch",
            )
        if step.size > max_bundle_bytes:
            raise VerificationError(
                f"{where}: bundle of {step.size} bytes exceeds the configured maximum "
                f"({max_bundle_bytes})",
                code="bundle_too_large",
            )
        verified.append(
            VerifiedStep(
                kind=step.kind,
                from_version=step.from_version,
                to_version=step.to_version,
                sha256=step.sha256,
                size=step.size,
                # Built here from the signed sha256, not taken from the plan's unsigned url:
                # a server cannot make this client fetch an address of its choosing.
                url=f"sync/bundles/{step.sha256}/",
                max_records=max_records if type(max_records) is int else 0,
                state_digest=step_manifest["state_digest"],
                entry_count=step_manifest["entry_count"],
                manifest=step_manifest,
            )
        )
        position = step.to_version
    if verified:
        last = verified[-1]
        if last.to_version != manifest["version"]:
            raise VerificationError(
                f"{feed}: the steps end at version {last.to_version}, not at the signed "
                f"version {manifest['version']}",
                code="plan_mismatch",
            )
        if last.state_digest != manifest["state_digest"]:
            raise VerificationError(
                f"{feed}: two signed manifests of version {last.to_version} disagree on its "
                "state digest",
                code="plan_mismatch",
            )
    return tuple(verified)
