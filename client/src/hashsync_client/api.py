"""The Python API: what the ``hashsync-client`` command does, for programs.

    from hashsync_client import HashsyncClient

    with HashsyncClient.from_config_file() as client:
        report = client.sync()
        for query in client.lookup_files([Path("upload.jpg")]):
            print(query.label, [m.feed for m in query.matches])

The token is read from its configured source only when the network is needed (``sync``,
``watch``); ``status``, ``export`` and ``lookup`` work offline on the local store.

``lookup`` (and ``lookup_files`` / ``lookup_values``) raise ``LookupRefused`` rather than
answer from a list nobody can vouch for: no store at the configured path, a feed never synced,
not confirmed current within ``lookup_max_age_seconds``, or failing verification; and
``FeedWithdrawn`` for a feed the server no longer offers (``freshness``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import httpx

from hashsync_client.classes import FeedFramework
from hashsync_client.config import Config, load_config
from hashsync_client.errors import BadResponse, ClientError
from hashsync_client.export import ExportSummary, export_entries
from hashsync_client.freshness import check_lookup, feed_problems
from hashsync_client.http import SyncApi
from hashsync_client.lookup import PDQ_DEFAULT_DISTANCE, PDQ_MIN_QUALITY, Lookup, Query
from hashsync_client.progress import ProgressFactory
from hashsync_client.store import Store, utc_now
from hashsync_client.sync import Syncer, SyncReport, watch
from hashsync_client.transparency import Held, compare_checkpoints, proof_hashes


@dataclass(frozen=True)
class FeedStatus:
    feed: str
    version: int
    entry_count: int
    state_digest: str
    synced_at: str | None  # when the version held was applied
    checked_at: str | None  # when a verified sync last confirmed it is current
    server_seen_at: str | None  # when the server last answered about it
    server_version: int | None  # the version the server then announced
    withdrawn_at: str | None  # the server stopped offering it (its data answers nothing)
    manifest_expires_at: str | None
    acked_version: int | None
    ack_status: str | None
    last_error: str | None
    stale: bool
    stale_reasons: tuple[str, ...]
    # The grading framework the feed's classes are in (its manifest's; "uk", no version, for
    # a bundle format 1 feed): hashsync_client.classes.
    framework: str = "uk"
    framework_version: int | None = None


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
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The local store, opened (and created) on first use: a lookup must first see that
        there is none, rather than create an empty one and answer "no match" from it."""
        if self._store is None:
            self._store = Store(self.config.store_path)
        return self._store

    @property
    def store_path(self) -> Path:
        return Path(self.config.store_path).expanduser()

    @classmethod
    def from_config_file(
        cls, path: Path | None = None, *, progress: bool | None = False
    ) -> HashsyncClient:
        return cls(load_config(path), progress=progress)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

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
            min_download_rate=self.config.min_download_bytes_per_second,
        )

    # --- transparency log -------------------------------------------------------------------

    def checkpoint(self) -> Held | None:
        """The log checkpoint this client accepted last (``hashsync-client checkpoint``)."""
        return self.store.log_checkpoint()

    def compare_checkpoint(self, other: str) -> str:
        """Another member's checkpoint against ours (``verify-checkpoint``)."""
        held = self.store.log_checkpoint()
        if held is None:
            raise ClientError("no checkpoint held yet: sync first", code="no_checkpoint")
        with self._api() as api:

            def consistency(from_size: int, size: int) -> list[bytes]:
                data = api.log_consistency(from_size, size).data
                where = "consistency proof"
                if not isinstance(data, dict):
                    raise BadResponse(f"{where} is not a JSON object")
                return proof_hashes(data.get("hashes"), where)

            return compare_checkpoints(
                held,
                other,
                consistency=consistency,
                fork_dir=self.store.fork_dir,
                now=self._clock(),
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
        """Per feed held: what ``freshness.feed_problems`` finds at ``stale_after_seconds``,
        and whether the server last announced a newer version than the one held."""
        now = self._clock()
        stale_after = timedelta(seconds=self.config.stale_after_seconds)
        if self._store is None and not self.store_path.exists():
            return []
        statuses = []
        for state in self.store.feeds():
            reasons = feed_problems(state, now=now, max_age=stale_after)
            framework = FeedFramework.of_stored(state.manifest)
            if state.withdrawn_at is None and (state.server_version or 0) > state.version:
                reasons.append(
                    f"behind: the server announced version {state.server_version} at "
                    f"{state.server_seen_at}"
                )
            statuses.append(
                FeedStatus(
                    feed=state.name,
                    version=state.version,
                    entry_count=state.entry_count,
                    state_digest=state.state_digest,
                    synced_at=state.synced_at,
                    checked_at=state.checked_at,
                    server_seen_at=state.server_seen_at,
                    server_version=state.server_version,
                    withdrawn_at=state.withdrawn_at,
                    manifest_expires_at=state.manifest_expires_at,
                    acked_version=state.acked_version,
                    ack_status=state.ack_status,
                    last_error=state.last_error,
                    stale=bool(reasons),
                    stale_reasons=tuple(reasons),
                    framework=framework.slug,
                    framework_version=framework.version,
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
        max_age_seconds: int | None = None,
    ) -> Lookup:
        """A lookup over ``feeds`` (None: every feed held), or ``LookupRefused`` /
        ``FeedWithdrawn`` if one it would consult cannot vouch for an answer (module
        docstring). ``Lookup.skipped_withdrawn`` names withdrawn feeds a lookup of all left
        out."""
        names = None if feeds is None else list(feeds)
        age = self.config.lookup_max_age_seconds if max_age_seconds is None else max_age_seconds
        exists = self._store is not None or self.store_path.exists()
        skipped = check_lookup(
            self.store_path,
            self.store if exists else None,
            names,
            now=self._clock(),
            max_age=timedelta(seconds=age),
        )
        lookup = Lookup(
            self.store, names, pdq_distance=pdq_distance, pdq_min_quality=pdq_min_quality
        )
        lookup.skipped_withdrawn = tuple(skipped)
        return lookup

    def lookup_files(
        self,
        paths: Iterable[Path],
        *,
        feeds: Iterable[str] | None = None,
        pdq_distance: int = PDQ_DEFAULT_DISTANCE,
        max_age_seconds: int | None = None,
    ) -> list[Query]:
        lookup = self.lookup(feeds, pdq_distance=pdq_distance, max_age_seconds=max_age_seconds)
        return lookup.files(paths)

    def lookup_values(
        self,
        values: Iterable[str],
        *,
        feeds: Iterable[str] | None = None,
        pdq_distance: int = PDQ_DEFAULT_DISTANCE,
        max_age_seconds: int | None = None,
    ) -> list[Query]:
        lookup = self.lookup(feeds, pdq_distance=pdq_distance, max_age_seconds=max_age_seconds)
        return lookup.values(values)

    def forget(self, feed: str) -> None:
        """Delete a withdrawn feed's record and any rows kept: the operator acknowledged the
        withdrawal. ``ClientError`` for a feed not held or not withdrawn."""
        state = self.store.feed(feed)
        if state is None or state.withdrawn_at is None:
            raise ClientError(
                f"{feed}: only a feed the server withdrew can be forgotten", code="not_withdrawn"
            )
        self.store.delete_feed(feed)

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
