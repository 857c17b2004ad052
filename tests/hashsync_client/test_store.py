"""The local store's schema: a store written by the previous client is upgraded in place."""

from __future__ import annotations

import sqlite3

from hashsync_client.store import Store
from hashsync_client.store_schema import SCHEMA_VERSION, UPGRADE_FROM_1


def test_a_schema_1_store_is_upgraded_in_place_keeping_its_feeds(tmp_path):
    path = tmp_path / "hashsync.sqlite3"
    with Store(path) as store:
        store.ensure_feed("synthetic-feed")
        store.update_feed("synthetic-feed", version=7, checked_at="2026-01-01T00:00:00Z")
    # Make it what schema 1 wrote: none of the columns the upgrade adds.
    conn = sqlite3.connect(path)
    for statement in UPGRADE_FROM_1:
        column = statement.split("ADD COLUMN ")[1].split()[0]
        conn.execute(f"ALTER TABLE feeds DROP COLUMN {column}")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    conn.commit()
    conn.close()

    with Store(path) as store:
        state = store.feed("synthetic-feed")
        assert state is not None
        assert state.version == 7 and state.checked_at == "2026-01-01T00:00:00Z"
        assert state.withdrawn_at is None and state.verification_failed is False
        assert store._schema_version() == str(SCHEMA_VERSION)
