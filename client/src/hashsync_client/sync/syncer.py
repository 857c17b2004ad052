"""``Syncer``: one sync of every entitled feed, as the package docstring describes."""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from hashsync_client.apply import apply_step
from hashsync_client.config import Config
from hashsync_client.errors import (
    ApiError,
    ClientError,
    DigestMismatch,
    Interrupted,
    LogForked,
    RetryLater,
    VerificationError,
    VersionUnknown,
)
from hashsync_client.freshness import signed_digest_matches
from hashsync_client.http import SyncApi
from hashsync_client.plan import (
    FeedInfo,
    VerifiedPlan,
    VerifiedStep,
    parse_feed_list,
    parse_plan,
    verify_plan,
)
from hashsync_client.progress import ProgressFactory
from hashsync_client.store import FeedState, Store, parse_stamp, timestamp, utc_now
from hashsync_client.sync.ack import AckMismatch, ack_feed
from hashsync_client.sync.backoff import Backoff
from hashsync_client.sync.report import FeedResult, SyncReport
from hashsync_client.transparency import Held, verify_plan_log, write_fork_proof

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Syncer:
    def __init__(
        self,
        config: Config,
        store: Store,
        api: SyncApi,
        *,
        progress: ProgressFactory | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utc_now,
        retries: int = 3,
        max_wait: float = 120.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.api = api
        self.progress = progress or ProgressFactory(enabled=False)
        self.stop = stop or threading.Event()
        self.clock = clock
        self.retries = retries
        self.max_wait = max_wait
        self.backoff = backoff or Backoff()
        self.poll_interval: int | None = None
        self.retry_after: float | None = None

    # --- pacing -------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Interrupted("stopped while waiting to retry")

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """``operation`` with retries of transient failures: after ``Retry-After`` for 429
        and 503, else with jittered exponential backoff; waits longer than ``max_wait``, or
        past the sync's deadline, are left to the next sync (``watch`` honours them between
        cycles)."""
        attempt = 0
        while True:
            try:
                return operation()
            except ClientError as exc:
                if not exc.retriable or attempt >= self.retries:
                    if isinstance(exc, RetryLater):
                        self.retry_after = exc.retry_after
                    raise
                if isinstance(exc, RetryLater) and exc.retry_after is not None:
                    delay = self.backoff.jitter(exc.retry_after, 0.1) + 0.5
                else:
                    delay = self.backoff.delay(attempt)
                ends = self.api.sync_deadline
                if delay > self.max_wait or (ends is not None and time.monotonic() + delay > ends):
                    if isinstance(exc, RetryLater):
                        self.retry_after = exc.retry_after
                    raise
                logger.warning("%s; retrying in %.1f s", exc, delay)
                self._wait(delay)
                attempt += 1

    # --- all feeds ------------------------------------------------------------------------

    def sync_all(self, only: Sequence[str] | None = None) -> SyncReport:
        report = SyncReport()
        self.retry_after = None
        self.api.sync_deadline = time.monotonic() + self.config.sync_deadline_seconds
        try:
            with self.store.sync_lock():
                self._clean_spool()
                listing = parse_feed_list(self._call("feed list", self.api.feeds).data)
                self.poll_interval = listing.poll_interval
                wanted = set(only) if only else set(self.config.feeds or ()) or None
                offered = {info.name: info for info in listing.feeds}
                withdrawn: set[str] = set()
                for state in self.store.feeds():
                    if state.name not in offered:
                        result = self._withdraw(state, "no longer in the server's feed list")
                        withdrawn.add(state.name)
                        if result is not None:
                            report.results.append(result)
                for name in sorted(wanted - set(offered) - withdrawn) if wanted else []:
                    error = ClientError(
                        f"{name}: not offered by the server (no such feed, or not entitled)",
                        code="not_offered",
                    )
                    report.results.append(FeedResult(name, "failed", 0, 0, error=error))
                for info in listing.feeds:
                    if wanted is not None and info.name not in wanted:
                        continue
                    if self.stop.is_set():
                        break
                    report.results.append(self.sync_feed(info))
        except ClientError as exc:
            report.error = exc
            logger.error("sync failed: %s", exc)
        # Plans announce the interval too; the largest one heard is the floor for watch.
        report.poll_interval = self.poll_interval
        report.retry_after = self.retry_after
        return report

    def _clean_spool(self) -> None:
        # Leftovers of a killed download; never applied, never trusted.
        spool = self.store.spool_dir
        if spool.is_dir():
            for leftover in spool.glob("*.bundle"):
                leftover.unlink(missing_ok=True)

    # --- one feed -------------------------------------------------------------------------

    def _withdraw(self, state: FeedState, reason: str) -> FeedResult | None:
        """The server no longer offers this feed: from now on it answers no lookup, and its
        rows are deleted unless the configuration keeps them. A result only if this is news."""
        keep = self.config.keep_withdrawn
        news = self.store.withdraw_feed(state.name, reason, self.clock(), keep=keep)
        if not news:
            return None
        kept = "rows kept (keep_withdrawn)" if keep else f"{state.entry_count} rows deleted"
        logger.warning("%s: withdrawn by the server (%s); %s", state.name, reason, kept)
        after = self.store.feed(state.name) or state
        return FeedResult(
            state.name,
            "withdrawn",
            state.version,
            after.version,
            after.state_digest,
            note=f"{reason}; {kept}",
        )

    def sync_feed(self, info: FeedInfo) -> FeedResult:
        name = info.name
        before = self.store.ensure_feed(name)
        self.store.update_feed(
            name,
            server_version=info.version,
            server_seen_at=timestamp(self.clock()),
            withdrawn_at=None,  # offered again (if it was withdrawn)
            withdrawn_reason=None,
        )
        try:
            status, steps = self._bring_current(info, before)
        except ApiError as exc:
            if exc.status != 404 or exc.code != "not_found":
                return self._failed(name, before, exc)
            # docs/sync-api.md: a feed we may not receive answers 404 not_found.
            withdrawn = self._withdraw(before, f"its plan answers {exc.status} {exc.code}")
            return withdrawn or self._failed(name, before, exc)
        except LogForked as exc:
            self._failed(name, before, exc)
            raise  # a forked log stops the whole sync (exit status 5)
        except ClientError as exc:
            return self._failed(name, before, exc)
        after = self.store.feed(name)
        assert after is not None
        return FeedResult(name, status, before.version, after.version, after.state_digest, steps)

    def _failed(self, name: str, before: FeedState, exc: ClientError) -> FeedResult:
        logger.error("%s: %s", name, exc)
        self.store.record_error(
            name, exc, self.clock(), verification=isinstance(exc, VerificationError)
        )
        held = self.store.feed(name) or before
        return FeedResult(
            name, "failed", before.version, held.version, held.state_digest, error=exc
        )

    _held_consistent = staticmethod(signed_digest_matches)

    def _listing_says_current(self, state: FeedState, info: FeedInfo) -> bool:
        """The feed list (unsigned) names the manifest we hold and it has not expired: no need
        to ask for a plan. It can only make us skip work, never accept data."""
        expires = parse_stamp(state.manifest_expires_at)
        return (
            self._held_consistent(state)
            # We saw a newer version signed (and failed to apply it): the list cannot be right.
            and state.highest_manifest_version <= state.version
            and info.published
            and state.version > 0
            and info.version == state.version
            and info.manifest_sha256 is not None
            and info.manifest_sha256 == state.manifest_sha256
            and expires is not None
            and expires > self.clock()
        )

    def _bring_current(self, info: FeedInfo, before: FeedState) -> tuple[str, int]:
        name = info.name
        if not info.published and before.version == 0 and before.highest_manifest_version == 0:
            self._checked(name)
            return "unpublished", 0
        if self._listing_says_current(before, info):
            self._checked(name)
            self._ack(name)
            return "up_to_date", 0
        from_zero = False
        applied = 0
        for _ in range(3):
            state = self.store.feed(name)
            assert state is not None
            from_version = 0 if from_zero else state.version
            usable = (
                state.etag_version == from_version
                and state.highest_manifest_version <= state.version
                and self._held_consistent(state)
            )
            etag = state.etag if usable and not from_zero else None
            held_log = self.store.log_checkpoint()
            try:
                response = self._call(
                    f"plan for {name}",
                    functools.partial(
                        self.api.plan,
                        name,
                        from_version,
                        etag=etag,
                        log_size=held_log.note.checkpoint.size if held_log else 0,
                    ),
                )
            except VersionUnknown:
                if from_version == 0:
                    raise
                # We hold a version the server never published. Ask from 0; the anti-replay
                # check still refuses anything older than what we hold.
                logger.warning("%s: the server does not know version %d", name, from_version)
                from_zero = True
                continue
            except ApiError as exc:
                if exc.code == "log_size_unknown" and held_log is not None:
                    self._log_shrunk(held_log)
                raise
            if response.not_modified:
                self._check_fresh(state)
                self._checked(name)
                self._ack(name)
                return "up_to_date", applied
            plan = self._verify(state, from_version, response.data)
            self._verify_log(name, plan, response.data, held_log)
            try:
                applied += self._follow(state, plan, response.etag, from_zero)
                self._ack(name)
            except (DigestMismatch, AckMismatch) as exc:
                if from_zero:
                    raise
                logger.warning("%s: %s; taking the snapshot", name, exc)
                from_zero = True
                continue
            return ("updated" if plan.steps else "up_to_date"), applied
        raise VerificationError(f"{name}: could not reach a verified state", code="no_progress")

    def _verify(self, state: FeedState, from_version: int, data: object) -> VerifiedPlan:
        raw = parse_plan(data, feed=state.name, from_version=from_version)
        if raw.poll_interval is not None:
            self.poll_interval = max(self.poll_interval or 0, raw.poll_interval)
        plan = verify_plan(
            raw,
            pinned_root_keyids=self.config.root_keyids,
            pinned_threshold=self.config.root_threshold,
            trusted_keyring=self.store.trusted_keyring(),
            held_version=from_version,
            min_manifest_version=max(state.version, state.highest_manifest_version),
            max_bundle_bytes=self.config.max_bundle_bytes,
            max_entries=self.config.max_entries,
            now=self.clock(),
            max_manifest_lifetime=timedelta(seconds=self.config.max_manifest_lifetime_seconds),
            held_manifest=json.loads(state.manifest) if state.manifest else None,
        )
        if plan.keyring is not None:
            self.store.save_trusted_keyring(plan.keyring)
        self.store.note_manifest_version(state.name, plan.version)
        self.store.update_feed(state.name, server_version=plan.version)
        return plan

    def _verify_log(self, name: str, plan: VerifiedPlan, data: Any, held: Held | None) -> None:
        """The plan's checkpoint, proofs and witnesses (docs/transparency.md), before any of
        its steps is applied; the checkpoint is kept once it passed."""
        if plan.manifest is None:
            return  # nothing signed, nothing applied
        log = data.get("log") if isinstance(data, dict) else None
        if log is None and held is None and not self.config.witness_threshold:
            return  # a server without a log, and we never saw one: nothing to hold it to
        note, text = verify_plan_log(
            name,
            log,
            manifests=[plan.manifest],
            step_manifests=[step.manifest for step in plan.steps],
            signing_keys=plan.signing_keys,
            held=held,
            witnesses=self.config.witness_policy(),
            fork_dir=self.store.fork_dir,
            now=self.clock(),
        )
        if held is None or note.checkpoint.size >= held.note.checkpoint.size:
            self.store.save_log_checkpoint(text, plan.signing_keys)

    def _log_shrunk(self, held: Held) -> None:
        """The server says its log is smaller than the checkpoint we hold: a rollback. Keep its
        own signed checkpoint next to ours as the proof, and stop."""
        served = ""
        try:
            answer = self.api.log_checkpoint().data
            served = answer.get("checkpoint", "") if isinstance(answer, dict) else ""
        except ClientError as exc:
            logger.warning("could not fetch the server's checkpoint as evidence: %s", exc)
        path = write_fork_proof(self.store.fork_dir, held.text, served, [], now=self.clock())
        raise LogForked(
            f"the server's log is smaller than the checkpoint of {held.note.checkpoint.size} "
            f"leaves we hold: it was rolled back or forked. Both checkpoints are kept in {path}; "
            "send it to the hotline.",
            proof_path=str(path),
        )

    def _follow(
        self, state: FeedState, plan: VerifiedPlan, etag: str | None, from_zero: bool
    ) -> int:
        name = state.name
        if plan.manifest is None:
            self._checked(name)
            return 0
        if not plan.steps:
            if plan.manifest["state_digest"] != state.state_digest:
                raise DigestMismatch(
                    f"{name}: our list's state digest is not the one signed for version "
                    f"{state.version} (altered locally?)"
                )
            # Possibly a re-signed manifest for the same version: keep the newest proof.
            self.store.update_feed(
                name,
                manifest=plan.manifest_payload,
                manifest_sha256=plan.manifest_sha256,
                manifest_expires_at=plan.manifest["expires_at"],
                etag=etag,
                etag_version=state.version,
            )
            self._checked(name)
            return 0
        for index, step in enumerate(plan.steps, start=1):
            if self.stop.is_set():
                raise Interrupted("stopped between two steps")
            current = self.store.feed(name)
            assert current is not None
            bundle = self._download(name, step, index, len(plan.steps))
            try:
                label = f"{name} apply {step.kind} -> v{step.to_version}"
                progress = self.progress(label, step.max_records, unit="records")
                result = apply_step(
                    self.store, current, step, bundle, stop=self.stop, progress=progress
                )
            finally:
                bundle.unlink(missing_ok=True)
            logger.info(
                "%s: applied %s %d->%d (%d records); now %d entries, digest %s",
                name,
                step.kind,
                step.from_version,
                step.to_version,
                result.records,
                result.entry_count,
                result.state_digest[:16],
            )
        # The last step's manifest has the plan's version and digest; keep the newest one.
        self.store.update_feed(
            name,
            manifest=plan.manifest_payload,
            manifest_sha256=plan.manifest_sha256,
            manifest_expires_at=plan.manifest["expires_at"],
        )
        self._checked(name)
        return len(plan.steps)

    def _download(self, name: str, step: VerifiedStep, index: int, total: int) -> Path:
        spool = self.store.spool_dir
        spool.mkdir(mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f"{name}-", suffix=".bundle", dir=spool)
        os.close(fd)
        path = Path(temporary)

        def attempt() -> None:
            label = f"{name} download {index}/{total} ({step.kind} -> v{step.to_version})"
            progress = self.progress(label, step.size)
            try:
                with path.open("wb") as sink:  # truncated again on every retry
                    self.api.download(
                        step.url,
                        sink,
                        size=step.size,
                        sha256=step.sha256,
                        on_progress=progress.update,
                        stop=self.stop,
                    )
            finally:
                progress.close()

        try:
            self._call(f"{name}: bundle download", attempt)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def _check_fresh(self, state: FeedState) -> None:
        expires = parse_stamp(state.manifest_expires_at)
        if state.version and (expires is None or expires <= self.clock()):
            raise VerificationError(
                f"{state.name}: the manifest we hold expired at {state.manifest_expires_at} and "
                "the server offers no newer one (freeze protection)",
                code="manifest_expired",
            )

    def _checked(self, name: str) -> None:
        self.store.update_feed(
            name,
            checked_at=timestamp(self.clock()),
            verification_failed=False,
            last_error=None,
            last_error_code=None,
            last_error_at=None,
        )

    def _ack(self, name: str) -> None:
        ack_feed(self.store, self.api, self._call, name, self.clock())
