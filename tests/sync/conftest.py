"""Fixtures of the sync API tests."""

from __future__ import annotations

from typing import Any

import pytest

from distribution import releases
from distribution import services as feed_services
from members import services as member_services
from tests.factories import member_with_token
from tests.sync.helpers import World, _current, _listed


@pytest.fixture(autouse=True)
def _match_index_dir(settings: Any, tmp_path: Any) -> None:
    """Each test's matcher saves and maps its indexes in a folder of its own."""
    settings.HASHSYNC_MATCH_INDEX_DIR = str(tmp_path / "match-index")


@pytest.fixture
def no_pacing(settings: Any) -> None:
    """Tests poll repeatedly; the pacing tests set their own interval."""
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0


@pytest.fixture
def world(analyst: Any, reviewer: Any, member_admin: Any) -> World:
    feed_a = feed_services.feed_create(actor=member_admin, name="md5-alpha", algorithms=["md5"])
    feed_b = feed_services.feed_create(actor=member_admin, name="sha1-beta", algorithms=["sha1"])
    a_hashes = [_listed(analyst, reviewer, "md5") for _ in range(3)]
    b_hashes = [_listed(analyst, reviewer, "sha1") for _ in range(3)]
    assert releases.release_cut() is not None
    _, token_a = member_with_token(member_admin, name="alpha", feeds=(feed_a.name,))
    _, token_b = member_with_token(member_admin, name="beta", feeds=(feed_b.name,))
    return World(
        admin=member_admin,
        feed_a=feed_a,
        feed_b=feed_b,
        token_a=token_a,
        token_b=token_b,
        a_hashes=a_hashes,
        b_hashes=b_hashes,
        bundle_a=_current(feed_a).snapshot_sha256,
        bundle_b=_current(feed_b).snapshot_sha256,
    )


@pytest.fixture
def photodna(world: World, analyst: Any, reviewer: Any) -> dict[str, Any]:
    """Alpha is also entitled to ``photodna-all`` (granted while it held a licence)."""
    feed = feed_services.feed_create(
        actor=world.admin, name="photodna-all", algorithms=["photodna"]
    )
    listed = _listed(analyst, reviewer, "photodna")
    assert releases.release_cut() is not None
    member_services.licence_grant(actor=world.admin, member_name="alpha", kind="photodna")
    member_services.entitlement_grant(actor=world.admin, member_name="alpha", feed=feed.name)
    return {"feed": feed, "hash": listed, "bundle": _current(feed).snapshot_sha256}
