"""What the sync API contributes to /metrics: member lag read from the fleet at scrape time,
429s, bad tokens and bundle bytes counted where they happen."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from prometheus_client import REGISTRY

from members import services as member_services
from tests.hashsync.test_metrics import sample, scrape
from tests.sync.helpers import World, _current, _listed, _plan_path, _send


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_member_lag_is_versions_and_seconds_behind_per_member(
    client: Any, world: World, analyst: Any, reviewer: Any
) -> None:
    text = scrape(client)
    # Neither member's client has acked anything: it lacks every version of its feed.
    assert sample(text, "hashsync_member_lag_versions", member="alpha") == 1
    assert sample(text, "hashsync_member_sync_clients", member="alpha") == 1

    current = _current(world.feed_a)
    response = _send(
        "post",
        reverse("sync-ack", kwargs={"name": world.feed_a.name}),
        {"version": current.version, "state_digest": current.state_digest},
        token=world.token_a,
    )
    assert response.status_code == 200, response.content
    text = scrape(client)
    assert sample(text, "hashsync_member_lag_versions", member="alpha") == 0
    assert sample(text, "hashsync_member_lag_seconds", member="alpha") == 0

    _listed(analyst, reviewer, "md5")  # a new version of alpha's feed, not acked
    from distribution import releases

    releases.release_cut()
    text = scrape(client)
    assert sample(text, "hashsync_member_lag_versions", member="alpha") == 1
    lag = sample(text, "hashsync_member_lag_seconds", member="alpha")
    assert lag is not None and lag >= 0
    assert "beta" in text and world.token_a not in text


def test_poll_pacing_429s_are_counted(world: World, settings: Any) -> None:
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 3600
    before = _value("hashsync_rate_limited_total", reason="poll_too_soon")
    assert _send("get", _plan_path("md5-alpha", 0), token=world.token_a).status_code == 200
    assert _send("get", _plan_path("md5-alpha", 0), token=world.token_a).status_code == 429
    assert _value("hashsync_rate_limited_total", reason="poll_too_soon") == before + 1


def test_bad_tokens_and_their_lockout_are_counted(world: World, settings: Any) -> None:
    settings.HASHSYNC_AUTH_FAILURE_LIMIT = 2
    bad, locked = (
        _value("hashsync_bad_tokens_total"),
        _value("hashsync_rate_limited_total", reason="too_many_failures"),
    )
    for _ in range(2):
        assert _send("get", reverse("sync-feeds"), token="hsk_not-a-real-token").status_code == 401
    assert _send("get", reverse("sync-feeds"), token=world.token_a).status_code == 429
    assert _value("hashsync_bad_tokens_total") == bad + 2
    assert _value("hashsync_rate_limited_total", reason="too_many_failures") == locked + 1


def test_bundle_bytes_served_are_counted(world: World) -> None:
    before = _value("hashsync_bundle_bytes_served_total", via="app")
    response = _send(
        "get", reverse("sync-bundle", kwargs={"sha256": world.bundle_a}), token=world.token_a
    )
    assert response.status_code == 200
    size = sum(len(chunk) for chunk in response.streaming_content)
    assert _value("hashsync_bundle_bytes_served_total", via="app") == before + size


def test_member_budget_429s_are_counted(world: World, settings: Any) -> None:
    settings.HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE = 1
    before = _value("hashsync_rate_limited_total", reason="rate_limited")
    path = reverse("sync-bundle", kwargs={"sha256": world.bundle_a})
    first = _send("get", path, token=world.token_a)
    b"".join(first.streaming_content)
    assert _send("get", path, token=world.token_a).status_code == 429
    assert _value("hashsync_rate_limited_total", reason="rate_limited") == before + 1
    assert member_services  # the module the fixtures create members with


def test_a_scrape_costs_the_same_queries_whatever_the_size_of_the_fleet(
    client: Any, world: World
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import member_with_token

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    before = queries()
    for n in range(3):
        member_with_token(world.admin, name=f"extra-{n}", feeds=(world.feed_a.name,))
    assert queries() == before
    assert before <= 12  # a few aggregate queries per collector (docs/operations.md)
