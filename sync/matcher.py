"""The server-side matcher: each feed's PDQ values in an exact index (``hashsync_client.pdqindex``,
the member client's own), following the releases as a member's client does.

A feed's index is loaded from its newest snapshot bundle and then kept current by applying its
delta bundles, in O(changes) — the same bundles members receive, read from bundle storage and
checked by the client's own code (``parse_plan``/``verify_plan``: the keyring chain from this
server's first keyring, each manifest's signature and history, and each bundle's SHA-256 and size
against what its signed manifest names). So the server matches exactly what it publishes, and
never reads every row of the database.

Freshness costs nothing extra: the entitlement query every request makes returns each feed's
published version (``Feed.version``, set in the release's own transaction), and the index
catches up before answering when it is behind. An approval is therefore matchable as soon as
its release is cut (P7), and a retraction stops matching at the same moment.

The index is saved on the node (``HASHSYNC_MATCH_INDEX_DIR/<feed>/<version>/``) by the first
process that loads it from the bundles, and memory-mapped by every process of the node: one copy
in the page cache, and a restarted or recycled process maps it in well under a second and applies
only the deltas after it (docs/matching.md). ``manage.py matcher_warm`` builds it before the web
service starts, so no request has to.

Non-PDQ algorithms are matched exactly against the feed rows the release cutter maintains
(``members.selectors.feed_entries_for``, an index lookup), as ``sync/lookup/`` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.utils import timezone

from distribution import keys, plans
from distribution.models import Feed
from distribution.storage import bundle_storage
from hashsync.errors import Conflict, DomainError
from hashsync_client.errors import ClientError
from hashsync_client.format import BundleFormatError, Op, read_bundle_blocks
from hashsync_client.pdqindex import PdqIndex, as_words
from hashsync_client.plan import parse_plan, verify_plan

logger = logging.getLogger(__name__)

PDQ = "pdq"
# What the matcher accepts from its own storage: generous, but not unbounded.
_MAX_ENTRIES = 1 << 31
_MAX_BUNDLE_BYTES = 1 << 40
_READ = 1 << 20


class MatcherUnavailable(DomainError):
    """The feed's bundles could not be loaded or did not verify: 503, try again."""

    code = "matcher_unavailable"
    http_status = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "10"})


class _HashingReader(io.RawIOBase):
    """A bundle from storage, with the SHA-256 and size of every byte read."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._inner.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def _plan_document(plan: plans.Plan) -> dict[str, Any]:
    """The plan as ``GET sync/feeds/<name>/plan/`` sends it (what ``parse_plan`` reads)."""

    def envelope(data: bytes | None) -> Any:
        return json.loads(data) if data is not None else None

    return {
        "feed": plan.feed,
        "from_version": plan.from_version,
        "version": plan.version,
        "status": plan.status,
        "manifest": envelope(plan.manifest),
        "keyrings": [envelope(k) for k in keys.keyring_envelopes()],
        "steps": [
            {
                "kind": s.kind,
                "from_version": s.from_version,
                "to_version": s.to_version,
                "sha256": s.sha256,
                "size": s.size,
                "records": s.records,
                "url": f"/api/v1/sync/bundles/{s.sha256}/",
                "manifest": envelope(s.manifest),
            }
            for s in plan.steps
        ],
    }


@dataclass(frozen=True)
class PdqHit:
    query: int  # position in the batch
    value: bytes
    distance: int
    grading: int


class FeedMatcher:
    """One feed's PDQ index at a published version. Thread-safe: one lock per feed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.version = 0
        self.loaded_at: float | None = None
        self._lock = threading.Lock()
        self._index = PdqIndex()
        self._gradings = np.zeros(0, dtype=np.int64)  # by row number
        self._manifest: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self._index)

    @property
    def nbytes(self) -> int:
        return self._index.nbytes + self._gradings.nbytes

    def follow(self, feed: Feed) -> None:
        """Bring the index to ``feed.version`` (no-op when it is there already)."""
        if self.version == feed.version:
            return
        with self._lock:
            if self.version == feed.version:
                return
            with _node_lock(self.name) if self.version == 0 else contextlib.nullcontext():
                self._follow(feed)

    def _follow(self, feed: Feed) -> None:
        if self.version == 0:
            self._restore(feed)
            if self.version and self.version != feed.version:
                try:
                    self._catch_up(feed)
                except (MatcherUnavailable, Conflict):
                    # What this node saved does not lead to what is published (a restored
                    # database, a restarted history): start again from the bundles.
                    logger.warning("Matcher of %s: saved index refused, rebuilding", self.name)
                    self._reset()
                    _forget_saved(self.name, keep=None)
        if self.version != feed.version:
            try:
                self._catch_up(feed)
            except Conflict as exc:
                if exc.code != "version_unknown":
                    raise MatcherUnavailable(str(exc)) from None
                # The feed's history was restarted (``release_resume``): start from its snapshot.
                logger.warning(
                    "Matcher of %s: version %s unknown, reloading", self.name, self.version
                )
                self._reset()
                _forget_saved(self.name, keep=None)
                self._catch_up(feed)

    def _reset(self) -> None:
        self.version = 0
        self._index = PdqIndex()
        self._gradings = np.zeros(0, dtype=np.int64)
        self._manifest = None

    def _restore(self, feed: Feed) -> None:
        """Map the newest index this node saved for the feed (at a version it has published),
        so only the deltas after it are read: a restarted process is matching in seconds."""
        for version, folder in _saved(self.name):
            if version > feed.version:
                continue
            loaded = _load_saved(folder)
            if loaded is None:
                shutil.rmtree(folder, ignore_errors=True)  # rebuilt and saved anew below
                continue
            self._index, self._gradings, self._manifest = loaded
            self.version = version
            logger.info("Matcher of %s mapped its index at version %s", self.name, version)
            return

    def _save(self) -> None:
        """Write the index just loaded from the bundles where the node's other processes (and
        this one's successors) map it, then map it here too, sharing the node's copy."""
        root = settings.HASHSYNC_MATCH_INDEX_DIR
        if not root or self._manifest is None:
            return
        folder = Path(root) / self.name / f"{self.version:012d}"
        manifest = np.frombuffer(json.dumps(self._manifest).encode(), dtype=np.uint8)
        loaded = _load_saved(folder) if folder.is_dir() else None  # another process's
        if loaded is None:
            try:
                self._index.save(folder, extra={"gradings": self._gradings, "manifest": manifest})
            except OSError as exc:  # another process saved it meanwhile, or the disk is full
                logger.warning("Matcher of %s could not save its index: %s", self.name, exc)
                return
            loaded = _load_saved(folder)
        _forget_saved(self.name, keep=folder)
        if loaded is not None and loaded[2] == self._manifest:
            self._index, self._gradings, _ = loaded

    def _catch_up(self, feed: Feed) -> None:
        started = time.monotonic()
        full_load = self.version == 0
        first = keys.first_keyring()
        if first is None:
            raise MatcherUnavailable("No keyring is published yet.")
        plan = plans.plan_build(feed, self.version)
        try:
            verified = verify_plan(
                parse_plan(_plan_document(plan), feed=feed.name, from_version=self.version),
                pinned_root_keyids=sorted(first.root_keyids),
                pinned_threshold=first.root_threshold,
                trusted_keyring=None,
                held_version=self.version,
                min_manifest_version=self.version,
                max_bundle_bytes=_MAX_BUNDLE_BYTES,
                max_entries=_MAX_ENTRIES,
                now=timezone.now(),
                held_manifest=self._manifest,
            )
            for step in verified.steps:
                if step.kind == "snapshot" and step.to_version == self.version != 0:
                    pass  # the plan restarts from the version held (small feeds): keep it
                elif step.kind == "snapshot":
                    self._load_snapshot(step)
                else:
                    self._apply_delta(step)
                self.version = step.to_version
                self._manifest = step.manifest
        except (ClientError, BundleFormatError) as exc:
            logger.error("Matcher of %s refused its bundles: %s", self.name, exc)
            raise MatcherUnavailable(
                f"Feed {self.name} cannot be matched right now; try again shortly."
            ) from None
        if verified.manifest is not None:
            self.version = verified.version
            self._manifest = verified.manifest
        if full_load and self.version:
            self._save()
        self.loaded_at = time.time()
        logger.info(
            "Matcher of %s at version %s: %s PDQ values (%.2f s)",
            self.name,
            self.version,
            len(self._index),
            time.monotonic() - started,
        )

    def _open(self, step: Any) -> tuple[_HashingReader, io.BufferedReader]:
        reader = _HashingReader(bundle_storage().open(step.sha256))
        return reader, io.BufferedReader(reader, _READ)

    def _check(self, reader: _HashingReader, buffered: io.BufferedReader, step: Any) -> None:
        """Every byte read (the rest too): are they the bundle the signed manifest names?"""
        while buffered.read(_READ):
            pass
        if reader.sha256.hexdigest() != step.sha256 or reader.size != step.size:
            raise BundleFormatError("the stored bundle is not the one its manifest names")

    def _check_header(self, header: Any, step: Any) -> None:
        expected = (self.name, step.kind, step.from_version, step.to_version)
        if (header.feed, header.kind, header.from_version, header.to_version) != expected:
            raise BundleFormatError("the bundle's header is not this step's")

    def _load_snapshot(self, step: Any) -> None:
        """A new index from the snapshot's PDQ records, kept only once every byte checked."""
        reader, buffered = self._open(step)
        values: list[bytes] = []
        gradings: list[npt.NDArray[np.int64]] = []
        with buffered:
            header, blocks = read_bundle_blocks(buffered, max_records=step.max_records)
            self._check_header(header, step)
            for block in blocks:
                if block.algorithm == PDQ:
                    values.extend(block.values)
                    gradings.append(block.gradings.astype(np.int64))
            self._check(reader, buffered, step)
        self._index = PdqIndex(values)
        self._gradings = np.concatenate(gradings) if gradings else np.zeros(0, dtype=np.int64)

    def _apply_delta(self, step: Any) -> None:
        """The delta's PDQ changes, read and checked in full before the index is touched."""
        reader, buffered = self._open(step)
        with buffered:
            data = buffered.read()
            self._check(reader, buffered, step)
        header, blocks = read_bundle_blocks(io.BytesIO(data), max_records=step.max_records)
        self._check_header(header, step)
        changes = [
            (value, int(op), int(grading))
            for block in blocks
            if block.algorithm == PDQ
            for value, op, grading in zip(block.values, block.ops, block.gradings, strict=True)
        ]
        for value, op, grading in changes:
            if op != Op.UPSERT:
                self._index.remove(value)
                continue
            rows = self._index.find(value)
            if rows:  # regraded
                if not self._gradings.flags.writeable:  # mapped: copy on the first write
                    self._gradings = np.array(self._gradings)
                self._gradings[rows] = grading
                continue
            row = self._index.add(value)
            if row >= len(self._gradings) or not self._gradings.flags.writeable:
                grown = np.zeros(max(16, 2 * len(self._gradings), row + 1), dtype=np.int64)
                grown[: len(self._gradings)] = self._gradings
                self._gradings = grown
            self._gradings[row] = grading

    def search(self, queries: list[bytes], threshold: int) -> list[PdqHit]:
        """Every held value within ``threshold`` bits of each query."""
        if not queries:
            return []
        with self._lock:
            numbers, rows, distances = self._index.within_many(as_words(queries), threshold)
            values = self._index.values(rows)
            gradings = self._gradings[rows].tolist()
        return [
            PdqHit(int(q), values[i].tobytes(), int(d), int(gradings[i]))
            for i, (q, d) in enumerate(zip(numbers.tolist(), distances.tolist(), strict=True))
        ]


@contextlib.contextmanager
def _node_lock(feed: str) -> Iterator[None]:
    """While one process of the node loads a feed from its bundles (and saves the index), the
    others wait, then map what it saved, rather than each building its own copy."""
    root = settings.HASHSYNC_MATCH_INDEX_DIR
    if not root:
        yield
        return
    folder = Path(root) / feed
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _saved(feed: str) -> list[tuple[int, Path]]:
    """(version, folder) of the feed's saved indexes on this node, newest first."""
    root = settings.HASHSYNC_MATCH_INDEX_DIR
    folder = Path(root) / feed if root else None
    if folder is None or not folder.is_dir():
        return []
    found = [(int(f.name), f) for f in folder.iterdir() if f.name.isdigit()]
    return sorted(found, reverse=True)


def _load_saved(
    folder: Path,
) -> tuple[PdqIndex, npt.NDArray[np.int64], dict[str, Any]] | None:
    """A saved index, its gradings and the manifest of its version, mapped; None when the
    folder is incomplete or damaged (it is then rebuilt from the bundles)."""
    try:
        index = PdqIndex.load(folder, mmap=True)
        gradings = np.load(folder / "gradings.npy", mmap_mode="r", allow_pickle=False)
        raw = np.load(folder / "manifest.npy", allow_pickle=False)
        manifest = json.loads(raw.tobytes())
    except (ValueError, OSError) as exc:
        logger.warning("Matcher index at %s unusable (%s): rebuilding", folder, exc)
        return None
    if gradings.ndim != 1 or not isinstance(manifest, dict):
        return None
    return index, gradings, manifest


def _forget_saved(feed: str, *, keep: Path | None) -> None:
    """Remove the feed's other saved indexes (a process still mapping one keeps its pages until
    it lets go: unlinking a mapped file does not unmap it)."""
    for _, folder in _saved(feed):
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)


_matchers: dict[int, FeedMatcher] = {}
_registry_lock = threading.Lock()


def matcher_for(feed: Feed) -> FeedMatcher:
    """This process's matcher of ``feed``, brought to the feed's published version."""
    with _registry_lock:
        matcher = _matchers.get(feed.pk)
        if matcher is None or matcher.name != feed.name:
            matcher = _matchers[feed.pk] = FeedMatcher(feed.name)
    matcher.follow(feed)
    return matcher


def matchers_forget() -> None:
    """Drop every index (tests, and a process told to start over)."""
    with _registry_lock:
        _matchers.clear()
