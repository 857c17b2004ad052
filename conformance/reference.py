#!/usr/bin/env python3
"""A deliberately small hashsync client verifier, written from the specifications alone:
docs/bundle-format.md, docs/signing.md and docs/sync-api.md. Standard library, ``cryptography``
and ``zstandard``; it imports nothing from ``hashsync_client``, so the conformance suite pins
what the documents say rather than what one implementation does.

    python conformance/reference.py CASE_DIR     # prints "accept" or "refuse:<error class>"

It plays every sync of the case (docs/conformance.md) against a list held in memory. Not
covered, on purpose: the history chain of signing.md §4 check 10, re-pinning after a pruned
keyring chain, and the reference client's local limits (``max_entries``, bundle size, manifest
lifetime); the suite does not exercise them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import zstandard
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

KEYRING_TYPE = "application/vnd.hashsync.keyring+json"
MANIFEST_TYPE = "application/vnd.hashsync.manifest+json"
MAX_ENVELOPE = 65_536
MAX_INT = 2**53 - 1
CLOCK_SKEW = timedelta(minutes=5)
LENGTHS = {1: 16, 2: 20, 3: 32, 4: 32, 5: 144}
BLOCK = 65_536
MAX_WINDOW = 8 << 20
GRADINGS = 630
# Format 2 (bundle-format.md §3.1): the framework a feed's classes are in.
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
CLASS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}")
HEX64 = re.compile(r"[0-9a-f]{64}")
FEED_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
B64_RE = re.compile(r"(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}")


class Refused(Exception):
    """The case is refused with this error class (docs/conformance.md)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# --- canonical JSON (signing.md §1) ------------------------------------------------------------


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate key")
    return dict(pairs)


def _integer(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_INT:
        raise ValueError("integer out of range")
    return value


def _no_number(text: str) -> Any:
    raise ValueError("not an integer")


def strict_json(data: bytes) -> Any:
    return json.loads(
        data.decode("utf-8"),
        object_pairs_hook=_pairs,
        parse_int=_integer,
        parse_float=_no_number,
        parse_constant=_no_number,
    )


def canonical_object(payload: bytes, error: str) -> dict[str, Any]:
    try:
        obj = strict_json(payload)
        if not isinstance(obj, dict) or canonical(obj) != payload:
            raise ValueError("not canonical")
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        raise Refused(error) from None
    return obj


def is_int(value: Any, minimum: int = 0) -> bool:
    return type(value) is int and minimum <= value <= MAX_INT


def timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or not TIME_RE.fullmatch(value):
        raise ValueError("bad timestamp")
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --- envelopes (signing.md §2) -----------------------------------------------------------------


def b64(value: Any) -> bytes:
    if not isinstance(value, str) or not B64_RE.fullmatch(value):
        raise Refused("envelope_malformed")
    if value.endswith("=") and len(value) % 4:
        raise Refused("envelope_malformed")
    bare = value.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        raw = base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("envelope_malformed") from None
    if base64.b64encode(raw).decode().rstrip("=") != bare:
        raise Refused("envelope_malformed")
    return raw


@dataclass
class Envelope:
    payload: bytes
    payload_type: str
    signatures: list[tuple[str, bytes]]

    def signers(self, keys: dict[str, Ed25519PublicKey]) -> set[str]:
        kind = self.payload_type.encode()
        message = b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(self.payload), self.payload)
        found = set()
        for keyid, sig in self.signatures:
            if keyid in keys and keyid not in found:
                try:
                    keys[keyid].verify(sig, message)
                    found.add(keyid)
                except InvalidSignature:
                    pass
        return found


def open_envelope(raw: bytes, payload_type: str) -> Envelope:
    if len(raw) > MAX_ENVELOPE:
        raise Refused("envelope_too_large")
    try:
        obj = strict_json(raw)
    except (ValueError, RecursionError):
        raise Refused("envelope_malformed") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("payloadType"), str):
        raise Refused("envelope_malformed")
    if obj["payloadType"] != payload_type:
        raise Refused("wrong_payload_type")
    payload = b64(obj.get("payload"))
    if not isinstance(obj.get("signatures"), list):
        raise Refused("envelope_malformed")
    signatures = []
    for entry in obj["signatures"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("keyid"), str):
            raise Refused("envelope_malformed")
        signatures.append((entry["keyid"], b64(entry.get("sig"))))
    return Envelope(payload, payload_type, signatures)


# --- keyrings (signing.md §3) ------------------------------------------------------------------


@dataclass
class Keyring:
    version: int
    expires_at: datetime
    threshold: int
    roots: dict[str, Ed25519PublicKey]
    online: dict[str, tuple[Ed25519PublicKey, datetime, datetime]]


def public_key(entry: Any) -> tuple[str, Ed25519PublicKey]:
    if not isinstance(entry, dict) or not isinstance(entry.get("keyid"), str):
        raise ValueError("key entry")
    text = entry["public_key"]
    raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    if len(raw) != 32 or base64.b64encode(raw).decode() != text:
        raise ValueError("public key")
    if hashlib.sha256(raw).hexdigest() != entry["keyid"]:
        raise ValueError("keyid is not the SHA-256 of its public key")
    return entry["keyid"], Ed25519PublicKey.from_public_bytes(raw)


def parse_keyring(payload: bytes) -> Keyring:
    obj = canonical_object(payload, "keyring_malformed")
    try:
        if obj["type"] != "hashsync/keyring" or not is_int(obj["version"], 1):
            raise ValueError("type or version")
        issued, expires = timestamp(obj["issued_at"]), timestamp(obj["expires_at"])
        root = obj["root"]
        if expires <= issued or not isinstance(root, dict) or not isinstance(root["keys"], list):
            raise ValueError("root")
        roots = dict(public_key(entry) for entry in root["keys"])
        if not isinstance(obj["signing_keys"], list):
            raise ValueError("signing_keys")
        online = {}
        for entry in obj["signing_keys"]:
            keyid, key = public_key(entry)
            start, end = timestamp(entry["valid_from"]), timestamp(entry["valid_until"])
            if end <= start or keyid in online:
                raise ValueError("window or duplicate")
            online[keyid] = (key, start, end)
        threshold = root["threshold"]
        if len(roots) != len(root["keys"]) or set(roots) & set(online):
            raise ValueError("duplicate key")
        if not is_int(threshold, 1) or threshold > len(roots):
            raise ValueError("threshold")
    except (KeyError, TypeError, ValueError):
        raise Refused("keyring_malformed") from None
    return Keyring(obj["version"], expires, threshold, roots, online)


def verify_chain(
    raws: list[bytes], pins: set[str], pinned_threshold: int, now: datetime, held: int
) -> Keyring:
    if not raws:
        raise Refused("keyring_chain_empty")
    anchor = open_envelope(raws[0], KEYRING_TYPE)
    trusted = parse_keyring(anchor.payload)
    pinned = {k: v for k, v in trusted.roots.items() if k in pins}
    if len(anchor.signers(pinned)) < max(trusted.threshold, pinned_threshold):
        raise Refused("untrusted_root")
    for raw in raws[1:]:
        envelope = open_envelope(raw, KEYRING_TYPE)
        if len(envelope.signers(trusted.roots)) < trusted.threshold:
            raise Refused("signature_threshold")
        candidate = parse_keyring(envelope.payload)
        if candidate.version <= trusted.version:
            raise Refused("rollback")
        if candidate.version != trusted.version + 1:
            raise Refused("version_gap")
        if len(envelope.signers(candidate.roots)) < candidate.threshold:
            raise Refused("signature_threshold")
        trusted = candidate
    if trusted.expires_at <= now:
        raise Refused("keyring_expired")
    if trusted.version < held:
        raise Refused("rollback")
    return trusted


# --- manifests (signing.md §4) -----------------------------------------------------------------

MANIFEST_FIELDS = (
    *("type", "format", "feed", "version", "previous_manifest_sha256", "issued_at"),
    *("expires_at", "entry_count", "state_digest", "delta", "snapshot"),
)


def framework_ok(slug: Any, version: Any, classes: Any) -> bool:
    """A format-2 framework: slug, rule version, and 2-17 distinct classes, "unassessed" last."""
    return (
        isinstance(slug, str)
        and bool(SLUG_RE.fullmatch(slug))
        and is_int(version, 1)
        and isinstance(classes, list)
        and 2 <= len(classes) <= 17
        and all(isinstance(c, str) and CLASS_RE.fullmatch(c) for c in classes)
        and len(set(classes)) == len(classes)
        and classes[-1] == "unassessed"
    )


def manifest_framework(m: dict[str, Any]) -> tuple[str, int, tuple[str, ...]] | None:
    found = m.get("framework")
    return None if found is None else (found["slug"], found["version"], tuple(found["classes"]))


def check_fields(m: dict[str, Any]) -> None:
    if any(name not in m for name in MANIFEST_FIELDS) or m["type"] != "hashsync/manifest":
        raise ValueError("fields")
    if not isinstance(m["feed"], str) or not m["feed"] or not is_int(m["version"]):
        raise ValueError("feed or version")
    previous = m["previous_manifest_sha256"]
    if previous is not None and not (isinstance(previous, str) and HEX64.fullmatch(previous)):
        raise ValueError("previous")
    if timestamp(m["expires_at"]) <= timestamp(m["issued_at"]) or not is_int(m["entry_count"]):
        raise ValueError("times or count")
    if not isinstance(m["state_digest"], str) or not m["state_digest"]:
        raise ValueError("state_digest")
    for name, extra, bound in (("delta", "from_version", "<"), ("snapshot", "version", "<=")):
        ref = m[name]
        if ref is None:
            continue
        number = "records" if name == "delta" else "size"
        if not isinstance(ref, dict) or not all(
            is_int(ref.get(k)) for k in (extra, "size", number)
        ):
            raise ValueError(name)
        if not (isinstance(ref.get("sha256"), str) and HEX64.fullmatch(ref["sha256"])):
            raise ValueError(name)
        if ref[extra] > m["version"] or (bound == "<" and ref[extra] == m["version"]):
            raise ValueError(name)
    if "framework" in m:
        found = m["framework"]
        if not isinstance(found, dict) or set(found) != {"slug", "version", "classes"}:
            raise ValueError("framework")
        if not framework_ok(found["slug"], found["version"], found["classes"]):
            raise ValueError("framework")


def signed_manifest(raw: bytes, keyring: Keyring) -> dict[str, Any]:
    """Checks 2-4: signed by an online key valid at ``issued_at``, well-formed."""
    envelope = open_envelope(raw, MANIFEST_TYPE)
    signers = envelope.signers({k: v[0] for k, v in keyring.online.items()})
    if not signers:
        raise Refused("signature_threshold")
    m = canonical_object(envelope.payload, "manifest_malformed")
    if type(m.get("format")) is not int or m["format"] != 1:
        raise Refused("unsupported_format")
    try:
        check_fields(m)
    except (ValueError, TypeError):
        raise Refused("manifest_malformed") from None
    issued = timestamp(m["issued_at"])
    if not any(keyring.online[k][1] <= issued < keyring.online[k][2] for k in signers):
        raise Refused("key_not_valid")
    return m


def history_manifest(raw: bytes, keyring: Keyring, feed: str) -> dict[str, Any]:
    """Checks 2-4 and 7, for the manifests of a plan's steps: history, possibly expired."""
    m = signed_manifest(raw, keyring)
    if m["feed"] != feed:
        raise Refused("wrong_feed")
    return m


def fresh_manifest(raw: bytes, keyring: Keyring, feed: str, now: datetime, held: int) -> dict:
    """Checks 2-8 of signing.md §4 for the newest manifest of a plan (1 is the chain's)."""
    m = signed_manifest(raw, keyring)
    if timestamp(m["issued_at"]) > now + CLOCK_SKEW:
        raise Refused("issued_in_future")
    if timestamp(m["expires_at"]) <= now:
        raise Refused("manifest_expired")
    if m["feed"] != feed:
        raise Refused("wrong_feed")
    if m["version"] < held:
        raise Refused("rollback")
    return m


# --- LtHash16 (bundle-format.md §11) -----------------------------------------------------------


class LtHash:
    """Lane sums kept in two big integers (added, removed) with 64-bit lanes, so that no lane
    carries into the next; reduced modulo 2^16 only when the digest is asked for."""

    def __init__(self) -> None:
        self.added = 0
        self.removed = 0

    @staticmethod
    def _wide(alg: int, value: bytes, grading: int) -> int:
        element = bytes([alg]) + value + grading.to_bytes(2, "big")
        lanes = hashlib.shake_128(b"hashsync-lthash-v1" + element).digest(2048)
        wide = bytearray(8192)
        wide[0::8] = lanes[0::2]
        wide[1::8] = lanes[1::2]
        return int.from_bytes(wide, "little")

    def add(self, alg: int, value: bytes, grading: int) -> None:
        self.added += self._wide(alg, value, grading)

    def remove(self, alg: int, value: bytes, grading: int) -> None:
        self.removed += self._wide(alg, value, grading)

    def digest(self) -> str:
        plus = self.added.to_bytes(8192 + 16, "little")
        minus = self.removed.to_bytes(8192 + 16, "little")
        state = bytearray()
        for i in range(0, 8192, 8):
            lane = int.from_bytes(plus[i : i + 8], "little") - int.from_bytes(
                minus[i : i + 8], "little"
            )
            state += (lane % 65536).to_bytes(2, "little")
        return hashlib.sha256(state).hexdigest()


# --- bundles (bundle-format.md) ----------------------------------------------------------------


def max_body(count: int) -> int:
    return 1 + (-(-count // BLOCK) + 5) * 520 + count * 149


def read_header(
    data: bytes,
    expected: tuple[str, str, int, int, int],
    framework: tuple[str, int, tuple[str, ...]] | None,
) -> tuple[int, int]:
    """Check the header and its match with the step and with the framework its signed manifest
    names; return where the zstd frame starts and how many codes a record may carry."""
    if len(data) < 8 or data[:4] != b"HSB1":
        raise Refused("bundle_format")
    size = int.from_bytes(data[4:8], "little")
    text = data[8 : 8 + size]
    if not 2 <= size <= 4096 or len(text) != size:
        raise Refused("bundle_format")
    try:
        doc = json.loads(text.decode("ascii"))
    except ValueError:
        raise Refused("bundle_format") from None
    keys = {"format", "kind", "feed", "from_version", "to_version", "record_count"}
    if isinstance(doc, dict) and doc.get("format") == 2 and type(doc["format"]) is int:
        keys |= {"framework", "framework_version", "classes"}
    if not isinstance(doc, dict) or set(doc) != keys or canonical(doc) != text:
        raise Refused("bundle_format")
    numbers = (doc["from_version"], doc["to_version"], doc["record_count"])
    if type(doc["format"]) is not int or doc["format"] not in (1, 2):
        raise Refused("bundle_format")
    if not all(map(is_int, numbers)):
        raise Refused("bundle_format")
    named = None
    if doc["format"] == 2:
        if not framework_ok(doc["framework"], doc["framework_version"], doc["classes"]):
            raise Refused("bundle_format")
        named = (doc["framework"], doc["framework_version"], tuple(doc["classes"]))
    if not isinstance(doc["feed"], str) or not FEED_RE.fullmatch(doc["feed"]):
        raise Refused("bundle_format")
    kind, start, end = doc["kind"], doc["from_version"], doc["to_version"]
    if not ((kind == "snapshot" and start == 0) or (kind == "delta" and start < end)):
        raise Refused("bundle_format")
    if (doc["feed"], kind, start, end, doc["record_count"]) != expected or named != framework:
        raise Refused("bundle_header")
    return 8 + size, GRADINGS * (len(named[2]) if named else 1)


def window_size(frame: bytes) -> int:
    descriptor = frame[4]
    fcs_bytes = (1 if descriptor & 0x20 else 0, 2, 4, 8)[descriptor >> 6]
    if descriptor & 0x20:  # single segment: the window is the content size
        raw = frame[5 : 5 + fcs_bytes]
        if len(raw) != fcs_bytes:
            raise Refused("bundle_format")
        return int.from_bytes(raw, "little") + (256 if fcs_bytes == 2 else 0)
    if len(frame) < 6:
        raise Refused("bundle_format")
    log, mantissa = 10 + (frame[5] >> 3), frame[5] & 7
    return (1 << log) + ((1 << log) >> 3) * mantissa


def decompress(frame: bytes, limit: int) -> bytes:
    if len(frame) < 5 or frame[:4] != b"\x28\xb5\x2f\xfd":
        raise Refused("bundle_format")
    if not frame[4] & 0x04 or frame[4] & 0x0B or window_size(frame) > MAX_WINDOW:
        raise Refused("bundle_format")
    decoder = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).decompressobj()
    out = bytearray()
    try:
        for at in range(0, len(frame), 1024):
            out += decoder.decompress(frame[at : at + 1024])
            if len(out) > limit:
                raise Refused("bundle_format")
            if decoder.eof:
                if decoder.unused_data or at + 1024 < len(frame):
                    raise Refused("bundle_format")
                return bytes(out)
    except zstandard.ZstdError:
        raise Refused("bundle_format") from None
    raise Refused("bundle_format")  # the frame never ended


class Body:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise Refused("bundle_format")
        self.at += n
        return self.data[self.at - n : self.at]

    def u16s(self, n: int) -> list[int]:
        raw = self.take(2 * n)
        return [int.from_bytes(raw[i : i + 2], "little") for i in range(0, 2 * n, 2)]


def varints(column: bytes, n: int) -> list[int]:
    values, value, shift, length = [], 0, 0, 0
    for byte in column:
        value |= (byte & 0x7F) << shift
        shift, length = shift + 7, length + 1
        if length > 5 or (length > 1 and byte == 0):
            raise Refused("bundle_format")
        if not byte & 0x80:
            if value >= 1 << 32:
                raise Refused("bundle_format")
            values.append(value)
            value, shift, length = 0, 0, 0
    if length or len(values) != n:
        raise Refused("bundle_format")
    return values


def records(
    body: bytes, kind: str, count: int, codes: int = GRADINGS
) -> list[tuple[int, bytes, int, int]]:
    """(algorithm id, value, op, code) of every record, every check of §9 done; a code is
    below ``codes`` (630 in format 1, 630 per class in format 2)."""
    out: list[tuple[int, bytes, int, int]] = []
    reader = Body(body)
    previous: tuple[int, bytes] | None = None
    previous_full = True
    while (alg := reader.take(1)[0]) != 0:
        if alg not in LENGTHS:
            raise Refused("bundle_format")
        fixed = reader.take(9)
        n = int.from_bytes(fixed[0:4], "little")
        prefix_size = int.from_bytes(fixed[4:8], "little")
        k = fixed[8]
        if not 1 <= n <= BLOCK or len(out) + n > count or not n <= prefix_size <= 5 * n:
            raise Refused("bundle_format")
        if previous and (alg < previous[0] or (alg == previous[0] and not previous_full)):
            raise Refused("bundle_format")
        if not 1 <= k <= min(n, 255):
            raise Refused("bundle_format")
        palette = reader.u16s(k)
        if max(palette) >= codes or len(set(palette)) != k:
            raise Refused("bundle_format")
        ops = reader.take(n)
        if max(ops) > 3 or (kind == "snapshot" and any(ops)):
            raise Refused("bundle_format")
        index = reader.take(n)
        escaped = index.count(255) if k == 255 else 0
        if k < 255 and max(index) >= k:
            raise Refused("bundle_format")
        if len({i for i in index if i != 255 or k < 255}) != k:
            raise Refused("bundle_format")  # an unused palette entry
        escapes = iter(reader.u16s(escaped))
        gradings = [palette[i] if i < k else next(escapes) for i in index]
        if max(gradings) >= codes or any(op and g for op, g in zip(ops, gradings, strict=True)):
            raise Refused("bundle_format")
        prefix = 0
        tail_size = LENGTHS[alg] - 4
        gaps = varints(reader.take(prefix_size), n)
        tails = reader.take(n * tail_size)
        for i, gap in enumerate(gaps):
            prefix += gap
            if prefix >= 1 << 32:
                raise Refused("bundle_format")
            key = (alg, prefix.to_bytes(4, "big") + tails[i * tail_size : (i + 1) * tail_size])
            if previous is not None and not previous < key:
                raise Refused("bundle_format")
            out.append((alg, key[1], ops[i], gradings[i]))
            previous = key
        previous_full = n == BLOCK
    if len(out) != count or reader.at != len(body):
        raise Refused("bundle_format")
    return out


# --- the sync (sync-api.md) --------------------------------------------------------------------


@dataclass
class Held:
    version: int = 0
    entries: dict[tuple[int, bytes], int] = field(default_factory=dict)
    lthash: LtHash = field(default_factory=LtHash)
    keyring_version: int = 0
    highest_manifest: int = 0


def plan_manifest(obj: Any) -> bytes:
    if not isinstance(obj, dict):
        raise Refused("plan_malformed")
    return canonical(obj)


def sync(case: Path, plan: dict[str, Any], now: datetime, held: Held, pins: dict) -> None:
    feed = pins["feed"]
    if plan.get("feed") != feed or plan.get("from_version") != held.version:
        raise Refused("plan_malformed")
    if not isinstance(plan.get("keyrings"), list) or not isinstance(plan.get("steps"), list):
        raise Refused("plan_malformed")
    if plan.get("manifest") is None:
        if held.version or held.highest_manifest or plan.get("steps") or plan.get("version"):
            raise Refused("plan_mismatch")
        return
    keyring = verify_chain(
        [plan_manifest(k) for k in plan["keyrings"]],
        set(pins["pinned_root_keyids"]),
        pins["pinned_threshold"],
        now,
        held.keyring_version,
    )
    newest = fresh_manifest(
        plan_manifest(plan["manifest"]),
        keyring,
        feed,
        now,
        max(held.version, held.highest_manifest),
    )
    if newest["version"] != plan["version"]:
        raise Refused("plan_mismatch")
    steps = []
    position = held.version
    for index, step in enumerate(plan["steps"]):
        if step["kind"] == "snapshot":
            if index or step["from_version"]:
                raise Refused("plan_mismatch")
            position = 0
        if step["from_version"] != position or not position < step["to_version"] <= plan["version"]:
            raise Refused("plan_mismatch")
        m = history_manifest(plan_manifest(step["manifest"]), keyring, feed)
        if m["version"] != step["to_version"]:
            raise Refused("plan_mismatch")
        if step["kind"] == "delta":
            ref = m["delta"] or {}
            named = (ref.get("from_version"), ref.get("sha256"), ref.get("size"))
            count: Any = ref.get("records")
            if step.get("records") is not None and step["records"] != count:
                raise Refused("plan_mismatch")
        else:
            ref = newest["snapshot"] or {}
            named = (
                0 if ref.get("version") == step["to_version"] else None,
                ref.get("sha256"),
                ref.get("size"),
            )
            count = m["entry_count"]
        if named != (step["from_version"], step["sha256"], step["size"]):
            raise Refused("plan_mismatch")
        steps.append((step, m, count))
        position = step["to_version"]
    if steps and (
        position != newest["version"] or steps[-1][1]["state_digest"] != newest["state_digest"]
    ):
        raise Refused("plan_mismatch")
    status = plan["status"]
    if (status == "up_to_date") != (not steps) or (
        status == "up_to_date" and newest["version"] != held.version
    ):
        raise Refused("plan_mismatch")
    if steps and (status == "snapshot") != (steps[0][0]["kind"] == "snapshot"):
        raise Refused("plan_mismatch")
    held.keyring_version = keyring.version
    held.highest_manifest = max(held.highest_manifest, newest["version"])
    if not steps and newest["state_digest"] != held.lthash.digest():
        raise Refused("state_mismatch")
    for step, m, count in steps:
        path = case / "bundles" / step["sha256"]
        data = path.read_bytes() if path.is_file() else b""
        if len(data) != step["size"] or hashlib.sha256(data).hexdigest() != step["sha256"]:
            raise Refused("bundle_mismatch")
        expected = (feed, step["kind"], step["from_version"], step["to_version"], count)
        start, codes = read_header(data, expected, manifest_framework(m))
        body = decompress(data[start:], max_body(count))
        if step["kind"] == "snapshot":
            entries: dict[tuple[int, bytes], int] = {}
            lthash = LtHash()
        else:
            entries, lthash = dict(held.entries), LtHash()
            lthash.added, lthash.removed = held.lthash.added, held.lthash.removed
        for alg, value, op, grading in records(body, step["kind"], count, codes):
            old = entries.pop((alg, value), None)
            if old is not None:
                lthash.remove(alg, value, old)
            if op == 0:
                entries[(alg, value)] = grading
                lthash.add(alg, value, grading)
        if lthash.digest() != m["state_digest"] or len(entries) != m["entry_count"]:
            raise Refused("state_mismatch")
        held.version, held.entries, held.lthash = step["to_version"], entries, lthash


def run(case: Path) -> str:
    description = json.loads((case / "case.json").read_text())
    held = Held()
    try:
        for item in description["syncs"]:
            plan = json.loads((case / item["plan"]).read_bytes())
            sync(case, plan, timestamp(item["now"]), held, description)
    except Refused as refusal:
        return f"refuse:{refusal.kind}"
    except (KeyError, TypeError, AttributeError):
        return "refuse:plan_malformed"  # the plan lacks a member or has one of the wrong type
    return "accept"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: reference.py CASE_DIR")
    print(run(Path(sys.argv[1])))
