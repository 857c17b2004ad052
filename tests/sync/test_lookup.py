"""Lookups (``POST sync/lookup/``): answers in request order, limits and malformed input."""

from __future__ import annotations

import base64
import secrets

import pytest
from django.urls import reverse

from tests.conftest import synthetic
from tests.sync.helpers import (
    REASON,
    _send,
)
from tests.utils import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_pacing")]


# --- lookup -------------------------------------------------------------------------------------


def test_a_lookup_answers_in_request_order_in_canonical_form(world):
    algorithm, value = world.a_hashes[1]
    unlisted = synthetic("md5")
    hashes = [
        {"algorithm": "md5", "value": unlisted},
        {"algorithm": algorithm, "value": value.upper()},
        {"algorithm": "md5", "value": base64.b64encode(bytes.fromhex(value)).decode()},
    ]

    response = _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=world.token_a)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["value"], r["matched"]) for r in results] == [
        (unlisted, False),
        (value, True),
        (value, True),
    ]
    assert {k: results[1][k] for k in ("category", "age_group", "content_type")} == {
        "category": "A",
        "age_group": "7-10",
        "content_type": "image",
    }


def test_a_lookup_of_more_than_the_limit_is_refused(world, settings):
    assert settings.HASHSYNC_LOOKUP_MAX_HASHES == 1000
    hashes = [{"algorithm": "md5", "value": synthetic("md5")} for _ in range(1001)]

    too_many = _send("post", reverse("sync-lookup"), {"hashes": hashes}, token=world.token_a)
    at_limit = _send("post", reverse("sync-lookup"), {"hashes": hashes[:1000]}, token=world.token_a)

    error = assert_error(too_many, 400, "invalid_input")
    assert "1000" in error["message"]
    assert at_limit.status_code == 200
    assert len(at_limit.json()["results"]) == 1000


@pytest.mark.parametrize(
    "body",
    [
        {"hashes": []},
        {"hashes": "md5"},
        {"hashes": None},
        {"hashes": [["md5", "00"]]},
        {"hashes": [{"algorithm": "md5"}]},
        {"hashes": [{"algorithm": 5, "value": "00"}]},
        {"hashes": [{"algorithm": "nope", "value": "00" * 16}]},
        {},
        [],
        "hashes",
    ],
)
def test_a_malformed_lookup_is_a_4xx_json_error(world, body):
    response = _send("post", reverse("sync-lookup"), body, token=world.token_a)
    assert_error(response, 400, "invalid_input", "unknown_algorithm")


@pytest.mark.parametrize("route", ["sync-lookup", "sync-feedback", "hash-holders"])
def test_a_bad_hash_value_is_never_echoed(world, route, auditor, api):
    secret_part = secrets.token_hex(15)
    value = f"zz{secret_part}"  # 32 characters, not hex: refused
    item = {"algorithm": "md5", "value": value}
    if route == "sync-lookup":
        response = _send("post", reverse(route), {"hashes": [item]}, token=world.token_a)
    elif route == "sync-feedback":
        body = {**item, "kind": "false_positive", "reason": REASON}
        response = _send("post", reverse(route), body, token=world.token_a)
    else:
        response = api(auditor).post(reverse(route), item, format="json")

    assert_error(response, 400, "invalid_input", "invalid_hash")
    assert secret_part not in response.content.decode()
