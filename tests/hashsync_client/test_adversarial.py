"""The client against a misbehaving network, server or attacker (issue 5, part 2).

Every case starts from a client that holds version 1 of a feed and a server that has cut
version 2. The attack is switched on, the sync must fail with the expected refusal and leave
the store at version 1 — same rows, same digest, a sound SQLite file — and once the server is
honest again the next sync must bring the client to version 2.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from hashsync_client.api import HashsyncClient
from hashsync_client.config import Config
from hashsync_client.format import Op, Record, read_bundle_bytes
from hashsync_client.signing import generate_key
from tests.hashsync_client.conftest import FEED, assert_holds, changed
from tests.hashsync_client.fakeserver import (
    BundleRef,
    Entries,
    FakeHashsync,
    Reply,
    Request,
    build_bundle,
    error_reply,
    json_reply,
)

Heal = Callable[[], None]


@dataclass
class World:
    client: HashsyncClient
    server: FakeHashsync
    v1: Entries
    v2: Entries

    def delta_sha(self) -> str:
        delta = self.server.feeds[FEED].versions[-1].delta
        assert delta is not None
        return delta.sha256


@pytest.fixture
def world(client: HashsyncClient, server: FakeHashsync, entries: Entries) -> World:
    server.publish(FEED, entries)
    report = client.sync(retries=0)
    assert report.ok, report.errors()
    second = changed(entries, seed=2)
    server.publish(FEED, second)
    return World(client, server, entries, second)


def hook(server: FakeHashsync, fn: Callable[[Request], Reply | None]) -> Heal:
    server.hooks.append(fn)
    return server.hooks.clear


def on_bundle(world: World, reply: Callable[[bytes], Reply]) -> Heal:
    sha = world.delta_sha()
    data = world.server.bundles[sha]
    return hook(world.server, lambda r: reply(data) if r.path.endswith(f"/{sha}/") else None)


def resign(server: FakeHashsync) -> Heal:
    def heal() -> None:
        server.sign(FEED)  # an honest manifest for the same version, now the newest

    return heal


def on_plan(server: FakeHashsync, reply: Reply) -> Heal:
    return hook(server, lambda r: reply if r.path.endswith("/plan/") else None)


# --- attacks: each returns how to undo it ---------------------------------------------------


def tampered_bundle_byte(world: World) -> Heal:
    def flip(data: bytes) -> Reply:
        middle = len(data) // 2
        tampered = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
        return Reply(200, tampered, content_type="application/octet-stream")

    return on_bundle(world, flip)


def truncated_download(world: World) -> Heal:
    return on_bundle(
        world, lambda data: Reply(200, data[:-7], content_type="application/octet-stream")
    )


def connection_dropped_mid_download(world: World) -> Heal:
    # Content-Length promises the whole bundle; the connection closes half-way.
    return on_bundle(
        world,
        lambda data: Reply(
            200, data[: len(data) // 2], content_type="application/octet-stream", length=len(data)
        ),
    )


def bundle_larger_than_announced(world: World) -> Heal:
    return on_bundle(
        world, lambda data: Reply(200, data + b"\0" * 64, content_type="application/octet-stream")
    )


def bundle_larger_without_content_length(world: World) -> Heal:
    # No Content-Length: the cap must stop the stream itself, not trust a header.
    return on_bundle(
        world,
        lambda data: Reply(
            200, data + bytes(300_000), content_type="application/octet-stream", length=-1
        ),
    )


def manifest_signed_by_unknown_key(world: World) -> Heal:
    server = world.server
    server.feeds[FEED].manifests.pop()
    server.sign(FEED, key=generate_key())
    return resign(server)


def keyring_not_signed_by_pinned_root(world: World) -> Heal:
    server = world.server
    honest = list(server.keyrings)
    rogue_root = generate_key()
    server.keyrings.clear()
    server.issue_keyring(root_keys=[rogue_root], signers=[rogue_root], online=[server.online])

    def heal() -> None:
        server.keyrings[:] = honest

    return heal


def keyring_listing_the_pinned_root_but_signed_by_another(world: World) -> Heal:
    # The root *names* the pinned key next to the attacker's, threshold 1, signed only by the
    # attacker: naming a pinned key proves nothing.
    server = world.server
    honest = list(server.keyrings)
    rogue_root = generate_key()
    server.keyrings.clear()
    server.issue_keyring(
        root_keys=[server.root, rogue_root], signers=[rogue_root], online=[server.online]
    )

    def heal() -> None:
        server.keyrings[:] = honest

    return heal


def expired_manifest(world: World) -> Heal:
    server = world.server
    server.feeds[FEED].manifests.pop()
    server.sign(
        FEED,
        issued_at=server.now - timedelta(days=4),
        expires_at=server.now - timedelta(days=1),
    )
    return resign(server)


def garbage_json(world: World) -> Heal:
    return on_plan(world.server, Reply(200, b'{"feed": "synthetic-md5-sha1", "version": '))


def json_of_the_wrong_shape(world: World) -> Heal:
    body = json.dumps({"feed": FEED, "from_version": 1, "status": "deltas", "steps": "many"})
    return on_plan(world.server, Reply(200, body.encode()))


def html_page_with_200(world: World) -> Heal:
    return on_plan(
        world.server, Reply(200, b"<html><body>Welcome</body></html>", content_type="text/html")
    )


def html_error_page_502(world: World) -> Heal:
    return on_plan(
        world.server,
        Reply(502, b"<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"),
    )


def garbage_feed_list(world: World) -> Heal:
    return hook(
        world.server,
        lambda r: Reply(200, b"[1, 2, 3]") if r.path.endswith("/sync/feeds/") else None,
    )


def step_names_another_bundle(world: World) -> Heal:
    server = world.server
    snapshot = server.feeds[FEED].versions[0].snapshot
    assert snapshot is not None

    def swap(request: Request) -> Reply | None:
        if not request.path.endswith("/plan/"):
            return None
        plan = server.plan(FEED, int(request.query["from_version"]))
        assert isinstance(plan, dict)
        for step in plan["steps"]:
            step["sha256"], step["size"] = snapshot.sha256, snapshot.size
            step["url"] = f"/api/v1/sync/bundles/{snapshot.sha256}/"
        return Reply(200, json.dumps(plan).encode())

    return hook(server, swap)


def signed_bundle_for_another_feed(world: World) -> Heal:
    # A server with valid keys that signs a manifest over the wrong bundle.
    server = world.server
    version = server.feeds[FEED].versions[-1]
    honest = version.delta
    wrong = build_bundle("delta", "another-feed", 1, 2, [Record("md5", bytes(16), Op.UPSERT, 0)])
    sha = hashlib.sha256(wrong).hexdigest()
    server.bundles[sha] = wrong
    version.delta = BundleRef(sha, len(wrong), read_bundle_bytes(wrong)[0].record_count)
    server.feeds[FEED].manifests.pop()
    server.sign(FEED)

    def heal() -> None:
        version.delta = honest
        server.sign(FEED)

    return heal


def manifest_of_another_feed(world: World) -> Heal:
    server = world.server
    server.publish("another-feed", {("md5", bytes(16)): 1})
    other = json.loads(server.feeds["another-feed"].manifests[-1].envelope)

    def swap(request: Request) -> Reply | None:
        if not request.path.endswith(f"/{FEED}/plan/"):
            return None
        plan = server.plan(FEED, int(request.query["from_version"]))
        assert isinstance(plan, dict)
        plan["manifest"] = other
        return Reply(200, json.dumps(plan).encode())

    return hook(server, swap)


def server_forgets_versions(world: World) -> Heal:
    # A server restored from an old backup: it never published the version we hold.
    return on_plan(world.server, error_reply(409, "version_unknown", "discard your copy"))


ATTACKS = [
    (tampered_bundle_byte, "bundle_sha256"),
    (truncated_download, "bundle_truncated"),
    (connection_dropped_mid_download, "transport"),
    (bundle_larger_than_announced, "bundle_too_large"),
    (bundle_larger_without_content_length, "bundle_too_large"),
    (manifest_signed_by_unknown_key, "signature_threshold"),
    (keyring_not_signed_by_pinned_root, "untrusted_root"),
    (keyring_listing_the_pinned_root_but_signed_by_another, "untrusted_root"),
    (expired_manifest, "manifest_expired"),
    (garbage_json, "bad_response"),
    (json_of_the_wrong_shape, "bad_response"),
    (html_page_with_200, "bad_response"),
    (html_error_page_502, "bad_response"),
    (step_names_another_bundle, "plan_mismatch"),
    (signed_bundle_for_another_feed, "bundle_header"),
    (manifest_of_another_feed, "wrong_feed"),
]


@pytest.mark.parametrize(("attack", "code"), ATTACKS, ids=[a.__name__ for a, _ in ATTACKS])
def test_attack_leaves_previous_version_and_next_honest_sync_heals(world, attack, code):
    heal = attack(world)

    report = world.client.sync(retries=0)

    assert not report.ok
    assert [e.code for e in report.errors()] == [code]
    assert_holds(world.client, 1, world.v1)
    assert world.client.store.feed(FEED).last_error_code == code

    heal()
    report = world.client.sync(retries=0)

    assert report.ok, report.errors()
    assert_holds(world.client, 2, world.v2)
    assert world.client.store.feed(FEED).last_error is None


def test_garbage_feed_list_changes_nothing(world):
    heal = garbage_feed_list(world)

    report = world.client.sync(retries=0)

    assert report.error is not None and report.error.code == "bad_response"
    assert_holds(world.client, 1, world.v1)
    heal()
    assert world.client.sync(retries=0).ok
    assert_holds(world.client, 2, world.v2)


def test_a_replayed_older_manifest_is_refused(world):
    client, server = world.client, world.server
    assert client.sync(retries=0).ok
    old = server.feeds[FEED].manifests[0]
    assert old.version == 1

    def replay(request: Request) -> Reply | None:
        if request.path.endswith("/sync/feeds/"):
            listing = server.feed_list()
            listing["feeds"][0].update(version=1, manifest_sha256=old.sha256)
            return Reply(200, json.dumps(listing).encode())
        if request.path.endswith("/plan/"):
            plan = {
                "feed": FEED,
                "from_version": int(request.query["from_version"]),
                "version": 1,
                "status": "up_to_date",
                "poll_interval_seconds": 0,
                "manifest": json.loads(old.envelope),
                "keyrings": [json.loads(k) for k in server.keyrings],
                "steps": [],
            }
            return Reply(200, json.dumps(plan).encode())
        return None

    heal = hook(server, replay)
    # Whatever the client holds, a manifest older than it is a replay.
    client.store.update_feed(FEED, etag=None, etag_version=None)

    report = client.sync(retries=0)

    assert [e.code for e in report.errors()] == ["rollback"]
    assert_holds(client, 2, world.v2)
    heal()
    third = changed(world.v2, seed=3)
    server.publish(FEED, third)
    assert client.sync(retries=0).ok
    assert_holds(client, 3, third)


def test_a_replay_of_version_1_after_seeing_version_2_signed_is_refused(world):
    # The client verified v2's manifest but could not apply it (a tampered bundle); a replay
    # of v1's plan must still be refused: the highest signed version seen is remembered.
    client, server = world.client, world.server
    heal = tampered_bundle_byte(world)
    assert not client.sync(retries=0).ok
    heal()
    server.feeds[FEED].manifests.append(server.feeds[FEED].manifests[0])  # v1 again, newest

    report = client.sync(retries=0)

    assert [e.code for e in report.errors()] == ["rollback"]
    assert_holds(client, 1, world.v1)


def test_a_server_that_forgot_our_version_cannot_roll_us_back(world):
    client, server = world.client, world.server
    assert client.sync(retries=0).ok
    heal = server_forgets_versions(world)

    # From 0, the server (restored from a backup) offers only version 1: refused as replay.
    def old_state(request: Request) -> Reply | None:
        if request.path.endswith("/plan/") and request.query.get("from_version") == "0":
            plan = server.plan(FEED, 0)
            assert isinstance(plan, dict)
            first = server.feeds[FEED].manifests[0]
            plan.update(version=1, manifest=json.loads(first.envelope))
            return Reply(200, json.dumps(plan).encode())
        return None

    server.hooks.insert(0, old_state)
    client.store.update_feed(FEED, manifest_sha256=None)  # make the list shortcut ask

    report = client.sync(retries=0)

    assert [e.code for e in report.errors()] == ["rollback"]
    assert_holds(client, 2, world.v2)
    heal()


def test_bundle_over_the_configured_cap_is_never_downloaded(config, server, entries):
    server.publish(FEED, entries)
    small = Config(
        **{**config.to_json(), "max_bundle_bytes": 100, "root_keyids": config.root_keyids}
    )

    with HashsyncClient(small, token=server.token) as client:
        report = client.sync(retries=0)

    assert [e.code for e in report.errors()] == ["bundle_too_large"]
    assert not [r for r in server.requests if "/bundles/" in r.path]


def test_a_feed_unpublished_after_we_held_it_keeps_our_list(world):
    client, server = world.client, world.server
    saved = list(server.feeds[FEED].manifests)
    server.feeds[FEED].manifests.clear()

    report = client.sync(retries=0)

    assert [e.code for e in report.errors()] == ["rollback"]
    assert_holds(client, 1, world.v1)
    server.feeds[FEED].manifests[:] = saved
    assert client.sync(retries=0).ok


def test_a_list_altered_locally_is_detected_and_healed_by_the_snapshot(world):
    client, server = world.client, world.server
    assert client.sync(retries=0).ok
    feed_id = client.store.feed(FEED).id
    with client.store.transaction() as conn:  # someone edits the database by hand
        conn.execute(
            "DELETE FROM entries WHERE feed_id = ? AND value = (SELECT min(value) FROM entries)",
            (feed_id,),
        )

    checks = client.verify_local()

    assert not checks[0].ok
    server.publish(FEED, world.v2, snapshot=True)  # a re-cut with a snapshot to heal from
    report = client.sync(retries=0)
    assert report.ok, report.errors()
    assert_holds(client, 3, world.v2)


def _rewritten_plan(world: World, change: Callable[[dict], None]) -> Heal:
    """The honest plan with ``change`` applied to it (the server's own answer, altered)."""

    def fn(request: Request) -> Reply | None:
        if not request.path.endswith("/plan/"):
            return None
        plan = world.server.plan(FEED, int(request.query.get("from_version", "0")))
        assert isinstance(plan, dict)
        change(plan)
        return json_reply(200, plan)

    return hook(world.server, fn)


def test_a_plan_cannot_send_the_client_to_another_address_for_its_bundles(world):
    fetched: list[str] = []
    world.server.hooks.append(lambda r: fetched.append(r.path) if "/bundles/" in r.path else None)

    def elsewhere(plan: dict) -> None:
        for step in plan["steps"]:
            step["url"] = "http://127.0.0.1:9/internal/admin?x=" + step["sha256"]

    _rewritten_plan(world, elsewhere)

    report = world.client.sync(retries=0)

    assert report.ok, report.errors()
    assert fetched == [f"/api/v1/sync/bundles/{world.delta_sha()}/"]
    assert_holds(world.client, 2, world.v2)


def test_an_absurd_poll_interval_from_the_server_is_capped(world):
    _rewritten_plan(world, lambda plan: plan.update(poll_interval_seconds=2**62))

    report = world.client.sync(retries=0)

    assert report.ok, report.errors()
    assert report.poll_interval == 86_400
