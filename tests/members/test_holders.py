"""The auditors' hash-holders (``members.holders``; docs/audit.md, "Who held a hash"): a client
holds a hash only on evidence — the bundles served to it lead to the version it acked — and
the answer names its states and the evidence each rests on.

Synthetic data only: every hash is random bytes from ``tests.conftest.synthetic``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from distribution import keys, releases
from distribution.models import Feed
from hashlist import services
from members.models import SyncClient
from tests.conftest import synthetic
from tests.factories import approved_entry, member_with_token
from tests.sync.test_flow import Replica

pytestmark = pytest.mark.django_db

FEED = "md5-all"


@pytest.fixture(autouse=True)
def _no_pacing(settings: Any) -> None:
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0


@pytest.fixture
def world(analyst: Any, reviewer: Any, member_admin: Any, api: Any) -> dict[str, Any]:
    Feed.objects.create(name=FEED, algorithms=["md5"])
    entry = approved_entry(analyst, reviewer)
    releases.release_cut()
    _, token = member_with_token(member_admin, feeds=(FEED,))
    keyring = keys.current_keyring()
    assert keyring is not None
    return {
        "entry": entry,
        "md5": bytes(entry.hashes.get(algorithm="md5").value).hex(),
        "token": token,
        "http": api(None),
        "replica": Replica(api(None), token, FEED, keyring.root_keyids),
    }


def _headers(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def ack_from_feed_list(http: Any, token: str) -> dict[str, Any]:
    """What the attack did: ack the version and digest the client's own feed list shows,
    having downloaded nothing."""
    (feed,) = http.get("/api/v1/sync/feeds/", **_headers(token)).json()["feeds"]
    response = http.post(
        f"/api/v1/sync/feeds/{FEED}/ack/",
        {"version": feed["version"], "state_digest": feed["state_digest"]},
        format="json",
        **_headers(token),
    )
    assert response.json()["status"] == "ok", response.content
    return feed


def holders(api: Any, auditor: Any, value: str, at: dt.datetime | None = None) -> dict[str, Any]:
    body = {"algorithm": "md5", "value": value}
    if at is not None:
        body["at"] = at.isoformat()
    response = api(auditor).post("/api/v1/audit/hash-holders/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_an_ack_without_downloads_is_an_unverified_claim_not_holding(world, api, auditor):
    ack_from_feed_list(world["http"], world["token"])

    (record,) = holders(api, auditor, world["md5"])["holders"]

    assert record["state_at_time"] == "claimed_unverified"
    assert record["held_at_time"] is False
    assert record["evidence"] == "ack_only"


def test_a_client_served_the_snapshot_holds_the_hash_on_that_evidence(world, api, auditor):
    world["replica"].sync()
    world["replica"].ack()

    answer = holders(api, auditor, world["md5"])

    assert answer["hash_state"] == "active"
    (record,) = answer["holders"]
    assert (record["state_at_time"], record["held_at_time"], record["evidence"]) == (
        "held",
        True,
        "bundles_served",
    )


def test_a_version_acked_without_its_delta_is_unverified_though_earlier_ones_held(
    world, api, auditor, analyst, reviewer
):
    replica = world["replica"]
    replica.sync()
    replica.ack()
    held_at = timezone.now()
    approved_entry(analyst, reviewer)  # a new version that still lists the hash
    releases.release_cut()
    ack_from_feed_list(world["http"], world["token"])  # its delta never downloaded

    (now,) = holders(api, auditor, world["md5"])["holders"]
    (then,) = holders(api, auditor, world["md5"], at=held_at)["holders"]

    assert (now["state_at_time"], now["evidence"]) == ("claimed_unverified", "ack_only")
    assert (then["state_at_time"], then["evidence"]) == ("held", "bundles_served")


def test_bundles_downloaded_only_after_an_ack_are_no_evidence_for_it(world, api, auditor):
    ack_from_feed_list(world["http"], world["token"])
    world["replica"].sync()  # downloads the snapshot now, acks nothing more

    (record,) = holders(api, auditor, world["md5"])["holders"]

    assert (record["state_at_time"], record["evidence"]) == ("claimed_unverified", "ack_only")


def test_a_retraction_names_the_hash_retracted_and_each_removal_ack_its_evidence(
    world, api, auditor, analyst, reviewer, member_admin
):
    _, other = member_with_token(member_admin, name="globex", feeds=(FEED,))
    world["replica"].sync()
    world["replica"].ack()
    ack_from_feed_list(world["http"], other)  # globex never downloads anything
    proposal = services.proposal_retract(
        actor=analyst, entry_id=world["entry"].pk, reason="synthetic: wrongly listed"
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    removed = releases.release_cut()
    assert removed is not None
    world["replica"].sync()
    world["replica"].ack()
    ack_from_feed_list(world["http"], other)

    answer = holders(api, auditor, world["md5"])

    assert answer["hash_state"] == "retracted"
    assert "listed" not in answer
    by_member = {h["member"]: h for h in answer["holders"]}
    assert by_member["acme"]["state_at_time"] == "not_held"
    assert by_member["acme"]["removed_in_version"] == removed.version
    assert by_member["acme"]["removal_evidence"] == "bundles_served"
    assert by_member["globex"]["removal_evidence"] == "ack_only"


def test_a_hash_no_entry_holds_is_unknown(api, auditor, world):
    assert holders(api, auditor, synthetic("md5")) | {"at": None} == {
        "hash_state": "unknown",
        "at": None,
        "holders": [],
    }


def test_the_schema_types_every_field_of_the_answer(api):
    document = json.loads(api(None).get("/api/v1/schema/?format=json").content)
    schemas = document["components"]["schemas"]
    answer = document["paths"]["/api/v1/audit/hash-holders/"]["post"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HashHolders"
    }

    def untyped(schema: dict[str, Any]) -> list[str]:
        found = []
        for name, field in schema["properties"].items():
            if "$ref" in field or "allOf" in field or "oneOf" in field:
                continue
            if field.get("type") == "array":
                field = field["items"]
                if "$ref" in field:
                    continue
            if field.get("type") in (None, "object") or "additionalProperties" in field:
                found.append(name)
        return found

    for name in ("HashHolders", "HashHolder", "HashHolderListedVersions"):
        assert untyped(schemas[name]) == [], name
    holder = schemas["HashHolder"]["properties"]
    assert set(holder) >= {"state_at_time", "evidence", "removal_evidence", "held_at_time"}
    assert all(holder[f].get("description") for f in ("state_at_time", "evidence"))


def test_downloads_from_before_the_client_existed_are_no_evidence(world, api, auditor):
    # A client re-created under a deleted member's and client's names has their audit label:
    # bundles served to the old one must not vouch for the new one's ack.
    world["replica"].sync()
    world["replica"].ack()
    SyncClient.objects.update(created_at=timezone.now() + dt.timedelta(seconds=1))

    (record,) = holders(api, auditor, world["md5"])["holders"]

    assert record["state_at_time"] == "claimed_unverified"
    assert record["evidence"] == "ack_only"
