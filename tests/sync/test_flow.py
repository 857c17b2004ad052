"""A member client's whole sync over the API, checked the way docs/sync-api.md tells a client
to check it: keyring chain from the pinned root, manifests, bundle digests, state digest after
every step — then acks, and the auditors' "who held hash X at time T" built from them.

Synthetic data only (random hash values from the factories)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from typing import Any

import pytest
from django.utils import timezone

from distribution import keys, releases
from distribution.models import Feed
from hashlist import services
from hashsync_client.format import Op, read_bundle
from hashsync_client.lthash import LtHash16, element
from hashsync_client.signing import (
    verify_keyring_chain,
    verify_manifest,
    verify_manifest_history,
)
from members.models import Ack, Holding, SyncClient
from tests.factories import approved_entry, member_with_token
from tests.utils import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_pacing(settings: Any) -> None:
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0


class Replica:
    """A minimal member client: what docs/sync-api.md says a client must check, in order."""

    def __init__(self, http: Any, token: str, feed: str, pinned: frozenset[str]) -> None:
        self.http = http
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        self.feed = feed
        self.pinned = pinned
        self.version = 0
        self.records: dict[tuple[str, bytes], int] = {}
        self.plans: list[dict[str, Any]] = []

    def get(self, url: str, **extra: Any) -> Any:
        return self.http.get(url, **self.headers, **extra)

    def digest(self) -> str:
        lthash = LtHash16()
        lthash.add(element(a, v, g) for (a, v), g in self.records.items())
        return lthash.hexdigest()

    def sync(self) -> dict[str, Any]:
        response = self.get(f"/api/v1/sync/feeds/{self.feed}/plan/?from_version={self.version}")
        assert response.status_code == 200, response.content
        plan = response.json()
        self.plans.append(plan)
        now = timezone.now()
        keyring = verify_keyring_chain(
            [json.dumps(k).encode() for k in plan["keyrings"]],
            pinned_root_keyids=self.pinned,
            now=now,
        )
        top = verify_manifest(
            json.dumps(plan["manifest"]).encode(),
            keyring=keyring,
            now=now,
            feed=self.feed,
            min_version=self.version,
        )
        assert top["version"] == plan["version"]
        for step in plan["steps"]:
            signed = verify_manifest_history(
                json.dumps(step["manifest"]).encode(), keyring=keyring, feed=self.feed
            )
            assert signed["version"] == step["to_version"]
            if step["kind"] == "snapshot":
                assert top["snapshot"] == {
                    "version": step["to_version"],
                    "sha256": step["sha256"],
                    "size": step["size"],
                }
                self.records = {}
            else:
                assert signed["delta"]["from_version"] == step["from_version"] == self.version
                assert (signed["delta"]["sha256"], signed["delta"]["size"]) == (
                    step["sha256"],
                    step["size"],
                )
            # Asking for the bytes only must work (no 406 from content negotiation).
            response = self.get(step["url"], HTTP_ACCEPT="application/octet-stream")
            assert response.status_code == 200
            body = b"".join(response.streaming_content)
            assert (hashlib.sha256(body).hexdigest(), len(body)) == (step["sha256"], step["size"])
            header, records = read_bundle(io.BytesIO(body))
            assert header.feed == self.feed and header.to_version == step["to_version"]
            for record in records:
                key = (record.algorithm, record.value)
                if record.op == Op.UPSERT:
                    self.records[key] = record.grading
                else:
                    del self.records[key]
            assert self.digest() == signed["state_digest"]
            self.version = step["to_version"]
        return plan

    def ack(self) -> dict[str, Any]:
        response = self.http.post(
            f"/api/v1/sync/feeds/{self.feed}/ack/",
            {"version": self.version, "state_digest": self.digest()},
            format="json",
            **self.headers,
        )
        assert response.status_code == 200, response.content
        return response.json()


@pytest.fixture
def world(analyst: Any, reviewer: Any, member_admin: Any, api: Any) -> dict[str, Any]:
    Feed.objects.create(name="md5-all", algorithms=["md5"])
    first = approved_entry(analyst, reviewer)
    releases.release_cut()
    _, token = member_with_token(member_admin, feeds=("md5-all",))
    keyring = keys.current_keyring()
    assert keyring is not None
    return {"first": first, "pinned": keyring.root_keyids, "token": token, "http": api(None)}


def _md5_of(entry: Any) -> bytes:
    return bytes(entry.hashes.get(algorithm="md5").value)


def test_a_member_syncs_from_nothing_then_by_deltas_and_acks_each_version(world, analyst, reviewer):
    replica = Replica(world["http"], world["token"], "md5-all", world["pinned"])

    plan = replica.sync()
    assert plan["status"] == "snapshot" and plan["from_version"] == 0
    assert ("md5", _md5_of(world["first"])) in replica.records
    assert replica.ack() == {"status": "ok", "version": replica.version}

    second = approved_entry(analyst, reviewer)
    releases.release_cut()
    plan = replica.sync()
    assert plan["status"] == "deltas" and [s["kind"] for s in plan["steps"]] == ["delta"]
    assert ("md5", _md5_of(second)) in replica.records
    assert replica.ack()["status"] == "ok"

    proposal = services.proposal_retract(
        actor=analyst, entry_id=world["first"].pk, reason="synthetic: false positive"
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    releases.release_cut()
    replica.sync()
    assert ("md5", _md5_of(world["first"])) not in replica.records
    assert replica.ack()["status"] == "ok"

    assert replica.sync()["status"] == "up_to_date"
    holding = Holding.objects.get()
    assert (holding.version, holding.digest_matches) == (replica.version, True)
    assert Ack.objects.count() == 3


def test_a_client_far_behind_gets_the_snapshot_then_the_deltas_after_it(
    world, analyst, reviewer, settings
):
    replica = Replica(world["http"], world["token"], "md5-all", world["pinned"])
    replica.sync()
    start = replica.version
    for _ in range(3):
        approved_entry(analyst, reviewer)
        releases.release_cut()
    settings.HASHSYNC_PLAN_MAX_DELTAS = 2  # three deltas behind is "too far" now

    plan = replica.sync()

    assert plan["status"] == "snapshot"
    assert plan["steps"][0]["kind"] == "snapshot"
    assert all(s["kind"] == "delta" for s in plan["steps"][1:])
    assert replica.version == plan["version"] > start
    assert len(replica.records) == 4


def test_a_version_the_feed_never_had_is_answered_with_the_snapshot(world, analyst, reviewer):
    approved_entry(analyst, reviewer)
    releases.release_cut()
    versions = sorted(Feed.objects.get(name="md5-all").versions.values_list("version", flat=True))
    # A version of another feed (or made up) between two of this feed's versions:
    gaps = [v for v in range(1, versions[-1]) if v not in versions]
    replica = Replica(world["http"], world["token"], "md5-all", world["pinned"])
    replica.version = gaps[0] if gaps else 0
    replica.records = {}

    plan = replica.sync()

    assert plan["status"] == "snapshot"
    assert replica.version == versions[-1]


def test_a_client_ahead_of_the_server_is_told_to_start_over(world):
    replica = Replica(world["http"], world["token"], "md5-all", world["pinned"])
    response = replica.get("/api/v1/sync/feeds/md5-all/plan/?from_version=999999")
    assert_error(response, 409, "version_unknown")


def test_a_wrong_digest_in_an_ack_is_flagged_and_the_client_told_to_take_the_snapshot(world):
    replica = Replica(world["http"], world["token"], "md5-all", world["pinned"])
    replica.sync()
    response = world["http"].post(
        "/api/v1/sync/feeds/md5-all/ack/",
        {"version": replica.version, "state_digest": "0" * 64},
        format="json",
        **replica.headers,
    )
    assert response.status_code == 200
    assert response.json()["status"] == "mismatch"
    assert SyncClient.objects.get().digest_mismatch_at is not None
    assert Holding.objects.get().digest_matches is False


def test_auditors_learn_who_held_a_hash_and_when_each_acked_its_retraction(
    world, analyst, reviewer, member_admin, auditor, api
):
    _, other_token = member_with_token(member_admin, name="globex", feeds=("md5-all",))
    prompt = Replica(world["http"], world["token"], "md5-all", world["pinned"])
    laggard = Replica(world["http"], other_token, "md5-all", world["pinned"])
    for replica in (prompt, laggard):
        replica.sync()
        replica.ack()
    held_at = timezone.now()
    proposal = services.proposal_retract(
        actor=analyst, entry_id=world["first"].pk, reason="synthetic: wrongly listed"
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    release = releases.release_cut()
    assert release is not None
    prompt.sync()
    prompt.ack()  # the laggard never syncs again

    value = _md5_of(world["first"]).hex()
    response = api(auditor).post(
        "/api/v1/audit/hash-holders/",
        {"algorithm": "md5", "value": value, "at": held_at.isoformat()},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    holders = {h["member"]: h for h in body["holders"]}
    assert set(holders) == {"acme", "globex"}
    assert all(h["held_at_time"] for h in holders.values())
    assert holders["acme"]["removed_in_version"] == release.version
    assert holders["acme"]["removal_acked_at"] is not None
    assert holders["globex"]["removed_in_version"] == release.version
    assert holders["globex"]["removal_acked_at"] is None
    # Before anyone synced, nobody held it.
    earlier = (held_at - dt.timedelta(days=1)).isoformat()
    response = api(auditor).post(
        "/api/v1/audit/hash-holders/",
        {"algorithm": "md5", "value": value, "at": earlier},
        format="json",
    )
    assert not any(h["held_at_time"] for h in response.json()["holders"])


def test_every_plan_and_bundle_served_and_every_ack_is_on_the_audit_trail(world):
    from audit.models import AuditEvent
    from audit.verify import verify_chain

    replica = Replica(world["http"], world["token"], "md5-all", world["pinned"])
    replica.sync()
    replica.ack()

    actions = list(
        AuditEvent.objects.filter(actor="member:acme/edge-1")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["sync.plan", "sync.bundle", "sync.ack"]
    # All in the client's own lane, one after the other: not on the staff lane's lock.
    from audit.services import member_lane
    from members.models import SyncClient

    client = SyncClient.objects.get(member__name="acme", name="edge-1")
    places = list(
        AuditEvent.objects.filter(actor="member:acme/edge-1")
        .order_by("seq")
        .values_list("lane", "lane_seq")
    )
    lane = member_lane(client.pk)
    assert lane != 0 and [p[0] for p in places] == [lane] * 3
    assert [p[1] for p in places] == [places[0][1], places[0][1] + 1, places[0][1] + 2]
    assert verify_chain().ok
    # The trail names the token by its prefix only.
    assert world["token"] not in json.dumps(list(AuditEvent.objects.values("after", "reason")))


def test_a_missing_bundle_is_a_json_error_even_when_only_bytes_were_accepted(world):
    response = world["http"].get(
        f"/api/v1/sync/bundles/{'0' * 64}/",
        HTTP_AUTHORIZATION=f"Bearer {world['token']}",
        HTTP_ACCEPT="application/octet-stream",
    )
    assert_error(response, 404, "not_found")


def test_a_lookup_is_on_the_audit_trail_by_count_never_by_value(world):
    from audit.models import AuditEvent

    value = _md5_of(world["first"]).hex()
    response = world["http"].post(
        "/api/v1/sync/lookup/",
        {"hashes": [{"algorithm": "md5", "value": value}, {"algorithm": "md5", "value": "0" * 32}]},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {world['token']}",
    )
    assert [r["matched"] for r in response.json()["results"]] == [True, False]

    event = AuditEvent.objects.get(action="sync.lookup")
    assert event.actor == "member:acme/edge-1" and event.lane != 0
    assert event.after["asked"] == 2 and event.after["matched"] == 1
    assert event.after["feeds"] == ["md5-all"]
    assert value not in json.dumps([event.after, event.before, event.reason])


def test_a_member_has_one_open_dispute_per_entry(world):
    body = {
        "algorithm": "md5",
        "value": _md5_of(world["first"]).hex(),
        "kind": "false_positive",
        "reason": "synthetic: this is our own logo",
    }
    headers = {"HTTP_AUTHORIZATION": f"Bearer {world['token']}"}
    first = world["http"].post("/api/v1/sync/feedback/", body, format="json", **headers)
    assert first.status_code == 201, first.content

    again = world["http"].post("/api/v1/sync/feedback/", body, format="json", **headers)

    assert_error(again, 409, "feedback_exists")
