"""The timestamps a StopNCII client sees (each feed version's clock) and the page token
(``nextPageToken``) that carries where the next page starts, encrypted: it holds the last hash
value served, and it travels in a URL."""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from distribution.models import Feed, FeedVersion
from hashsync.errors import InvalidInput
from hashsync.outages import fail_open_cache as cache

MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a client can format
MAX_TOKEN_CHARS = 1_000
# The HKDF label of the page token's key: no other use of SECRET_KEY derives the same key.
CURSOR_PURPOSE = b"hashsync.stopncii.page-token.v2"
NONCE_BYTES = 12
# A page token is for the client it was issued to, for a while: the pages after the first are
# not paced, so a token replayed forever would be a way around pacing.
CURSOR_MAX_AGE_SECONDS = 600
# Tokens are issued and read by different web nodes, whose clocks may differ a little.
CLOCK_SKEW_SECONDS = 60
CLOCK_MEMO_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Clocked:
    """A feed version with its clock: ``ts`` is the timestamp clients see for it."""

    version: int
    clock: int
    delta_sha256: str = ""

    @property
    def ts(self) -> int:
        return self.version + self.clock


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts (carried, encrypted, in ``nextPageToken``).

    Snapshot phase: ``at`` is the version the membership is being read at, ``key`` the last
    PDQ value served. Delta phase: ``at`` is the version of the last record served and ``key``
    that record's value, or ``key`` is None when ``at`` was served whole. ``floor`` is the
    ``nextSetTimestamp`` already announced in this paging run: later pages never go below it.
    """

    snapshot: bool
    at: Clocked
    key: bytes | None
    floor: int


def clocked_versions(
    feed_id: int, *, after: int = 0, clock: int | None = None
) -> Iterator[Clocked]:
    """The feed's versions above ``after`` in order, each with its clock. ``clock`` is the
    clock of ``after`` (None when starting from the beginning). Streams: bounded memory."""
    rows = (
        FeedVersion.objects.filter(feed_id=feed_id, version__gt=after)
        .order_by("version")
        .values_list("version", "created_at", "delta_sha256")
    )
    for version, created_at, delta_sha256 in rows.iterator(chunk_size=2000):
        lead = int(created_at.timestamp()) - version
        clock = lead if clock is None else max(clock, lead)
        yield Clocked(version, clock, delta_sha256)


def _memo_key(feed: Feed, ts: int) -> str:
    # The feed's creation time guards against a reused id (a development database recreated
    # under a cache that survived it).
    return f"hashsync:stopncii:clock:{feed.pk}:{feed.created_at:%Y%m%d%H%M%S%f}:{ts}"


def memo_put(feed: Feed, held: Clocked) -> None:
    """Remember which version a timestamp we announced stands for. The clock of a version is a
    function of published history, which never changes, so the entry can never be wrong."""
    cache.set(_memo_key(feed, held.ts), (held.version, held.clock), CLOCK_MEMO_SECONDS)


def locate(feed: Feed, start: int) -> tuple[Clocked | None, Iterator[Clocked]]:
    """The last version a client sending ``startTimestamp=start`` holds (None: it holds
    nothing) and the feed's versions after it. Without a memo entry this scans the feed's
    versions from the first (one streamed query)."""
    memo = cache.get(_memo_key(feed, start))
    if isinstance(memo, tuple) and len(memo) == 2:
        version, clock = memo
        return Clocked(version, clock), clocked_versions(feed.pk, after=version, clock=clock)
    held: Clocked | None = None
    versions = clocked_versions(feed.pk)
    for row in versions:
        if row.ts > start:
            return held, itertools.chain([row], versions)
        held = row
    return held, iter(())


def _token_keys() -> list[AESGCM]:
    """The page token's AES-GCM keys: derived (HKDF-SHA256, with this purpose as its label)
    from ``SECRET_KEY`` for new tokens, and from each of ``SECRET_KEY_FALLBACKS`` too for
    reading, so a key rotation does not refuse the tokens of fetches under way."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [_derive(secret) for secret in secrets]


@functools.lru_cache(maxsize=8)
def _derive(secret: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CURSOR_PURPOSE)
    return AESGCM(hkdf.derive(secret.encode()))


def _bound_to(feed: Feed, client_id: int) -> bytes:
    # Authenticated but not carried: a token opens only for the feed and client it was issued
    # to (a foreign one fails authentication, like a tampered one).
    return f"{feed.pk}:{client_id}".encode()


def token_encode(feed: Feed, cursor: Cursor, client_id: int) -> str:
    """``nextPageToken``: the cursor, encrypted and authenticated (AES-GCM), so it reads as
    random bytes: the last PDQ value served is in it, and a URL must never show a hash value.
    ``t`` is when it was issued (``CURSOR_MAX_AGE_SECONDS``)."""
    payload = {
        "s": 1 if cursor.snapshot else 0,
        "v": cursor.at.version,
        "c": cursor.at.clock,
        "k": cursor.key.hex() if cursor.key is not None else "",
        "n": cursor.floor,
        "t": int(time.time()),
    }
    plain = json.dumps(payload, separators=(",", ":")).encode()
    nonce = os.urandom(NONCE_BYTES)
    sealed = _token_keys()[0].encrypt(nonce, plain, _bound_to(feed, client_id))
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def _is_int(value: Any, minimum: int, maximum: int) -> bool:
    return type(value) is int and minimum <= value <= maximum


def _opened(feed: Feed, raw: str, client_id: int) -> Any:
    """The token's payload, or None if it is not one we sealed for this feed and client."""
    try:
        sealed = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (ValueError, binascii.Error):
        return None
    # One spelling per token: base64 ignores a last character's unused bits, so a changed
    # character could otherwise decode to the same bytes.
    if base64.urlsafe_b64encode(sealed).rstrip(b"=").decode() != raw:
        return None
    nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    if len(nonce) != NONCE_BYTES or not body:
        return None
    for key in _token_keys():
        try:
            plain = key.decrypt(nonce, body, _bound_to(feed, client_id))
        except InvalidTag:
            continue
        try:
            return json.loads(plain)
        except ValueError:
            return None
    return None


def token_decode(feed: Feed, raw: str, client_id: int) -> Cursor:
    refused = InvalidInput(
        "nextPageToken is not a token this server issued for this feed; "
        "start again from startTimestamp without it.",
        code="invalid_page_token",
    )
    if len(raw) > MAX_TOKEN_CHARS or not raw.isascii():
        raise refused
    data = _opened(feed, raw, client_id)
    if (
        not isinstance(data, dict)
        or set(data) != {"s", "v", "c", "k", "n", "t"}
        or data["s"] not in (0, 1)
        or not _is_int(data["v"], 1, 2**63 - 1)
        or not _is_int(data["c"], -(2**63), 2**63 - 1)
        or not _is_int(data["n"], 0, MAX_TIMESTAMP)
        or not _is_int(data["t"], 0, MAX_TIMESTAMP)
        or not isinstance(data["k"], str)
    ):
        raise refused
    # Expired, or issued further in the future than web nodes' clocks can disagree by.
    if not -CLOCK_SKEW_SECONDS <= time.time() - data["t"] <= CURSOR_MAX_AGE_SECONDS:
        raise refused
    try:
        key = bytes.fromhex(data["k"]) if data["k"] else None
    except ValueError:
        raise refused from None
    if (key is not None and len(key) != 32) or (data["s"] and key is None):
        raise refused
    return Cursor(bool(data["s"]), Clocked(data["v"], data["c"]), key, data["n"])
