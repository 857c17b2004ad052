"""The records of one ``FetchHashes`` page: the feed's PDQ membership (a client that holds
nothing) or the PDQ records of the delta bundles after the version a client holds."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from distribution.framework_grading import feed_framework
from distribution.models import Feed, FeedEntry
from distribution.storage import bundle_storage
from hashsync_client.format import (
    ALGORITHM_IDS,
    FrameworkRef,
    Op,
    Record,
    decode_grading,
    read_bundle,
    split_code,
)
from sync.stopncii.cursor import Clocked, Cursor, clocked_versions, locate

PDQ = "pdq"
SIGNAL_TYPE = "ImagePDQ"
# The name CSP feedback carries as its source: clients show it as the owner of the opinion.
FEEDBACK_SOURCE = "hashsync"
# Delta bundles one request reads at most, so a long run of versions without a PDQ record
# costs several quick requests rather than one slow one.
BUNDLES_PER_PAGE = 64
REMOVAL_TAGS = {
    Op.RETRACTED: "removed:retracted",
    Op.REGRADED_OUT: "removed:regraded_out",
    Op.HASH_REMOVED: "removed:hash_removed",
}


# --- Records -------------------------------------------------------------------------------------


def _baseline(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _listed(value: bytes, code: int, ts: int, framework: FrameworkRef | None) -> dict[str, Any]:
    grading, index = split_code(code)
    g = decode_grading(grading)
    # The entry's class in the feed's grading framework: named by a format-2 feed's bundles;
    # a format-1 feed is in the UK framework, whose class is the category.
    if framework is None:
        slug, klass = "uk", g.category
    else:
        slug, klass = f"{framework.slug}:v{framework.version}", framework.classes[index]
    tags = [
        # Redundant with hashStatus for clients that read it; kept for the ones that do not
        # (threatexchange 1.2.x: see docs/sync-api.md).
        "status:listed",
        f"category:{g.category}",
        f"age_group:{g.age_group}",
        f"baseline:{_baseline(g.baseline)}",
        f"content_type:{g.content_type}",
    ]
    if g.industry_class:
        tags.append(f"industry_class:{g.industry_class}")
    tags += [f"framework:{slug}", f"class:{klass}"]
    return _record(value, ts, status="Active", feedback="Blocked", tags=tags)


def _removed(value: bytes, op: Op, ts: int) -> dict[str, Any]:
    tags = ["status:removed", REMOVAL_TAGS[op]]
    return _record(value, ts, status="Deleted", feedback="Deleted", tags=tags)


def _record(
    value: bytes, ts: int, *, status: str, feedback: str, tags: list[str]
) -> dict[str, Any]:
    return {
        "lastModtimestamp": ts,
        "signalType": SIGNAL_TYPE,
        "hashValue": value.hex(),
        "hashStatus": status,
        "caseNumbers": {},
        "CSPFeedbacks": [{"source": FEEDBACK_SOURCE, "feedbackValue": feedback, "tags": tags}],
    }


def _delta_pdq(
    feed: Feed, at: Clocked, *, after: bytes | None, limit: int
) -> tuple[list[Record], FrameworkRef | None]:
    """Up to ``limit`` PDQ records of version ``at``'s delta bundle with a value above
    ``after``, and the framework its header names (format 2; None: format 1). A bundle is
    sorted by (algorithm id, value), so reading stops at its end of PDQ."""
    if not at.delta_sha256:
        raise RuntimeError(f"feed {feed.name} version {at.version} has no delta bundle")
    found: list[Record] = []
    with bundle_storage().open(at.delta_sha256) as handle:
        header, records = read_bundle(handle)
        if (header.kind, header.feed, header.to_version) != ("delta", feed.name, at.version):
            raise RuntimeError(f"bundle of feed {feed.name} version {at.version} is not its delta")
        for record in records:
            if ALGORITHM_IDS[record.algorithm] > ALGORITHM_IDS[PDQ]:
                break
            if record.algorithm != PDQ or (after is not None and record.value <= after):
                continue
            found.append(record)
            if len(found) == limit:
                break
    return found, header.framework


@dataclass
class Page:
    records: list[dict[str, Any]]
    next_set_timestamp: int
    cursor: Cursor | None  # None: nothing more in this run
    held: Clocked | None  # the version ``next_set_timestamp`` stands for, if it is one
    versions: tuple[int, int] | None  # lowest and highest version of the records (audit)
    snapshot_at: int | None = None


def _snapshot_page(feed: Feed, at: Clocked, *, after: bytes | None, size: int, floor: int) -> Page:
    """The feed's current PDQ members in value order (keyset paging on the unique index)."""
    rows = FeedEntry.objects.filter(feed=feed, algorithm=PDQ)
    if after is not None:
        rows = rows.filter(value__gt=after)
    batch = [
        (bytes(v), g) for v, g in rows.order_by("value").values_list("value", "grading")[: size + 1]
    ]
    framework = feed_framework(feed)
    records = [_listed(value, grading, at.ts, framework) for value, grading in batch[:size]]
    if len(batch) > size:
        # Until the whole membership is served the client holds no version: a client that
        # stops here and resumes from ``floor`` starts the membership again.
        cursor = Cursor(True, at, batch[size - 1][0], floor)
        return Page(records, floor, cursor, None, None, at.version)
    announced = max(floor, at.ts)
    return Page(records, announced, None, at if announced == at.ts else None, None, at.version)


def _delta_page(
    feed: Feed,
    versions: Iterator[Clocked],
    *,
    held: Clocked | None,
    resume: tuple[int, bytes] | None,
    size: int,
    floor: int,
) -> Page:
    """Records of the delta bundles of ``versions`` in (version, value) order, from ``resume``
    (version, last value served) if given. ``held`` is the last version served whole."""
    records: list[dict[str, Any]] = []
    first: int | None = None  # the versions the records came from, for the audit trail
    last = 0
    cursor: Cursor | None = None
    for opened, at in enumerate(versions):
        if opened == BUNDLES_PER_PAGE:
            assert held is not None  # every bundle read so far was served whole
            cursor = Cursor(False, held, None, max(floor, held.ts))
            break
        after = resume[1] if resume is not None and resume[0] == at.version else None
        # One record more than fits: it tells whether this version has more after the page.
        wanted = size + 1 - len(records)
        found, framework = _delta_pdq(feed, at, after=after, limit=wanted)
        fits = found[: wanted - 1] if len(found) == wanted else found
        for record in fits:
            if record.op == Op.UPSERT:
                records.append(_listed(record.value, record.grading, at.ts, framework))
            else:
                records.append(_removed(record.value, record.op, at.ts))
        if fits:
            first = at.version if first is None else first
            last = at.version
        if len(found) == wanted:
            if fits:
                cursor = Cursor(
                    False, at, fits[-1].value, floor if held is None else max(floor, held.ts)
                )
            else:
                assert held is not None  # the page filled up on an earlier version, served whole
                cursor = Cursor(False, held, None, max(floor, held.ts))
            break
        held = at
    announced = max(floor, held.ts) if held is not None else floor
    if cursor is not None:
        announced = cursor.floor
    stands_for = held if held is not None and announced == held.ts else None
    served = (first, last) if first is not None else None
    return Page(records, announced, cursor, stands_for, served)


def fetch_page(feed: Feed, *, start: int, size: int, cursor: Cursor | None) -> Page:
    """One ``FetchHashes`` answer for a client that sent ``startTimestamp=start`` (and the
    cursor of its ``nextPageToken``, if any)."""
    if feed.algorithms and PDQ not in feed.algorithms:
        return Page([], start, None, None, None)  # the feed never carries a PDQ hash
    if cursor is not None and cursor.snapshot:
        return _snapshot_page(
            feed, cursor.at, after=cursor.key, size=size, floor=max(start, cursor.floor)
        )
    if cursor is not None:
        floor = max(start, cursor.floor)
        if cursor.key is None:
            versions = clocked_versions(feed.pk, after=cursor.at.version, clock=cursor.at.clock)
            return _delta_page(feed, versions, held=cursor.at, resume=None, size=size, floor=floor)
        # Resume inside version ``at``: read from it again (its clock is the one carried).
        versions = clocked_versions(feed.pk, after=cursor.at.version - 1, clock=cursor.at.clock)
        return _delta_page(
            feed,
            versions,
            held=None,
            resume=(cursor.at.version, cursor.key),
            size=size,
            floor=floor,
        )
    held, versions = locate(feed, start)
    if held is not None:
        return _delta_page(feed, versions, held=held, resume=None, size=size, floor=start)
    # The client holds nothing: the membership, read at the newest version (whose clock needs
    # the scan to the end; a deque of one keeps memory bounded).
    newest = deque(versions, maxlen=1)
    if not newest:
        return Page([], start, None, None, None)  # not published yet
    return _snapshot_page(feed, newest[0], after=None, size=size, floor=start)
