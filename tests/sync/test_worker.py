"""The sync API against releases cut by a real Celery worker on the Redis broker (services
pass): a reviewer's approval over the API reaches a member's replica with no one running
``release_cut`` by hand, and so does a retraction."""

from __future__ import annotations

from typing import Any

import pytest

from distribution import keys
from distribution.models import Feed, FeedVersion
from members.models import Holding
from tests.conftest import synthetic
from tests.factories import member_with_token
from tests.sync.test_flow import Replica
from tests.utils import wait_for
from tests.workers import celery_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(settings: Any) -> Any:
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    with celery_worker() as running:
        yield running


def _published(feed: str, after: int) -> int | None:
    version = (
        FeedVersion.objects.filter(feed__name=feed, version__gt=after)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    return version


def test_an_approval_and_a_retraction_reach_a_member_through_the_worker(
    worker, api, analyst, reviewer, member_admin
):
    Feed.objects.create(name="md5-all", algorithms=["md5"])
    keys.ensure_development_keys()
    _, token = member_with_token(member_admin, feeds=("md5-all",))
    value = synthetic("md5")
    created = api(analyst).post(
        "/api/v1/proposals/create-entry/",
        {
            "category": "A",
            "age_group": "7-10",
            "hashes": [{"algorithm": "md5", "value": value}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    approved = api(reviewer).post(f"/api/v1/proposals/{created.json()['id']}/approve/", {})
    assert approved.status_code == 200, approved.content

    first = wait_for(lambda: _published("md5-all", 0), what="the worker to publish the feed")
    replica = Replica(api(None), token, "md5-all", keys.current_keyring().root_keyids)
    replica.sync()
    assert ("md5", bytes.fromhex(value)) in replica.records
    assert replica.ack()["status"] == "ok"

    entry_id = approved.json()["entry"]
    retract = api(analyst).post(
        "/api/v1/proposals/retract/",
        {"entry": entry_id, "reason": "synthetic: listed in error"},
        format="json",
    )
    assert retract.status_code == 201, retract.content
    approved = api(reviewer).post(f"/api/v1/proposals/{retract.json()['id']}/approve/", {})
    assert approved.status_code == 200, approved.content

    wait_for(lambda: _published("md5-all", first), what="the worker to release the retraction")
    replica.sync()
    assert ("md5", bytes.fromhex(value)) not in replica.records
    assert replica.ack()["status"] == "ok"
    assert Holding.objects.get().version == replica.version
