"""Fixtures for the member client tests: a fake server (tests/hashsync_client/fakeserver.py) on
127.0.0.1, a client configured against it, and helpers that check the local store.

No database (these tests never request ``db``), no network beyond localhost, synthetic data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hashsync_client.api import HashsyncClient
from hashsync_client.config import Config
from hashsync_client.format import ALGORITHM_NAMES
from tests.hashsync_client.fakeserver import Entries, FakeHashsync, digest_of, synthetic_entries

FEED = "synthetic-md5-sha1"


@pytest.fixture
def server() -> Iterator[FakeHashsync]:
    fake = FakeHashsync().start()
    yield fake
    fake.stop()


@pytest.fixture
def config(server: FakeHashsync, tmp_path: Path) -> Config:
    return Config(
        server_url=server.url,
        root_keyids=(server.root.keyid,),
        store_path=str(tmp_path / "store" / "hashsync.sqlite3"),
        use_env_proxy=False,
        timeout_seconds=10.0,
    )


@pytest.fixture
def client(config: Config, server: FakeHashsync) -> Iterator[HashsyncClient]:
    with HashsyncClient(config, token=server.token) as instance:
        yield instance


@pytest.fixture
def entries() -> Entries:
    return synthetic_entries(200, seed=1)


def held_entries(client: HashsyncClient, feed: str = FEED) -> Entries:
    ids = client.store.feed_ids([feed])
    return {
        (ALGORITHM_NAMES[algorithm], value): grading
        for _, algorithm, value, grading in client.store.iter_entries(list(ids))
    }


def assert_holds(client: HashsyncClient, version: int, entries: Entries, feed: str = FEED) -> None:
    """The store holds exactly ``entries`` at ``version``, with the right digest, and is a
    sound SQLite file whose rows hash to the stored digest."""
    state = client.store.feed(feed)
    assert state is not None
    assert state.version == version
    assert held_entries(client, feed) == entries
    assert state.state_digest == digest_of(entries)
    assert state.entry_count == len(entries)
    assert client.store.integrity_check() == "ok"
    assert all(check.ok for check in client.verify_local(repair=False))


def changed(
    entries: Entries, *, seed: int, add: int = 20, regrade: int = 10, remove: int = 10
) -> Entries:
    """A next version of ``entries``: some added (synthetic), regraded and removed."""
    result = dict(entries)
    keys = sorted(result)
    for key in keys[:regrade]:
        result[key] = (result[key] + 1) % 630
    for key in keys[regrade : regrade + remove]:
        del result[key]
    result.update(synthetic_entries(add, seed=seed))
    return result
