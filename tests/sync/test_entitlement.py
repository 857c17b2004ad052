"""What a member receives (``members.selectors.entitlements_in_force``) as the sync API applies
it: members kept apart, even when they guess content addresses, and PhotoDNA licences.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from members import services as member_services
from members.models import Feedback, Holding, Member, SyncClient
from tests.conftest import synthetic
from tests.sync.helpers import (
    REASON,
    World,
    _ack_call,
    _content,
    _current,
    _issue,
    _plan_path,
    _same_refusal,
    _send,
    _state,
)
from tests.utils import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]


# --- isolation: member A never sees member B's data ---------------------------------------------


def test_the_feed_list_names_only_the_members_own_feeds(world):
    response = _send("get", reverse("sync-feeds"), token=world.token_a)

    assert response.status_code == 200
    feeds = response.json()["feeds"]
    assert [f["name"] for f in feeds] == ["md5-alpha"]
    assert "sha1-beta" not in response.content.decode()
    current = _current(world.feed_a)
    assert feeds[0] == {
        "name": "md5-alpha",
        "description": "",
        "algorithms": ["md5"],
        "categories": [],
        "age_groups": [],
        "industry_classes": [],
        "content_types": [],
        "baseline_only": False,
        "framework": "uk",
        "classes": [],
        "filter": "md5",
        "version": current.version,
        "entry_count": 3,
        "state_digest": current.state_digest,
        "manifest_sha256": feeds[0]["manifest_sha256"],
        "published": True,
    }
    assert len(feeds[0]["manifest_sha256"]) == 64


def test_another_members_feed_is_indistinguishable_from_a_missing_one(world):
    routes = [
        ("get", lambda name: _plan_path(name, 0), None),
        ("post", lambda name: reverse("sync-ack", kwargs={"name": name}), _ack_call(world)[1]),
    ]
    for method, path_of, body in routes:
        before = _state()

        theirs = _send(method, path_of("sha1-beta"), body, token=world.token_a)
        missing = _send(method, path_of("no-such-feed"), body, token=world.token_a)

        assert_error(theirs, 404, "not_found")
        assert _same_refusal(theirs) == _same_refusal(missing)
        assert "sha1-beta" not in theirs.content.decode()
        assert _state() == before


@pytest.mark.parametrize(
    "address",
    ["random", "0" * 64, "A" * 64, "a" * 63, "a" * 65, "not-hex", "..%2e%2e", "a" * 300],
)
def test_another_members_bundle_is_indistinguishable_from_a_missing_or_malformed_address(
    world, address
):
    if address == "random":
        address = secrets.token_hex(32)
    before = _state()

    theirs = _send(
        "get", reverse("sync-bundle", kwargs={"sha256": world.bundle_b}), token=world.token_a
    )
    other = _send("get", f"/api/v1/sync/bundles/{address}/", token=world.token_a)

    assert_error(theirs, 404, "not_found")
    assert _same_refusal(theirs) == _same_refusal(other)
    assert _state() == before  # no download on the audit trail
    # Beta itself gets it.
    own = _send(
        "get", reverse("sync-bundle", kwargs={"sha256": world.bundle_b}), token=world.token_b
    )
    assert hashlib.sha256(_content(own)).hexdigest() == world.bundle_b


def test_a_lookup_never_matches_another_members_hashes(world):
    hashes = [{"algorithm": a, "value": v} for a, v in world.a_hashes + world.b_hashes]

    response = _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=world.token_a)

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["matched"] for r in results] == [True] * 3 + [False] * 3
    assert [r["feeds"] for r in results] == [["md5-alpha"]] * 3 + [[]] * 3
    assert {r["category"] for r in results[3:]} == {None}
    assert "sha1-beta" not in response.content.decode()
    # Beta's view of the same request is the mirror image.
    mirror = _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=world.token_b)
    assert [r["matched"] for r in mirror.json()["results"]] == [False] * 3 + [True] * 3


def test_feedback_on_another_members_hash_is_refused_like_an_unlisted_hash(world):
    def dispute(algorithm: str, value: str) -> Any:
        body = {"algorithm": algorithm, "value": value, "kind": "false_positive", "reason": REASON}
        return _send("post", reverse("sync-feedback"), body, token=world.token_a)

    before = _state()
    theirs = dispute(*world.b_hashes[0])
    unlisted = dispute("sha1", synthetic("sha1"))

    assert_error(theirs, 404, "not_found")
    assert _same_refusal(theirs) == _same_refusal(unlisted)
    assert _state() == before


def test_the_feedback_list_shows_only_the_members_own(world):
    for token, (algorithm, value) in (
        (world.token_a, world.a_hashes[0]),
        (world.token_b, world.b_hashes[0]),
    ):
        body = {"algorithm": algorithm, "value": value, "kind": "false_positive", "reason": REASON}
        assert _send("post", reverse("sync-feedback"), body, token=token).status_code == 201
    own = Feedback.objects.get(member__name="alpha")

    listed = _send("get", reverse("sync-feedback"), token=world.token_a)

    assert listed.status_code == 200
    assert [f["id"] for f in listed.json()] == [own.pk]
    assert listed.json()[0]["status"] == "open"


def test_acks_are_recorded_per_client(world):
    member_services.client_create(actor=world.admin, member_name="alpha", name="edge-2")
    second = _issue(world.admin, "alpha", client="edge-2")
    path, body = _ack_call(world)

    assert _send("post", path, body, token=world.token_a).json()["status"] == "ok"

    holdings = Holding.objects.filter(feed=world.feed_a)
    assert [(h.client.name, h.version) for h in holdings] == [("edge-1", body["version"])]
    wrong = {**body, "state_digest": "0" * 64}
    assert _send("post", path, wrong, token=second).json()["status"] == "mismatch"
    flagged = SyncClient.objects.filter(digest_mismatch_at__isnull=False)
    assert [c.name for c in flagged] == ["edge-2"]
    assert sorted(holdings.values_list("client__name", "digest_matches")) == [
        ("edge-1", True),
        ("edge-2", False),
    ]
    # Beta cannot ack alpha's feed, even with alpha's correct digest.
    assert_error(_send("post", path, body, token=world.token_b), 404, "not_found")


# --- PhotoDNA licences --------------------------------------------------------------------------


def _photodna_view(world: World, pdna: dict[str, Any]) -> dict[str, Any]:
    """What alpha can reach of the PhotoDNA feed, by every route."""
    algorithm, value = pdna["hash"]
    feeds = _send("get", reverse("sync-feeds"), token=world.token_a).json()["feeds"]
    lookup = _send(
        "post",
        reverse("sync-lookup"),
        {"hashes": [{"algorithm": algorithm, "value": value}]},
        token=world.token_a,
    )
    bundle = _send(
        "get", reverse("sync-bundle", kwargs={"sha256": pdna["bundle"]}), token=world.token_a
    )
    _content(bundle)  # read to the end, which closes the file it streams from
    return {
        "listed": "photodna-all" in [f["name"] for f in feeds],
        "plan": _send("get", _plan_path("photodna-all", 0), token=world.token_a).status_code,
        "bundle": bundle.status_code,
        "lookup": lookup.json()["results"][0]["matched"],
    }


SERVED = {"listed": True, "plan": 200, "bundle": 200, "lookup": True}
WITHHELD = {"listed": False, "plan": 404, "bundle": 404, "lookup": False}


def test_a_photodna_feed_is_withheld_from_an_entitled_member_without_a_licence(world, photodna):
    assert _photodna_view(world, photodna) == SERVED

    member_services.licence_revoke(actor=world.admin, member_name="alpha", kind="photodna")

    assert _photodna_view(world, photodna) == WITHHELD
    # Its other feeds are unaffected.
    assert _send("get", _plan_path("md5-alpha", 0), token=world.token_a).status_code == 200

    member_services.licence_grant(actor=world.admin, member_name="alpha", kind="photodna")

    assert _photodna_view(world, photodna) == SERVED


def test_an_expired_photodna_licence_withholds_the_feed(world, photodna):
    alpha = Member.objects.get(name="alpha")
    alpha.licences.update(valid_until=timezone.now() - dt.timedelta(seconds=1))

    assert _photodna_view(world, photodna) == WITHHELD


def test_feedback_on_a_photodna_hash_needs_the_licence(world, photodna):
    algorithm, value = photodna["hash"]
    body = {"algorithm": algorithm, "value": value, "kind": "false_positive", "reason": REASON}
    member_services.licence_revoke(actor=world.admin, member_name="alpha", kind="photodna")

    assert_error(_send("post", reverse("sync-feedback"), body, token=world.token_a), 404)

    member_services.licence_grant(actor=world.admin, member_name="alpha", kind="photodna")
    assert _send("post", reverse("sync-feedback"), body, token=world.token_a).status_code == 201
