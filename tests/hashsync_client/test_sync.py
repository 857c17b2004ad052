"""The member client's sync against a fake server that follows docs/sync-api.md honestly."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import pytest

from hashsync_client.api import HashsyncClient
from hashsync_client.config import Config
from hashsync_client.errors import BadResponse
from hashsync_client.format import Op, Record, read_bundle_bytes
from hashsync_client.http import SyncApi, parse_retry_after
from hashsync_client.signing import generate_key
from hashsync_client.store import Store
from hashsync_client.sync import Backoff, Syncer
from tests.hashsync_client.conftest import FEED, assert_holds, changed, held_entries
from tests.hashsync_client.fakeserver import (
    BundleRef,
    Entries,
    FakeHashsync,
    Reply,
    Request,
    StaticHost,
    build_bundle,
    digest_of,
    error_reply,
    synthetic_entries,
)


def bundle_requests(server: FakeHashsync) -> list[Request]:
    return [r for r in server.requests if "/bundles/" in r.path]


def test_first_sync_takes_the_snapshot_verifies_applies_and_acks(client, server, entries):
    version = server.publish(FEED, entries)

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert [(r.feed, r.status, r.version) for r in report.results] == [(FEED, "updated", 1)]
    assert_holds(client, version, entries)
    assert server.acks == [(FEED, 1, digest_of(entries))]
    state = client.store.feed(FEED)
    assert state.acked_version == 1 and state.ack_status == "ok"
    assert json.loads(state.manifest)["version"] == 1


def test_later_syncs_apply_deltas_in_order(client, server, entries):
    server.publish(FEED, entries)
    client.sync(retries=0)
    second = changed(entries, seed=2)
    third = changed(second, seed=3)
    server.publish(FEED, second, snapshot=False)
    server.publish(FEED, third, snapshot=False)
    server.requests.clear()

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert report.results[0].steps == 2
    assert_holds(client, 3, third)
    plan = next(r for r in server.requests if r.path.endswith("/plan/"))
    assert plan.query == {"from_version": "1"}
    assert len(bundle_requests(server)) == 2  # two deltas, not the snapshot
    assert server.acks[-1] == (FEED, 3, digest_of(third))


def test_far_behind_client_gets_snapshot_then_following_deltas(client, server, entries):
    server.publish(FEED, entries)
    second = changed(entries, seed=2)
    server.publish(FEED, second, snapshot=True)
    third = changed(second, seed=3)
    server.publish(FEED, third, snapshot=False)

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert report.results[0].steps == 2  # snapshot of v2, then the delta to v3
    assert_holds(client, 3, third)


def test_regrades_and_removals_change_the_list_and_the_digest(client, server):
    base = synthetic_entries(50, seed=7)
    server.publish(FEED, base)
    client.sync(retries=0)
    key_regraded, key_removed = sorted(base)[:2]
    after = dict(base)
    after[key_regraded] = (after[key_regraded] + 5) % 630
    del after[key_removed]
    server.publish(FEED, after, snapshot=False)

    client.sync(retries=0)

    held = held_entries(client)
    assert held[key_regraded] == after[key_regraded]
    assert key_removed not in held
    assert_holds(client, 2, after)


def test_an_unchanged_feed_costs_no_bundle_and_no_new_ack(client, server, entries):
    server.publish(FEED, entries)
    client.sync(retries=0)
    server.requests.clear()

    report = client.sync(retries=0)

    assert report.ok
    assert report.results[0].status == "up_to_date"
    assert bundle_requests(server) == []
    assert not [r for r in server.requests if r.path.endswith("/plan/")]  # the list said so
    assert len(server.acks) == 1


def test_up_to_date_poll_sends_the_etag_and_accepts_304(client, server, entries):
    server.publish(FEED, entries)
    client.sync(retries=0)
    # The feed list stops naming the manifest, so the client must ask for a plan.
    server.hooks.append(
        lambda r: (
            Reply(
                200,
                json.dumps(
                    {
                        "poll_interval_seconds": 0,
                        "feeds": [
                            {"name": FEED, "version": 1, "published": True, "manifest_sha256": None}
                        ],
                    }
                ).encode(),
            )
            if r.path.endswith("/sync/feeds/")
            else None
        )
    )
    client.sync(retries=0)  # up_to_date plan: its ETag is remembered
    server.requests.clear()

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    plan = next(r for r in server.requests if r.path.endswith("/plan/"))
    assert plan.headers["if-none-match"] == server.plan_etag(FEED, 1)
    assert report.results[0].status == "up_to_date"
    assert client.store.feed(FEED).checked_at is not None


def test_a_resigned_manifest_of_the_same_version_is_kept_as_the_newest_proof(
    client, server, entries
):
    server.publish(FEED, entries)
    client.sync(retries=0)
    resigned = server.sign(FEED, expires_at=server.now + (server.manifest_ttl * 2))

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    state = client.store.feed(FEED)
    assert state.version == 1
    assert state.manifest_sha256 == resigned.sha256
    assert state.manifest_expires_at == resigned.payload["expires_at"]


def test_unpublished_feed_is_reported_and_left_empty(client, server):
    server.feed("not-yet")

    report = client.sync(retries=0)

    assert report.ok
    assert [(r.feed, r.status, r.version) for r in report.results] == [
        ("not-yet", "unpublished", 0)
    ]


def test_only_the_configured_feeds_are_synced(config, server, entries):
    server.publish(FEED, entries)
    server.publish("other-feed", synthetic_entries(10, seed=9))
    only = Config(**{**config.to_json(), "feeds": (FEED,), "root_keyids": config.root_keyids})

    with HashsyncClient(only, token=server.token) as client:
        report = client.sync(retries=0)

    assert [r.feed for r in report.results] == [FEED]


def test_a_feed_asked_for_but_not_offered_is_an_error(client, server, entries):
    server.publish(FEED, entries)

    report = client.sync(["missing-feed"], retries=0)

    assert not report.ok
    assert report.results[0].error.code == "not_offered"


def test_ack_mismatch_discards_the_feed_and_takes_the_snapshot(client, server, entries):
    server.publish(FEED, entries)
    client.sync(retries=0)
    second = changed(entries, seed=2)
    server.publish(FEED, second)
    mismatches = iter([True])

    def lie_once(request: Request) -> Reply | None:
        if request.path.endswith("/ack/") and next(mismatches, False):
            return Reply(200, b'{"status": "mismatch", "version": 2, "message": "x"}')
        return None

    server.hooks.append(lie_once)
    server.requests.clear()

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    plans = [r.query["from_version"] for r in server.requests if r.path.endswith("/plan/")]
    assert plans == ["1", "0"]
    assert_holds(client, 2, second)
    assert client.store.feed(FEED).ack_status == "ok"


def test_a_delta_ending_in_the_wrong_digest_makes_the_client_take_the_snapshot(
    client, server, entries
):
    server.publish(FEED, entries)
    client.sync(retries=0)
    second = changed(entries, seed=2)
    server.publish(FEED, second, snapshot=True)
    # A delta that is wrong but correctly signed: it misses most of the changes.
    fv = server.feeds[FEED].versions[-1]
    added = [(key, g) for key, g in second.items() if key not in entries][:3]
    wrong = build_bundle("delta", FEED, 1, 2, [Record(a, v, Op.UPSERT, g) for (a, v), g in added])
    sha = hashlib.sha256(wrong).hexdigest()
    server.bundles[sha] = wrong
    fv.delta = BundleRef(sha, len(wrong), read_bundle_bytes(wrong)[0].record_count)
    server.feeds[FEED].manifests.pop()
    server.sign(FEED)

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert_holds(client, 2, second)


def test_keyring_rotation_to_a_new_online_key_needs_no_client_change(client, server, entries):
    server.publish(FEED, entries)
    client.sync(retries=0)
    new_key = generate_key()
    server.issue_keyring(root_keys=[server.root], signers=[server.root], online=[new_key])
    server.online = new_key
    second = changed(entries, seed=2)
    server.publish(FEED, second)

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert_holds(client, 2, second)
    assert client.store.trusted_keyring().version == 2


def test_root_rotation_signed_by_the_old_root_is_followed(client, server, entries):
    server.publish(FEED, entries)
    client.sync(retries=0)
    new_root = generate_key()
    server.issue_keyring(
        root_keys=[new_root], signers=[server.root, new_root], online=[server.online]
    )
    server.publish(FEED, changed(entries, seed=2))

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert client.store.trusted_keyring().root_keyids == (new_root.keyid,)
    # The server later stops serving keyring 1: the client walks from the root it re-pinned.
    del server.keyrings[0]
    server.publish(FEED, changed(server.entries(FEED), seed=3))

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert client.store.feed(FEED).version == 3


def test_bundle_redirect_to_another_host_does_not_carry_the_token(client, server, entries):
    cdn = StaticHost(server.bundles)
    server.redirect_bundles_to = cdn.url
    try:
        server.publish(FEED, entries)

        report = client.sync(retries=0)
    finally:
        cdn.stop()

    assert report.ok, report.errors()
    assert_holds(client, 1, entries)
    assert cdn.requests, "the bundle came from the other host"
    assert all("authorization" not in headers for headers in cdn.requests)
    assert all("authorization" in r.headers for r in bundle_requests(server))


def test_429_retry_after_is_honoured_then_the_sync_succeeds(config, server, entries):
    server.publish(FEED, entries)
    answers = iter([error_reply(429, "poll_too_soon", "wait", **{"Retry-After": "7"})])
    server.hooks.append(lambda r: next(answers, None) if r.path.endswith("/feeds/") else None)
    waits: list[float] = []
    store = Store(config.store_path)
    api = SyncApi(base_url=config.api_base, token=server.token, trust_env=False)
    syncer = Syncer(config, store, api, backoff=Backoff(base=0.01))
    syncer._wait = waits.append

    report = syncer.sync_all()
    api.close()
    store.close()

    assert report.ok, report.errors()
    assert len(waits) == 1 and 7 <= waits[0] <= 7 * 1.1 + 1


def test_503_and_html_error_pages_are_retried_with_backoff(config, server, entries):
    server.publish(FEED, entries)
    failures = iter(
        [
            Reply(503, b"<html>down</html>", content_type="text/html"),
            Reply(502, b"<html>bad gateway</html>", content_type="text/html"),
        ]
    )
    server.hooks.append(lambda r: next(failures, None) if r.path.endswith("/plan/") else None)
    waits: list[float] = []
    store = Store(config.store_path)
    api = SyncApi(base_url=config.api_base, token=server.token, trust_env=False)
    syncer = Syncer(config, store, api, backoff=Backoff(base=1.0, cap=60.0))
    syncer._wait = waits.append

    report = syncer.sync_all()
    api.close()
    store.close()

    assert report.ok, report.errors()
    assert len(waits) == 2
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0  # exponential, jittered


def test_backoff_grows_exponentially_is_jittered_and_capped():
    backoff = Backoff(base=2.0, cap=60.0)
    delays = [backoff.delay(n) for n in range(10)]
    for attempt, delay in enumerate(delays):
        step = min(60.0, 2.0 * 2**attempt)
        assert step / 2 <= delay <= step
    assert len({round(backoff.delay(3), 6) for _ in range(20)}) > 1


def test_retry_after_accepts_seconds_and_http_dates_and_is_clamped():
    assert parse_retry_after("12") == 12
    assert parse_retry_after("999999999") == 3600
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_a_revoked_token_fails_without_retries(client, server, entries):
    server.publish(FEED, entries)
    server.hooks.append(lambda r: error_reply(401, "token_revoked", "revoked"))

    report = client.sync(retries=3)

    assert not report.ok
    assert report.error.code == "token_revoked"
    assert len(server.requests) == 1


def test_the_token_never_appears_in_logs_or_errors(client, server, entries, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    server.publish(FEED, entries)
    server.hooks.append(lambda r: error_reply(403, "scope_missing", "no sync scope"))

    report = client.sync(retries=0)

    assert report.error is not None
    everything = caplog.text + str(report.error) + repr(client) + str(capsys.readouterr())
    assert server.token not in everything
    assert server.token[4:20] not in everything


def test_no_hash_value_is_ever_put_in_a_url(client, server, entries):
    server.publish(FEED, entries)
    client.sync(retries=0)
    values = {value.hex() for _, value in entries}

    for request in server.requests:
        assert not any(v in request.path or v in json.dumps(request.query) for v in values)


def test_plain_http_to_a_remote_host_is_refused():
    with pytest.raises(Exception, match="plain http"):
        Config(server_url="http://hashsync.example/", root_keyids=("a" * 64,))
    with pytest.raises(BadResponse, match="only https"):
        SyncApi(base_url="http://hashsync.example/api/v1/", token="hsk_x" * 3)


def test_a_stop_request_leaves_the_previous_version(client, server, entries):
    server.publish(FEED, entries)
    client.sync(retries=0)
    server.publish(FEED, changed(entries, seed=2))
    stop = threading.Event()
    stop.set()

    report = client.sync(stop=stop, retries=0)

    assert_holds(client, 1, entries)
    assert report.results == [] or report.results[0].version == 1


def test_two_feeds_sync_independently(client, server, entries):
    other: Entries = synthetic_entries(30, seed=11, algorithms=("pdq",))
    server.publish(FEED, entries)
    server.publish("pdq-synthetic", other)

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert_holds(client, 1, entries)
    assert_holds(client, 1, other, feed="pdq-synthetic")


def test_store_file_is_private(client, server, entries, config):
    server.publish(FEED, entries)
    client.sync(retries=0)

    assert Path(config.store_path).stat().st_mode & 0o077 == 0
