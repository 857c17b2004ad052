"""Verifying a sync plan before anything is downloaded (docs/sync-api.md, "What the client
checks"), and ``signing.verify_manifest_history`` for the manifests of its steps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from hashsync_client.errors import BadResponse, VerificationError
from hashsync_client.plan import parse_feed_list, parse_plan, verify_plan
from hashsync_client.signing import (
    SignatureError,
    generate_key,
    verify_keyring_chain,
    verify_manifest_history,
)
from tests.hashsync_client.conftest import changed
from tests.hashsync_client.fakeserver import FakeHashsync, synthetic_entries

FEED = "synthetic-plan"


@pytest.fixture
def fake() -> Iterator[FakeHashsync]:
    server = FakeHashsync()  # never started: only its publishing and plan logic are used
    first = synthetic_entries(200, seed=1)
    second = changed(first, seed=2, add=2, regrade=1, remove=1)
    server.publish(FEED, first)
    server.publish(FEED, second, snapshot=False)
    server.publish(FEED, changed(second, seed=3, add=2, regrade=1, remove=1), snapshot=False)
    yield server
    server.stop()


def plan_from(fake: FakeHashsync, from_version: int) -> dict[str, Any]:
    plan = fake.plan(FEED, from_version)
    assert isinstance(plan, dict)
    return json.loads(json.dumps(plan))


def verify(fake: FakeHashsync, data: dict[str, Any], held: int, **options: Any) -> Any:
    raw = parse_plan(data, feed=FEED, from_version=data["from_version"])
    settings: dict[str, Any] = {
        "pinned_root_keyids": (fake.root.keyid,),
        "pinned_threshold": 1,
        "trusted_keyring": None,
        "held_version": held,
        "min_manifest_version": held,
        "max_bundle_bytes": 1 << 30,
        "max_entries": 10**8,
        "now": fake.now,
        **options,
    }
    return verify_plan(raw, **settings)


def refused(fake: FakeHashsync, data: dict[str, Any], held: int, **options: Any) -> str:
    with pytest.raises(VerificationError) as error:
        verify(fake, data, held, **options)
    return error.value.code


def test_an_honest_delta_plan_verifies_with_the_digest_of_each_step(fake):
    plan = verify(fake, plan_from(fake, 1), 1)

    assert plan.status == "deltas"
    assert [(s.from_version, s.to_version) for s in plan.steps] == [(1, 2), (2, 3)]
    assert plan.steps[-1].state_digest == plan.manifest["state_digest"]
    assert plan.steps[0].max_records == fake.feeds[FEED].versions[1].delta.records


def test_an_honest_snapshot_plan_bounds_records_by_the_signed_entry_count(fake):
    plan = verify(fake, plan_from(fake, 0), 0)

    assert plan.status == "snapshot"
    assert plan.steps[0].kind == "snapshot"
    assert plan.steps[0].max_records == 200


def test_a_gap_between_steps_is_refused(fake):
    data = plan_from(fake, 1)
    del data["steps"][0]

    assert refused(fake, data, 1) == "plan_mismatch"


def test_steps_that_stop_short_of_the_signed_version_are_refused(fake):
    data = plan_from(fake, 1)
    del data["steps"][-1]

    assert refused(fake, data, 1) == "plan_mismatch"


def test_a_step_size_other_than_the_signed_one_is_refused(fake):
    data = plan_from(fake, 1)
    data["steps"][0]["size"] += 1

    assert refused(fake, data, 1) == "plan_mismatch"


def test_a_status_that_contradicts_the_steps_is_refused(fake):
    data = plan_from(fake, 1)
    data["status"] = "up_to_date"

    assert refused(fake, data, 1) == "plan_mismatch"


def test_up_to_date_at_a_version_we_do_not_hold_is_refused(fake):
    data = plan_from(fake, 3)
    data["from_version"] = 2

    assert refused(fake, data, 2) == "plan_mismatch"


def test_a_bundle_bigger_than_the_configured_cap_is_refused_before_download(fake):
    assert refused(fake, plan_from(fake, 1), 1, max_bundle_bytes=10) == "bundle_too_large"


def test_more_entries_than_the_configured_maximum_are_refused(fake):
    assert refused(fake, plan_from(fake, 0), 0, max_entries=5) == "too_many_entries"


def test_an_expired_keyring_is_refused(fake):
    assert refused(fake, plan_from(fake, 1), 1, now=fake.now + timedelta(days=400)) == (
        "keyring_expired"
    )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.update(steps="many"),
        lambda d: d.update(status="sideways"),
        lambda d: d["steps"][0].update(size=-1),
        lambda d: d["steps"][0].update(sha256="ABC"),
        lambda d: d["steps"][0].update(manifest="not an object"),
        lambda d: d.update(feed="another-feed"),
        lambda d: d.pop("keyrings"),
        lambda d: d["steps"][0].update(size=True),
    ],
)
def test_plans_of_the_wrong_shape_are_bad_responses(fake, mangle):
    data = plan_from(fake, 1)
    mangle(data)

    with pytest.raises(BadResponse):
        parse_plan(data, feed=FEED, from_version=1)


def test_feed_list_of_the_wrong_shape_is_a_bad_response():
    with pytest.raises(BadResponse):
        parse_feed_list({"feeds": [{"name": "x", "version": "1", "published": True}]})
    with pytest.raises(BadResponse):
        parse_feed_list([])


def test_history_manifest_may_have_expired_but_must_be_signed_by_a_listed_key(fake):
    trusted = verify_keyring_chain(
        fake.keyrings, pinned_root_keyids=[fake.root.keyid], now=fake.now
    )
    expired = fake.sign(
        FEED, issued_at=fake.now - timedelta(days=5), expires_at=fake.now - timedelta(days=4)
    )

    assert verify_manifest_history(expired.envelope, keyring=trusted, feed=FEED)["version"] == 3
    with pytest.raises(SignatureError) as wrong_feed:
        verify_manifest_history(expired.envelope, keyring=trusted, feed="another")
    assert wrong_feed.value.code == "wrong_feed"
    rogue = fake.sign(FEED, key=generate_key())
    with pytest.raises(SignatureError) as unsigned:
        verify_manifest_history(rogue.envelope, keyring=trusted, feed=FEED)
    assert unsigned.value.code == "signature_threshold"
    before_key = fake.sign(FEED, issued_at=fake.now - timedelta(days=60))
    with pytest.raises(SignatureError) as too_early:
        verify_manifest_history(before_key.envelope, keyring=trusted, feed=FEED)
    assert too_early.value.code == "key_not_valid"
