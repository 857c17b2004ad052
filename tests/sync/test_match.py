"""Matching (``POST sync/match/``): PDQ near-duplicates by Hamming distance from the exact index
the matcher loads from the published bundles, every other algorithm exactly; entitlement,
licence, scope, budget and audit as everywhere; every bad input a JSON error with its code.

All values are synthetic (random bytes), never real hashes."""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from distribution import releases
from distribution import services as feed_services
from distribution.storage import bundle_storage, object_name
from hashlist import services
from members import services as member_services
from sync import matcher
from tests.conftest import synthetic
from tests.factories import approved_entry, member_with_token
from tests.sync.helpers import _current, _send, _token_row
from tests.utils import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]

PATH = "/api/v1/sync/match/"


@pytest.fixture(autouse=True)
def _fresh_matchers() -> Any:
    """Each test's database numbers its feeds from 1 again: no index may outlive its test."""
    matcher.matchers_forget()
    yield
    matcher.matchers_forget()


def flip(value: str, bits: int, *, start: int = 0) -> str:
    """``value`` (hex) with ``bits`` (at most 36) bits flipped, one every 7 from ``start``."""
    number = int(value, 16)
    for bit in range(start, start + 7 * bits, 7):
        number ^= 1 << bit
    return f"{number:064x}"


def pdq_entry(analyst: Any, reviewer: Any, **grading: Any) -> tuple[Any, str]:
    value = synthetic("pdq")
    entry = approved_entry(
        analyst, reviewer, hashes=[{"algorithm": "pdq", "value": value}], **grading
    )
    return entry, value


def retract(analyst: Any, reviewer: Any, entry: Any) -> None:
    proposal = services.proposal_retract(
        actor=analyst, entry_id=entry.pk, reason="synthetic test: found to be wrong"
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)


def match(token: str, *pairs: tuple[str, str], **extra: Any) -> Any:
    body = {"hashes": [{"algorithm": a, "value": v} for a, v in pairs], **extra}
    return _send("post", PATH, body, token=token)


@pytest.fixture
def pdq_world(analyst: Any, reviewer: Any, member_admin: Any) -> dict[str, Any]:
    """A member ``gamma`` entitled to ``pdq-md5`` (PDQ and MD5), which lists one PDQ entry
    graded A / 7-10 and one MD5 entry; its token has only the lookup scope."""
    feed = feed_services.feed_create(actor=member_admin, name="pdq-md5", algorithms=["pdq", "md5"])
    entry, value = pdq_entry(analyst, reviewer)
    md5 = synthetic("md5")
    approved_entry(analyst, reviewer, hashes=[{"algorithm": "md5", "value": md5}])
    assert releases.release_cut() is not None
    _, token = member_with_token(member_admin, name="gamma", feeds=(feed.name,), scopes=("lookup",))
    return {"feed": feed, "entry": entry, "pdq": value, "md5": md5, "token": token}


def test_a_near_duplicate_pdq_hash_matches_with_its_distance_and_grading(pdq_world):
    near = flip(pdq_world["pdq"], 12)
    unlisted = synthetic("pdq")

    response = match(
        pdq_world["token"], ("pdq", unlisted), ("pdq", near.upper()), ("md5", pdq_world["md5"])
    )

    assert response.status_code == 200
    body = response.json()
    assert body["threshold"] == 31
    first, second, third = body["results"]
    assert (first["value"], first["matched"], first["matches"]) == (unlisted, False, [])
    assert second["value"] == near and second["matched"]
    assert second["matches"] == [
        {
            "feed": "pdq-md5",
            "value": pdq_world["pdq"],
            "distance": 12,
            "category": "A",
            "age_group": "7-10",
            "baseline": None,
            "industry_class": "",
            "content_type": "image",
            "framework": "uk",
            "framework_version": None,
            "class": "A",
        }
    ]
    assert [(m["value"], m["distance"]) for m in third["matches"]] == [(pdq_world["md5"], 0)]


def test_the_threshold_is_per_request_and_exact_at_its_edge(pdq_world):
    at_31, at_32 = flip(pdq_world["pdq"], 31), flip(pdq_world["pdq"], 32)

    default = match(pdq_world["token"], ("pdq", at_31), ("pdq", at_32)).json()["results"]
    tight = match(pdq_world["token"], ("pdq", at_31), threshold=30).json()["results"]

    assert [r["matched"] for r in default] == [True, False]
    assert tight[0]["matched"] is False


def test_a_threshold_above_31_is_answered_exactly_when_the_operator_allows_it(pdq_world, settings):
    settings.HASHSYNC_MATCH_MAX_THRESHOLD = 40
    at_36 = flip(pdq_world["pdq"], 36)

    results = match(pdq_world["token"], ("pdq", at_36), threshold=40).json()["results"]

    assert [m["distance"] for m in results[0]["matches"]] == [36]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"hashes": [{"algorithm": "pdq", "value": "zz" * 32}]}, "invalid_hash"),
        ({"hashes": [{"algorithm": "pdq", "value": "ab" * 31}]}, "invalid_hash"),
        ({"hashes": [{"algorithm": "md5", "value": "ab" * 17}]}, "invalid_hash"),
        ({"hashes": [{"algorithm": "pdq2", "value": "ab" * 32}]}, "unknown_algorithm"),
        ({"hashes": [{"algorithm": "pdq"}]}, "invalid_input"),
        ({"hashes": ["ab" * 32]}, "invalid_input"),
        ({"hashes": []}, "invalid_input"),
        ({"hashes": "pdq"}, "invalid_input"),
        ({}, "invalid_input"),
        ([], "invalid_input"),
        (
            {"hashes": [{"algorithm": "pdq", "value": "ab" * 32}], "threshold": 32},
            "invalid_threshold",
        ),
        (
            {"hashes": [{"algorithm": "pdq", "value": "ab" * 32}], "threshold": -1},
            "invalid_threshold",
        ),
        (
            {"hashes": [{"algorithm": "pdq", "value": "ab" * 32}], "threshold": "31"},
            "invalid_threshold",
        ),
        (
            {"hashes": [{"algorithm": "pdq", "value": "ab" * 32}], "threshold": True},
            "invalid_threshold",
        ),
        (
            {"hashes": [{"algorithm": "pdq", "value": "ab" * 32}], "threshold": 3.5},
            "invalid_threshold",
        ),
        (
            {"hashes": [{"algorithm": "pdq", "value": "ab" * 32}], "threshold": None},
            "invalid_threshold",
        ),
    ],
)
def test_bad_input_is_a_json_error_with_a_stable_code(pdq_world, body, code):
    response = _send("post", PATH, body, token=pdq_world["token"])

    assert_error(response, 400, code)


def test_more_than_1000_hashes_is_refused_and_1000_answered(pdq_world):
    hashes = [("pdq", synthetic("pdq")) for _ in range(1001)]

    assert_error(match(pdq_world["token"], *hashes), 400, "too_many_hashes")
    assert len(match(pdq_world["token"], *hashes[:1000]).json()["results"]) == 1000


def test_a_bad_value_is_never_echoed(pdq_world):
    secret_part = secrets.token_hex(31)
    response = match(pdq_world["token"], ("pdq", f"zz{secret_part}"))

    assert_error(response, 400, "invalid_hash")
    assert secret_part not in response.content.decode()


def test_a_token_without_the_lookup_scope_is_refused(pdq_world, member_admin):
    _, sync_only = member_with_token(
        member_admin, name="delta", feeds=("pdq-md5",), scopes=("sync",)
    )

    assert_error(match(sync_only, ("pdq", pdq_world["pdq"])), 403, "scope_missing")


def test_a_revoked_token_is_refused_at_once(pdq_world, member_admin):
    assert match(pdq_world["token"], ("pdq", pdq_world["pdq"])).status_code == 200
    member_services.token_revoke(
        actor=member_admin, member_name="gamma", token_id=_token_row(pdq_world["token"]).pk
    )

    assert_error(match(pdq_world["token"], ("pdq", pdq_world["pdq"])), 401, "token_revoked")


def test_no_token_is_refused(pdq_world):
    response = _send("post", PATH, {"hashes": [{"algorithm": "pdq", "value": pdq_world["pdq"]}]})
    assert_error(response, 401, "authentication_failed", "not_authenticated")


def test_matching_counts_against_the_member_budget(pdq_world, settings):
    settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE = 2
    for _ in range(2):
        assert match(pdq_world["token"], ("pdq", pdq_world["pdq"])).status_code == 200

    over = match(pdq_world["token"], ("pdq", pdq_world["pdq"]))

    assert_error(over, 429, "rate_limited")
    assert 1 <= int(over["Retry-After"]) <= 60


def test_a_member_never_matches_a_feed_it_is_not_entitled_to(pdq_world, member_admin):
    other = feed_services.feed_create(actor=member_admin, name="md5-other", algorithms=["md5"])
    _, outsider = member_with_token(member_admin, name="epsilon", feeds=(other.name,))

    results = match(outsider, ("pdq", pdq_world["pdq"]), ("md5", pdq_world["md5"])).json()

    assert [r["matched"] for r in results["results"]] == [False, False]


def test_without_a_photodna_licence_a_feed_carrying_photodna_is_invisible(
    analyst, reviewer, member_admin
):
    feed = feed_services.feed_create(
        actor=member_admin, name="pdq-photodna", algorithms=["pdq", "photodna"]
    )
    _, pdq = pdq_entry(analyst, reviewer)
    photodna = synthetic("photodna")
    approved_entry(analyst, reviewer, hashes=[{"algorithm": "photodna", "value": photodna}])
    assert releases.release_cut() is not None
    _, token = member_with_token(member_admin, name="zeta", feeds=(feed.name,), photodna=True)
    near = ("pdq", flip(pdq, 3))

    licensed = match(token, near, ("photodna", photodna)).json()["results"]
    member_services.licence_revoke(actor=member_admin, member_name="zeta", kind="photodna")
    unlicensed = match(token, near, ("photodna", photodna)).json()["results"]

    assert [r["matched"] for r in licensed] == [True, True]
    assert unlicensed == [
        {**r, "matched": False, "matches": []} for r in licensed
    ]  # the same answer as for an unlisted hash: nothing about the feed leaks


def test_a_match_is_audited_as_counts_never_as_values(pdq_world):
    near = flip(pdq_world["pdq"], 4)
    before = AuditEvent.objects.order_by("-seq").first()

    match(pdq_world["token"], ("pdq", near), ("md5", synthetic("md5")), threshold=20)

    event = AuditEvent.objects.filter(action="sync.match").order_by("-seq").first()
    assert event is not None and event != before
    assert event.action == "sync.match"
    assert event.actor == "member:gamma/edge-1"
    assert {k: event.after[k] for k in ("asked", "matched", "feeds", "threshold")} == {
        "asked": 2,
        "matched": 1,
        "feeds": ["pdq-md5"],
        "threshold": 20,
    }
    recorded = json.dumps([event.after, event.before, event.reason])
    assert near not in recorded and pdq_world["pdq"] not in recorded


# --- following the releases -----------------------------------------------------------------


def test_an_approved_hash_matches_once_released_and_a_retraction_stops_it(
    pdq_world, analyst, reviewer, monkeypatch
):
    token = pdq_world["token"]
    assert match(token, ("pdq", pdq_world["pdq"])).json()["results"][0]["matched"]
    loaded = matcher.matcher_for(pdq_world["feed"])
    snapshots = []
    monkeypatch.setattr(
        matcher.FeedMatcher, "_load_snapshot", lambda self, step: snapshots.append(step)
    )
    entry, added = pdq_entry(analyst, reviewer, category="B")

    assert match(token, ("pdq", added)).json()["results"][0]["matched"] is False  # not released
    assert releases.release_cut() is not None
    after_release = match(token, ("pdq", flip(added, 2))).json()["results"][0]["matches"]

    retract(analyst, reviewer, entry)
    assert releases.release_cut() is not None
    after_retraction = match(token, ("pdq", added)).json()["results"][0]["matches"]

    assert [(m["distance"], m["category"]) for m in after_release] == [(2, "B")]
    assert after_retraction == []
    # Both changes came as deltas to the same index: never a reload.
    assert snapshots == []
    assert matcher.matcher_for(pdq_world["feed"]) is loaded
    assert loaded.version == _current(pdq_world["feed"]).version


def test_a_restart_loads_the_newest_snapshot_and_the_deltas_after_it(pdq_world, analyst, reviewer):
    first = pdq_world["pdq"]
    retract(analyst, reviewer, pdq_world["entry"])
    _, second = pdq_entry(analyst, reviewer)
    assert releases.release_cut() is not None

    results = match(pdq_world["token"], ("pdq", first), ("pdq", second)).json()["results"]

    assert [r["matched"] for r in results] == [False, True]


def test_a_restarted_process_maps_the_saved_index_and_reads_only_the_deltas_after_it(
    pdq_world, analyst, reviewer, monkeypatch, settings
):
    token, feed = pdq_world["token"], pdq_world["feed"]
    assert match(token, ("pdq", pdq_world["pdq"])).json()["results"][0]["matched"]
    saved = Path(settings.HASHSYNC_MATCH_INDEX_DIR) / feed.name
    assert [f.name for f in saved.glob("0*")] == [f"{_current(feed).version:012d}"]
    retract(analyst, reviewer, pdq_world["entry"])
    _, added = pdq_entry(analyst, reviewer, category="C")
    assert releases.release_cut() is not None
    matcher.matchers_forget()  # a new process (a restart, or gunicorn recycling a worker)
    read = []
    monkeypatch.setattr(matcher.FeedMatcher, "_load_snapshot", lambda self, step: read.append(step))

    results = match(token, ("pdq", pdq_world["pdq"]), ("pdq", flip(added, 3))).json()["results"]

    assert [r["matched"] for r in results] == [False, True]
    assert [m["category"] for m in results[1]["matches"]] == ["C"]
    assert read == []  # mapped, then the delta: no snapshot read
    index = matcher.matcher_for(feed)._index
    assert isinstance(index._main.rows, np.memmap)  # shared with the node's other processes


def test_a_damaged_saved_index_is_rebuilt_from_the_bundles(pdq_world, settings):
    token, feed = pdq_world["token"], pdq_world["feed"]
    assert match(token, ("pdq", pdq_world["pdq"])).json()["results"][0]["matched"]
    (folder,) = (Path(settings.HASHSYNC_MATCH_INDEX_DIR) / feed.name).glob("0*")
    (folder / "pdq-main-order.npy").write_bytes(b"not numpy")
    matcher.matchers_forget()

    assert match(token, ("pdq", flip(pdq_world["pdq"], 5))).json()["results"][0]["matched"]
    assert isinstance(matcher.matcher_for(feed)._index._main.rows, np.memmap)  # saved anew


def test_matcher_warm_builds_and_saves_the_index_before_any_request(pdq_world, settings):
    out = io.StringIO()
    call_command("matcher_warm", stdout=out)

    feed = pdq_world["feed"]
    assert f"pdq-md5@{_current(feed).version}: 1 PDQ values" in out.getvalue()
    assert (Path(settings.HASHSYNC_MATCH_INDEX_DIR) / feed.name / f"{feed.version:012d}").is_dir()
    matcher.matchers_forget()  # a web process starting after it maps the saved files
    assert match(pdq_world["token"], ("pdq", pdq_world["pdq"])).json()["results"][0]["matched"]
    assert isinstance(matcher.matcher_for(feed)._index._main.rows, np.memmap)


def test_matcher_warm_names_an_unknown_feed_and_needs_a_directory(pdq_world, settings):
    with pytest.raises(CommandError, match="No published, active feed named nope"):
        call_command("matcher_warm", "nope", stdout=io.StringIO())
    settings.HASHSYNC_MATCH_INDEX_DIR = ""
    with pytest.raises(CommandError, match="HASHSYNC_MATCH_INDEX_DIR is empty"):
        call_command("matcher_warm", stdout=io.StringIO())


def test_a_regrade_changes_the_grading_a_match_reports(pdq_world, analyst, reviewer):
    token = pdq_world["token"]
    assert match(token, ("pdq", pdq_world["pdq"])).json()["results"][0]["matches"]
    proposal = services.proposal_regrade(
        actor=analyst,
        entry_id=pdq_world["entry"].pk,
        grading={"category": "C", "age_group": "7-10", "content_type": "image"},
        comment="synthetic test: regraded",
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    assert releases.release_cut() is not None

    (result,) = match(token, ("pdq", pdq_world["pdq"])).json()["results"]

    assert [m["category"] for m in result["matches"]] == ["C"]


def test_a_tampered_bundle_in_storage_is_refused_with_a_503(pdq_world):
    sha256 = _current(pdq_world["feed"]).snapshot_sha256
    storage = bundle_storage()
    path = storage.storage.path(object_name(sha256))
    with open(path, "r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))

    response = match(pdq_world["token"], ("pdq", pdq_world["pdq"]))

    assert_error(response, 503, "matcher_unavailable")
    assert response["Retry-After"]


def test_the_schema_documents_the_match_endpoint(api, auditor):
    response = api(auditor).get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)

    operation = schema["paths"]["/api/v1/sync/match/"]["post"]
    assert operation["operationId"] == "sync_match"
    assert "SyncMatchResult" in schema["components"]["schemas"]
