"""The local copy of the list: one SQLite file (WAL), safe against being killed at any point.

Tables:

- ``entries(feed_id, algorithm, value, grading)``, keyed by ``(feed_id, algorithm, value)``
  (WITHOUT ROWID: the key is the row, and bundles arrive sorted by it, so a snapshot is
  appended in key order). ``algorithm`` is the bundle format's algorithm id.
- ``feeds``: per feed the version held, its LtHash16 state (2 KiB, so a delta updates the
  digest in O(changes)), the payload of the signed manifest accepted (the proof of what we
  hold), the highest manifest version ever verified (anti-replay), the plan ETag, the last
  ack and the last error.
- ``keyring``: the version and root of the keyring trusted last (anti-rollback, re-pinning).

Every bundle is applied in one transaction (``apply.py``): SQLite's atomic commit means a
crash, a power cut or SIGKILL leaves the previous version, never half of the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hashsync_client.errors import ClientError
from hashsync_client.lthash import LtHash16, row_elements
from hashsync_client.plan import TrustedKeyring
from hashsync_client.store_schema import SCHEMA, SCHEMA_VERSION, UPGRADE_FROM_1
from hashsync_client.tlog import parse_note
from hashsync_client.transparency import Held, keys_from_text, keys_to_text

EMPTY_STATE = bytes(2048)
EMPTY_DIGEST = LtHash16().hexdigest()
# SQLite's default limit on bound parameters is 32766 since 3.32; stay well below it.
IN_CHUNK = 900


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class FeedState:
    """One row of ``feeds``."""

    id: int
    name: str
    version: int
    lthash: bytes
    state_digest: str
    entry_count: int
    manifest: bytes | None
    manifest_sha256: str | None
    manifest_expires_at: str | None
    highest_manifest_version: int
    synced_at: str | None
    checked_at: str | None
    etag: str | None
    etag_version: int | None
    acked_version: int | None
    acked_digest: str | None
    acked_at: str | None
    ack_status: str | None
    last_error: str | None
    last_error_code: str | None
    last_error_at: str | None
    verification_failed: bool
    server_version: int | None  # the version the server last announced (feed list or plan)
    server_seen_at: str | None  # when the server last answered about this feed
    withdrawn_at: str | None  # when the server stopped offering it (None: offered)
    withdrawn_reason: str | None


_FEED_COLUMNS = tuple(f.name for f in fields(FeedState))
_UPDATABLE = frozenset(_FEED_COLUMNS) - {"id", "name"}


class StoreBusy(ClientError):
    code = "store_busy"


class Store:
    """The SQLite file at ``path``. One connection; callers serialise their use of it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The list is confidential to the member: nobody else on the machine reads it.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
        # what apply.py says it is. check_same_thread=False: apply.py hands the connection
        # to one writer thread while the caller waits.
        self.conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=60.0
        )
        self.conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed version survives a power cut, so we never ack what we may lose.
        self.conn.execute("PRAGMA synchronous=FULL")
        if self._schema_version() == str(SCHEMA_VERSION):
            # Readers (status, export, lookup) must not queue behind a long apply for the
            # write lock: in WAL mode this check is a plain read.
            return
        with self.transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                self.conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
            elif row[0] == "1":
                for statement in UPGRADE_FROM_1:
                    self.conn.execute(statement)
                self.conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),)
                )
            elif row[0] != str(SCHEMA_VERSION):
                raise ClientError(
                    f"{self.path} has store schema {row[0]}; this client reads {SCHEMA_VERSION}",
                    code="store_schema",
                )

    def _schema_version(self) -> str | None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.OperationalError:  # no meta table yet: a new store
            return None
        return None if row is None else str(row[0])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def spool_dir(self) -> Path:
        """Where bundles are downloaded: next to the database, so on the same file system."""
        return self.path.parent / (self.path.name + ".spool")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE: take the write lock now, not half-way through, so a concurrent writer
        # makes us wait at the start instead of failing after work was done.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def sync_lock(self) -> Iterator[None]:
        """One syncing process per store (a cron ``sync`` next to a ``watch`` would otherwise
        download everything twice). Readers (status, export, lookup) need no lock."""
        lock_path = self.path.parent / (self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusy(f"another hashsync-client is syncing {self.path}") from None
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # --- feeds ---------------------------------------------------------------------------

    def _row(self, row: Sequence[Any] | None) -> FeedState | None:
        if row is None:
            return None
        values = dict(zip(_FEED_COLUMNS, row, strict=True))
        values["lthash"] = bytes(values["lthash"])
        if values["manifest"] is not None:
            values["manifest"] = bytes(values["manifest"])
        values["verification_failed"] = bool(values["verification_failed"])
        return FeedState(**values)

    def feed(self, name: str) -> FeedState | None:
        row = self.conn.execute(
            f"SELECT {', '.join(_FEED_COLUMNS)} FROM feeds WHERE name = ?",  # noqa: S608 - fixed column names
            (name,),
        ).fetchone()
        return self._row(row)

    def feeds(self) -> list[FeedState]:
        rows = self.conn.execute(
            f"SELECT {', '.join(_FEED_COLUMNS)} FROM feeds ORDER BY name"  # noqa: S608 - fixed column names
        ).fetchall()
        return [state for state in map(self._row, rows) if state is not None]

    def ensure_feed(self, name: str) -> FeedState:
        self.conn.execute(
            "INSERT INTO feeds(name, lthash, state_digest) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO NOTHING",
            (name, EMPTY_STATE, EMPTY_DIGEST),
        )
        state = self.feed(name)
        assert state is not None
        return state

    def update_feed(self, name: str, **values: Any) -> None:
        """Set columns of one feed row (outside or inside a transaction)."""
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"not feed columns: {', '.join(sorted(unknown))}")
        assignments = ", ".join(f"{column} = ?" for column in values)
        self.conn.execute(
            f"UPDATE feeds SET {assignments} WHERE name = ?",  # noqa: S608 - checked column names
            (*values.values(), name),
        )

    def note_manifest_version(self, name: str, version: int) -> None:
        """Remember the highest manifest version ever verified: never accept a lower one."""
        self.conn.execute(
            "UPDATE feeds SET highest_manifest_version = max(highest_manifest_version, ?) "
            "WHERE name = ?",
            (version, name),
        )

    def delete_feed(self, name: str) -> None:
        """Delete a feed's row and its entries, in one transaction."""
        with self.transaction():
            self.conn.execute(
                "DELETE FROM entries WHERE feed_id = (SELECT id FROM feeds WHERE name = ?)",
                (name,),
            )
            self.conn.execute("DELETE FROM feeds WHERE name = ?", (name,))

    def record_error(
        self, name: str, error: ClientError, when: datetime, *, verification: bool = False
    ) -> None:
        self.update_feed(
            name,
            last_error=str(error),
            last_error_code=error.code,
            last_error_at=timestamp(when),
            verification_failed=verification,
        )

    def withdraw_feed(self, name: str, reason: str, when: datetime, *, keep: bool) -> bool:
        """Mark a feed the server no longer offers; unless ``keep``, delete its rows and forget
        the version held (the highest manifest version seen stays: anti-replay if it returns).
        True if this is news (it was not withdrawn already)."""
        state = self.feed(name)
        if state is None:
            return False
        with self.transaction():
            if not keep:
                self.conn.execute("DELETE FROM entries WHERE feed_id = ?", (state.id,))
                self.update_feed(
                    name,
                    version=0,
                    lthash=EMPTY_STATE,
                    state_digest=EMPTY_DIGEST,
                    entry_count=0,
                    manifest=None,
                    manifest_sha256=None,
                    manifest_expires_at=None,
                    synced_at=None,
                    checked_at=None,
                    etag=None,
                    etag_version=None,
                    acked_version=None,
                    acked_digest=None,
                    acked_at=None,
                    ack_status=None,
                )
            if state.withdrawn_at is None:
                self.update_feed(name, withdrawn_at=timestamp(when), withdrawn_reason=reason)
        return state.withdrawn_at is None

    # --- keyring --------------------------------------------------------------------------

    def trusted_keyring(self) -> TrustedKeyring | None:
        row = self.conn.execute(
            "SELECT version, root_keyids, root_threshold FROM keyring WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        return TrustedKeyring(int(row[0]), tuple(row[1].split(",")), int(row[2]))

    def save_trusted_keyring(self, keyring: TrustedKeyring) -> None:
        """Store it unless we already trust a later version (the chain never goes back)."""
        self.conn.execute(
            "INSERT INTO keyring(id, version, root_keyids, root_threshold) VALUES (1, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET version = excluded.version, "
            "root_keyids = excluded.root_keyids, root_threshold = excluded.root_threshold "
            "WHERE excluded.version >= keyring.version",
            (keyring.version, ",".join(keyring.root_keyids), keyring.root_threshold),
        )

    # --- transparency log -------------------------------------------------------------------

    @property
    def fork_dir(self) -> Path:
        """Where proofs of a forked log are kept (docs/transparency.md)."""
        return self.path.parent / (self.path.name + ".forks")

    def log_checkpoint(self) -> Held | None:
        """The log checkpoint accepted last, with the log keys that signed it."""
        rows = dict(
            self.conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('tlog_checkpoint', 'tlog_keys')"
            ).fetchall()
        )
        text = rows.get("tlog_checkpoint")
        if text is None:
            return None
        return Held(parse_note(text), text, keys_from_text(rows.get("tlog_keys", "")))

    def save_log_checkpoint(self, text: str, keys: Sequence[Ed25519PublicKey]) -> None:
        with self.transaction():
            for key, value in (("tlog_checkpoint", text), ("tlog_keys", keys_to_text(keys))):
                self.conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # --- reading entries -------------------------------------------------------------------

    def feed_ids(self, names: Iterable[str] | None = None) -> dict[int, str]:
        """id → name of the feeds held (all, or those named that exist here). A feed the
        server withdrew is never among them: its rows, if kept, answer nothing."""
        rows = self.conn.execute(
            "SELECT id, name FROM feeds WHERE withdrawn_at IS NULL ORDER BY name"
        ).fetchall()
        wanted = None if names is None else set(names)
        return {int(i): n for i, n in rows if wanted is None or n in wanted}

    def iter_entries(self, feed_ids: Sequence[int]) -> Iterator[tuple[int, int, bytes, int]]:
        """(feed_id, algorithm id, value, grading) in key order, streamed."""
        for feed_id in sorted(feed_ids):
            cursor = self.conn.execute(
                "SELECT feed_id, algorithm, value, grading FROM entries WHERE feed_id = ? "
                "ORDER BY algorithm, value",
                (feed_id,),
            )
            while rows := cursor.fetchmany(10_000):
                for feed, algorithm, value, grading in rows:
                    yield feed, algorithm, bytes(value), grading

    def iter_distinct(self, feed_ids: Sequence[int]) -> Iterator[tuple[int, bytes, int]]:
        """(algorithm id, value, grading) across the feeds, each once, in key order (SQLite
        sorts on disk if it must, so memory stays flat for any list size)."""
        if not feed_ids:
            return
        marks = ", ".join("?" * len(feed_ids))
        cursor = self.conn.execute(
            "SELECT DISTINCT algorithm, value, grading FROM entries "  # noqa: S608 - markers
            f"WHERE feed_id IN ({marks}) ORDER BY algorithm, value, grading",
            tuple(feed_ids),
        )
        while rows := cursor.fetchmany(10_000):
            for algorithm, value, grading in rows:
                yield algorithm, bytes(value), grading

    def find_exact(
        self, feed_ids: Sequence[int], algorithm: int, values: Sequence[bytes]
    ) -> list[tuple[int, bytes, int]]:
        """(feed_id, value, grading) of every row matching one of ``values`` exactly."""
        found: list[tuple[int, bytes, int]] = []
        for feed_id in feed_ids:
            for start in range(0, len(values), IN_CHUNK):
                chunk = list(values[start : start + IN_CHUNK])
                marks = ", ".join("?" * len(chunk))
                rows = self.conn.execute(
                    "SELECT feed_id, value, grading FROM entries "  # noqa: S608 - only markers
                    f"WHERE feed_id = ? AND algorithm = ? AND value IN ({marks})",
                    (feed_id, algorithm, *chunk),
                ).fetchall()
                found.extend((int(f), bytes(v), int(g)) for f, v, g in rows)
        return found

    def algorithm_matrix(
        self, feed_ids: Sequence[int], algorithm: int, length: int
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """All values of one algorithm as an (N, length) byte matrix, with feed ids and
        gradings: what the PDQ distance search scans with numpy."""
        values: list[bytes] = []
        feeds: list[int] = []
        gradings: list[int] = []
        for feed_id in feed_ids:
            cursor = self.conn.execute(
                "SELECT value, grading FROM entries WHERE feed_id = ? AND algorithm = ?",
                (feed_id, algorithm),
            )
            while rows := cursor.fetchmany(65_536):
                values.extend(bytes(v) for v, _ in rows)
                gradings.extend(g for _, g in rows)
                feeds.extend([feed_id] * len(rows))
        matrix = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), length)
        return matrix, np.array(feeds, dtype=np.int64), np.array(gradings, dtype=np.int64)

    def recompute_state(self, feed_id: int) -> tuple[LtHash16, int]:
        """The LtHash16 of a feed computed from its rows, ignoring the stored state: to check
        that the local list has not been altered behind the client's back."""
        state = LtHash16()
        count = 0
        cursor = self.conn.execute(
            "SELECT algorithm, value, grading FROM entries WHERE feed_id = ?", (feed_id,)
        )
        while rows := cursor.fetchmany(8192):
            count += len(rows)
            state.add(row_elements(rows))
        return state, count

    def integrity_check(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])
