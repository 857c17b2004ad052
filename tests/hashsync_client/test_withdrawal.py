"""A feed the server no longer offers (issue 10, item 6): entitlement or licence revoked, feed
retired. It stops answering lookups at once, with its own refusal and exit code; its rows are
deleted unless kept on purpose; ``sync`` says so, in text and in ``--json``. And a retraction
stops matching after the sync that brings it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hashsync_client import cli
from hashsync_client.api import HashsyncClient
from hashsync_client.config import save_config
from hashsync_client.errors import FeedWithdrawn
from tests.hashsync_client.conftest import FEED, held_entries
from tests.hashsync_client.fakeserver import error_reply, synthetic_entries

OTHER = "synthetic-pdq"


def _value(entries) -> str:
    (_, value), _ = next(iter(entries.items()))
    return value.hex()


def _revoke(server) -> None:
    """The member loses the feed: gone from its feed list, its plan answers 404 not_found."""
    server.feeds.pop(FEED)


def _rows(client, feed=FEED) -> int:
    state = client.store.feed(feed)
    return int(
        client.store.conn.execute(
            "SELECT count(*) FROM entries WHERE feed_id = ?", (state.id,)
        ).fetchone()[0]
    )


def test_a_feed_dropped_from_the_feed_list_stops_answering_and_its_rows_go(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    assert client.lookup_values([_value(entries)])[0].matches

    _revoke(server)
    report = client.sync(retries=0)

    assert report.ok
    assert [r.feed for r in report.withdrawn] == [FEED]
    assert "rows deleted" in (report.withdrawn[0].note or "")
    assert _rows(client) == 0
    with pytest.raises(FeedWithdrawn, match="no longer offered"):
        client.lookup_values([_value(entries)])
    with pytest.raises(FeedWithdrawn):
        client.lookup_values([_value(entries)], feeds=[FEED])
    (status,) = client.status()
    assert status.withdrawn_at is not None and status.stale
    # Said once: the next sync has nothing new to report.
    assert client.sync(retries=0).withdrawn == []


def test_a_plan_answering_404_not_found_withdraws_the_feed(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    server.publish(FEED, synthetic_entries(10, seed=9))
    server.hooks.append(
        lambda r: error_reply(404, "not_found") if r.path.endswith("/plan/") else None
    )

    report = client.sync(retries=0)

    assert [r.feed for r in report.withdrawn] == [FEED]
    assert "404 not_found" in (report.withdrawn[0].note or "")
    with pytest.raises(FeedWithdrawn):
        client.lookup_values([_value(entries)])


def test_keep_withdrawn_keeps_the_rows_but_they_answer_nothing(config, server, entries):
    server.publish(FEED, entries)
    keep = dataclasses.replace(config, keep_withdrawn=True)
    with HashsyncClient(keep, token=server.token) as client:
        assert client.sync(retries=0).ok
        _revoke(server)
        report = client.sync(retries=0)
        assert "rows kept" in (report.withdrawn[0].note or "")
        assert _rows(client) == len(entries)
        with pytest.raises(FeedWithdrawn):
            client.lookup_values([_value(entries)])


def test_other_feeds_still_answer_and_the_lookup_says_what_it_left_out(client, server, entries):
    other = synthetic_entries(20, seed=5)
    server.publish(FEED, entries)
    server.publish(OTHER, other)
    assert client.sync(retries=0).ok
    _revoke(server)
    assert client.sync(retries=0).ok

    lookup = client.lookup()
    assert lookup.skipped_withdrawn == (FEED,)
    assert lookup.values([_value(other)])[0].matches
    assert not lookup.values([_value(entries)])[0].matches


def test_a_feed_offered_again_is_synced_afresh(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    saved = server.feeds[FEED]
    _revoke(server)
    client.sync(retries=0)
    server.feeds[FEED] = saved

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert held_entries(client) == entries
    assert client.lookup_values([_value(entries)])[0].matches


def test_a_retraction_stops_matching_after_the_sync(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    retracted = next(iter(entries))
    server.publish(FEED, {k: g for k, g in entries.items() if k != retracted})

    assert client.sync(retries=0).ok

    (query,) = client.lookup_values([retracted[1].hex()])
    assert not query.matches


def test_the_command_exits_4_and_says_so_in_text_and_json(server, config, tmp_path, capsys):
    path = tmp_path / "config.json"
    save_config(config, path)
    server.publish(FEED, synthetic_entries(30, seed=3))
    server.publish(OTHER, synthetic_entries(30, seed=4))
    env = {"HASHSYNC_TOKEN": server.token}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert cli.main(["--config", str(path), "sync"]) == 0
        _revoke(server)
        capsys.readouterr()

        assert cli.main(["--config", str(path), "sync", "--json"]) == 4
        report = json.loads(capsys.readouterr().out)
        assert report["withdrawn"] == [FEED]
        assert report["feeds"][0]["status"] == "withdrawn"

        run = ["--config", str(path)]
        assert cli.main([*run, "lookup", "--feed", FEED, "--values", "00" * 16]) == 4
        assert "no longer offered by the server" in capsys.readouterr().err
        # A lookup of all feeds answers from the others, and says what it left out.
        assert cli.main([*run, "lookup", "--values", "00" * 16]) == 1
        assert f"{FEED} is withdrawn by the server: not consulted" in capsys.readouterr().err

        assert cli.main([*run, "status"]) == 0
        assert f"{FEED}: version 0, 0 entries" in capsys.readouterr().out
        assert cli.main([*run, "status", "--check"]) == 4
        assert cli.main([*run, "forget", OTHER]) == 1  # still offered: refused
        assert cli.main([*run, "forget", FEED]) == 0
        assert cli.main([*run, "status", "--check"]) == 0
