"""Writing the change log the way an attacker with the application's database credentials would:
raw SQL, bypassing the services — and, for someone who can also alter the schema, with the
approval triggers dropped. Shared by the trigger's, the cutter's and audit_verify's tests; works
on SQLite and PostgreSQL. Hashes are synthetic."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from hashlist.changelog import EntryState
from hashlist.models import Entry, Proposal
from tests.conftest import synthetic
from tests.factories import approved_entry

# The migration's own SQL, so a test restores exactly what production has.
MIGRATION = importlib.import_module("hashlist.migrations.0005_change_requires_approval")


def _json_param() -> str:
    # psycopg sends a str as text; PostgreSQL needs it cast to the column's jsonb.
    return "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"


def insert_change_sql(
    *, entry_id: int, proposal_id: int, after: dict[str, Any], release: int | None = None
) -> int:
    """INSERT one change row by raw SQL; its id."""
    import json

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO hashlist_change "  # noqa: S608 - fixed SQL, values as parameters
            "(entry_id, proposal_id, kind, before, after, approved_at, release) "
            f"VALUES (%s, %s, 'add_hash', NULL, {_json_param()}, %s, %s) RETURNING id",
            [entry_id, proposal_id, json.dumps(after), timezone.now(), release],
        )
        return int(cursor.fetchone()[0])


class _Editor:
    """What the migration's forward/backward use of a schema editor, on the test's connection
    (inside its transaction)."""

    connection = connection

    def execute(self, sql: str, params: Any = ()) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


@contextmanager
def approval_triggers_dropped() -> Iterator[None]:
    """Drop the change log's approval triggers for the block, as the table owner could, and
    restore them afterwards (the test transaction's rollback would too)."""
    MIGRATION.backward(None, _Editor())
    try:
        yield
    finally:
        MIGRATION.forward(None, _Editor())


def pending_hash_addition(analyst: Any, reviewer: Any) -> tuple[Entry, Proposal, str]:
    """A published-looking entry and a *pending* proposal to add an md5 hash to it: (entry,
    proposal, the hash's text)."""
    from hashlist import services

    entry = approved_entry(analyst, reviewer)
    md5 = synthetic("md5")
    proposal = services.proposal_add_hash(
        actor=analyst, entry_id=entry.pk, algorithm="md5", value=md5, comment="synthetic"
    )
    return entry, proposal, md5


def forged_after(entry: Entry, md5: str) -> dict[str, Any]:
    """The entry's state with ``md5`` added: what the attacker wants members to receive."""
    state = EntryState.of(entry).to_json()
    state["hashes"] = sorted([*state["hashes"], ["md5", md5]])
    return state


@dataclass(frozen=True)
class ForgedRelease:
    """A change for a pending proposal, written with the triggers dropped and marked released:
    what only the audit trail's cross-check can still catch."""

    change_id: int
    proposal: Proposal
    release: int
    md5: str


def release_a_forged_change(analyst: Any, reviewer: Any) -> ForgedRelease:
    from distribution import releases

    entry, pending, md5 = pending_hash_addition(analyst, reviewer)
    release = releases.release_cut()
    assert release is not None
    with approval_triggers_dropped():
        forged = insert_change_sql(
            entry_id=entry.pk,
            proposal_id=pending.pk,
            after=forged_after(entry, md5),
            release=release.version,
        )
    return ForgedRelease(forged, pending, release.version, md5)
