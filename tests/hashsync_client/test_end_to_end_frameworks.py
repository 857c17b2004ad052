"""Issue 17's done-when, tried as a new user would, every part real: the live server
(PostgreSQL), a Celery worker on the Redis broker cutting the releases, and the installed
``hashsync-client`` console script in its own process for each of two members.

An analyst records the facts of a new image; a second person approves; the member subscribed
to a UK feed and the member subscribed to an INTERPOL Baseline feed each receive it graded in
their own framework (``lookup``, ``export``, ``status``). Then a reviewed rule change releases
exactly the regrades ``regrade_impact`` announced before approval. Synthetic data only."""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from distribution import keys
from distribution.models import FeedVersion
from distribution.regrade import regrade_impact
from hashlist.frameworks.initial import FRAMEWORKS
from tests.conftest import synthetic
from tests.factories import member_with_token
from tests.live import ClientProcess, newest_version
from tests.utils import wait_for
from tests.workers import celery_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server(settings: Any) -> Iterator[str]:
    from pytest_django.live_server_helper import LiveServer

    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    running = LiveServer("localhost")
    try:
        yield running.url
    finally:
        running.stop()


@pytest.fixture
def worker() -> Iterator[Any]:
    with celery_worker() as running:
        yield running


class Member(ClientProcess):
    """One member's client, run as a separate process."""

    def sync(self) -> None:
        done = self.run("sync", "--no-progress")
        assert done.returncode == 0, done.stdout + done.stderr

    def lookup(self, value: str) -> list[dict[str, Any]]:
        found = self.run("lookup", "--values", "--json", "-", stdin=value + "\n")
        assert found.returncode in (0, 1), found.stdout + found.stderr
        return json.loads(found.stdout.splitlines()[0])["matches"]


def _propose(api: Any, analyst: Any, value: str, facts: dict[str, str]) -> int:
    created = api(analyst).post(
        "/api/v1/proposals/create-entry/",
        {
            "age_group": "7-10",
            "content_type": "image",
            "facts": facts,
            "hashes": [{"algorithm": "md5", "value": value}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    return created.json()["id"]


def test_each_member_receives_a_new_image_in_its_own_framework_and_a_rule_change_regrades_it(
    server, worker, api, analyst, reviewer, member_admin, tmp_path
):
    keys.ensure_development_keys()
    staff = api(member_admin)
    for body in (
        {"name": "md5-uk", "algorithms": ["md5"]},
        {
            "name": "md5-baseline",
            "algorithms": ["md5"],
            "framework": "interpol-baseline",
            "classes": ["yes"],
        },
    ):
        made = staff.post("/api/v1/feeds/", body, format="json")
        assert made.status_code == 201, made.content
    _, uk_token = member_with_token(member_admin, name="uk-member", feeds=("md5-uk",))
    _, ib_token = member_with_token(member_admin, name="ib-member", feeds=("md5-baseline",))
    uk = Member(server, uk_token, tmp_path / "uk")
    ib = Member(server, ib_token, tmp_path / "ib")

    # The analyst records what the images show; the origin of the second could not be told.
    seen = synthetic("md5")
    undecided = synthetic("md5")
    severe = {"pubertal_stage": "prepubescent", "activity": "penetrative"}
    first = _propose(api, analyst, seen, {**severe, "origin": "real"})
    second = _propose(api, analyst, undecided, severe)
    for proposal in (first, second):
        approved = api(reviewer).post(f"/api/v1/proposals/{proposal}/approve/", {})
        assert approved.status_code == 200, approved.content
    # The feeds were first published empty, when they were created; wait for the entries.
    wait_for(
        lambda: FeedVersion.objects.filter(feed__name="md5-uk", entry_count=2).exists(),
        what="both approvals in the UK feed",
    )
    wait_for(
        lambda: FeedVersion.objects.filter(feed__name="md5-baseline", entry_count=1).exists(),
        what="the first approval in the Baseline feed",
    )
    published = {feed: newest_version(feed, 0) or 0 for feed in ("md5-uk", "md5-baseline")}

    uk.sync()
    ib.sync()
    [uk_match] = uk.lookup(seen)
    assert (uk_match["framework"], uk_match["framework_version"], uk_match["class"]) == (
        "uk",
        None,
        "A",
    )
    [ib_match] = ib.lookup(seen)
    assert (ib_match["framework"], ib_match["framework_version"], ib_match["class"]) == (
        "interpol-baseline",
        1,
        "yes",
    )
    assert [m["class"] for m in uk.lookup(undecided)] == ["A"]
    assert ib.lookup(undecided) == []  # unassessed in the Baseline: not in a "yes only" feed

    status = json.loads(ib.run("status", "--json").stdout.splitlines()[0])
    assert (status["framework"], status["framework_version"]) == ("interpol-baseline", 1)
    exported = ib.run("export", "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["framework"], r["framework_version"], r["class"]) for r in rows] == [
        ("interpol-baseline", "1", "yes")
    ]

    # A rule change: the Baseline counts computer-generated images too (hypothetical, for the
    # test). The reviewer is told what it will do before approving, and the release does that.
    definition = copy.deepcopy(FRAMEWORKS["interpol-baseline"]["definition"])
    for rule in definition["rules"]:
        rule["when"].pop("origin", None)
    impact = regrade_impact("interpol-baseline", definition)
    assert (impact.entries, impact.feeds, impact.feed_names) == (1, 1, ("md5-baseline",))
    proposed = api(analyst).post(
        "/api/v1/proposals/framework/",
        {"framework": "interpol-baseline", "definition": definition, "comment": "synthetic"},
        format="json",
    )
    assert proposed.status_code == 201, proposed.content
    approved = api(reviewer).post(f"/api/v1/proposals/{proposed.json()['id']}/approve/", {})
    assert approved.status_code == 200, approved.content
    regraded = wait_for(
        lambda: newest_version("md5-baseline", published["md5-baseline"]),
        what="the regrade release",
    )
    delta = FeedVersion.objects.get(feed__name="md5-baseline", version=regraded)
    assert delta.delta_records == impact.entries  # exactly the announced regrade
    assert newest_version("md5-uk", published["md5-uk"]) is None  # another framework's feed

    ib.sync()
    [now_listed] = ib.lookup(undecided)
    assert (now_listed["framework_version"], now_listed["class"]) == (2, "yes")
    [still] = ib.lookup(seen)
    assert (still["framework_version"], still["class"]) == (2, "yes")
