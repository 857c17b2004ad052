"""``watch``: the pacing between syncs, re-reading the token after an auth failure, and the
store staying readable while a sync holds it."""

from __future__ import annotations

import threading
from pathlib import Path

from hashsync_client.config import Config
from hashsync_client.http import SyncApi
from hashsync_client.store import Store
from hashsync_client.sync import Backoff, Syncer, SyncReport, watch
from tests.hashsync_client.conftest import FEED, assert_holds
from tests.hashsync_client.fakeserver import FakeHashsync, error_reply


class RecordingStop(threading.Event):
    """A stop event whose waits return at once, recording how long watch wanted to wait;
    it stops the loop after ``cycles`` waits."""

    def __init__(self, cycles: int) -> None:
        super().__init__()
        self.cycles = cycles
        self.delays: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None and not self.is_set():
            self.delays.append(timeout)
            if len(self.delays) >= self.cycles:
                self.set()
        return self.is_set()


def make_syncer(config: Config, store: Store, token: str, stop: threading.Event) -> Syncer:
    api = SyncApi(base_url=config.api_base, token=token, trust_env=False)
    return Syncer(config, store, api, stop=stop, retries=0, backoff=Backoff(base=2.0, cap=60.0))


def test_watch_waits_the_interval_with_jitter_and_never_less_than_the_poll_interval(
    config, server, entries
):
    server.poll_interval = 500
    server.publish(FEED, entries)
    stop = RecordingStop(cycles=2)
    reports: list[SyncReport] = []

    with Store(config.store_path) as store:
        watch(
            make_syncer(config, store, server.token, stop),
            stop=stop,
            interval=300,
            on_cycle=reports.append,
        )

    assert all(report.ok for report in reports)
    assert len(reports) == 2
    assert all(500 <= delay <= 500 * 1.2 for delay in stop.delays)


def test_watch_backs_off_after_failures_and_honours_retry_after(config, server, entries):
    server.publish(FEED, entries)
    answers = iter(
        [
            error_reply(500, "server_error"),
            error_reply(500, "server_error"),
            error_reply(429, "poll_too_soon", **{"Retry-After": "900"}),
        ]
    )
    server.hooks.append(lambda r: next(answers, None) if r.path.endswith("/feeds/") else None)
    stop = RecordingStop(cycles=4)

    with Store(config.store_path) as store:
        syncer = make_syncer(config, store, server.token, stop)
        syncer.max_wait = 0  # leave every wait to watch
        watch(syncer, stop=stop, interval=10)

    first, second, third, fourth = stop.delays
    assert 1 <= first <= 2 < second <= 4  # exponential with jitter (base 2)
    assert third >= 900  # Retry-After
    assert 10 <= fourth <= 12  # success: back to the interval


def test_watch_reads_the_token_again_after_an_auth_failure(config, server, entries):
    server.publish(FEED, entries)
    stop = RecordingStop(cycles=2)
    made: list[Syncer] = []

    with Store(config.store_path) as store:

        def fresh() -> Syncer:
            made.append(make_syncer(config, store, server.token, stop))
            return made[-1]

        watch(
            make_syncer(config, store, "hsk_" + "0" * 46, stop),
            stop=stop,
            interval=10,
            make_syncer=fresh,
        )

    assert len(made) == 1
    assert store_version(config) == 1


def store_version(config: Config) -> int:
    with Store(config.store_path) as store:
        state = store.feed(FEED)
        return state.version if state else 0


def test_readers_do_not_wait_for_a_sync_holding_the_write_lock(config, server, entries, client):
    server.publish(FEED, entries)
    assert client.sync(retries=0).ok
    writer = Store(config.store_path)
    writer.conn.execute("BEGIN IMMEDIATE")  # as an apply in another process would
    opened: list[Store] = []

    reader = threading.Thread(target=lambda: opened.append(Store(config.store_path)))
    reader.start()
    reader.join(timeout=20)  # a reader that queued for the lock would hang here

    try:
        assert opened, "opening the store waited for the write lock"
        assert opened[0].feed(FEED).version == 1
    finally:
        writer.conn.execute("ROLLBACK")
        writer.close()
        for store in opened:
            store.close()


def test_stop_is_noticed_between_cycles(config: Config, server: FakeHashsync, tmp_path: Path):
    stop = threading.Event()
    stop.set()

    with Store(config.store_path) as store:
        watch(make_syncer(config, store, server.token, stop), stop=stop, interval=10)

    assert server.requests == []


def test_watch_holds_the_verified_list(config, server, entries, client):
    server.publish(FEED, entries)
    stop = RecordingStop(cycles=1)

    watch(make_syncer(config, client.store, server.token, stop), stop=stop, interval=10)

    assert_holds(client, 1, entries)
