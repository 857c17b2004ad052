"""Plans (``GET sync/feeds/{feed}/plan/``): conditional requests, plans from every kind of
starting version, and every step verifiable from the pinned root.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from distribution import keys, releases
from distribution import services as feed_services
from hashsync_client.format import read_bundle
from hashsync_client.signing import verify_keyring_chain, verify_manifest
from members import services as member_services
from tests.factories import member_with_token
from tests.sync.helpers import (
    _content,
    _current,
    _listed,
    _plan_path,
    _send,
)
from tests.utils import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]


def test_an_unchanged_plan_answers_304_and_a_new_release_changes_the_etag(world, analyst, reviewer):
    version = world.feed_a.version
    path = _plan_path(world.feed_a.name, version)
    first = _send("get", path, token=world.token_a)
    assert first.json()["status"] == "up_to_date"
    etag = first["ETag"]
    assert first["Cache-Control"] == "private, no-cache"

    for tag in (etag, f"W/{etag}", f'"other", {etag}'):
        again = _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH=tag)
        assert again.status_code == 304
        assert again.content == b""
        assert again["ETag"] == etag
    assert _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH='"stale"').status_code == 200
    # Another starting version is another answer.
    other = _send("get", _plan_path(world.feed_a.name, 0), token=world.token_a)
    assert other["ETag"] != etag

    _listed(analyst, reviewer, "sha1")  # only beta's feed changes
    assert releases.release_cut() is not None
    unchanged = _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304

    _listed(analyst, reviewer, "md5")
    assert releases.release_cut() is not None
    changed = _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH=etag)

    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["status"] == "deltas"
    assert changed.json()["version"] > version


# --- plans from every kind of starting version --------------------------------------------------


@dataclass(frozen=True)
class History:
    """Feed ``md5-history`` at versions ``populated`` (snapshot), ``second`` and ``fourth``
    (deltas); release ``third`` changed only another feed."""

    token: str
    populated: int
    second: int
    third: int
    fourth: int
    pinned: frozenset[str]


@pytest.fixture
def history(analyst: Any, reviewer: Any, member_admin: Any) -> History:
    feed_services.feed_create(actor=member_admin, name="md5-history", algorithms=["md5"])
    feed_services.feed_create(actor=member_admin, name="sha1-other", algorithms=["sha1"])
    for _ in range(24):  # a snapshot well over the size of two one-record deltas
        _listed(analyst, reviewer, "md5")
    cuts = []
    for algorithm in (None, "md5", "sha1", "md5"):
        if algorithm:
            _listed(analyst, reviewer, algorithm)
        release = releases.release_cut()
        assert release is not None
        cuts.append(release.version)
    _, token = member_with_token(member_admin, name="gamma", feeds=("md5-history",))
    keyring = keys.current_keyring()
    assert keyring is not None
    populated, second, third, fourth = cuts
    return History(token, populated, second, third, fourth, frozenset(keyring.root_keyids))


def _plan(h: History, from_version: Any) -> Any:
    return _send("get", _plan_path("md5-history", from_version), token=h.token)


def _shape(plan: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(s["kind"], s["from_version"], s["to_version"]) for s in plan["steps"]]


def test_plans_from_each_kind_of_starting_version(history):
    h = history
    full = [
        ("snapshot", 0, h.populated),
        ("delta", h.populated, h.second),
        ("delta", h.second, h.fourth),
    ]
    expected = {
        0: ("snapshot", full),
        h.populated: ("deltas", full[1:]),
        h.second: ("deltas", full[2:]),
        h.third: ("snapshot", full),  # a release number, but not a version of this feed
        h.fourth: ("up_to_date", []),
    }
    for start, (status, steps) in expected.items():
        response = _plan(h, start)
        assert response.status_code == 200, response.content
        plan = response.json()
        assert (plan["status"], _shape(plan)) == (status, steps), start
        assert (plan["feed"], plan["from_version"], plan["version"]) == (
            "md5-history",
            start,
            h.fourth,
        )
        assert plan["manifest"] is not None  # even up to date: the client checks its expiry
        assert plan["keyrings"]


@pytest.mark.parametrize("ahead", [1, 1000, 2**63 - 1 - 4])
def test_a_plan_from_a_version_ahead_of_the_feed_is_version_unknown(history, ahead):
    assert_error(_plan(history, history.fourth + ahead), 409, "version_unknown")


@pytest.mark.parametrize(
    "garbage",
    ["-1", "1e3", "", "1.0", "+1", " 1", "0x1", "١", "٣", "²", "1" * 20, str(2**63), "%00", "abc"],
)
def test_a_garbage_starting_version_is_invalid_input(history, garbage):
    error = assert_error(_plan(history, garbage), 400, "invalid_input")
    assert "from_version" in error["message"]


def test_a_plan_without_a_starting_version_is_invalid_input(history):
    path = reverse("sync-plan", kwargs={"name": "md5-history"})
    assert_error(_send("get", path, token=history.token), 400, "invalid_input")


def test_every_step_of_a_plan_verifies_from_the_pinned_root_and_its_bundle_matches(history):
    h = history
    for start in (0, h.populated, h.second, h.third):
        plan = _plan(h, start).json()
        now = timezone.now()
        keyring = verify_keyring_chain(
            [json.dumps(k).encode() for k in plan["keyrings"]],
            pinned_root_keyids=h.pinned,
            now=now,
        )
        top = verify_manifest(
            json.dumps(plan["manifest"]).encode(), keyring=keyring, now=now, feed="md5-history"
        )
        assert top["version"] == plan["version"]
        for step in plan["steps"]:
            signed = verify_manifest(
                json.dumps(step["manifest"]).encode(), keyring=keyring, now=now, feed="md5-history"
            )
            assert signed["version"] == step["to_version"]
            where = (step["sha256"], step["size"])
            if step["kind"] == "snapshot":
                assert top["snapshot"] == {
                    "version": step["to_version"],
                    "sha256": where[0],
                    "size": where[1],
                }
            else:
                delta = signed["delta"]
                assert (delta["from_version"], delta["sha256"], delta["size"]) == (
                    step["from_version"],
                    *where,
                )
                assert delta["records"] == step["records"] == 1
            assert step["url"] == f"/api/v1/sync/bundles/{step['sha256']}/"
            response = _send("get", step["url"], token=h.token)
            assert response.status_code == 200
            assert response["ETag"] == f'"{step["sha256"]}"'
            body = _content(response)
            assert (hashlib.sha256(body).hexdigest(), len(body)) == where
            header, _ = read_bundle(io.BytesIO(body))
            assert (header.feed, header.from_version, header.to_version) == (
                "md5-history",
                step["from_version"],
                step["to_version"],
            )


def test_a_plan_of_a_feed_not_yet_published(world):
    feed_services.feed_create(actor=world.admin, name="md5-later", algorithms=["md5"])
    member_services.entitlement_grant(actor=world.admin, member_name="alpha", feed="md5-later")

    plan = _send("get", _plan_path("md5-later", 0), token=world.token_a)
    listed = _send("get", reverse("sync-feeds"), token=world.token_a).json()["feeds"]

    assert plan.status_code == 200
    assert {k: plan.json()[k] for k in ("status", "version", "manifest", "steps")} == {
        "status": "up_to_date",
        "version": 0,
        "manifest": None,
        "steps": [],
    }
    later = next(f for f in listed if f["name"] == "md5-later")
    assert (later["published"], later["version"], later["state_digest"]) == (False, 0, None)
    # A client claiming to hold a version of it holds something this server never published.
    assert_error(
        _send("get", _plan_path("md5-later", 3), token=world.token_a), 409, "version_unknown"
    )


def test_an_up_to_date_poll_is_one_query(world, django_assert_num_queries):
    """P4's hot path: the token, the entitlement and the newest manifest in one statement."""
    path = _plan_path(world.feed_a.name, _current(world.feed_a).version)
    first = _send("get", path, token=world.token_a)  # also notes the token's last use
    assert first.status_code == 200

    with django_assert_num_queries(1):
        again = _send("get", path, token=world.token_a, HTTP_IF_NONE_MATCH=first["ETag"])

    assert again.status_code == 304
