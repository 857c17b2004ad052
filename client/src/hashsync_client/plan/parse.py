"""Stage 1 of reading the server: the JSON has the shape ``docs/sync-api.md`` gives it (types,
ranges), or ``BadResponse``. Nothing here is trusted yet; ``verify`` does that."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hashsync_client.errors import BadResponse
from hashsync_client.signing import canonical_json

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_FEED_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_VERSION = 2**63 - 1
STATUSES = ("up_to_date", "deltas", "snapshot")


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
