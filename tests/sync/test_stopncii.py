"""The StopNCII-compatible FetchHashes endpoint (docs/sync-api.md, "StopNCII compatibility"):
paging, deletions, the monotonic timestamp, authentication through the StopNCII key headers,
entitlement, malformed queries — and Meta's real ``threatexchange`` client against a live
server.

Synthetic data only: every hash is random bytes from ``tests.conftest.synthetic``.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import os
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from audit.models import AuditEvent
from distribution import releases
from distribution.models import Feed, FeedEntry, FeedVersion
from hashlist import services
from hashlist.models import Entry
from members import services as member_services
from members import tokens
from members.models import ApiToken
from sync.stopncii import cursor, paging
from tests.conftest import synthetic
from tests.factories import approved_entry, member_with_token
from tests.utils import assert_error

pytestmark = pytest.mark.django_db

FEED = "pdq-category-a"


@pytest.fixture(autouse=True)
def _no_pacing(settings: Any) -> None:
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0


def url(feed: str = FEED) -> str:
    return f"/api/v1/stopncii/{feed}/v1/FetchHashes"


def keys(token: str) -> dict[str, str]:
    """Both headers, as the threatexchange client sends them."""
    return {"HTTP_X_FUNCTIONS_KEY": token, "HTTP_OCP_APIM_SUBSCRIPTION_KEY": token}


def pdq_entry(analyst: Any, reviewer: Any, category: str = "A", **extra: Any) -> Entry:
    hashes = [{"algorithm": "pdq", "value": synthetic("pdq")}, *extra.pop("more_hashes", [])]
    return approved_entry(analyst, reviewer, hashes=hashes, category=category, **extra)


def pdq_of(entry: Entry) -> str:
    return bytes(entry.hashes.get(algorithm="pdq").value).hex()


def retract(analyst: Any, reviewer: Any, entry: Entry) -> None:
    proposal = services.proposal_retract(
        actor=analyst, entry_id=entry.pk, reason="synthetic test: found to be wrong"
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)


def listed() -> set[str]:
    """The PDQ members of the feed now, as lowercase hex."""
    rows = FeedEntry.objects.filter(feed__name=FEED, algorithm="pdq").values_list(
        "value", flat=True
    )
    return {bytes(v).hex() for v in rows}


class Subscriber:
    """What the threatexchange client does with FetchHashes: page with the token until
    hasMoreRecords is false, replace each hash's record by the newer one, drop Deleted ones,
    and keep the last page's nextSetTimestamp as its checkpoint (checking that it never goes
    back, as the client asserts)."""

    def __init__(self, http: Any, token: str, feed: str = FEED, page_size: int = 800) -> None:
        self.http = http
        self.token = token
        self.feed = feed
        self.page_size = page_size
        self.checkpoint = 10  # threatexchange's StopNCIIAPI.DEFAULT_START_TIME
        self.held: dict[str, dict[str, Any]] = {}
        self.pages: list[dict[str, Any]] = []

    def page(self, token: str = "") -> dict[str, Any]:
        params: dict[str, Any] = {"startTimestamp": self.checkpoint, "pageSize": self.page_size}
        if token:
            params["nextPageToken"] = token
        response = self.http.get(url(self.feed), params, **keys(self.token))
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        assert body["count"] == len(body["hashRecords"])
        assert body["nextSetTimestamp"] >= (
            self.pages[-1]["nextSetTimestamp"] if token else self.checkpoint
        )
        self.pages.append(body)
        for record in body["hashRecords"]:
            assert record["signalType"] == "ImagePDQ"
            if record["hashStatus"] == "Deleted":
                self.held.pop(record["hashValue"], None)
            else:
                assert record["hashStatus"] == "Active"
                self.held[record["hashValue"]] = record
        return body

    def fetch(self, *, stop_after: int | None = None) -> list[dict[str, Any]]:
        """One fetch; ``stop_after`` pages simulates an interrupted one (the client keeps the
        last page's nextSetTimestamp as its checkpoint, and no page token)."""
        first = len(self.pages)
        body = self.page()
        while body["hasMoreRecords"]:
            if stop_after is not None and len(self.pages) - first >= stop_after:
                break
            assert body["nextPageToken"]
            body = self.page(body["nextPageToken"])
        if not body["hasMoreRecords"]:
            assert body["nextPageToken"] is None
        self.checkpoint = body["nextSetTimestamp"]
        return self.pages[first:]


@pytest.fixture
def world(analyst: Any, reviewer: Any, member_admin: Any, api: Any) -> dict[str, Any]:
    Feed.objects.create(name=FEED, algorithms=["pdq"], categories=["A"])
    Feed.objects.create(name="pdq-category-b", algorithms=["pdq"], categories=["B"])
    Feed.objects.create(name="md5-all", algorithms=["md5"])
    entries = [pdq_entry(analyst, reviewer) for _ in range(3)]
    other = pdq_entry(analyst, reviewer, category="B")
    md5_only = approved_entry(analyst, reviewer)  # category A, but no PDQ hash
    releases.release_cut()
    _, token = member_with_token(member_admin, feeds=(FEED, "md5-all"))
    return {
        "entries": entries,
        "other": other,
        "md5_only": md5_only,
        "token": token,
        "http": api(None),
    }


# --- What is served -----------------------------------------------------------------------------


def test_a_new_subscriber_gets_exactly_the_feeds_pdq_hashes_with_their_grading_as_tags(world):
    subscriber = Subscriber(world["http"], world["token"])
    [page] = subscriber.fetch()

    assert set(subscriber.held) == {pdq_of(e) for e in world["entries"]} == listed()
    assert page["hasMoreRecords"] is False and page["nextPageToken"] is None
    assert page["nextSetTimestamp"] > 10
    version = Feed.objects.get(name=FEED).version
    for record in page["hashRecords"]:
        assert record["hashStatus"] == "Active"
        assert record["lastModtimestamp"] == page["nextSetTimestamp"]
        assert record["caseNumbers"] == {}
        [feedback] = record["CSPFeedbacks"]
        assert feedback["feedbackValue"] == "Blocked" and feedback["source"] == "hashsync"
        assert set(feedback["tags"]) == {
            "status:listed",
            "category:A",
            "age_group:7-10",
            "baseline:unknown",
            "content_type:image",
            # The class in the feed's framework: a format-1 feed is in the UK's.
            "framework:uk",
            "class:A",
        }
    # The timestamp stands for the version the feed was read at.
    created = FeedVersion.objects.get(feed__name=FEED, version=version).created_at
    assert page["nextSetTimestamp"] >= int(created.timestamp())


def test_industry_class_and_baseline_become_tags(world, analyst, reviewer):
    entry = pdq_entry(analyst, reviewer, baseline=True, industry_class="A1")
    releases.release_cut()
    subscriber = Subscriber(world["http"], world["token"])
    subscriber.fetch()
    tags = subscriber.held[pdq_of(entry)]["CSPFeedbacks"][0]["tags"]
    assert {"baseline:yes", "industry_class:A1"} <= set(tags)


def test_an_up_to_date_subscriber_gets_nothing_and_keeps_its_timestamp(world):
    subscriber = Subscriber(world["http"], world["token"])
    subscriber.fetch()
    checkpoint = subscriber.checkpoint
    [page] = subscriber.fetch()
    assert page["count"] == 0 and page["hasMoreRecords"] is False
    assert page["nextSetTimestamp"] == checkpoint


def test_a_retraction_reaches_a_subscriber_as_deleted_and_a_new_entry_as_active(
    world, analyst, reviewer
):
    subscriber = Subscriber(world["http"], world["token"])
    subscriber.fetch()
    before = subscriber.checkpoint
    gone = world["entries"][0]
    retract(analyst, reviewer, gone)
    new = pdq_entry(analyst, reviewer)
    releases.release_cut()

    [page] = subscriber.fetch()

    by_hash = {r["hashValue"]: r for r in page["hashRecords"]}
    assert set(by_hash) == {pdq_of(gone), pdq_of(new)}
    deleted = by_hash[pdq_of(gone)]
    assert deleted["hashStatus"] == "Deleted"
    assert deleted["CSPFeedbacks"] == [
        {
            "source": "hashsync",
            "feedbackValue": "Deleted",
            "tags": ["status:removed", "removed:retracted"],
        }
    ]
    assert by_hash[pdq_of(new)]["hashStatus"] == "Active"
    assert subscriber.checkpoint > before
    assert set(subscriber.held) == listed()
    assert pdq_of(gone) not in subscriber.held


def test_regrading_out_of_the_feed_and_removing_the_hash_are_deleted_with_their_reason(
    world, analyst, reviewer
):
    regraded = world["entries"][1]
    trimmed = pdq_entry(
        analyst, reviewer, more_hashes=[{"algorithm": "md5", "value": synthetic("md5")}]
    )
    removed_hash = pdq_of(trimmed)
    releases.release_cut()
    subscriber = Subscriber(world["http"], world["token"])
    subscriber.fetch()
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=regraded.pk, grading={"category": "B"}
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    proposal = services.proposal_remove_hash(
        actor=analyst,
        entry_id=trimmed.pk,
        algorithm="pdq",
        value=removed_hash,
        comment="synthetic test: wrong hash",
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    releases.release_cut()

    [page] = subscriber.fetch()

    reasons = {r["hashValue"]: r["CSPFeedbacks"][0]["tags"][1] for r in page["hashRecords"]}
    assert reasons == {
        pdq_of(regraded): "removed:regraded_out",
        removed_hash: "removed:hash_removed",
    }
    assert set(subscriber.held) == listed()


def test_a_feed_without_pdq_serves_nothing(world):
    subscriber = Subscriber(world["http"], world["token"], feed="md5-all")
    [page] = subscriber.fetch()
    assert page["count"] == 0 and page["nextSetTimestamp"] == 10


def test_an_unpublished_feed_serves_nothing(world, member_admin):
    Feed.objects.create(name="pdq-new", algorithms=["pdq"])
    member_services.entitlement_grant(actor=member_admin, member_name="acme", feed="pdq-new")
    subscriber = Subscriber(world["http"], world["token"], feed="pdq-new")
    [page] = subscriber.fetch()
    assert page["count"] == 0 and page["nextSetTimestamp"] == 10


# --- Paging and the timestamp -------------------------------------------------------------------


@pytest.fixture
def busy(world: dict[str, Any], analyst: Any, reviewer: Any) -> dict[str, Any]:
    """Three more versions after the first: additions, a retraction, more additions."""
    subscriber = Subscriber(world["http"], world["token"])
    subscriber.fetch()
    history = [subscriber.checkpoint]
    for _ in range(5):
        pdq_entry(analyst, reviewer)
    releases.release_cut()
    retract(analyst, reviewer, world["entries"][0])
    pdq_entry(analyst, reviewer)
    releases.release_cut()
    for _ in range(4):
        pdq_entry(analyst, reviewer)
    retract(analyst, reviewer, world["entries"][1])
    releases.release_cut()
    return {**world, "start": history[0]}


@pytest.mark.parametrize("page_size", [1, 2, 3, 7])
def test_small_pages_of_the_membership_end_in_the_current_list(world, analyst, reviewer, page_size):
    for _ in range(6):
        pdq_entry(analyst, reviewer)
    releases.release_cut()
    subscriber = Subscriber(world["http"], world["token"], page_size=page_size)
    pages = subscriber.fetch()
    assert len(pages) == -(-9 // page_size)
    assert set(subscriber.held) == listed()
    # A client interrupted part-way holds no version yet: until the last page the timestamp
    # stays where it started, so resuming from it starts the membership again.
    assert all(p["nextSetTimestamp"] == 10 for p in pages[:-1])
    served = [r["hashValue"] for p in pages for r in p["hashRecords"]]
    assert len(served) == len(set(served)) == 9


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 800])
def test_small_pages_of_deltas_end_in_the_current_list(busy, page_size):
    subscriber = Subscriber(busy["http"], busy["token"], page_size=page_size)
    subscriber.checkpoint = busy["start"]
    subscriber.held = {h: {} for h in {pdq_of(e) for e in busy["entries"]}}
    pages = subscriber.fetch()
    assert set(subscriber.held) == listed()
    stamps = [r["lastModtimestamp"] for p in pages for r in p["hashRecords"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3  # three versions, in order
    assert pages[-1]["nextSetTimestamp"] == stamps[-1]


@pytest.mark.parametrize("page_size", [1, 2, 4])
def test_a_fetch_interrupted_after_any_page_resumes_from_its_timestamp(busy, page_size):
    """The client checkpoints every page's nextSetTimestamp and may stop anywhere (--limit,
    --time-limit-sec, a crash): resuming from it must lose nothing."""
    complete = Subscriber(busy["http"], busy["token"], page_size=page_size)
    complete.checkpoint = busy["start"]
    total = len(complete.fetch())
    assert total > 2
    for stop in range(1, total):
        subscriber = Subscriber(busy["http"], busy["token"], page_size=page_size)
        subscriber.checkpoint = busy["start"]
        subscriber.held = {h: {} for h in {pdq_of(e) for e in busy["entries"]}}
        subscriber.fetch(stop_after=stop)
        assert subscriber.checkpoint >= busy["start"]
        subscriber.fetch()
        assert set(subscriber.held) == listed(), f"stopped after {stop} pages"


def test_a_run_of_versions_is_read_over_several_requests_when_one_would_read_too_many(
    busy, monkeypatch
):
    monkeypatch.setattr(paging, "BUNDLES_PER_PAGE", 1)
    subscriber = Subscriber(busy["http"], busy["token"])
    subscriber.checkpoint = busy["start"]
    subscriber.held = {h: {} for h in {pdq_of(e) for e in busy["entries"]}}
    pages = subscriber.fetch()
    assert len(pages) == 3  # one delta bundle per request
    stamps = [p["nextSetTimestamp"] for p in pages]
    assert stamps == sorted(set(stamps))
    assert set(subscriber.held) == listed()


def test_answers_do_not_depend_on_the_timestamp_memo(busy):
    first = Subscriber(busy["http"], busy["token"], page_size=3)
    first.checkpoint = busy["start"]
    first.fetch()
    cache.clear()  # as after a restart: the timestamp is found again by scanning versions
    second = Subscriber(busy["http"], busy["token"], page_size=3)
    second.checkpoint = busy["start"]
    second.fetch()
    feed = Feed.objects.get(name=FEED)
    client = ApiToken.objects.get(prefix=busy["token"][:12]).client_id

    def position(page: dict[str, Any]) -> dict[str, Any]:
        # A token is sealed with a fresh nonce each time: compare where it leads.
        token = page["nextPageToken"]
        return {**page, "nextPageToken": token and cursor.token_decode(feed, token, client)}

    assert [position(p) for p in first.pages] == [position(p) for p in second.pages]


def test_timestamps_increase_with_versions_even_when_the_cutters_clock_went_back(
    world, analyst, reviewer
):
    subscriber = Subscriber(world["http"], world["token"])
    subscriber.fetch()
    stamps = [subscriber.checkpoint]
    for _ in range(3):
        pdq_entry(analyst, reviewer)
        releases.release_cut()
    # A cutter host whose clock runs an hour behind, then two releases in one second.
    versions = FeedVersion.objects.filter(feed__name=FEED).order_by("version")
    first, second, third, fourth = versions
    FeedVersion.objects.filter(pk=second.pk).update(
        created_at=F("created_at") - dt.timedelta(hours=1)
    )
    FeedVersion.objects.filter(pk__in=[third.pk, fourth.pk]).update(created_at=first.created_at)
    cache.clear()
    for _ in range(3):
        next_one = Subscriber(world["http"], world["token"], page_size=1)
        next_one.checkpoint = stamps[-1]
        [page] = next_one.fetch(stop_after=1)
        stamps.append(page["hashRecords"][0]["lastModtimestamp"])
    assert stamps == sorted(set(stamps)), stamps
    # Each timestamp is the version's release time pushed just past the one before.
    assert stamps[1] == stamps[0] + (second.version - first.version)


def test_a_change_released_after_a_fetch_is_never_skipped(world, analyst, reviewer):
    """The commit-order problem: a wall-clock 'changed since' cursor loses a change that
    committed late with an earlier time. Versions are handed out in commit order, so a change
    is either in the versions a timestamp stands for or after them."""
    subscriber = Subscriber(world["http"], world["token"])
    subscriber.fetch()
    late = pdq_entry(analyst, reviewer)
    # Its change row carries an approval time before the subscriber's checkpoint.
    late.changes.update(approved_at=timezone.now() - dt.timedelta(days=1))
    releases.release_cut()
    subscriber.fetch()
    assert pdq_of(late) in subscriber.held


# --- Who may fetch ------------------------------------------------------------------------------


def test_either_header_alone_is_enough(world):
    for header in ("HTTP_X_FUNCTIONS_KEY", "HTTP_OCP_APIM_SUBSCRIPTION_KEY"):
        response = world["http"].get(url(), **{header: world["token"]})
        assert response.status_code == 200, response.content


def test_two_different_tokens_in_the_two_headers_are_refused(world, member_admin):
    _, second = member_services.token_create(
        actor=member_admin, member_name="acme", client_name="edge-1", scopes=["sync"]
    )
    response = world["http"].get(
        url(),
        HTTP_X_FUNCTIONS_KEY=world["token"],
        HTTP_OCP_APIM_SUBSCRIPTION_KEY=second,
    )
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("x-functions-key")


def test_no_key_is_401_with_the_key_challenge_and_a_bearer_token_is_not_a_key(world):
    response = world["http"].get(url())
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("x-functions-key")
    response = world["http"].get(url(), HTTP_AUTHORIZATION=f"Bearer {world['token']}")
    assert_error(response, 401, "not_authenticated")


def test_malformed_unknown_revoked_and_expired_tokens_are_refused(world, member_admin):
    http = world["http"]
    assert_error(http.get(url(), **keys("hsk_not-a-token")), 401, "authentication_failed")
    unknown = tokens.generate()  # well formed, never issued
    assert_error(http.get(url(), **keys(unknown)), 401, "authentication_failed")

    token = ApiToken.objects.get()
    member_services.token_revoke(actor=member_admin, member_name="acme", token_id=token.pk)
    assert_error(http.get(url(), **keys(world["token"])), 401, "token_revoked")

    _, fresh = member_services.token_create(
        actor=member_admin, member_name="acme", client_name="edge-1", scopes=["sync"]
    )
    ApiToken.objects.filter(revoked_at__isnull=True).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert_error(http.get(url(), **keys(fresh)), 401, "token_expired")


def test_bad_tokens_in_the_key_headers_count_towards_the_throttle(world, settings):
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 3
    for _ in range(3):
        assert_error(world["http"].get(url(), **keys("hsk_guess")), 401, "authentication_failed")
    response = world["http"].get(url(), **keys(world["token"]))
    assert_error(response, 429, "too_many_failures")
    assert int(response["Retry-After"]) >= 1


def test_a_suspended_member_and_a_token_without_sync_are_refused(world, member_admin):
    _, lookup_only = member_services.token_create(
        actor=member_admin, member_name="acme", client_name="edge-1", scopes=["lookup"]
    )
    assert_error(world["http"].get(url(), **keys(lookup_only)), 403, "scope_missing")
    member_services.member_suspend(actor=member_admin, name="acme", reason="synthetic test")
    assert_error(world["http"].get(url(), **keys(world["token"])), 403, "member_suspended")


def test_a_feed_not_entitled_is_the_same_404_as_no_feed(world, member_admin):
    unknown = world["http"].get(url("no-such-feed"), **keys(world["token"]))
    not_mine = world["http"].get(url("pdq-category-b"), **keys(world["token"]))
    assert_error(unknown, 404, "not_found")
    assert_error(not_mine, 404, "not_found")
    assert unknown.json()["error"]["message"] == not_mine.json()["error"]["message"]

    member_services.entitlement_revoke(actor=member_admin, member_name="acme", feed=FEED)
    assert_error(world["http"].get(url(), **keys(world["token"])), 404, "not_found")


# --- Malformed queries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"startTimestamp": "soon"}, "invalid_start_timestamp"),
        ({"startTimestamp": "-1"}, "invalid_start_timestamp"),
        ({"startTimestamp": "1.5"}, "invalid_start_timestamp"),
        ({"startTimestamp": "٣"}, "invalid_start_timestamp"),  # a digit, but not ASCII
        ({"startTimestamp": "9" * 40}, "invalid_start_timestamp"),
        ({"startTimestamp": "253402300800"}, "invalid_start_timestamp"),
        ({"pageSize": "0"}, "invalid_page_size"),
        ({"pageSize": "10001"}, "invalid_page_size"),
        ({"pageSize": "ten"}, "invalid_page_size"),
        ({"nextPageToken": "forged"}, "invalid_page_token"),
        ({"nextPageToken": "x" * 5000}, "invalid_page_token"),
    ],
)
def test_malformed_queries_are_400_with_a_stable_code(world, params, code):
    assert_error(world["http"].get(url(), params, **keys(world["token"])), 400, code)


def test_a_tampered_or_foreign_page_token_is_refused(world, analyst, reviewer, member_admin):
    for _ in range(3):
        pdq_entry(analyst, reviewer)
    Feed.objects.create(name="pdq-all", algorithms=["pdq"])
    releases.release_cut()
    member_services.entitlement_grant(actor=member_admin, member_name="acme", feed="pdq-all")
    http, headers = world["http"], keys(world["token"])
    token = http.get(url(), {"pageSize": 1}, **headers).json()["nextPageToken"]
    assert http.get(url(), {"pageSize": 1, "nextPageToken": token}, **headers).status_code == 200

    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = http.get(url(), {"nextPageToken": flipped}, **headers)
    assert_error(response, 400, "invalid_page_token")
    # A genuine token of another feed is no token for this one.
    response = http.get(url("pdq-all"), {"nextPageToken": token}, **headers)
    assert_error(response, 400, "invalid_page_token")


def test_a_page_token_is_only_for_the_client_it_was_issued_to(world, member_admin):
    member_services.client_create(actor=member_admin, member_name="acme", name="edge-2")
    _, other = member_services.token_create(
        actor=member_admin, member_name="acme", client_name="edge-2", scopes=["sync"]
    )
    http = world["http"]
    token = http.get(url(), {"pageSize": 1}, **keys(world["token"])).json()["nextPageToken"]

    response = http.get(url(), {"pageSize": 1, "nextPageToken": token}, **keys(other))

    assert_error(response, 400, "invalid_page_token")


def test_a_page_token_expires_so_it_cannot_be_replayed_to_skip_pacing(world, monkeypatch):
    http, headers = world["http"], keys(world["token"])
    token = http.get(url(), {"pageSize": 1}, **headers).json()["nextPageToken"]
    issued = time.time()
    monkeypatch.setattr(cursor.time, "time", lambda: issued + 601)

    response = http.get(url(), {"pageSize": 1, "nextPageToken": token}, **headers)

    assert_error(response, 400, "invalid_page_token")


@pytest.mark.parametrize(
    ("behind", "accepted"), [(30, True), (cursor.CLOCK_SKEW_SECONDS + 5, False)]
)
def test_a_token_from_a_web_node_whose_clock_runs_ahead_is_accepted_within_the_skew(
    world, monkeypatch, behind, accepted
):
    # Another web node issued the token; this node's clock is ``behind`` seconds slower.
    http, headers = world["http"], keys(world["token"])
    token = http.get(url(), {"pageSize": 1}, **headers).json()["nextPageToken"]
    issued = time.time()
    monkeypatch.setattr(cursor.time, "time", lambda: issued - behind)

    response = http.get(url(), {"pageSize": 1, "nextPageToken": token}, **headers)

    if accepted:
        assert response.status_code == 200, response.content
    else:
        assert_error(response, 400, "invalid_page_token")


def _readings(token: str) -> Iterator[bytes]:
    """Every way a reader could decode a token: as it is, and each of its ``.``/``:``
    separated parts as base64 (either alphabet), zlib-inflated where that works (what
    Django's signed, compressed tokens are)."""
    yield token.encode()
    for part in re.split(r"[.:]", token):
        for decode in (base64.urlsafe_b64decode, base64.standard_b64decode):
            try:
                raw = decode(part + "=" * (-len(part) % 4))
            except (ValueError, binascii.Error):
                continue
            yield raw
            try:
                inflated = zlib.decompress(raw)
            except zlib.error:
                continue
            yield inflated


def _spellings(value: bytes) -> list[bytes]:
    text = [
        value.hex(),
        value.hex().upper(),
        base64.standard_b64encode(value).decode().rstrip("="),
        base64.urlsafe_b64encode(value).decode().rstrip("="),
    ]
    return [value, *(t.encode() for t in text)]


def test_no_page_token_or_url_holds_a_served_hash_value(world, analyst, reviewer):
    for _ in range(4):
        pdq_entry(analyst, reviewer)
    releases.release_cut()
    retract(analyst, reviewer, world["entries"][0])
    pdq_entry(analyst, reviewer)
    releases.release_cut()
    subscriber = Subscriber(world["http"], world["token"], page_size=1)
    subscriber.fetch()  # the membership, one per page
    subscriber.checkpoint = 10
    subscriber.fetch()
    subscriber.checkpoint = subscriber.pages[0]["nextSetTimestamp"]
    pages = subscriber.fetch()  # the deltas after the first version, one per page
    assert pages, "the deltas were served"
    values = {bytes.fromhex(r["hashValue"]) for p in subscriber.pages for r in p["hashRecords"]}
    tokens = [p["nextPageToken"] for p in subscriber.pages if p["nextPageToken"]]
    assert len(tokens) >= 8
    for token in tokens:
        address = f"{url()}?{urlencode({'startTimestamp': 10, 'nextPageToken': token})}"
        readings = [*_readings(token), address.encode()]
        for value in values:
            for spelling in _spellings(value):
                assert not any(spelling in reading for reading in readings), token


# --- Pacing and the audit trail -----------------------------------------------------------------


def test_first_pages_are_paced_and_following_pages_are_not(world, settings):
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 60
    http, headers = world["http"], keys(world["token"])
    first = http.get(url(), {"pageSize": 1}, **headers)
    assert first.status_code == 200
    token = first.json()["nextPageToken"]
    assert http.get(url(), {"pageSize": 1, "nextPageToken": token}, **headers).status_code == 200
    again = http.get(url(), {"pageSize": 1}, **headers)
    assert_error(again, 429, "poll_too_soon")
    assert 1 <= int(again["Retry-After"]) <= 60


def test_every_page_with_records_is_on_the_audit_trail(world):
    subscriber = Subscriber(world["http"], world["token"], page_size=2)
    subscriber.fetch()
    subscriber.fetch()  # nothing new: nothing recorded
    events = list(AuditEvent.objects.filter(action="sync.stopncii").order_by("seq"))
    assert [e.after["records"] for e in events] == [2, 1]
    assert events[0].actor == "member:acme/edge-1"
    assert events[0].after["token"] == world["token"][:12]
    assert events[0].after["snapshot_version"] == Feed.objects.get(name=FEED).version


def test_every_page_request_counts_against_the_download_budget(world, settings):
    settings.HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE = 3
    http, headers = world["http"], keys(world["token"])
    token = http.get(url(), {"pageSize": 1}, **headers).json()["nextPageToken"]
    replay = {"pageSize": 1, "nextPageToken": token}
    assert http.get(url(), replay, **headers).status_code == 200
    assert http.get(url(), replay, **headers).status_code == 200

    refused = http.get(url(), replay, **headers)

    assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused["Retry-After"]) <= 60
    # A first page is no way around it either.
    assert_error(http.get(url(), {"pageSize": 1}, **headers), 429, "rate_limited")


def test_a_replayed_page_token_adds_no_audit_event(world):
    http, headers = world["http"], keys(world["token"])
    token = http.get(url(), {"pageSize": 1}, **headers).json()["nextPageToken"]
    answers = [
        http.get(url(), {"pageSize": 1, "nextPageToken": token}, **headers) for _ in range(5)
    ]

    assert {a.status_code for a in answers} == {200}
    assert len({a.content.split(b'"nextSetTimestamp"')[1] for a in answers}) == 1  # one page
    events = AuditEvent.objects.filter(action="sync.stopncii")
    assert events.count() == 2  # the first page, and the replayed one once


def test_a_page_served_to_another_client_is_recorded_for_it(world, member_admin):
    member_services.client_create(actor=member_admin, member_name="acme", name="edge-2")
    _, other = member_services.token_create(
        actor=member_admin, member_name="acme", client_name="edge-2", scopes=["sync"]
    )
    http = world["http"]
    http.get(url(), {"pageSize": 1}, **keys(world["token"]))
    http.get(url(), {"pageSize": 1}, **keys(other))

    events = AuditEvent.objects.filter(action="sync.stopncii").order_by("seq")
    assert [e.actor for e in events] == ["member:acme/edge-1", "member:acme/edge-2"]


# --- Meta's real client against a live server ---------------------------------------------------
# threatexchange is in the dev extra. Its StopNCII exchange reads "function key, subscription
# key, base URL" from ~/.tx_stopncii_keys; the same member token goes in both key positions.


ON_POSTGRES = os.environ.get("DATABASE_URL", "").split(":", 1)[0] in ("postgres", "postgresql")
# The server thread sees the test's rows through the test's own in-memory connection on SQLite
# (a transactional test could not be flushed there: the audit table refuses DELETE), and
# through committed transactions on PostgreSQL.
live = pytest.mark.django_db(transaction=ON_POSTGRES)


@pytest.fixture
def server() -> Iterator[str]:
    """A real HTTP server on localhost running the app; its base URL."""
    from pytest_django.live_server_helper import LiveServer

    running = LiveServer("localhost")
    try:
        yield running.url
    finally:
        running.stop()


def base_url(server: str, feed: str = FEED) -> str:
    return f"{server}/api/v1/stopncii/{feed}/v1"


@live
def test_the_real_client_library_waits_out_a_paced_first_page(world, server, settings):
    from threatexchange.exchanges.clients.stopncii.api import StopNCIIAPI

    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 2
    client = StopNCIIAPI(world["token"], world["token"], base_url_override=base_url(server))
    first = client.fetch_hashes()
    began = time.monotonic()
    # Within the interval: 429 with Retry-After, which the client's retry policy honours.
    again = client.fetch_hashes()
    assert time.monotonic() - began >= 1
    assert again.hasMoreRecords is False and again.nextSetTimestamp == first.nextSetTimestamp
    assert {r.hashValue for r in again.hashRecords} == listed()
    assert {r.hashStatus.value for r in again.hashRecords} == {"Active"}


class ThreatExchangeCli:
    """The unmodified ``threatexchange`` CLI in a subprocess with its own HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("TX_") and key.lower() not in ("http_proxy", "https_proxy")
        }
        self.env.update(HOME=str(home), NO_PROXY="localhost,127.0.0.1", no_proxy="localhost")

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "threatexchange", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, f"threatexchange {args}: {result.stdout}{result.stderr}"
        return result

    def dataset(self, *args: str) -> dict[str, dict[str, str]]:
        """``threatexchange dataset -P --csv``: hash → its row (category, tags, collab)."""
        out = self("dataset", "--print-signals", "--csv", *args).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        assert all(row["signal_type"] == "pdq" and row["collab"] == "hashsync" for row in rows)
        return {row["signal_str"]: row for row in rows}


@pytest.fixture
def cli(tmp_path: Path, server: str, world: dict[str, Any]) -> Iterator[ThreatExchangeCli]:
    home = tmp_path / "home"
    home.mkdir()
    keys_file = home / ".tx_stopncii_keys"
    token = world["token"]
    keys_file.write_text(f"{token},{token},{base_url(server)}\n")
    keys_file.chmod(0o400)
    tx = ThreatExchangeCli(home)
    tx("config", "collab", "edit", "stop_ncii", "hashsync", "--create")
    yield tx


@live
def test_threatexchange_cli_fetches_exactly_the_entitled_entries(cli, world, analyst, reviewer):
    fetched = cli("fetch")
    assert "Up to date" in fetched.stderr
    rows = cli.dataset()
    assert set(rows) == listed() == {pdq_of(e) for e in world["entries"]}
    assert pdq_of(world["other"]) not in rows  # category B: a feed this member does not get
    for row in rows.values():
        assert row["category"] == "POSITIVE_CLASS"
        assert {"status:listed", "category:A"} <= set(row["tags"].split())
    # The summary counts the same three.
    assert cli("dataset").stdout.split() == ["pdq:", "3"]

    gone = world["entries"][0]
    retract(analyst, reviewer, gone)
    new = pdq_entry(analyst, reviewer)
    releases.release_cut()
    cli("fetch")

    rows = cli.dataset()
    assert rows[pdq_of(new)]["category"] == "POSITIVE_CLASS"
    # threatexchange 1.2.x never drops a record whose hashStatus is "Deleted" (it compares the
    # hash value, not the status, with "Deleted"): it keeps the hash with our "Deleted"
    # feedback, which is no longer a positive opinion and is tagged as removed. A client that
    # honours hashStatus drops it. Either way, the listed tag selects exactly the current list.
    removed = rows.get(pdq_of(gone))
    assert removed is None or (
        removed["category"] != "POSITIVE_CLASS"
        and {"status:removed", "removed:retracted"} <= set(removed["tags"].split())
    )
    assert set(cli.dataset("--only-tags", "status:listed")) == listed()
    assert pdq_of(gone) not in listed()

    # Fetching again from nothing (the workaround for 1.2.x) gives exactly the current list.
    cli("fetch", "--clear")
    cli("fetch")
    assert set(cli.dataset()) == listed()
