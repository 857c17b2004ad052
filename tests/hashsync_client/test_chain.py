"""The manifest history chain (issue 10, item 9; docs/signing.md §4 check 10): the link from
the manifest held to the next, and along the per-step manifests of a plan for a client
further behind. A broken link refuses the sync and leaves the store as it was."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest

from hashsync_client.errors import ChainBroken
from hashsync_client.plan.chain import check_chain
from hashsync_client.signing import format_timestamp, manifest_sha256, parse_timestamp
from tests.hashsync_client.conftest import FEED, assert_holds, changed


def _forge_newest(server, previous):
    """Replace the feed's newest manifest by one whose link is ``previous``, issued in the same
    second as the one before it (as a fork cut at once would be): no unseen re-signing can sit
    between the two, so the link is decidable (a later-issued one is not: see plan/chain.py)."""
    manifests = server.feeds[FEED].manifests
    manifests.pop()
    issued = parse_timestamp(manifests[-1].payload["issued_at"])
    server.sign(FEED, previous=previous, issued_at=issued)


@pytest.mark.parametrize("link", ["unrelated", "null"])
def test_a_next_version_not_linked_to_the_held_manifest_is_refused(client, server, entries, link):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    server.publish(FEED, changed(entries, seed=2))
    _forge_newest(server, secrets.token_hex(32) if link == "unrelated" else None)

    report = client.sync(retries=0)

    (result,) = report.results
    assert isinstance(result.error, ChainBroken)
    assert_holds(client, 1, entries)
    # The honest manifest heals it.
    server.feeds[FEED].manifests.pop()
    server.sign(FEED)
    assert client.sync(retries=0).ok


def test_a_broken_link_between_two_steps_of_a_plan_is_refused(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    second = changed(entries, seed=2)
    server.publish(FEED, second)
    server.publish(FEED, changed(second, seed=3))
    # Version 3 does not follow version 2's manifest, which the plan hands the client too.
    _forge_newest(server, secrets.token_hex(32))
    server.requests.clear()

    report = client.sync(retries=0)

    (result,) = report.results
    assert isinstance(result.error, ChainBroken)
    assert "version 3" in str(result.error)
    assert not [r for r in server.requests if "/bundles/" in r.path]
    assert_holds(client, 1, entries)


def test_a_link_to_another_known_manifest_is_refused(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    held = server.feeds[FEED].manifests[-1]
    second = changed(entries, seed=2)
    server.publish(FEED, second)
    server.publish(FEED, changed(second, seed=3))
    # Version 3 names version 1's manifest (which the client holds), skipping version 2.
    _forge_newest(server, held.sha256)

    report = client.sync(retries=0)

    (result,) = report.results
    assert isinstance(result.error, ChainBroken)
    assert_holds(client, 1, entries)


def test_honest_resignings_the_plan_does_not_carry_are_accepted(client, server, entries):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    server.sign(FEED)  # version 1 re-signed twice while the client was away
    server.sign(FEED)
    second = changed(entries, seed=2)
    server.publish(FEED, second)
    server.sign(FEED)  # and version 2 once

    report = client.sync(retries=0)

    assert report.ok, report.errors()
    assert_holds(client, 2, second)


def test_each_exact_link_is_counted_as_verified(server, entries):
    server.publish(FEED, entries)
    server.publish(FEED, changed(entries, seed=2))
    server.publish(FEED, changed(entries, seed=3))
    first, second, third = (m.payload for m in server.feeds[FEED].manifests)

    assert check_chain(FEED, first, [second, third]) == 2
    assert check_chain(FEED, None, [second, third]) == 1
    assert check_chain(FEED, third, [first, second, third]) == 2  # a replay from version 0


def test_a_link_to_an_unseen_manifest_issued_no_later_is_refused(server, entries):
    server.publish(FEED, entries)
    held = server.feeds[FEED].manifests[-1].payload
    forged = dict(
        held,
        version=2,
        delta={"from_version": 1, "sha256": "0" * 64, "size": 1, "records": 1},
        previous_manifest_sha256=secrets.token_hex(32),
    )
    with pytest.raises(ChainBroken, match="no re-signing fits"):
        check_chain(FEED, held, [forged])
    later = dict(forged, issued_at=_later(held["issued_at"]))
    assert check_chain(FEED, held, [later]) == 0
    assert manifest_sha256(later) != manifest_sha256(held)


def _later(stamp: str) -> str:
    return format_timestamp(parse_timestamp(stamp) + timedelta(hours=1))


def test_an_unseen_link_across_skipped_versions_is_accepted_whenever_issued(server, entries):
    server.publish(FEED, entries)
    held = server.feeds[FEED].manifests[-1].payload
    # A snapshot jump: version 9's delta starts at version 8, which the client never saw.
    jump = dict(
        held,
        version=9,
        delta=dict(held["delta"] or {}, from_version=8),
        previous_manifest_sha256=secrets.token_hex(32),
    )
    assert check_chain(FEED, held, [jump]) == 0
