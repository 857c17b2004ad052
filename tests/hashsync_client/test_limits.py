"""Resource limits a hostile server cannot talk the client out of (issue 10, item 10): an
overall deadline per request and per sync (a server trickling one byte at a time), a cap on
the records a signed step may announce (checked before a byte is fetched or decompressed),
and a cap on the lifetime of the newest manifest."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from typing import Any

import pytest

from hashsync_client.api import HashsyncClient
from hashsync_client.config import Config
from hashsync_client.errors import DeadlineExceeded
from tests.hashsync_client.conftest import FEED, assert_holds
from tests.hashsync_client.fakeserver import (
    BundleRef,
    FakeHashsync,
    Reply,
    json_reply,
    synthetic_entries,
)


def _client(config: Config, server: FakeHashsync, **changes: Any) -> HashsyncClient:
    return HashsyncClient(dataclasses.replace(config, **changes), token=server.token)


def _trickle_plans(server: FakeHashsync) -> None:
    def slow(request):
        if request.path.endswith("/plan/"):
            honest = json_reply(200, server.plan(FEED, int(request.query["from_version"])))
            return Reply(200, honest.body, trickle=0.05)  # ~20 bytes a second, for minutes
        return None

    server.hooks.append(slow)


def test_a_server_trickling_bytes_cannot_hold_a_request_past_its_timeout(config, server):
    server.publish(FEED, synthetic_entries(50, seed=1))
    _trickle_plans(server)
    with _client(config, server, timeout_seconds=1.0) as client:
        started = time.monotonic()
        report = client.sync(retries=0)
        elapsed = time.monotonic() - started

    (result,) = report.results
    assert isinstance(result.error, DeadlineExceeded)
    assert result.error.code == "deadline_exceeded"
    # Each byte arrives well within the 1 s read timeout; only the overall deadline ends it
    # (the whole answer would take minutes at this pace).
    assert elapsed < 10


def test_a_whole_sync_ends_at_its_deadline_however_generous_each_request_is(config, server):
    server.publish(FEED, synthetic_entries(50, seed=1))
    _trickle_plans(server)
    with _client(config, server, timeout_seconds=600.0, sync_deadline_seconds=1) as client:
        started = time.monotonic()
        report = client.sync(retries=3)
        elapsed = time.monotonic() - started

    (result,) = report.results
    assert result.error is not None and result.error.code == "deadline_exceeded"
    assert elapsed < 10


def test_a_step_announcing_more_records_than_max_entries_is_refused_before_download(config, server):
    first = synthetic_entries(60, seed=1)
    server.publish(FEED, first)
    with _client(config, server, max_entries=100) as client:
        assert client.sync(retries=0).ok
        # Every entry replaced: 120 records in the delta, 60 entries after it.
        server.publish(FEED, synthetic_entries(60, seed=2))
        server.requests.clear()

        report = client.sync(retries=0)

        (result,) = report.results
        assert result.error is not None and result.error.code == "too_many_entries"
        assert not [r for r in server.requests if "/bundles/" in r.path]
        assert_holds(client, 1, first)


def test_a_bundle_whose_header_outnumbers_its_signed_count_is_refused_unread(config, server):
    first = synthetic_entries(60, seed=1)
    server.publish(FEED, first)
    with _client(config, server) as client:
        assert client.sync(retries=0).ok
        server.publish(FEED, synthetic_entries(60, seed=2))
        feed = server.feeds[FEED]
        honest = feed.versions[-1].delta
        assert honest is not None
        # The signed manifest (and the plan) say 3 records; the bundle's header says 120.
        feed.versions[-1].delta = BundleRef(honest.sha256, honest.size, records=3)
        feed.manifests.pop()
        server.sign(FEED)

        report = client.sync(retries=0)

        (result,) = report.results
        # Any count other than the signed one is the same refusal, before the body is read.
        assert result.error is not None and result.error.code == "bundle_header"
        assert "with 120 records" in str(result.error)
        assert "its signed count is 3" in str(result.error)
        assert_holds(client, 1, first)


@pytest.mark.parametrize("days, accepted", [(31, True), (3650, False)])
def test_a_manifest_valid_for_longer_than_the_cap_is_refused(config, server, days, accepted):
    first = synthetic_entries(40, seed=1)
    server.publish(FEED, first)
    with _client(config, server) as client:
        assert client.sync(retries=0).ok
        second = synthetic_entries(40, seed=2)
        server.publish(FEED, second)
        server.feeds[FEED].manifests.pop()
        server.sign(FEED, expires_at=server.now + timedelta(days=days))

        report = client.sync(retries=0)

        if accepted:
            assert report.ok, report.errors()
            assert_holds(client, 2, second)
        else:
            (result,) = report.results
            assert result.error is not None and result.error.code == "manifest_lifetime"
            assert_holds(client, 1, first)
