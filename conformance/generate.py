#!/usr/bin/env python3
"""Write the hashsync conformance suite: one directory per case plus ``expected.json``.

    python conformance/generate.py [--out DIR]        # default: var/conformance

Every byte comes from the fixed seed below: run it twice and the two trees are identical (for
one libzstd version; `expected.json` records it). ALL HASH VALUES ARE SYNTHETIC: random bytes
from a seeded generator, hashes of nothing. ALL KEYS ARE TEST KEYS derived from public labels.

Bundles are encoded here from docs/bundle-format.md (not by the project's writer), and digests
and signatures use the small reference verifier's primitives; the case layout and the runner
contract are in docs/conformance.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference import KEYRING_TYPE, LENGTHS, MANIFEST_TYPE, LtHash, canonical

SEED = 20261206
T0 = datetime(2026, 12, 1, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
SYNTHETIC = "every hash value in this case is synthetic: seeded random bytes, a hash of nothing"
Key = tuple[int, bytes]
Entries = dict[Key, int]


def ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- keys and envelopes --------------------------------------------------------------------------


@dataclass(frozen=True)
class TestKey:
    """An Ed25519 TEST key whose seed is the SHA-256 of a public label: never a real key."""

    label: str

    @property
    def private(self) -> Ed25519PrivateKey:
        seed = hashlib.sha256(f"hashsync conformance TEST key {self.label}".encode()).digest()
        return Ed25519PrivateKey.from_private_bytes(seed)

    @property
    def raw_public(self) -> bytes:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def keyid(self) -> str:
        return hashlib.sha256(self.raw_public).hexdigest()

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.raw_public).decode()

    def entry(self) -> dict[str, str]:
        return {"keyid": self.keyid, "public_key": self.public_b64}


def envelope(payload: bytes, payload_type: str, signers: list[TestKey]) -> dict[str, Any]:
    kind = payload_type.encode()
    message = b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)
    signatures = {key.keyid: key.private.sign(message) for key in signers}
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [
            {"keyid": keyid, "sig": base64.b64encode(sig).decode()}
            for keyid, sig in sorted(signatures.items())
        ],
    }


ROOT_A, ROOT_B, ROOT_C, ROOT_D, ROOT_E = (TestKey(f"root {n}") for n in "ABCDE")
ONLINE_1, ONLINE_2, ONLINE_3 = (TestKey(f"online {n}") for n in "123")
ATTACKER = TestKey("attacker")


def keyring(
    version: int,
    roots: list[TestKey],
    online: list[tuple[TestKey, datetime, datetime]],
    *,
    threshold: int = 1,
    issued: datetime = T0 - 30 * DAY,
    expires: datetime = T0 + 365 * DAY,
) -> dict[str, Any]:
    return {
        "type": "hashsync/keyring",
        "version": version,
        "issued_at": ts(issued),
        "expires_at": ts(expires),
        "root": {
            "threshold": threshold,
            "keys": sorted((k.entry() for k in roots), key=lambda e: e["keyid"]),
        },
        "signing_keys": sorted(
            (
                {**k.entry(), "valid_from": ts(start), "valid_until": ts(end)}
                for k, start, end in online
            ),
            key=lambda e: e["keyid"],
        ),
    }


def signed_keyring(payload: dict[str, Any], signers: list[TestKey]) -> dict[str, Any]:
    return envelope(canonical(payload), KEYRING_TYPE, signers)


STANDARD_ONLINE = [(ONLINE_1, T0 - 60 * DAY, T0 + 365 * DAY)]


def standard_chain() -> list[dict[str, Any]]:
    return [signed_keyring(keyring(1, [ROOT_A], STANDARD_ONLINE), [ROOT_A])]


# --- bundles -------------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


@dataclass
class Rec:
    alg: int
    value: bytes
    op: int
    grading: int


def encode_block(alg: int, recs: list[Rec], *, escape_also: frozenset[int] = frozenset()) -> bytes:
    """One block as §5 lays it out; ``escape_also``: record positions escaped although their
    code is in the palette (legal, §5.1; the reference writer never does it)."""
    counts = Counter(r.grading for r in recs)
    palette = sorted(counts, key=lambda code: (-counts[code], code))[:255]
    slot = {code: i for i, code in enumerate(palette)}
    index, escapes = bytearray(), bytearray()
    for i, rec in enumerate(recs):
        if rec.grading in slot and i not in escape_also:
            index.append(slot[rec.grading])
        else:
            index.append(255)
            escapes += rec.grading.to_bytes(2, "little")
    prefixes, previous = bytearray(), 0
    for rec in recs:
        prefix = int.from_bytes(rec.value[:4], "big")
        prefixes += varint(prefix - previous)
        previous = prefix
    return b"".join(
        [
            bytes([alg]),
            len(recs).to_bytes(4, "little"),
            len(prefixes).to_bytes(4, "little"),
            bytes([len(palette)]),
            b"".join(code.to_bytes(2, "little") for code in palette),
            bytes(r.op for r in recs),
            bytes(index),
            bytes(escapes),
            bytes(prefixes),
            b"".join(r.value[4:] for r in recs),
        ]
    )


def encode_body(recs: list[Rec], **block_options: Any) -> bytes:
    recs = sorted(recs, key=lambda r: (r.alg, r.value))
    out = bytearray()
    for alg in sorted({r.alg for r in recs}):
        mine = [r for r in recs if r.alg == alg]
        for start in range(0, len(mine), 65_536):
            out += encode_block(alg, mine[start : start + 65_536], **block_options)
    return bytes(out) + b"\x00"


def compress(body: bytes, *, content_size: bool = False, checksum: bool = True) -> bytes:
    compressor = zstandard.ZstdCompressor(
        level=3, write_checksum=checksum, write_content_size=content_size, threads=0
    )
    return compressor.compress(body)


def header(
    kind: str, feed: str, start: int, end: int, count: int, framework: dict | None = None
) -> bytes:
    """Format 1, or format 2 naming ``framework`` ({"slug", "version", "classes"}, §3.1)."""
    doc: dict[str, Any] = {
        "feed": feed,
        "format": 1,
        "from_version": start,
        "kind": kind,
        "record_count": count,
        "to_version": end,
    }
    if framework is not None:
        doc.update(
            format=2,
            framework=framework["slug"],
            framework_version=framework["version"],
            classes=framework["classes"],
        )
    return canonical(doc)


def bundle(head: bytes, frame: bytes) -> bytes:
    return b"HSB1" + len(head).to_bytes(4, "little") + head + frame


def digest(entries: Entries) -> str:
    state = LtHash()
    for (alg, value), grading in entries.items():
        state.add(alg, value, grading)
    return state.digest()


# --- feed histories and plans --------------------------------------------------------------------


@dataclass
class Release:
    version: int
    entries: Entries
    manifest: dict[str, Any]
    envelope: dict[str, Any]
    delta: bytes | None
    delta_records: int
    snapshot: bytes | None


# Hooks that let a case break one thing: (kind, version, body or manifest) -> replacement.
BodyHook = Callable[[str, int, list[Rec]], bytes | None]


@dataclass
class History:
    """A feed's releases, built the way a server publishes them: a delta per version, a
    snapshot where asked, one signed manifest per version linked to the previous one."""

    feed: str
    signer: TestKey = ONLINE_1
    releases: list[Release] = field(default_factory=list)
    body_hook: BodyHook | None = None
    # Format 2 (bundle-format.md §3.1): the framework the next release's bundles and manifest
    # name; ``header_framework`` (when not ``SAME``) makes the bundle headers name another.
    framework: dict[str, Any] | None = None
    header_framework: Any = "SAME"

    def _bundle(self, kind: str, start: int, end: int, recs: list[Rec]) -> bytes:
        body = self.body_hook(kind, end, recs) if self.body_hook else None
        if body is None:
            body = compress(encode_body(recs))
        named = self.framework if self.header_framework == "SAME" else self.header_framework
        return bundle(header(kind, self.feed, start, end, len(recs), named), body)

    def release(
        self,
        entries: Entries,
        *,
        snapshot: bool = False,
        issued: datetime | None = None,
        lifetime: timedelta = 3 * DAY,
        signer: TestKey | None = None,
        edit: Callable[[dict[str, Any]], None] | None = None,
        removal_op: int = 1,
    ) -> Release:
        version = len(self.releases) + 1
        previous = self.releases[-1] if self.releases else None
        delta = None
        records = 0
        if previous is not None:
            changes = [
                Rec(alg, value, 0, grading)
                for (alg, value), grading in entries.items()
                if previous.entries.get((alg, value)) != grading
            ] + [
                Rec(alg, value, removal_op, 0)
                for (alg, value) in previous.entries
                if (alg, value) not in entries
            ]
            records = len(changes)
            delta = self._bundle("delta", version - 1, version, changes)
        snap = None
        if snapshot or previous is None:
            recs = [Rec(a, v, 0, g) for (a, v), g in entries.items()]
            snap = self._bundle("snapshot", 0, version, recs)
        newest_snapshot = next(
            r
            for r in [Release(version, entries, {}, {}, None, 0, snap), *reversed(self.releases)]
            if r.snapshot is not None
        )
        issued = issued or T0 + version * HOUR
        assert newest_snapshot.snapshot is not None
        manifest = {
            "type": "hashsync/manifest",
            "format": 1,
            "feed": self.feed,
            "version": version,
            "previous_manifest_sha256": (
                hashlib.sha256(canonical(previous.manifest)).hexdigest() if previous else None
            ),
            "issued_at": ts(issued),
            "expires_at": ts(issued + lifetime),
            "entry_count": len(entries),
            "state_digest": digest(entries),
            "delta": None
            if delta is None
            else {
                "from_version": version - 1,
                "sha256": hashlib.sha256(delta).hexdigest(),
                "size": len(delta),
                "records": records,
            },
            "snapshot": {
                "version": newest_snapshot.version,
                "sha256": hashlib.sha256(newest_snapshot.snapshot).hexdigest(),
                "size": len(newest_snapshot.snapshot),
            },
        }
        if self.framework is not None:
            manifest["framework"] = dict(self.framework)
        if edit:
            edit(manifest)
        signed = envelope(canonical(manifest), MANIFEST_TYPE, [signer or self.signer])
        release = Release(version, dict(entries), manifest, signed, delta, records, snap)
        self.releases.append(release)
        return release

    def at(self, version: int) -> Release:
        return self.releases[version - 1]

    def plan(
        self, held: int, *, upto: int | None = None
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The plan a server gives a client holding ``held``, and the bundles it names."""
        newest = self.at(upto or len(self.releases))
        steps, bundles = [], {}
        if held == newest.version:
            status = "up_to_date"
        elif held == 0:
            status = "snapshot"
            base = next(r for r in reversed(self.releases[: newest.version]) if r.snapshot)
            steps.append(self.step("snapshot", 0, base.version, base.snapshot, base.entries, base))
            held = base.version
        else:
            status = "deltas"
        for version in range(held + 1, newest.version + 1):
            release = self.at(version)
            assert release.delta is not None
            steps.append(
                self.step(
                    "delta", version - 1, version, release.delta, release.delta_records, release
                )
            )
        for step in steps:
            bundles[step["sha256"]] = step.pop("_bytes")
        return {
            "feed": self.feed,
            "from_version": held if status != "snapshot" else 0,
            "version": newest.version,
            "status": status,
            "poll_interval_seconds": 60,
            "manifest": newest.envelope,
            "keyrings": standard_chain(),
            "steps": steps,
        }, bundles

    @staticmethod
    def step(kind: str, start: int, end: int, data: Any, records: Any, release: Release) -> dict:
        sha = hashlib.sha256(data).hexdigest()
        return {
            "kind": kind,
            "from_version": start,
            "to_version": end,
            "sha256": sha,
            "size": len(data),
            "records": records if kind == "delta" else len(records),
            "url": f"/api/v1/sync/bundles/{sha}/",
            "manifest": release.envelope,
            "_bytes": data,
        }


# --- synthetic lists -----------------------------------------------------------------------------


def synthetic(rng: random.Random, count: int, algs: tuple[int, ...] = (1, 2, 3, 4, 5)) -> Entries:
    """``count`` synthetic random keys spread over ``algs``, random gradings 0..629."""
    out: Entries = {}
    while len(out) < count:
        alg = algs[len(out) % len(algs)]
        out[(alg, rng.randbytes(LENGTHS[alg]))] = rng.randrange(630)
    return out


def changed(
    rng: random.Random, entries: Entries, *, add: int = 3, drop: int = 2, regrade: int = 2
) -> Entries:
    out = dict(entries)
    keys = sorted(out)
    for key in rng.sample(keys, drop + regrade)[:drop]:
        del out[key]
    for key in sorted(out)[:regrade]:
        out[key] = (out[key] + 1 + rng.randrange(628)) % 630
    out.update(synthetic(rng, add))
    return out


# --- cases ---------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    expect: str
    description: str
    feed: str
    syncs: list[tuple[datetime, dict[str, Any]]]
    bundles: dict[str, bytes]
    pins: tuple[TestKey, ...] = (ROOT_A,)
    pinned_threshold: int = 1


CASES: list[Callable[[random.Random], Case]] = []


def case(function: Callable[[random.Random], Case]) -> Callable[[random.Random], Case]:
    CASES.append(function)
    return function


NOW = T0 + DAY


def one_sync(
    name: str, expect: str, description: str, history: History, held: int = 0, **kw: Any
) -> Case:
    plan, bundles = history.plan(held)
    return Case(name, expect, description, history.feed, [(NOW, plan)], bundles, **kw)


def two_syncs(
    name: str, expect: str, description: str, history: History, first: int, **kw: Any
) -> Case:
    """Sync from nothing up to version ``first``, then from there to the newest version."""
    plan1, bundles = history.plan(0, upto=first)
    plan2, more = history.plan(first)
    return Case(
        name,
        expect,
        description,
        history.feed,
        [(NOW, plan1), (NOW, plan2)],
        {**bundles, **more},
        **kw,
    )


def simple_history(
    rng: random.Random, versions: int = 1, feed: str = "conformance-feed", **kw: Any
) -> History:
    history = History(feed, **kw)
    entries = synthetic(rng, 12)
    history.release(entries)
    for _ in range(versions - 1):
        entries = changed(rng, entries)
        history.release(entries)
    return history


@case
def snapshot_with_its_manifest(rng: random.Random) -> Case:
    return one_sync(
        "accept-snapshot-signed-at-its-version",
        "accept",
        "From nothing: the snapshot of version 1 and the signed manifest of version 1 itself.",
        simple_history(rng, 1),
    )


@case
def snapshot_then_deltas(rng: random.Random) -> Case:
    history = History("conformance-feed")
    entries = synthetic(rng, 20)
    history.release(entries)
    entries = changed(rng, entries)
    history.release(entries, snapshot=True)
    for _ in range(2):
        entries = changed(rng, entries)
        history.release(entries)
    return one_sync(
        "accept-snapshot-older-than-newest",
        "accept",
        "From nothing, far behind: the snapshot of version 2, then deltas to 4. The snapshot's "
        "record count is the entry_count of the manifest for version 2, not the newest one's.",
        history,
    )


@case
def remove_and_readd(rng: random.Random) -> Case:
    history = History("conformance-feed")
    entries = synthetic(rng, 15)
    history.release(entries)
    victim = sorted(entries)[3]
    without = {k: g for k, g in entries.items() if k != victim}
    history.release(without, removal_op=3)
    readded = {**without, victim: (entries[victim] + 7) % 630}
    history.release(readded)
    return two_syncs(
        "accept-delta-removes-then-readds",
        "accept",
        "Version 2 removes a key (HASH_REMOVED), version 3 adds it back with another grading.",
        history,
        1,
    )


@case
def resigned_same_version(rng: random.Random) -> Case:
    history = simple_history(rng, 1)
    plan1, bundles = history.plan(0)
    first = history.at(1)
    again = dict(first.manifest)
    again["issued_at"], again["expires_at"] = ts(T0 + 20 * HOUR), ts(T0 + 92 * HOUR)
    again["previous_manifest_sha256"] = hashlib.sha256(canonical(first.manifest)).hexdigest()
    plan2 = {**plan1, "from_version": 1, "status": "up_to_date", "steps": []}
    plan2["manifest"] = envelope(canonical(again), MANIFEST_TYPE, [ONLINE_1])
    return Case(
        "accept-up-to-date-resigned",
        "accept",
        "Second sync: the same version re-signed with a later expiry; nothing to apply, the "
        "held list's digest equals the signed one.",
        history.feed,
        [(NOW, plan1), (NOW + HOUR, plan2)],
        bundles,
    )


def with_chain(c: Case, chain: list[dict[str, Any]]) -> Case:
    for _, plan in c.syncs:
        plan["keyrings"] = chain
    return c


@case
def chain_of_keyrings(rng: random.Random) -> Case:
    k1 = keyring(1, [ROOT_A], [(ONLINE_1, T0 - 90 * DAY, T0 + 365 * DAY)], issued=T0 - 90 * DAY)
    k2 = keyring(
        2,
        [ROOT_A],
        [(ONLINE_1, T0 - 90 * DAY, T0), (ONLINE_2, T0, T0 + 365 * DAY)],
        issued=T0 - 60 * DAY,
    )
    k3 = keyring(3, [ROOT_A], [(ONLINE_2, T0, T0 + 365 * DAY)], issued=T0 - 30 * DAY)
    chain = [signed_keyring(k, [ROOT_A]) for k in (k1, k2, k3)]
    return with_chain(
        one_sync(
            "accept-chain-of-three-keyrings",
            "accept",
            "Keyrings 1-3 under one root: an online key is added, then the first one retired; "
            "the manifest is signed by the new key.",
            simple_history(rng, 1, signer=ONLINE_2),
        ),
        chain,
    )


def rotation_chain(second_signers: list[TestKey]) -> list[dict[str, Any]]:
    k1 = keyring(1, [ROOT_A], STANDARD_ONLINE, issued=T0 - 90 * DAY)
    k2 = keyring(2, [ROOT_B], STANDARD_ONLINE, issued=T0 - 30 * DAY)
    return [signed_keyring(k1, [ROOT_A]), signed_keyring(k2, second_signers)]


@case
def root_rotation(rng: random.Random) -> Case:
    return with_chain(
        one_sync(
            "accept-root-rotation-signed-by-old-and-new",
            "accept",
            "Keyring 2 replaces root A by root B, signed by both; the client pins A.",
            simple_history(rng, 1),
        ),
        rotation_chain([ROOT_A, ROOT_B]),
    )


@case
def rotation_new_only(rng: random.Random) -> Case:
    return with_chain(
        one_sync(
            "refuse-root-rotation-signed-by-new-root-only",
            "refuse:signature_threshold",
            "Keyring 2 replaces root A by B but carries only B's signature: the old root did not "
            "vouch for the new one.",
            simple_history(rng, 1),
        ),
        rotation_chain([ROOT_B]),
    )


@case
def rotation_old_only(rng: random.Random) -> Case:
    return with_chain(
        one_sync(
            "refuse-root-rotation-signed-by-old-root-only",
            "refuse:signature_threshold",
            "Keyring 2 names root B but carries only A's signature: B's holders never proved "
            "they hold it.",
            simple_history(rng, 1),
        ),
        rotation_chain([ROOT_A]),
    )


def threshold_chain(first_signers: list[TestKey], second_signers: list[TestKey]) -> list[dict]:
    k1 = keyring(1, [ROOT_A, ROOT_B, ROOT_C], STANDARD_ONLINE, threshold=2, issued=T0 - 90 * DAY)
    k2 = keyring(2, [ROOT_B, ROOT_D, ROOT_E], STANDARD_ONLINE, threshold=2, issued=T0 - 30 * DAY)
    return [signed_keyring(k1, first_signers), signed_keyring(k2, second_signers)]


@case
def threshold_two(rng: random.Random) -> Case:
    c = one_sync(
        "accept-two-of-three-roots-rotated",
        "accept",
        "A 2-of-3 root (A, B, C; pinned with threshold 2) rotates to B, D, E: keyring 2 is "
        "signed by A and C of the old root and D and E of the new one.",
        simple_history(rng, 1),
        pins=(ROOT_A, ROOT_B, ROOT_C),
        pinned_threshold=2,
    )
    return with_chain(c, threshold_chain([ROOT_A, ROOT_C], [ROOT_A, ROOT_C, ROOT_D, ROOT_E]))


@case
def threshold_not_met_anchor(rng: random.Random) -> Case:
    c = one_sync(
        "refuse-two-of-three-root-with-one-signature",
        "refuse:untrusted_root",
        "Keyring 1 of a 2-of-3 root carries one valid root signature.",
        simple_history(rng, 1),
        pins=(ROOT_A, ROOT_B, ROOT_C),
    )
    return with_chain(c, threshold_chain([ROOT_A], [ROOT_A, ROOT_C, ROOT_D, ROOT_E])[:1])


@case
def threshold_not_met_rotation(rng: random.Random) -> Case:
    c = one_sync(
        "refuse-two-of-three-rotation-with-one-old-signature",
        "refuse:signature_threshold",
        "Keyring 2 carries one signature of the old 2-of-3 root (and two of the new).",
        simple_history(rng, 1),
        pins=(ROOT_A, ROOT_B, ROOT_C),
        pinned_threshold=2,
    )
    return with_chain(c, threshold_chain([ROOT_A, ROOT_C], [ROOT_A, ROOT_D, ROOT_E]))


@case
def untrusted_root(rng: random.Random) -> Case:
    c = one_sync(
        "refuse-keyring-from-another-root",
        "refuse:untrusted_root",
        "The chain starts at a keyring rooted in the attacker's key; the client pins A.",
        simple_history(rng, 1),
    )
    return with_chain(c, [signed_keyring(keyring(1, [ATTACKER], STANDARD_ONLINE), [ATTACKER])])


@case
def pinned_keyid_wrong_key(rng: random.Random) -> Case:
    ring = keyring(1, [ATTACKER], STANDARD_ONLINE)
    ring["root"]["keys"] = [{"keyid": ROOT_A.keyid, "public_key": ATTACKER.public_b64}]
    c = one_sync(
        "refuse-pinned-keyid-next-to-another-public-key",
        "refuse:keyring_malformed",
        "Keyring 1 lists the pinned keyid with the attacker's public key and is signed by the "
        "attacker: the keyid is not the SHA-256 of that key.",
        simple_history(rng, 1),
    )
    return with_chain(c, [envelope(canonical(ring), KEYRING_TYPE, [ATTACKER])])


@case
def keyring_gap(rng: random.Random) -> Case:
    chain = [signed_keyring(keyring(v, [ROOT_A], STANDARD_ONLINE), [ROOT_A]) for v in (1, 3)]
    return with_chain(
        one_sync(
            "refuse-keyring-version-gap",
            "refuse:version_gap",
            "Keyring 1 then 3.",
            simple_history(rng, 1),
        ),
        chain,
    )


@case
def keyring_repeat(rng: random.Random) -> Case:
    chain = [signed_keyring(keyring(v, [ROOT_A], STANDARD_ONLINE), [ROOT_A]) for v in (1, 2, 2)]
    return with_chain(
        one_sync(
            "refuse-keyring-chain-goes-back",
            "refuse:rollback",
            "Keyrings 1, 2, 2: a version that does not move forward.",
            simple_history(rng, 1),
        ),
        chain,
    )


@case
def keyring_expired(rng: random.Random) -> Case:
    ring = keyring(1, [ROOT_A], STANDARD_ONLINE, issued=T0 - 400 * DAY, expires=T0)
    return with_chain(
        one_sync(
            "refuse-newest-keyring-expired",
            "refuse:keyring_expired",
            "The only keyring expired before the sync.",
            simple_history(rng, 1),
        ),
        [signed_keyring(ring, [ROOT_A])],
    )


@case
def intermediate_expired(rng: random.Random) -> Case:
    k1 = keyring(1, [ROOT_A], STANDARD_ONLINE, issued=T0 - 400 * DAY, expires=T0 - 200 * DAY)
    k2 = keyring(2, [ROOT_A], STANDARD_ONLINE)
    return with_chain(
        one_sync(
            "accept-intermediate-keyring-expired",
            "accept",
            "Keyring 1 expired long ago; keyring 2, which it vouches for, is current.",
            simple_history(rng, 1),
        ),
        [signed_keyring(k1, [ROOT_A]), signed_keyring(k2, [ROOT_A])],
    )


@case
def keyring_wrong_type(rng: random.Random) -> Case:
    ring = keyring(1, [ROOT_A], STANDARD_ONLINE)
    ring["type"] = "hashsync/keyring-v2"
    return with_chain(
        one_sync(
            "refuse-keyring-of-another-type",
            "refuse:keyring_malformed",
            "A properly signed keyring payload whose type is not hashsync/keyring.",
            simple_history(rng, 1),
        ),
        [signed_keyring(ring, [ROOT_A])],
    )


@case
def keyring_as_manifest(rng: random.Random) -> Case:
    c = one_sync(
        "refuse-keyring-envelope-as-manifest",
        "refuse:wrong_payload_type",
        "The plan's manifest is the keyring envelope.",
        simple_history(rng, 1),
    )
    c.syncs[0][1]["manifest"] = standard_chain()[0]
    return c


def manifest_case(
    rng: random.Random, name: str, expect: str, description: str, **release: Any
) -> Case:
    history = History("conformance-feed")
    history.release(synthetic(rng, 12), **release)
    return one_sync(name, expect, description, history)


@case
def key_outside_window(rng: random.Random) -> Case:
    c = manifest_case(
        rng,
        "refuse-key-outside-its-window",
        "refuse:key_not_valid",
        "The manifest is signed by online key 2, whose window opens an hour after the "
        "manifest's issued_at.",
        signer=ONLINE_2,
    )
    ring = keyring(1, [ROOT_A], [*STANDARD_ONLINE, (ONLINE_2, T0 + 2 * HOUR, T0 + 365 * DAY)])
    return with_chain(c, [signed_keyring(ring, [ROOT_A])])


SWITCH = timedelta(minutes=90)


@case
def retired_key_history(rng: random.Random) -> Case:
    history = History("conformance-feed")
    entries = synthetic(rng, 12)
    history.release(entries)
    history.release(changed(rng, entries), signer=ONLINE_2)
    ring = keyring(
        1, [ROOT_A], [(ONLINE_1, T0 - DAY, T0 + SWITCH), (ONLINE_2, T0 + SWITCH, T0 + 365 * DAY)]
    )
    # Not the snapshot: held at 1 first, then a delta signed by the new key.
    c = two_syncs(
        "accept-manifest-of-a-since-retired-key",
        "accept",
        "Version 1 is signed by online key 1 inside its window (which has since closed), "
        "version 2 by key 2 after the switch-over.",
        history,
        1,
    )
    return with_chain(c, [signed_keyring(ring, [ROOT_A])])


@case
def expired_manifest(rng: random.Random) -> Case:
    return manifest_case(
        rng,
        "refuse-manifest-expired",
        "refuse:manifest_expired",
        "The newest manifest expired an hour before the sync.",
        issued=NOW - 3 * DAY - HOUR,
    )


@case
def future_manifest(rng: random.Random) -> Case:
    return manifest_case(
        rng,
        "refuse-manifest-issued-in-the-future",
        "refuse:issued_in_future",
        "issued_at is 6 minutes after the client's clock (5 minutes of skew are allowed).",
        issued=NOW + timedelta(minutes=6),
    )


@case
def unsupported_format(rng: random.Random) -> Case:
    return manifest_case(
        rng,
        "refuse-manifest-format-2",
        "refuse:unsupported_format",
        "A signed manifest of format 2.",
        edit=lambda m: m.update(format=2),
    )


@case
def manifest_wrong_type(rng: random.Random) -> Case:
    return manifest_case(
        rng,
        "refuse-manifest-of-another-type",
        "refuse:manifest_malformed",
        "A signed manifest whose type is not hashsync/manifest.",
        edit=lambda m: m.update(type="hashsync/keyring"),
    )


@case
def integer_limit(rng: random.Random) -> Case:
    return manifest_case(
        rng,
        "refuse-integer-beyond-2-53",
        "refuse:manifest_malformed",
        "An unknown field holds 2^53, beyond the integers every JSON parser reads exactly.",
        edit=lambda m: m.update(x_later_field=2**53),
    )


@case
def uppercase_escape(rng: random.Random) -> Case:
    history = History("conformance-feed")
    history.release(synthetic(rng, 12), edit=lambda m: m.update(x_note="\x1f"))
    release = history.at(1)
    payload = canonical(release.manifest).replace(b"\\u001f", b"\\u001F")
    release.envelope = envelope(payload, MANIFEST_TYPE, [ONLINE_1])
    return one_sync(
        "refuse-non-canonical-escape",
        "refuse:manifest_malformed",
        "A control character escaped as \\u001F (canonical JSON writes lowercase hex).",
        history,
    )


@case
def unknown_fields(rng: random.Random) -> Case:
    def edit(m: dict[str, Any]) -> None:
        m["x_future"] = {"nested": [1, "\x1f\u00e9/\x7f"]}
        m["snapshot"]["x_future"] = None
        if m["delta"]:
            m["delta"]["x_future"] = True

    history = History("conformance-feed")
    history.release(synthetic(rng, 12), edit=edit)
    ring = keyring(1, [ROOT_A], STANDARD_ONLINE)
    ring["x_future"] = "ignored"
    ring["root"]["x_future"] = 1
    ring["root"]["keys"][0]["x_future"] = 2
    ring["signing_keys"][0]["x_future"] = 3
    ring_envelope = signed_keyring(ring, [ROOT_A])
    ring_envelope["x_future"] = "ignored"
    ring_envelope["signatures"][0]["x_future"] = "ignored"
    c = one_sync(
        "accept-unknown-fields-where-allowed",
        "accept",
        "Unknown members in the manifest, its snapshot object, the keyring, its root, its key "
        "entries, the envelope and a signature entry; a control character, a non-ASCII letter "
        "and U+007F in canonical form.",
        history,
    )
    return with_chain(c, [ring_envelope])


@case
def tampered_payload(rng: random.Random) -> Case:
    c = manifest_case(rng, "refuse-manifest-payload-altered", "refuse:signature_threshold", "x")
    plan = c.syncs[0][1]
    payload = base64.b64decode(plan["manifest"]["payload"]).replace(
        b'"entry_count":12', b'"entry_count":13'
    )
    plan["manifest"] = {**plan["manifest"], "payload": base64.b64encode(payload).decode()}
    c.description = "The newest manifest's payload was altered after signing (entry_count)."
    return c


@case
def unknown_signer(rng: random.Random) -> Case:
    return manifest_case(
        rng,
        "refuse-manifest-signed-by-unknown-key",
        "refuse:signature_threshold",
        "The manifest is signed by a key no keyring names.",
        signer=ATTACKER,
    )


def b64_variant(c: Case, transform: Callable[[str], str]) -> Case:
    plan = c.syncs[0][1]
    env = dict(plan["manifest"])
    env["payload"] = transform(env["payload"])
    env["signatures"] = [{**s, "sig": transform(s["sig"])} for s in env["signatures"]]
    plan["manifest"] = env
    return c


@case
def b64_urlsafe(rng: random.Random) -> Case:
    c = manifest_case(
        rng,
        "accept-base64-url-safe-unpadded",
        "accept",
        "The newest manifest's envelope uses URL-safe base64 without padding.",
    )
    return b64_variant(c, lambda t: t.replace("+", "-").replace("/", "_").rstrip("="))


@case
def b64_mixed(rng: random.Random) -> Case:
    def mix(text: str) -> str:
        at = min(i for i in (text.find("+"), text.find("/")) if i >= 0)
        mixed = text[:at] + {"+": "-", "/": "_"}[text[at]] + text[at + 1 :]
        assert set(mixed) & set("+/") and set(mixed) & set("-_")
        return mixed

    c = manifest_case(
        rng,
        "refuse-base64-mixed-alphabets",
        "refuse:envelope_malformed",
        "The payload's base64 mixes the standard and the URL-safe alphabet.",
        edit=lambda m: m.update(x_note="\u00ff\u00fb\u00bf" * 8),  # bytes that give + and /
    )
    plan = c.syncs[0][1]
    plan["manifest"] = {**plan["manifest"], "payload": mix(plan["manifest"]["payload"])}
    return c


@case
def b64_bits(rng: random.Random) -> Case:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def bits(text: str) -> str:
        if not text.endswith("=="):
            return text
        return text[:-3] + alphabet[alphabet.index(text[-3]) | 1] + "=="

    c = manifest_case(
        rng,
        "refuse-base64-non-zero-unused-bits",
        "refuse:envelope_malformed",
        "The signature's last base64 character has non-zero unused bits.",
    )
    plan = c.syncs[0][1]
    signatures = [{**s, "sig": bits(s["sig"])} for s in plan["manifest"]["signatures"]]
    plan["manifest"] = {**plan["manifest"], "signatures": signatures}
    return c


def padded_to(c: Case, size: int) -> Case:
    """Pad the newest manifest's envelope with an unknown member (envelopes are not signed;
    unknown members are ignored) until its canonical JSON is exactly ``size`` bytes."""
    plan = c.syncs[0][1]
    env = dict(plan["manifest"])
    env["x_padding"] = ""
    env["x_padding"] = "p" * (size - len(canonical(env)))
    assert len(canonical(env)) == size
    plan["manifest"] = env
    return c


@case
def envelope_at_limit(rng: random.Random) -> Case:
    c = manifest_case(
        rng,
        "accept-envelope-of-65536-bytes",
        "accept",
        "The newest manifest's envelope, embedded in the plan, encodes to exactly 65,536 "
        "bytes of canonical JSON.",
    )
    return padded_to(c, 65_536)


@case
def envelope_over_limit(rng: random.Random) -> Case:
    c = manifest_case(
        rng,
        "refuse-envelope-of-65537-bytes",
        "refuse:envelope_too_large",
        "The newest manifest's envelope encodes to 65,537 bytes of canonical JSON.",
    )
    return padded_to(c, 65_537)


@case
def rollback(rng: random.Random) -> Case:
    history = simple_history(rng, 2)
    plan1, bundles = history.plan(0)
    old, _ = history.plan(0, upto=1)
    replay = {**old, "from_version": 2, "status": "up_to_date", "steps": []}
    return Case(
        "refuse-rollback-to-an-older-manifest",
        "refuse:rollback",
        "After syncing version 2, the server answers with version 1's (still valid) manifest.",
        history.feed,
        [(NOW, plan1), (NOW, replay)],
        bundles,
    )


@case
def mix_and_match_delta(rng: random.Random) -> Case:
    history = simple_history(rng, 3)
    c = two_syncs(
        "refuse-mix-and-match-delta",
        "refuse:plan_mismatch",
        "The step to version 3 names version 2's delta bundle (validly signed, by version 2's "
        "manifest).",
        history,
        1,
    )
    second = c.syncs[1][1]["steps"]
    second[1] = {**second[1], **{k: second[0][k] for k in ("sha256", "size", "records", "url")}}
    return c


@case
def mix_and_match_feed(rng: random.Random) -> Case:
    other = simple_history(random.Random(rng.random()), 1, feed="another-feed")
    c = one_sync(
        "refuse-mix-and-match-step-manifest-of-another-feed",
        "refuse:wrong_feed",
        "The snapshot step carries another feed's manifest of the same version.",
        simple_history(rng, 1),
    )
    c.syncs[0][1]["steps"][0]["manifest"] = other.at(1).envelope
    return c


@case
def snapshot_step_manifest_newest(rng: random.Random) -> Case:
    history = History("conformance-feed")
    entries = synthetic(rng, 12)
    history.release(entries)
    history.release(changed(rng, entries))
    c = one_sync(
        "refuse-snapshot-step-with-newest-manifest",
        "refuse:plan_mismatch",
        "The snapshot step (version 1) carries version 2's manifest instead of version 1's.",
        history,
    )
    c.syncs[0][1]["steps"][0]["manifest"] = history.at(2).envelope
    return c


@case
def swapped_bytes(rng: random.Random) -> Case:
    c = one_sync(
        "refuse-bundle-bytes-not-signed",
        "refuse:bundle_mismatch",
        "The bundle served is not the one whose SHA-256 is signed.",
        simple_history(rng, 1),
    )
    (sha,) = c.bundles
    data = bytearray(c.bundles[sha])
    data[-5] ^= 1
    c.bundles[sha] = bytes(data)
    return c


def hooked(
    hook: BodyHook, name: str, expect: str, description: str, rng: random.Random, versions: int = 1
) -> Case:
    history = History("conformance-feed", body_hook=hook)
    entries = synthetic(rng, 12)
    history.release(entries)
    for _ in range(versions - 1):
        entries = changed(rng, entries)
        history.release(entries)
    return one_sync(name, expect, description, history)


@case
def fewer_records_than_signed(rng: random.Random) -> Case:
    history = History("conformance-feed")
    entries = synthetic(rng, 12)

    def drop_one(kind: str, version: int, recs: list[Rec]) -> bytes | None:
        return compress(encode_body(recs[1:]))

    history.body_hook = drop_one
    history.release(entries)
    release = history.at(1)
    assert release.snapshot is not None
    # The header claims 11 records (as many as the body holds); the manifest signs 12.
    raw = release.snapshot
    old_head = header("snapshot", history.feed, 0, 1, 12)
    new = bundle(header("snapshot", history.feed, 0, 1, 11), raw[8 + len(old_head) :])
    release.manifest["snapshot"].update(sha256=hashlib.sha256(new).hexdigest(), size=len(new))
    release.envelope = envelope(canonical(release.manifest), MANIFEST_TYPE, [ONLINE_1])
    release.snapshot = new
    return one_sync(
        "refuse-header-count-below-signed-count",
        "refuse:bundle_header",
        "The snapshot's header announces 11 records and holds 11; the signed entry_count is 12.",
        history,
    )


@case
def wrong_header_feed(rng: random.Random) -> Case:
    history = History("conformance-feed")
    history.release(synthetic(rng, 12))
    release = history.at(1)
    assert release.snapshot is not None
    head = header("snapshot", history.feed, 0, 1, 12)
    new = bundle(header("snapshot", "another-feed", 0, 1, 12), release.snapshot[8 + len(head) :])
    release.manifest["snapshot"].update(sha256=hashlib.sha256(new).hexdigest(), size=len(new))
    release.envelope = envelope(canonical(release.manifest), MANIFEST_TYPE, [ONLINE_1])
    release.snapshot = new
    return one_sync(
        "refuse-bundle-of-another-feed",
        "refuse:bundle_header",
        "A signed snapshot whose header names another feed (mix-and-match of bundles).",
        history,
    )


@case
def digest_mismatch(rng: random.Random) -> Case:
    return manifest_case(
        rng,
        "refuse-state-digest-differs",
        "refuse:state_mismatch",
        "The signed state digest is not the digest of the snapshot's list.",
        edit=lambda m: m.update(state_digest=hashlib.sha256(b"synthetic other state").hexdigest()),
    )


@case
def count_mismatch(rng: random.Random) -> Case:
    history = History("conformance-feed")
    entries = synthetic(rng, 12)
    history.release(entries)
    history.release(
        changed(rng, entries), edit=lambda m: m.update(entry_count=m["entry_count"] + 1)
    )
    return two_syncs(
        "refuse-entry-count-differs",
        "refuse:state_mismatch",
        "After the delta the list holds one entry fewer than the signed entry_count (the "
        "digest matches).",
        history,
        1,
    )


@case
def grading_escapes(rng: random.Random) -> Case:
    entries: Entries = {}
    codes = list(range(300)) + [7] * 5
    for code in codes:
        entries[(3, rng.randbytes(32))] = code
    ordered = sorted(entries)
    twin = next(i for i, key in enumerate(ordered) if entries[key] == 7)

    def hook(kind: str, version: int, recs: list[Rec]) -> bytes | None:
        return compress(encode_body(recs, escape_also=frozenset({twin})))

    history = History("conformance-feed", body_hook=hook)
    history.release(entries)
    return one_sync(
        "accept-grading-escape-column",
        "accept",
        "One sha256 block with 300 distinct gradings: a full palette of 255 codes and 45 "
        "escaped ones, plus one record escaped although its code (7) is in the palette.",
        history,
    )


@case
def block_split(rng: random.Random) -> Case:
    entries = synthetic(rng, 65_537, algs=(1,))
    entries.update(synthetic(rng, 3, algs=(4,)))
    history = History("conformance-feed")
    history.release(entries)
    return one_sync(
        "accept-blocks-split-at-65536",
        "accept",
        "65,537 md5 records (a full block of 65,536, then a block of 1) and 3 pdq records.",
        history,
    )


@case
def short_block_first(rng: random.Random) -> Case:
    def hook(kind: str, version: int, recs: list[Rec]) -> bytes | None:
        recs = sorted(recs, key=lambda r: (r.alg, r.value))
        md5 = [r for r in recs if r.alg == 1]
        rest = [r for r in recs if r.alg != 1]
        body = encode_block(1, md5[:1]) + encode_block(1, md5[1:]) + encode_body(rest)
        return compress(body)

    return hooked(
        hook,
        "refuse-short-block-then-same-algorithm",
        "refuse:bundle_format",
        "An md5 block of 1 record followed by another md5 block.",
        rng,
    )


@case
def limits(rng: random.Random) -> Case:
    feed = "F" * 32 + "-" * 2 + "z" * 30
    entries = synthetic(rng, 65_536, algs=(2,))
    history = History(feed)
    history.release(entries)
    return one_sync(
        "accept-at-the-documented-limits",
        "accept",
        "A 64-character feed name; one sha1 block of exactly 65,536 records with a palette of "
        "255 codes and escapes.",
        history,
    )


def frame_case(
    rng: random.Random, name: str, expect: str, description: str, frame: Callable[[bytes], bytes]
) -> Case:
    return hooked(
        lambda kind, version, recs: frame(encode_body(recs)), name, expect, description, rng
    )


@case
def single_segment(rng: random.Random) -> Case:
    def frame(body: bytes) -> bytes:
        out = compress(body, content_size=True)
        assert out[4] & 0x20, "expected a single-segment frame"
        return out

    return frame_case(
        rng,
        "accept-zstd-single-segment-frame",
        "accept",
        "A single-segment zstd frame (window = content size, far below 8 MiB).",
        frame,
    )


@case
def window_too_large(rng: random.Random) -> Case:
    def frame(body: bytes) -> bytes:
        params = zstandard.ZstdCompressionParameters.from_level(3, window_log=24, write_checksum=1)
        out = zstandard.ZstdCompressor(compression_params=params).compressobj()
        data = out.compress(body) + out.flush()
        assert not data[4] & 0x20 and (data[5] >> 3) + 10 == 24
        return data

    return frame_case(
        rng,
        "refuse-zstd-window-16-mib",
        "refuse:bundle_format",
        "The frame declares a 16 MiB window (the limit is 8 MiB).",
        frame,
    )


@case
def no_checksum(rng: random.Random) -> Case:
    return frame_case(
        rng,
        "refuse-zstd-without-checksum",
        "refuse:bundle_format",
        "The frame has no content checksum.",
        lambda b: compress(b, checksum=False),
    )


@case
def trailing(rng: random.Random) -> Case:
    return frame_case(
        rng,
        "refuse-bytes-after-the-frame",
        "refuse:bundle_format",
        "One byte follows the zstd frame.",
        lambda b: compress(b) + b"\x00",
    )


@case
def after_end(rng: random.Random) -> Case:
    return frame_case(
        rng,
        "refuse-data-after-end-of-blocks",
        "refuse:bundle_format",
        "A byte follows the end-of-blocks marker inside the body.",
        lambda b: compress(b + b"\x00"),
    )


@case
def bad_checksum(rng: random.Random) -> Case:
    def frame(body: bytes) -> bytes:
        data = bytearray(compress(body))
        data[-1] ^= 0xFF
        return bytes(data)

    return frame_case(
        rng,
        "refuse-zstd-checksum-wrong",
        "refuse:bundle_format",
        "The frame's content checksum does not match.",
        frame,
    )


@case
def removal_in_snapshot(rng: random.Random) -> Case:
    def hook(kind: str, version: int, recs: list[Rec]) -> bytes | None:
        recs = sorted(recs, key=lambda r: (r.alg, r.value))
        recs[0] = Rec(recs[0].alg, recs[0].value, 1, 0)
        return compress(encode_body(recs))

    return hooked(
        hook,
        "refuse-removal-in-a-snapshot",
        "refuse:bundle_format",
        "A snapshot record with op RETRACTED.",
        rng,
    )


@case
def varint_long(rng: random.Random) -> Case:
    def hook(kind: str, version: int, recs: list[Rec]) -> bytes | None:
        md5 = sorted((r for r in recs if r.alg == 1), key=lambda r: r.value)
        # The second key's prefix is the first's + 1: its gap varint is the one byte 01,
        # written here as 81 00 — the same value, not in shortest form.
        prefix = int.from_bytes(md5[0].value[:4], "big") + 1
        md5[1] = Rec(1, prefix.to_bytes(4, "big") + md5[1].value[4:], 0, md5[1].grading)
        block = bytearray(encode_block(1, md5))
        n, k = int.from_bytes(block[1:5], "little"), block[9]
        second = 10 + 2 * k + 2 * n
        while block[second] & 0x80:
            second += 1
        second += 1
        assert block[second] == 0x01
        block[second : second + 1] = b"\x81\x00"
        block[5:9] = (int.from_bytes(block[5:9], "little") + 1).to_bytes(4, "little")
        return compress(bytes(block) + encode_body([r for r in recs if r.alg != 1]))

    return hooked(
        hook,
        "refuse-varint-not-shortest",
        "refuse:bundle_format",
        "A key prefix gap of 1 written as the varint 81 00 instead of 01.",
        rng,
    )


@case
def keys_unsorted(rng: random.Random) -> Case:
    def hook(kind: str, version: int, recs: list[Rec]) -> bytes | None:
        pdq = sorted((r for r in recs if r.alg == 4), key=lambda r: r.value)
        same = pdq[0].value[:4]
        twins = [Rec(4, same + b"\xff" * 28, 0, 1), Rec(4, same + b"\x00" * 28, 0, 1)]
        assert len(twins) == len(pdq)  # the header's count stays right
        before = encode_body([r for r in recs if r.alg < 4])[:-1]
        return compress(
            before + encode_block(4, twins) + encode_body([r for r in recs if r.alg > 4])
        )

    return hooked(
        hook,
        "refuse-keys-not-increasing",
        "refuse:bundle_format",
        "Two pdq keys with one prefix whose tails are in decreasing order.",
        rng,
    )


@case
def unused_palette(rng: random.Random) -> Case:
    def hook(kind: str, version: int, recs: list[Rec]) -> bytes | None:
        md5 = sorted((r for r in recs if r.alg == 1), key=lambda r: r.value)
        block = bytearray(encode_block(1, [Rec(1, r.value, 0, 5) for r in md5]))
        block[9] = 2  # palette [5] becomes [5, 6]; every index byte still says 0
        block[12:12] = (6).to_bytes(2, "little")
        return compress(bytes(block) + encode_body([r for r in recs if r.alg != 1]))

    return hooked(
        hook,
        "refuse-unused-palette-entry",
        "refuse:bundle_format",
        "An md5 block whose palette [5, 6] leaves 6 unused.",
        rng,
    )


# --- format 2: a grading framework and each entry's class (bundle-format.md §3.1) ---------------

BASELINE = {"slug": "interpol-baseline", "classes": ["yes", "no", "unassessed"]}


def framework_history(rng: random.Random) -> tuple[History, Entries]:
    """Version 1 in the framework's rules of version 1 (codes: class index * 630 + grading),
    then version 2 under its rules of version 2, which move two entries to another class and
    no grading."""
    history = History("conformance-framework", framework={**BASELINE, "version": 1})
    entries = {key: rng.randrange(3) * 630 + code for key, code in synthetic(rng, 12).items()}
    history.release(entries)
    history.framework = {**BASELINE, "version": 2}
    moved = dict(entries)
    for key in sorted(moved)[:2]:
        moved[key] = (moved[key] + 630) % 1890
    return history, moved


@case
def framework_regrade(rng: random.Random) -> Case:
    history, moved = framework_history(rng)
    history.release(moved)
    return two_syncs(
        "accept-format-2-class-only-regrade",
        "accept",
        "Format 2: a snapshot naming interpol-baseline version 1, then a delta under version 2 "
        "whose two records keep their grading and change only their class.",
        history,
        1,
    )


@case
def framework_mismatch(rng: random.Random) -> Case:
    history, moved = framework_history(rng)
    history.header_framework = {**BASELINE, "version": 1}
    history.release(moved)
    return two_syncs(
        "refuse-format-2-header-names-another-rule-version",
        "refuse:bundle_header",
        "Format 2: the delta's header names the framework's rules of version 1 while its signed "
        "manifest names version 2.",
        history,
        1,
    )


@case
def framework_code_past_classes(rng: random.Random) -> Case:
    def hook(kind: str, version: int, recs: list[Rec]) -> bytes | None:
        first, *rest = sorted(recs, key=lambda r: (r.alg, r.value))
        return compress(encode_body([Rec(first.alg, first.value, 0, 2 * 630), *rest]))

    history = History(
        "conformance-framework",
        framework={"slug": "industry", "version": 1, "classes": ["A1", "unassessed"]},
        body_hook=hook,
    )
    history.release({key: code % 1260 for key, code in synthetic(rng, 6).items()})
    return one_sync(
        "refuse-format-2-code-past-its-classes",
        "refuse:bundle_format",
        "Format 2 with two classes: a record's code 1260 names a third class.",
        history,
    )


@case
def framework_malformed(rng: random.Random) -> Case:
    history = History(
        "conformance-framework",
        framework={"slug": "interpol-baseline", "version": 1, "classes": ["yes", "no"]},
    )
    history.release({key: code for key, code in synthetic(rng, 6).items()})
    return one_sync(
        "refuse-format-2-classes-without-unassessed",
        "refuse:manifest_malformed",
        "Format 2 whose framework's classes do not end with unassessed (manifest and header).",
        history,
    )


# --- writing -------------------------------------------------------------------------------------


def write(out: Path) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    expected: dict[str, Any] = {}
    for number, build in enumerate(CASES):
        rng = random.Random(SEED * 1000 + number)  # synthetic data, not a secret
        c = build(rng)
        if c.name in expected:
            raise SystemExit(f"duplicate case name {c.name}")
        directory = out / c.name
        (directory / "bundles").mkdir(parents=True)
        syncs = []
        for index, (now, plan) in enumerate(c.syncs, start=1):
            name = f"plan-{index}.json"
            (directory / name).write_bytes(canonical(plan) + b"\n")
            syncs.append({"now": ts(now), "plan": name})
        for sha, data in sorted(c.bundles.items()):
            (directory / "bundles" / sha).write_bytes(data)
        description = {
            "description": c.description,
            "synthetic": SYNTHETIC,
            "feed": c.feed,
            "pinned_root_keyids": sorted(k.keyid for k in c.pins),
            "pinned_threshold": c.pinned_threshold,
            "syncs": syncs,
        }
        (directory / "case.json").write_text(
            json.dumps(description, indent=2, sort_keys=True) + "\n"
        )
        expected[c.name] = {"expect": c.expect, "description": c.description}
    document = {
        "suite": "hashsync conformance suite",
        "seed": SEED,
        "libzstd": zstandard.ZSTD_VERSION,
        "synthetic": "every hash value is synthetic (seeded random bytes); every key is a TEST key",
        "cases": expected,
    }
    (out / "expected.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("var/conformance"))
    args = parser.parse_args()
    document = write(args.out)
    print(f"{len(document['cases'])} cases in {args.out}")


if __name__ == "__main__":
    main()
