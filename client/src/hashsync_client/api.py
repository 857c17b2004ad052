"""The Python API: what the ``hashsync-client`` command does, for programs.

    from hashsync_client import HashsyncClient

    with HashsyncClient.from_config_file() as client:
        report = client.sync()
        for query in client.lookup_files([Path("upload.jpg")]):
            print(query.label, [m.feed for m in query.matches])

The token is read from its configured source only when the network is needed (``sync``,
``watch``); ``status``, ``export`` and ``lookup`` work offline on the local store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import httpx

from hashsync_client.config import Config, load_config
from hashsync_client.export import ExportSummary, export_entries
from hashsync_client.http import SyncApi
from hashsync_client.lookup import PDQ_DEFAULT_DISTANCE, PDQ_MIN_QUALITY, Lookup, Query
from hashsync_client.progress import ProgressFactory
from hashsync_client.store import Store, parse_stamp, utc_now
from hashsync_client.sync import Syncer, SyncReport, watch


@dataclass(frozen=True)
class FeedStatus:
    feed: str
    version: int
    entry_count: int
    state_digest: str
    synced_at: str | None  # when the version held was applied
    checked_at: str | None  # when the server last confirmed it is current
    manifest_expires_at: str | None
    acked_version: int | None
    ack_status: str | None
    last_error: str | None
    stale: bool
    stale_reasons: tuple[str, ...]


@dataclass(frozen=True)
class LocalCheck:
    feed: str
    ok: bool
    stored_digest: str
    recomputed_digest: str
    entry_count: int


class HashsyncClient:
    def __init__(
        self,
        config: Config,
        *,
        token: str | None = None,
        progress: bool | None = False,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self._token = token
        self._progress = ProgressFactory(progress)
        self._transport = transport
        self._clock = clock
        self.store = Store(config.store_path)

    @classmethod
    def from_config_file(
        cls, path: Path | None = None, *, progress: bool | None = False
    ) -> HashsyncClient:
        return cls(load_config(path), progress=progress)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> HashsyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- network --------------------------------------------------------------------------

    def _api(self) -> SyncApi:
        token = self._token or self.config.read_token()
        return SyncApi(
            base_url=self.config.api_base,
            token=token,
            ca_bundle=self.config.ca_bundle,
            timeout=self.config.timeout_seconds,
            allow_insecure_http=self.config.allow_insecure_http,
            trust_env=self.config.use_env_proxy,
            transport=self._transport,
        )

    def _syncer(
        self, stop: threading.Event | None, *, retries: int = 3, max_wait: float = 120.0
    ) -> Syncer:
        return Syncer(
            self.config,
            self.store,
            self._api(),
            progress=self._progress,
            stop=stop,
            clock=self._clock,
            retries=retries,
            max_wait=max_wait,
        )

    def sync(
        self,
        feeds: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        retries: int = 3,
        max_wait: float = 120.0,
    ) -> SyncReport:
        """Bring every entitled feed (or ``feeds``) to its newest verified version.
        Transient failures are retried ``retries`` times; a ``Retry-After`` longer than
        ``max_wait`` seconds ends the sync instead (``watch`` waits it out)."""
        syncer = self._syncer(stop, retries=retries, max_wait=max_wait)
        try:
            return syncer.sync_all(feeds)
        finally:
            syncer.api.close()

    def watch(
        self,
        *,
        stop: threading.Event,
        interval: float | None = None,
        on_cycle: Callable[[SyncReport], None] | None = None,
    ) -> None:
        """Sync until ``stop`` is set; see ``sync.watch`` for the pacing."""
        watch(
            self._syncer(stop),
            stop=stop,
            interval=interval or self.config.interval_seconds,
            on_cycle=on_cycle,
            make_syncer=lambda: self._syncer(stop),
        )

    # --- local ----------------------------------------------------------------------------

    def status(self) -> list[FeedStatus]:
        now = self._clock()
        stale_after = timedelta(seconds=self.config.stale_after_seconds)
        statuses = []
        for state in self.store.feeds():
            reasons = []
            checked = parse_stamp(state.checked_at)
            expires = parse_stamp(state.manifest_expires_at)
            if checked is None:
                reasons.append("never synced")
            elif now - checked > stale_after:
                reasons.append(f"not confirmed current since {state.checked_at}")
            if state.version and (expires is None or expires <= now):
                reasons.append(f"manifest expired at {state.manifest_expires_at}")
            if state.highest_manifest_version > state.version:
                reasons.append(
                    f"version {state.highest_manifest_version} is signed but not applied"
                )
            statuses.append(
                FeedStatus(
                    feed=state.name,
                    version=state.version,
                    entry_count=state.entry_count,
                    state_digest=state.state_digest,
                    synced_at=state.synced_at,
                    checked_at=state.checked_at,
                    manifest_expires_at=state.manifest_expires_at,
                    acked_version=state.acked_version,
                    ack_status=state.ack_status,
                    last_error=state.last_error,
                    stale=bool(reasons),
                    stale_reasons=tuple(reasons),
                )
            )
        return statuses

    def export(
        self,
        out: TextIO,
        fmt: str = "csv",
        *,
        feeds: Sequence[str] | None = None,
        te_all: bool = False,
    ) -> ExportSummary:
        return export_entries(self.store, out, fmt, feeds=feeds, te_all=te_all)

    def lookup(
        self,
        feeds: Iterable[str] | None = None,
        *,
        pdq_distance: int = PDQ_DEFAULT_DISTANCE,
        pdq_min_quality: int = PDQ_MIN_QUALITY,
    ) -> Lookup:
        return Lookup(self.store, feeds, pdq_distance=pdq_distance, pdq_min_quality=pdq_min_quality)

    def lookup_files(
        self,
        paths: Iterable[Path],
        *,
        feeds: Iterable[str] | None = None,
        pdq_distance: int = PDQ_DEFAULT_DISTANCE,
    ) -> list[Query]:
        return self.lookup(feeds, pdq_distance=pdq_distance).files(paths)

    def lookup_values(
        self,
        values: Iterable[str],
        *,
        feeds: Iterable[str] | None = None,
        pdq_distance: int = PDQ_DEFAULT_DISTANCE,
    ) -> list[Query]:
        return self.lookup(feeds, pdq_distance=pdq_distance).values(values)

    def verify_local(self, *, repair: bool = True) -> list[LocalCheck]:
        """Recompute each feed's digest from its rows: detects a list altered outside the
        client (the stored LtHash state would no longer describe it). With ``repair`` the
        stored state is set to what the rows really hash to, so the next sync sees that it
        differs from the signed one and takes the snapshot."""
        checks = []
        for state in self.store.feeds():
            recomputed, count = self.store.recompute_state(state.id)
            digest = recomputed.hexdigest()
            if repair and (digest != state.state_digest or count != state.entry_count):
                with self.store.transaction():
                    self.store.update_feed(
                        state.name,
                        lthash=recomputed.state(),
                        state_digest=digest,
                        entry_count=count,
                        etag=None,
                        etag_version=None,
                    )
            checks.append(
                LocalCheck(
                    feed=state.name,
                    ok=digest == state.state_digest and count == state.entry_count,
                    stored_digest=state.state_digest,
                    recomputed_digest=digest,
                    entry_count=count,
                )
            )
        return checks
