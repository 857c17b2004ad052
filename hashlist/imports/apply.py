"""Applying an approved import, and closing a batch when its proposal is decided.

Approval (``services.proposal_approve``) only records the reviewer's decision and marks the batch
``applying`` (``import_accept``); the Celery task ``hashlist.import_apply`` then applies the
staged rows (``import_apply``). Why one transaction for the whole batch rather than committed
chunks flipped visible at the end (docs/import-format.md, "Approval"):

- the batch becomes visible to the release cutter — entries, hashes and change rows alike — in
  one commit, so one release carries it, and nothing of it is ever visible half-applied (not even
  to the staff hash search or to a feed populated from the entries in the meantime);
- a failure (a hash added to the list since validation) or a killed worker rolls everything
  back by construction: there is nothing to undo, and a re-run starts from a clean state;
- exactly once needs no bookkeeping per chunk: workers serialise on the proposal's row lock and
  the winner moves the batch out of ``applying`` with a conditional UPDATE in that transaction,
  so a second worker (or a re-sent task) finds the work done and returns.

The cost is one long transaction (minutes per million rows, see docs/benchmarks.md), under
the task's own time limit (``HASHSYNC_IMPORT_APPLY_TIME_LIMIT``, four hours by default).
Progress is written through a second database connection, outside that transaction, so the
import detail endpoint shows it while the task runs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_record
from hashlist.changelog import EntryState, announce_changes_waiting
from hashlist.imports.parse import CHUNK_ROWS
from hashlist.imports.upload import send_task
from hashlist.models import (
    Change,
    ChangeKind,
    Entry,
    EntryStatus,
    Hash,
    ImportBatch,
    ImportStatus,
    Proposal,
    ProposalStatus,
    StagedRow,
)
from hashsync.errors import Conflict
from hashsync_client.algorithms import get_algorithm

logger = logging.getLogger(__name__)


def import_accept(*, proposal: Proposal) -> ImportBatch:
    """Inside the approving transaction: the batch waits for the apply task, which is sent once
    the approval has committed (so the task sees it)."""
    batch = ImportBatch.objects.select_for_update().get(proposal=proposal)
    if batch.status != ImportStatus.STAGED:
        raise Conflict(
            f"Import {batch.pk} is {batch.status}, not staged.", code="import_not_staged"
        )
    batch.status = ImportStatus.APPLYING
    batch.rows_applied = 0
    batch.apply_started_at = None
    batch.save(update_fields=["status", "rows_applied", "apply_started_at"])
    batch_id = batch.pk
    transaction.on_commit(lambda: enqueue_apply(batch_id))
    return batch


def enqueue_apply(batch_id: int) -> None:
    from hashlist.tasks import import_apply_task

    # Even in-process a failure here must not undo the committed approval: the batch stays
    # ``applying`` and the sweeper sends it again.
    send_task(import_apply_task, batch_id, always_quiet=True)


def import_apply(*, batch_id: int) -> ImportBatch | None:
    """Apply an ``applying`` batch's staged rows; returns None when there is nothing to do
    (already applied or failed). Safe to run twice, concurrently, or after a killed run."""
    claimed = ImportBatch.objects.filter(pk=batch_id, status=ImportStatus.APPLYING).update(
        apply_started_at=timezone.now(), rows_applied=0
    )
    if not claimed:
        return None
    progress = _Progress(batch_id)
    try:
        with transaction.atomic():
            proposal_id = ImportBatch.objects.values_list("proposal_id", flat=True).get(pk=batch_id)
            # Workers serialise here. The lock is the proposal's, not the batch's: the batch row
            # takes progress updates from another connection while this transaction runs.
            proposal = Proposal.objects.select_for_update().get(pk=proposal_id)
            batch = ImportBatch.objects.get(pk=batch_id)
            if batch.status != ImportStatus.APPLYING:
                return None  # another worker finished while this one waited for the lock
            applied = _apply_rows(batch, proposal, progress)
            StagedRow.objects.filter(batch=batch).delete()
            done = ImportBatch.objects.filter(pk=batch_id, status=ImportStatus.APPLYING).update(
                status=ImportStatus.APPROVED, rows_applied=applied, finished_at=timezone.now()
            )
            if done != 1:  # unreachable while the proposal lock holds; never apply twice
                raise Conflict(f"Import {batch_id} was applied concurrently.", code="import_busy")
            audit_record(
                actor=None,
                action="import.applied",
                object_type="import",
                object_id=batch_id,
                after={"rows": applied, "proposal": proposal.pk},
            )
            # The rows become visible to the release cutter when this transaction commits; the
            # listener defers its work to on_commit.
            announce_changes_waiting()
    except Conflict as exc:
        _fail(batch_id, exc)
    except (OperationalError, InterfaceError):
        raise  # the database went away: transient, the sweeper runs the task again
    except Exception as exc:
        # Anything else (a bug, bad staged data, the task's soft time limit) would fail the
        # same way on every retry, holding the proposal's lock for hours each time: end it.
        logger.exception("Applying import %s failed unexpectedly", batch_id)
        _fail(
            batch_id,
            Conflict(
                "applying stopped on an unexpected error, which was logged; upload the file "
                "again or ask an operator",
                code="import_apply_error",
                details={"error": type(exc).__name__},
            ),
        )
        raise
    finally:
        progress.close()
    return ImportBatch.objects.get(pk=batch_id)


def _apply_rows(batch: ImportBatch, proposal: Proposal, progress: _Progress) -> int:
    approved_at = proposal.reviewed_at
    applied = 0
    # Chunks are ranges of line numbers, not "the next 2,000 rows after line N": freshly staged
    # rows have no planner statistics yet, and PostgreSQL answered each open-ended query by
    # sorting every remaining row (125 s of 647 s at 1M rows, docs/benchmarks.md). A bounded
    # range reads at most CHUNK_ROWS rows through the (batch, line) index whatever the plan.
    staged = StagedRow.objects.filter(batch=batch)
    last_line = staged.aggregate(last=Max("line"))["last"] or 0
    for start in range(0, last_line, CHUNK_ROWS):
        chunk = list(staged.filter(line__gt=start, line__lte=start + CHUNK_ROWS).order_by("line"))
        if not chunk:
            continue  # lines without rows: a header, blanks, multi-line records
        applied += _apply_chunk(proposal, chunk, approved_at)
        progress.report(applied)
    if applied != batch.rows_valid:
        raise Conflict(
            f"Import {batch.pk} has {applied} staged rows but {batch.rows_valid} were validated; "
            "upload the file again.",
            code="import_incomplete",
        )
    return applied


def _fail(batch_id: int, exc: Conflict) -> None:
    """Nothing was applied (the transaction rolled back): say so on the batch, the proposal and
    the audit trail. The staged rows go, as for a rejected batch."""
    with transaction.atomic():
        batch = ImportBatch.objects.select_for_update().get(pk=batch_id)
        if batch.status != ImportStatus.APPLYING:
            return
        message = f"Approved, but nothing was applied: {exc.message}"
        batch.status, batch.failure_message = ImportStatus.FAILED, message
        batch.rows_applied, batch.finished_at = 0, timezone.now()
        batch.save(update_fields=["status", "failure_message", "rows_applied", "finished_at"])
        Proposal.objects.filter(import_batch=batch, status=ProposalStatus.APPROVED).update(
            status=ProposalStatus.FAILED
        )
        StagedRow.objects.filter(batch=batch).delete()
        audit_record(
            actor=None,
            action="import.apply_failed",
            object_type="import",
            object_id=batch_id,
            after={"proposal": batch.proposal_id, "code": exc.code, **(exc.details or {})},
            reason=message,
        )


class _Progress:
    """Rows applied so far, written outside the applying transaction so that others see it.
    Only on PostgreSQL: SQLite (the embedded mode) admits one writer at a time, and there the
    task runs inside the approving request anyway; the count appears when the batch is done."""

    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id
        self.side = (
            connections.create_connection(DEFAULT_DB_ALIAS)
            if connection.vendor == "postgresql"
            else None
        )
        meta = ImportBatch._meta
        self.sql = (
            f"UPDATE {meta.db_table} SET rows_applied = %s "  # noqa: S608 - names from the model
            f"WHERE id = %s AND status = %s"
        )

    def report(self, applied: int) -> None:
        if self.side is not None:
            with self.side.cursor() as cursor:
                cursor.execute(self.sql, [applied, self.batch_id, ImportStatus.APPLYING])

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def _apply_chunk(proposal: Proposal, chunk: list[StagedRow], approved_at: Any) -> int:
    decoded = [
        [(name, get_algorithm(name).parse(text)) for name, text in json.loads(row.hashes)]
        for row in chunk
    ]
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
                pubertal_stage=r.pubertal_stage,
                activity=r.activity,
                origin=r.origin,
                self_generated=r.self_generated,
            )
            for r in chunk
        ]
    )
    # The unique constraint finds a hash that reached the list since validation; the lookup
    # that names its line runs only then. (Probing first, per chunk, costs a query per
    # algorithm, and inside this transaction the planner cannot know how many rows it has
    # added: on a young table it scanned them all, every chunk.)
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
        raise _clash(chunk, decoded) from None
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


def _clash(chunk: list[StagedRow], decoded: list[list[tuple[str, bytes]]]) -> Conflict:
    """The error for a chunk whose hashes the list refused: the first line whose hash is on the
    list now, with the entry that holds it."""
    for row, pairs in zip(chunk, decoded, strict=True):
        for name, value in pairs:
            holder = Hash.objects.filter(algorithm=name, value=value).first()
            if holder is not None:
                return Conflict(
                    f"Line {row.line}: its {name} hash was added to the list (entry "
                    f"{holder.entry_id}) after this file was validated. Upload the file again "
                    "without that row.",
                    code="hash_exists",
                    details={"line": row.line, "entry_id": holder.entry_id},
                )
    # The clashing hash was removed again in between: say what happened, without a line.
    return Conflict(
        "A hash of this import was added to the list while it was being applied. "
        "Upload the file again.",
        code="hash_exists",
    )


def import_close(*, proposal: Proposal) -> None:
    """A rejected or withdrawn import: its staged rows go."""
    batch = ImportBatch.objects.filter(proposal=proposal).first()
    if batch is None:
        return
    StagedRow.objects.filter(batch=batch).delete()
    batch.status = ImportStatus.REJECTED
    batch.save(update_fields=["status"])
