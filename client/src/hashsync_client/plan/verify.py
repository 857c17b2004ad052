"""Stage 2 of reading the server: the checks of "What the client checks" in
``docs/sync-api.md``, in its order, or ``VerificationError``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hashsync_client.errors import VerificationError
from hashsync_client.plan.chain import check_chain
from hashsync_client.plan.parse import RawPlan
from hashsync_client.signing import (
    Keyring,
    SignatureError,
    canonical_json,
    manifest_sha256,
    parse_keyring_unverified,
    parse_timestamp,
    verify_keyring_chain,
    verify_manifest,
    verify_manifest_history,
)


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
    max_records: int  # signed: the bundle's header must announce exactly this many records
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
    # The online keys of the verified keyring: the transparency log's checkpoints are signed
    # by one of them (hashsync_client.transparency).
    signing_keys: tuple[Ed25519PublicKey, ...] = ()

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
    max_manifest_lifetime: timedelta | None = None,
    held_manifest: dict[str, Any] | None = None,
) -> VerifiedPlan:
    """Every check of docs/sync-api.md before a byte of a bundle is fetched: with
    ``max_manifest_lifetime``, a newest manifest valid for longer is refused; with
    ``held_manifest`` (the one the client holds), the history chain is checked from it."""
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
    lifetime = parse_timestamp(manifest["expires_at"]) - parse_timestamp(manifest["issued_at"])
    if max_manifest_lifetime is not None and lifetime > max_manifest_lifetime:
        raise VerificationError(
            f"{feed}: the manifest is valid for {lifetime}, longer than the accepted maximum "
            f"{max_manifest_lifetime} (max_manifest_lifetime_seconds): refused",
            code="manifest_lifetime",
        )
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
    steps = _verify_steps(plan, manifest, keyring, held_version, max_bundle_bytes, max_entries)
    check_chain(feed, held_manifest, [step.manifest for step in steps] + [manifest])
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
    signing_keys = tuple(entry.public_key for entry in keyring.signing_keys)
    return VerifiedPlan(feed, status, version, manifest, steps, trusted, signing_keys)


def _verify_steps(
    plan: RawPlan,
    manifest: dict[str, Any],
    keyring: Keyring,
    held_version: int,
    max_bundle_bytes: int,
    max_entries: int,
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
        # Before a byte is fetched: the bundle reader then refuses a header announcing more.
        if type(max_records) is int and max_records > max_entries:
            raise VerificationError(
                f"{where}: {max_records} records exceed the configured maximum ({max_entries})",
                code="too_many_entries",
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
