"""Acks (``POST sync/feeds/{feed}/ack/``): what a client says it holds."""

from __future__ import annotations

import secrets

import pytest

from audit.models import AuditEvent
from distribution import releases
from members.models import Holding, SyncClient
from tests.sync.helpers import (
    _ack_call,
    _listed,
    _send,
    _state,
)
from tests.utils import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]


# --- acks ---------------------------------------------------------------------------------------


def test_an_ack_with_the_servers_digest_is_ok_and_recorded(world):
    path, body = _ack_call(world)

    response = _send("post", path, body, token=world.token_a)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": body["version"]}
    holding = Holding.objects.get()
    assert (holding.version, holding.state_digest, holding.digest_matches) == (
        body["version"],
        body["state_digest"],
        True,
    )
    assert SyncClient.objects.get(member__name="alpha").digest_mismatch_at is None
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None
    assert (event.action, event.actor) == ("sync.ack", "member:alpha/edge-1")


def test_an_ack_with_another_digest_flags_the_client_and_says_take_the_snapshot(world):
    path, body = _ack_call(world)
    wrong = secrets.token_hex(32)

    response = _send("post", path, {**body, "state_digest": wrong}, token=world.token_a)

    assert response.status_code == 200
    assert response.json()["status"] == "mismatch"
    assert "snapshot" in response.json()["message"]
    client = SyncClient.objects.get(member__name="alpha")
    assert client.digest_mismatch_at is not None
    assert Holding.objects.get().digest_matches is False


def test_an_ack_of_a_version_the_feed_never_had_is_refused(world, analyst, reviewer):
    _listed(analyst, reviewer, "sha1")  # a release that does not change md5-alpha
    release = releases.release_cut()
    assert release is not None
    path, body = _ack_call(world)
    before = _state()

    for version in (release.version, release.version + 1, 2**63 - 1):
        response = _send("post", path, {**body, "version": version}, token=world.token_a)
        assert_error(response, 400, "invalid_input")
    assert _state() == before


@pytest.mark.parametrize(
    "change",
    [
        {"state_digest": "A" * 64},
        {"state_digest": "a" * 63},
        {"state_digest": "a" * 65},
        {"state_digest": "g" * 64},
        {"state_digest": 5},
        {"state_digest": None},
        {"state_digest": ["a" * 64]},
        {"version": 0},
        {"version": -1},
        {"version": 2**64},
        {"version": "one"},
        {"version": 1.5},
        {"version": True},
        {"version": None},
        {"version": [1]},
    ],
)
def test_an_ack_with_a_bad_field_is_invalid_input(world, change):
    path, body = _ack_call(world)
    before = _state()

    response = _send("post", path, {**body, **change}, token=world.token_a)

    error = assert_error(response, 400, "invalid_input")
    assert next(iter(change)) in error["message"]
    assert _state() == before


@pytest.mark.parametrize("body", [[], ["version"], "ok", 5, None, {}])
def test_an_ack_that_is_not_an_object_with_both_fields_is_invalid_input(world, body):
    path, _ = _ack_call(world)
    response = _send("post", path, body, token=world.token_a)
    assert_error(response, 400, "invalid_input")
