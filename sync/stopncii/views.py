"""A StopNCII-compatible view of a feed, so that Meta's ``threatexchange`` CLI and
Hasher-Matcher-Actioner subscribe to hashsync without code (docs/sync-api.md, "StopNCII
compatibility").

``GET /api/v1/stopncii/<feed>/v1/FetchHashes?startTimestamp=&pageSize=&nextPageToken=`` answers
what StopNCII.org's ``FetchHashes`` answers, for the feed's PDQ hashes. The client's base-URL
override is ``…/api/v1/stopncii/<feed>/v1`` (its credentials are global to the exchange, and
its collaboration config holds nothing, so the feed has to be in the URL). The member token
travels in the ``x-functions-key`` and ``Ocp-Apim-Subscription-Key`` headers.

Order comes from releases, never from the wall-clock time of a change. The timestamp of feed
version ``v`` is its *clock*::

    ts(v) = v + max(epoch_seconds(u.created_at) - u  for the feed's versions u <= v)

the release time of ``v``, pushed forward just enough to be strictly increasing in ``v`` whatever
the clocks of the cutting hosts did (and at least ``v - u`` above the time of every earlier
version ``u``, so a version cut later always gets a larger timestamp). A client that sends
``startTimestamp=ts(v)`` holds exactly the feed's versions up to ``v``; it gets, in (version,
key) order, the PDQ records of the published delta bundles of the later versions — upserts as
``Active``, removals as ``Deleted``. A client whose ``startTimestamp`` is before the feed's first
version holds nothing: it gets the current membership instead (nothing to delete), stamped with
the version it was read at, and the deltas after that version on its next fetch.
"""

from __future__ import annotations

import hmac
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.core.cache import cache
from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from distribution.models import Feed, FeedEntry, FeedVersion
from distribution.storage import open_object
from distribution.sync_apis import MemberApi
from hashlist.audit import audit_record
from hashsync.errors import InvalidInput, NotAuthenticated, NotFound
from hashsync_client.format import ALGORITHM_IDS, Op, Record, decode_grading, read_bundle
from members import selectors
from members.auth import (
    MemberPrincipal,
    pace,
    principal_of,
    require_scope,
    token_authenticate,
)
from members.models import ApiToken, TokenScope

PDQ = "pdq"
SIGNAL_TYPE = "ImagePDQ"
# The name CSP feedback carries as its source: clients show it as the owner of the opinion.
FEEDBACK_SOURCE = "hashsync"
DEFAULT_PAGE_SIZE = 800  # what the threatexchange client asks for
MAX_PAGE_SIZE = 10_000
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a client can format
MAX_TOKEN_CHARS = 1_000
# Delta bundles one request reads at most, so a long run of versions without a PDQ record
# costs several quick requests rather than one slow one.
BUNDLES_PER_PAGE = 64
CURSOR_SALT = "hashsync.stopncii.page-token"
# A page token is for the client it was issued to, for a while: the pages after the first are
# not paced, so a token replayed forever would be a way around pacing.
CURSOR_MAX_AGE_SECONDS = 600
CLOCK_MEMO_SECONDS = 7 * 24 * 3600
CHALLENGE = 'x-functions-key realm="hashsync"'
REMOVAL_TAGS = {
    Op.RETRACTED: "removed:retracted",
    Op.REGRADED_OUT: "removed:regraded_out",
    Op.HASH_REMOVED: "removed:hash_removed",
}


# --- Authentication ------------------------------------------------------------------------------


class StopNCIIKeyAuthentication(BaseAuthentication):
    """The member token from ``x-functions-key`` and/or ``Ocp-Apim-Subscription-Key`` (the
    StopNCII client sends both; when both are present they must be the same token). Checked by
    ``members.auth.token_authenticate``, like a Bearer token: throttling of bad tokens,
    revocation, expiry and suspension apply unchanged."""

    HEADERS = ("HTTP_X_FUNCTIONS_KEY", "HTTP_OCP_APIM_SUBSCRIPTION_KEY")

    def authenticate_header(self, request: Request) -> str:
        return CHALLENGE

    def authenticate(self, request: Request) -> tuple[MemberPrincipal, ApiToken] | None:
        presented = [request.META[h].strip() for h in self.HEADERS if h in request.META]
        if not presented:
            return None  # DRF answers 401 not_authenticated with our challenge
        try:
            # Refused before any lookup, so it tells a guesser nothing and is not counted.
            if len(presented) == 2 and not hmac.compare_digest(
                presented[0].encode(), presented[1].encode()
            ):
                raise NotAuthenticated(
                    "The x-functions-key and Ocp-Apim-Subscription-Key headers must carry the "
                    "same member token."
                )
            return token_authenticate(
                request,
                presented[0],
                malformed="The x-functions-key and Ocp-Apim-Subscription-Key headers must "
                "carry a valid member token (hsk_…).",
            )
        except NotAuthenticated as refused:
            refused.headers["WWW-Authenticate"] = CHALLENGE
            raise


class StopNCIIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "distribution.stopncii.StopNCIIKeyAuthentication"
    name = "stopnciiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "x-functions-key"}


# --- Cursor and timestamps -----------------------------------------------------------------------


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


def _versions(feed_id: int, *, after: int = 0, clock: int | None = None) -> Iterator[Clocked]:
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


def _memo_put(feed: Feed, held: Clocked) -> None:
    """Remember which version a timestamp we announced stands for. The clock of a version is a
    function of published history, which never changes, so the entry can never be wrong."""
    cache.set(_memo_key(feed, held.ts), (held.version, held.clock), CLOCK_MEMO_SECONDS)


def _locate(feed: Feed, start: int) -> tuple[Clocked | None, Iterator[Clocked]]:
    """The last version a client sending ``startTimestamp=start`` holds (None: it holds
    nothing) and the feed's versions after it. Without a memo entry this scans the feed's
    versions from the first (one streamed query)."""
    memo = cache.get(_memo_key(feed, start))
    if isinstance(memo, tuple) and len(memo) == 2:
        version, clock = memo
        return Clocked(version, clock), _versions(feed.pk, after=version, clock=clock)
    held: Clocked | None = None
    versions = _versions(feed.pk)
    for row in versions:
        if row.ts > start:
            return held, itertools.chain([row], versions)
        held = row
    return held, iter(())


def _token_encode(feed: Feed, cursor: Cursor, client_id: int) -> str:
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


def _token_decode(feed: Feed, raw: str, client_id: int) -> Cursor:
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


# --- Records -------------------------------------------------------------------------------------


def _baseline(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _listed(value: bytes, grading: int, ts: int) -> dict[str, Any]:
    g = decode_grading(grading)
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


def _delta_pdq(feed: Feed, at: Clocked, *, after: bytes | None, limit: int) -> list[Record]:
    """Up to ``limit`` PDQ records of version ``at``'s delta bundle with a value above
    ``after``. A bundle is sorted by (algorithm id, value), so reading stops at its end of PDQ."""
    if not at.delta_sha256:
        raise RuntimeError(f"feed {feed.name} version {at.version} has no delta bundle")
    found: list[Record] = []
    with open_object(at.delta_sha256) as handle:
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
    return found


# --- Pages ---------------------------------------------------------------------------------------


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
    records = [_listed(value, grading, at.ts) for value, grading in batch[:size]]
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
        found = _delta_pdq(feed, at, after=after, limit=wanted)
        fits = found[: wanted - 1] if len(found) == wanted else found
        for record in fits:
            if record.op == Op.UPSERT:
                records.append(_listed(record.value, record.grading, at.ts))
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
            versions = _versions(feed.pk, after=cursor.at.version, clock=cursor.at.clock)
            return _delta_page(feed, versions, held=cursor.at, resume=None, size=size, floor=floor)
        # Resume inside version ``at``: read from it again (its clock is the one carried).
        versions = _versions(feed.pk, after=cursor.at.version - 1, clock=cursor.at.clock)
        return _delta_page(
            feed,
            versions,
            held=None,
            resume=(cursor.at.version, cursor.key),
            size=size,
            floor=floor,
        )
    held, versions = _locate(feed, start)
    if held is not None:
        return _delta_page(feed, versions, held=held, resume=None, size=size, floor=start)
    # The client holds nothing: the membership, read at the newest version (whose clock needs
    # the scan to the end; a deque of one keeps memory bounded).
    newest = deque(versions, maxlen=1)
    if not newest:
        return Page([], start, None, None, None)  # not published yet
    return _snapshot_page(feed, newest[0], after=None, size=size, floor=start)


# --- The view ------------------------------------------------------------------------------------


def _query_int(
    request: Request, name: str, *, default: int, minimum: int, maximum: int, code: str
) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and minimum <= int(raw) <= maximum):
        raise InvalidInput(
            f"{name} must be an integer from {minimum} to {maximum}.",
            code=code,
            details={"parameter": name, "minimum": minimum, "maximum": maximum},
        )
    return int(raw)


@transaction.atomic
def record_page_served(*, principal: MemberPrincipal, feed: Feed, page: Page) -> None:
    """Records handed to a member: on the audit trail, like the bundles of the sync API."""
    audit_record(
        actor=None,
        actor_label=principal.label,
        action="sync.stopncii",
        object_type="feed",
        object_id=feed.pk,
        after={
            "feed": feed.name,
            "records": len(page.records),
            "versions": list(page.versions) if page.versions else None,
            "snapshot_version": page.snapshot_at,
            "next_set_timestamp": page.next_set_timestamp,
            "token": principal.token.prefix,
        },
    )


_FEEDBACK = inline_serializer(
    "StopNCIIFeedback",
    {
        "source": serializers.CharField(),
        "feedbackValue": serializers.ChoiceField(choices=["Blocked", "Deleted"]),
        "tags": serializers.ListField(child=serializers.CharField()),
    },
)
_RECORD = inline_serializer(
    "StopNCIIHashRecord",
    {
        "lastModtimestamp": serializers.IntegerField(),
        "signalType": serializers.ChoiceField(choices=[SIGNAL_TYPE]),
        "hashValue": serializers.CharField(),
        "hashStatus": serializers.ChoiceField(choices=["Active", "Deleted"]),
        "caseNumbers": serializers.DictField(child=serializers.CharField()),
        "CSPFeedbacks": serializers.ListField(child=_FEEDBACK),
    },
)


class StopNCIIFetchHashesApi(MemberApi):
    """StopNCII ``FetchHashes`` over one feed's PDQ hashes (docs/sync-api.md, "StopNCII
    compatibility")."""

    authentication_classes = [StopNCIIKeyAuthentication]
    permission_classes = [require_scope(TokenScope.SYNC)]

    @extend_schema(
        operation_id="stopncii_fetch_hashes",
        parameters=[
            OpenApiParameter(
                "startTimestamp",
                int,
                description="The nextSetTimestamp of your last complete fetch (0: from nothing).",
            ),
            OpenApiParameter("pageSize", int, description=f"1..{MAX_PAGE_SIZE}, default 800."),
            OpenApiParameter("nextPageToken", str, description="From the previous page."),
        ],
        responses=inline_serializer(
            "StopNCIIFetchHashes",
            {
                "count": serializers.IntegerField(),
                "nextPageToken": serializers.CharField(allow_null=True),
                "nextSetTimestamp": serializers.IntegerField(),
                "hasMoreRecords": serializers.BooleanField(),
                "hashRecords": serializers.ListField(child=_RECORD),
            },
        ),
    )
    def get(self, request: Request, name: str) -> Response:
        principal = principal_of(request)
        start = _query_int(
            request,
            "startTimestamp",
            default=0,
            minimum=0,
            maximum=MAX_TIMESTAMP,
            code="invalid_start_timestamp",
        )
        size = _query_int(
            request,
            "pageSize",
            default=DEFAULT_PAGE_SIZE,
            minimum=1,
            maximum=MAX_PAGE_SIZE,
            code="invalid_page_size",
        )
        feed = selectors.entitled_feed(principal.member, name)
        if feed is None:
            raise NotFound("You receive no feed of that name.")
        raw_token = request.query_params.get("nextPageToken", "")
        cursor = _token_decode(feed, raw_token, principal.client.pk) if raw_token else None
        if cursor is None:
            # Only the first page of a fetch is paced: the client pages without pausing.
            pace(principal, f"stopncii:{feed.pk}")
        page = fetch_page(feed, start=start, size=size, cursor=cursor)
        if page.held is not None:
            _memo_put(feed, page.held)
        if page.records:
            record_page_served(principal=principal, feed=feed, page=page)
        return Response(
            {
                "count": len(page.records),
                "nextPageToken": (
                    _token_encode(feed, page.cursor, principal.client.pk) if page.cursor else None
                ),
                "nextSetTimestamp": page.next_set_timestamp,
                "hasMoreRecords": page.cursor is not None,
                "hashRecords": page.records,
            }
        )
