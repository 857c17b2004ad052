"""Applying an approved import, and closing a batch when its proposal is decided."""

from __future__ import annotations

import json
from typing import Any

from django.db import IntegrityError, transaction

from hashlist.changelog import EntryState
from hashlist.imports.parse import CHUNK_ROWS
from hashlist.models import (
    Change,
    ChangeKind,
    Entry,
    EntryStatus,
    Hash,
    ImportBatch,
    ImportStatus,
    Proposal,
    StagedRow,
)
from hashsync.errors import Conflict
from hashsync_client.algorithms import get_algorithm


def import_apply(*, proposal: Proposal, approved_at: Any) -> int:
    """Apply every staged row of the proposal's batch; runs inside the approval transaction,
    so either every row becomes an entry or none does. The proposal must already be marked
    approved by a person other than its author (its row, in this or an earlier transaction):
    the database refuses changes of any other proposal (hashlist migration 0004)."""
    batch = ImportBatch.objects.select_for_update().get(proposal=proposal)
    if batch.status != ImportStatus.STAGED:
        raise Conflict(
            f"Import {batch.pk} is {batch.status}, not staged.", code="import_not_staged"
        )
    applied = 0
    last_line = 0
    while True:
        chunk = list(
            StagedRow.objects.filter(batch=batch, line__gt=last_line).order_by("line")[:CHUNK_ROWS]
        )
        if not chunk:
            break
        last_line = chunk[-1].line
        applied += _apply_chunk(proposal, chunk, approved_at)
    if applied != batch.rows_valid:
        raise Conflict(
            f"Import {batch.pk} has {applied} staged rows but {batch.rows_valid} were validated; "
            "reject it and upload the file again.",
            code="import_incomplete",
        )
    return applied


def _apply_chunk(proposal: Proposal, chunk: list[StagedRow], approved_at: Any) -> int:
    decoded = [
        [(name, get_algorithm(name).parse(text)) for name, text in json.loads(row.hashes)]
        for row in chunk
    ]
    by_algo: dict[str, list[bytes]] = {}
    for pairs in decoded:
        for name, value in pairs:
            by_algo.setdefault(name, []).append(value)
    for name, values in by_algo.items():
        clash = Hash.objects.filter(algorithm=name, value__in=values).first()
        if clash is not None:
            line = next(
                r.line
                for r, ps in zip(chunk, decoded, strict=True)
                if (name, bytes(clash.value)) in ps
            )
            raise Conflict(
                f"Line {line}: its {name} hash was added to the list (entry {clash.entry_id}) "
                "after this file was validated. Reject this import and upload the file again.",
                code="hash_exists",
                details={"line": line, "entry_id": clash.entry_id},
            )
    entries = Entry.objects.bulk_create(
        [
            Entry(
                category=r.category,
                age_group=r.age_group,
                baseline=r.baseline,
                industry_class=r.industry_class,
                content_type=r.content_type,
                source=r.source,
                notes=r.notes,
                status=EntryStatus.ACTIVE,
            )
            for r in chunk
        ]
    )
    try:
        with transaction.atomic():
            Hash.objects.bulk_create(
                [
                    Hash(entry=e, algorithm=n, value=v)
                    for e, ps in zip(entries, decoded, strict=True)
                    for n, v in ps
                ]
            )
    except IntegrityError:
        raise Conflict(
            "A hash of this import was added to the list concurrently; try again.",
            code="hash_exists",
        ) from None
    Change.objects.bulk_create(
        [
            Change(
                entry=e,
                proposal=proposal,
                kind=ChangeKind.CREATE,
                before=None,
                approved_at=approved_at,
                after=EntryState.of(e, ps).to_json(),
            )
            for e, ps in zip(entries, decoded, strict=True)
        ]
    )
    return len(entries)


def import_close(*, proposal: Proposal, approved: bool) -> None:
    batch = ImportBatch.objects.filter(proposal=proposal).first()
    if batch is None:
        return
    StagedRow.objects.filter(batch=batch).delete()
    batch.status = ImportStatus.APPROVED if approved else ImportStatus.REJECTED
    batch.save(update_fields=["status"])
