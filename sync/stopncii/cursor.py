"""The timestamps a StopNCII client sees (each feed version's clock) and the signed page token
(``nextPageToken``) that carries where the next page starts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.core.cache import cache

from distribution.models import Feed, FeedVersion
from hashsync.errors import InvalidInput

MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a client can format
MAX_TOKEN_CHARS = 1_000
CURSOR_SALT = "hashsync.stopncii.page-token"
# A page token is for the client it was issued to, for a while: the pages after the first are
# not paced, so a token replayed forever would be a way around pacing.
CURSOR_MAX_AGE_SECONDS = 600
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
    """Where the next page starts (carried, signed, in ``nextPageToken``).

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


def token_encode(feed: Feed, cursor: Cursor, client_id: int) -> str:
    payload = {
        "f": feed.pk,
        "u": client_id,
        "s": 1 if cursor.snapshot else 0,
        "v": cursor.at.version,
        "c": cursor.at.clock,
        "k": cursor.key.hex() if cursor.key is not None else "",
        "n": cursor.floor,
    }
    return signing.dumps(payload, salt=CURSOR_SALT, compress=True)


def _is_int(value: Any, minimum: int, maximum: int) -> bool:
    return type(value) is int and minimum <= value <= maximum


def token_decode(feed: Feed, raw: str, client_id: int) -> Cursor:
    refused = InvalidInput(
        "nextPageToken is not a token this server issued for this feed; "
        "start again from startTimestamp without it.",
        code="invalid_page_token",
    )
    if len(raw) > MAX_TOKEN_CHARS:
        raise refused
    try:
        # dumps() timestamps what it signs; max_age refuses a token older than that.
        data = signing.loads(raw, salt=CURSOR_SALT, max_age=CURSOR_MAX_AGE_SECONDS)
    except (signing.BadSignature, ValueError):
        raise refused from None
    if (
        not isinstance(data, dict)
        or set(data) != {"f", "u", "s", "v", "c", "k", "n"}
        or data["f"] != feed.pk
        or data["u"] != client_id
        or data["s"] not in (0, 1)
        or not _is_int(data["v"], 1, 2**63 - 1)
        or not _is_int(data["c"], -(2**63), 2**63 - 1)
        or not _is_int(data["n"], 0, MAX_TIMESTAMP)
        or not isinstance(data["k"], str)
    ):
        raise refused
    try:
        key = bytes.fromhex(data["k"]) if data["k"] else None
    except ValueError:
        raise refused from None
    if (key is not None and len(key) != 32) or (data["s"] and key is None):
        raise refused
    return Cursor(bool(data["s"]), Clocked(data["v"], data["c"]), key, data["n"])
