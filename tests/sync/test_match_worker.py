"""The matcher follows releases cut by a real Celery worker on the Redis broker, on PostgreSQL
(services pass): an approval over the API becomes matchable, a retraction stops matching, both
as delta bundles applied to the index the first match loaded — never a reload.

How fast (P7's 10 s) is measured by bench/match_api.py, not here: this test only waits."""

from __future__ import annotations

from typing import Any

import pytest

from distribution import keys
from distribution.models import Feed, FeedVersion
from sync import matcher
from tests.conftest import synthetic
from tests.factories import member_with_token
from tests.sync.helpers import _send
from tests.utils import wait_for
from tests.workers import celery_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

FEED = "pdq-all"


@pytest.fixture
def worker(settings: Any) -> Any:
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    matcher.matchers_forget()
    with celery_worker() as running:
        yield running
    matcher.matchers_forget()


def _near(value: str) -> str:
    return f"{int(value, 16) ^ 0b1011:064x}"  # 3 bits away


def _matches(token: str, value: str) -> list[dict[str, Any]]:
    body = {"hashes": [{"algorithm": "pdq", "value": _near(value)}]}
    response = _send("post", "/api/v1/sync/match/", body, token=token)
    assert response.status_code == 200, response.content[:300]
    return list(response.json()["results"][0]["matches"])


def _propose_and_approve(api: Any, analyst: Any, reviewer: Any, path: str, body: Any) -> Any:
    created = api(analyst).post(path, body, format="json")
    assert created.status_code == 201, created.content
    approved = api(reviewer).post(f"/api/v1/proposals/{created.json()['id']}/approve/", {})
    assert approved.status_code == 200, approved.content
    return approved.json()


def test_an_approval_becomes_matchable_and_a_retraction_stops_matching(
    worker, api, analyst, reviewer, member_admin
):
    Feed.objects.create(name=FEED, algorithms=["pdq"])
    keys.ensure_development_keys()
    _, token = member_with_token(member_admin, feeds=(FEED,), scopes=("lookup",))
    first, second = synthetic("pdq"), synthetic("pdq")
    entry = {"category": "B", "age_group": "11-13"}
    _propose_and_approve(
        api,
        analyst,
        reviewer,
        "/api/v1/proposals/create-entry/",
        {**entry, "hashes": [{"algorithm": "pdq", "value": first}]},
    )
    wait_for(lambda: FeedVersion.objects.filter(feed__name=FEED).exists(), what="the first cut")
    assert [m["distance"] for m in _matches(token, first)] == [3]  # loads the snapshot
    loaded = matcher.matcher_for(Feed.objects.get(name=FEED))

    approved = _propose_and_approve(
        api,
        analyst,
        reviewer,
        "/api/v1/proposals/create-entry/",
        {**entry, "hashes": [{"algorithm": "pdq", "value": second}]},
    )
    found = wait_for(lambda: _matches(token, second), what="the approval to become matchable")
    assert [(m["feed"], m["distance"], m["category"]) for m in found] == [(FEED, 3, "B")]

    _propose_and_approve(
        api,
        analyst,
        reviewer,
        "/api/v1/proposals/retract/",
        {"entry": approved["entry"], "reason": "synthetic: listed in error"},
    )
    wait_for(lambda: not _matches(token, second), what="the retraction to stop matching")
    assert _matches(token, first)  # the rest of the list is untouched

    # Both changes reached the index the first request loaded, as deltas.
    assert matcher.matcher_for(Feed.objects.get(name=FEED)) is loaded
    versions = FeedVersion.objects.filter(feed__name=FEED).order_by("version")
    assert [bool(v.delta_sha256) for v in versions][1:] == [True, True]
    assert loaded.version == versions.last().version
