"""The local store's SQLite schema (``store`` describes the tables), and how an older store
is brought up to date in place when a newer client opens it."""

from __future__ import annotations

SCHEMA_VERSION = 2

# Schema 1 -> 2: what the server last said of each feed, verification failures, withdrawals.
UPGRADE_FROM_1 = (
    "ALTER TABLE feeds ADD COLUMN verification_failed INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE feeds ADD COLUMN server_version INTEGER",
    "ALTER TABLE feeds ADD COLUMN server_seen_at TEXT",
    "ALTER TABLE feeds ADD COLUMN withdrawn_at TEXT",
    "ALTER TABLE feeds ADD COLUMN withdrawn_reason TEXT",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 0,
    lthash BLOB NOT NULL,
    state_digest TEXT NOT NULL,
    entry_count INTEGER NOT NULL DEFAULT 0,
    manifest BLOB,
    manifest_sha256 TEXT,
    manifest_expires_at TEXT,
    highest_manifest_version INTEGER NOT NULL DEFAULT 0,
    synced_at TEXT,
    checked_at TEXT,
    etag TEXT,
    etag_version INTEGER,
    acked_version INTEGER,
    acked_digest TEXT,
    acked_at TEXT,
    ack_status TEXT,
    last_error TEXT,
    last_error_code TEXT,
    last_error_at TEXT,
    verification_failed INTEGER NOT NULL DEFAULT 0,
    server_version INTEGER,
    server_seen_at TEXT,
    withdrawn_at TEXT,
    withdrawn_reason TEXT,
    CHECK (length(lthash) = 2048)
);
CREATE TABLE IF NOT EXISTS entries (
    feed_id INTEGER NOT NULL,
    algorithm INTEGER NOT NULL,
    value BLOB NOT NULL,
    grading INTEGER NOT NULL,
    PRIMARY KEY (feed_id, algorithm, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keyring (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    root_keyids TEXT NOT NULL,
    root_threshold INTEGER NOT NULL
);
"""
