"""Per-client budgets (``sync.limits``): acks, lookups and feedback share one a minute, and
bundle downloads have their own."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.sync.helpers import _ack_call, _lookup_call, _send
from tests.utils import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]


def test_acks_lookups_and_feedback_share_a_per_client_budget(world, settings):
    settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE = 2
    ack_path, ack_body = _ack_call(world)
    assert _send("post", ack_path, ack_body, token=world.token_a).json()["status"] == "ok"
    lookup_path, lookup_body = _lookup_call(world)
    assert _send("post", lookup_path, lookup_body, token=world.token_a).status_code == 200

    third = _send("post", ack_path, ack_body, token=world.token_a)

    assert_error(third, 429, "rate_limited")
    assert 1 <= int(third["Retry-After"]) <= 60


def test_another_client_has_its_own_budget(world, settings):
    settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE = 1
    path, body = _lookup_call(world)
    assert _send("post", path, body, token=world.token_a).status_code == 200
    assert_error(_send("post", path, body, token=world.token_a), 429, "rate_limited")

    algorithm, value = world.b_hashes[0]
    other = {"hashes": [{"algorithm": algorithm, "value": value}]}
    assert _send("post", path, other, token=world.token_b).status_code == 200


def test_bundle_downloads_have_their_own_budget(world, settings):
    settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE = 1
    settings.HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE = 1
    path, body = _lookup_call(world)
    assert _send("post", path, body, token=world.token_a).status_code == 200
    bundle = reverse("sync-bundle", kwargs={"sha256": world.bundle_a})
    first = _send("get", bundle, token=world.token_a)
    assert first.status_code == 200
    b"".join(first.streaming_content)  # read to the end: closes the stored file

    assert_error(_send("get", bundle, token=world.token_a), 429, "rate_limited")
