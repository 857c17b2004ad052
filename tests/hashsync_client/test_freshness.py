"""A lookup refuses rather than answer "no match" from a list it cannot vouch for, and status
says what it knows of the server (issue 11, item 1)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from hashsync_client import cli
from hashsync_client.api import HashsyncClient
from hashsync_client.config import save_config
from hashsync_client.errors import LookupRefused
from hashsync_client.signing import generate_key
from hashsync_client.store import Store, utc_now
from tests.hashsync_client.conftest import FEED, changed
from tests.hashsync_client.fakeserver import error_reply, synthetic_entries


class Clock:
    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self):
        return self.now


def _value(entries) -> str:
    (_, value), _ = next(iter(entries.items()))
    return value.hex()


def test_a_store_path_that_does_not_exist_is_refused_and_not_created(config, server, tmp_path):
    missing = tmp_path / "typo" / "hashsync.sqlite3"
    wrong = dataclasses.replace(config, store_path=str(missing))
    with (
        HashsyncClient(wrong, token=server.token) as client,
        pytest.raises(LookupRefused, match="no local store") as refused,
    ):
        client.lookup_values(["00" * 16])
    assert refused.value.code == "no_store"
    assert not missing.exists()


def test_a_store_never_synced_is_refused_not_no_match(config, server):
    Store(config.store_path).close()  # exists, empty
    with (
        HashsyncClient(config, token=server.token) as client,
        pytest.raises(LookupRefused, match="holds no feed yet") as refused,
    ):
        client.lookup_values(["00" * 16])
    assert refused.value.code == "never_synced"


def test_a_named_feed_never_synced_here_is_refused(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    with pytest.raises(LookupRefused, match="never synced here: other-feed"):
        client.lookup_values([_value(entries)], feeds=["other-feed"])


def test_a_feed_not_confirmed_current_within_the_allowed_age_is_refused(config, server, entries):
    clock = Clock()
    server.publish(FEED, entries)
    with HashsyncClient(config, token=server.token, clock=clock) as client:
        assert client.sync(retries=0).ok
        clock.now += timedelta(hours=23)
        assert client.lookup_values([_value(entries)])[0].matches
        clock.now += timedelta(hours=2)
        with pytest.raises(LookupRefused, match="not confirmed current since"):
            client.lookup_values([_value(entries)])
        assert client.lookup_values([_value(entries)], max_age_seconds=26 * 3600)[0].matches


def test_a_feed_whose_last_sync_failed_verification_is_refused_until_healed(
    client, server, entries
):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    server.publish(FEED, changed(entries, seed=2))
    server.feeds[FEED].manifests.pop()
    server.sign(FEED, key=generate_key())  # not a key of the keyring
    assert not client.sync(retries=0).ok

    with pytest.raises(LookupRefused, match="refused what the server sent"):
        client.lookup_values([_value(entries)])

    server.feeds[FEED].manifests.pop()
    server.sign(FEED)
    assert client.sync(retries=0).ok
    client.lookup_values([_value(entries)])


def test_status_says_when_it_last_asked_and_that_the_server_moved_past(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    (before,) = client.status()
    assert not before.stale and before.server_version == 1 and before.server_seen_at
    server.publish(FEED, changed(entries, seed=2))
    server.hooks.append(
        lambda r: error_reply(500, "server_error") if "/bundles/" in r.path else None
    )
    assert not client.sync(retries=0).ok

    (after,) = client.status()

    assert after.version == 1 and after.server_version == 2
    assert after.stale
    assert any("behind: the server announced version 2" in r for r in after.stale_reasons)


def test_the_command_exits_3_for_a_list_it_cannot_vouch_for(config, tmp_path: Path, capsys):
    path = tmp_path / "config.json"
    save_config(dataclasses.replace(config, store_path=str(tmp_path / "none.sqlite3")), path)

    assert cli.main(["--config", str(path), "lookup", "--values", "00" * 16]) == 3

    err = capsys.readouterr().err
    assert "lookup refused" in err and "no local store" in err


def test_status_text_names_the_server_version_and_never_prints_none(
    server, config, tmp_path, capsys, monkeypatch
):
    path = tmp_path / "config.json"
    save_config(config, path)
    server.publish(FEED, synthetic_entries(30, seed=3))
    monkeypatch.setenv("HASHSYNC_TOKEN", server.token)
    assert cli.main(["--config", str(path), "sync"]) == 0
    capsys.readouterr()

    assert cli.main(["--config", str(path), "status"]) == 0

    out = capsys.readouterr().out
    assert "server at v1 when last asked" in out and ", current" in out
    assert "None" not in out
