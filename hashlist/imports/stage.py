"""Validating a whole batch and staging its valid rows in bulk; any error stages nothing."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record
from hashlist.framework_store import definitions
from hashlist.imports.grade import FACT_COLUMNS, Grader
from hashlist.imports.parse import (
    CHUNK_ROWS,
    Progress,
    Row,
    csv_rows,
    decoded_lines,
    jsonl_rows,
)
from hashlist.models import (
    Hash,
    ImportBatch,
    ImportFormat,
    ImportRowError,
    ImportStatus,
    Proposal,
    ProposalKind,
    StagedRow,
)
from hashsync_client.algorithms import ALGORITHMS

logger = logging.getLogger(__name__)


class _Stager:
    """Checks a chunk of valid rows against the list and writes them to the staging table."""

    def __init__(self, batch: ImportBatch, progress: Progress) -> None:
        self.batch = batch
        self.progress = progress
        # Per algorithm, each value seen so far and the line it was first seen on. The full
        # value is the key: a digest could collide and report a duplicate that is not one.
        self.seen: dict[str, dict[bytes, int]] = {name: {} for name in ALGORITHMS}
        self.pending: list[Row] = []
        # Raw SQL below: through the ORM, preparing a 2,000-value IN list and 2,000 INSERTs
        # cost more than the queries themselves (P6 is a million rows).
        self.postgres = connection.vendor == "postgresql"
        self.lookup_size = min(2000, (connection.features.max_query_params or 2001) - 1)
        # Table names come from the models; every value is a bound parameter.
        self.lookup_sql = (
            f"SELECT value, entry_id FROM {Hash._meta.db_table} WHERE algorithm = %s AND value "  # noqa: S608
        )
        table = StagedRow._meta.db_table
        columns = (
            "batch_id, line, category, age_group, baseline, industry_class, content_type, "
            "source, notes, hashes, " + ", ".join(FACT_COLUMNS)
        )
        marks = ", ".join(["%s"] * (10 + len(FACT_COLUMNS)))
        self.insert_sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
        self.copy_sql = f"COPY {table} ({columns}) FROM STDIN"

    def add(self, row: Row) -> None:
        for name, value in row.pairs:
            first = self.seen[name].setdefault(value, row.line)
            if first != row.line:
                self.progress.error(row.line, f"{name} hash repeats the one on line {first}")
                return
        self.pending.append(row)
        if len(self.pending) >= CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        rows, self.pending = self.pending, []
        if not rows:
            return
        by_algo: dict[str, list[bytes]] = {}
        for row in rows:
            for name, value in row.pairs:
                by_algo.setdefault(name, []).append(value)
        existing: dict[tuple[str, bytes], int] = {}
        with connection.cursor() as cursor:
            for name, values in by_algo.items():
                for value, entry_id in self._on_list(cursor, name, values):
                    existing[(name, bytes(value))] = entry_id
        clean: list[Row] = rows
        if existing:
            clean = []
            for row in rows:
                clash = next((p for p in row.pairs if p in existing), None)
                if clash:
                    entry_id = existing[clash]
                    self.progress.error(
                        row.line, f"{clash[0]} hash is already on the list (entry {entry_id})"
                    )
                else:
                    clean.append(row)
        if self.progress.error_count:
            return  # the file will be refused: staging more would only be undone
        batch_id = self.batch.pk
        params = [
            (
                batch_id,
                r.line,
                r.grading["category"],
                r.grading["age_group"],
                r.grading["baseline"],
                r.grading["industry_class"],
                r.grading["content_type"],
                r.source,
                r.notes,
                _staged_hashes(r.pairs),
                *[r.facts[name] for name in FACT_COLUMNS],
            )
            for r in clean
        ]
        outermost = not connection.in_atomic_block
        with transaction.atomic(), connection.cursor() as cursor:
            if self.postgres:
                if outermost:
                    # Staged rows are disposable (an interrupted validation restarts from
                    # scratch), so their commits need not wait for the WAL flush; the final
                    # "staged" commit is synchronous and makes every earlier one durable.
                    # Only when this transaction is our own: SET LOCAL lasts until the end of
                    # the outermost one.
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                # COPY: several times faster than row-by-row INSERTs on PostgreSQL.
                with cursor.cursor.copy(self.copy_sql) as copy:
                    for record in params:
                        copy.write_row(record)
            else:
                cursor.executemany(self.insert_sql, params)

    def _on_list(self, cursor: Any, name: str, values: list[bytes]) -> list[tuple[Any, int]]:
        """(value, entry id) of each of ``values`` already on the list under ``name``."""
        if self.postgres:
            # One text parameter of comma-separated hex, decoded by the server: binding 2,000
            # placeholders, or a bytea array, costs more client-side than the query.
            cursor.execute(
                self.lookup_sql + "= ANY(ARRAY(SELECT decode(h, 'hex') "
                "FROM unnest(string_to_array(%s, ',')) AS h))",
                [name, ",".join([value.hex() for value in values])],
            )
            return list(cursor.fetchall())
        found: list[tuple[Any, int]] = []
        for start in range(0, len(values), self.lookup_size):  # under the parameter limit
            part = values[start : start + self.lookup_size]
            cursor.execute(
                self.lookup_sql + "IN (" + ", ".join(["%s"] * len(part)) + ")", [name, *part]
            )
            found += cursor.fetchall()
        return found


# bytes.hex is canonical() without its checks; parse() has already checked the length.
_CANONICAL = {
    name: algo.canonical if algo.accepts_decimal_list else bytes.hex
    for name, algo in ALGORITHMS.items()
}


def _staged_hashes(pairs: list[tuple[str, bytes]]) -> str:
    """``json.dumps(canonical_pairs(pairs), separators=(",", ":"))``, built directly (it runs
    per row): names and canonical values — hex, decimal lists — never need JSON escaping."""
    texts = sorted([(name, _CANONICAL[name](value)) for name, value in pairs])
    return "[" + ",".join([f'["{name}","{text}"]' for name, text in texts]) + "]"


def _save_errors(batch: ImportBatch, progress: Progress) -> None:
    if progress.errors:
        # Ids follow line order, so the keyset-paginated error list reads top to bottom: the
        # caller flushes the stager first, so no earlier line can gain an error later.
        progress.errors.sort(key=lambda error: error[0])
        ImportRowError.objects.bulk_create(
            [ImportRowError(batch=batch, line=line, message=msg) for line, msg in progress.errors],
            batch_size=5000,
        )
        progress.errors.clear()


def _report(batch: ImportBatch, progress: Progress) -> None:
    _save_errors(batch, progress)
    ImportBatch.objects.filter(pk=batch.pk).update(
        bytes_processed=progress.bytes_read,
        rows_processed=progress.rows,
        error_count=progress.error_count,
    )


def import_validate(*, batch_id: int) -> ImportBatch | None:
    """Validate and stage an uploaded batch. Idempotent: a batch already past validation is
    left alone, and a run interrupted half-way is restarted from scratch."""
    claimed = ImportBatch.objects.filter(
        pk=batch_id, status__in=[ImportStatus.UPLOADED, ImportStatus.VALIDATING]
    ).update(status=ImportStatus.VALIDATING, started_at=timezone.now())
    if not claimed:
        return None
    batch = ImportBatch.objects.get(pk=batch_id)
    StagedRow.objects.filter(batch=batch).delete()
    ImportRowError.objects.filter(batch=batch).delete()
    progress = Progress()
    try:
        _validate_file(batch, progress)
    except Exception:
        logger.exception("Import %s failed unexpectedly", batch_id)
        StagedRow.objects.filter(batch=batch).delete()
        ImportBatch.objects.filter(pk=batch_id).update(
            status=ImportStatus.FAILED,
            finished_at=timezone.now(),
            failure_message="Validation stopped on an unexpected error; it was logged. "
            "Nothing was staged. Upload the file again or contact an operator.",
        )
        raise
    return ImportBatch.objects.get(pk=batch_id)


def _validate_file(batch: ImportBatch, progress: Progress) -> None:
    stager = _Stager(batch, progress)
    # The rules as they stand when the file is read; approval applies the facts and the
    # stored fields checked here (a rule change in between is its own reviewed change).
    grader = Grader(definitions())
    max_rows = settings.HASHSYNC_IMPORT_MAX_ROWS
    with batch.file.open("rb") as handle:
        lines = decoded_lines(handle, progress, settings.HASHSYNC_IMPORT_MAX_LINE_BYTES)
        rows = (
            csv_rows(lines, progress, grader)
            if batch.format == ImportFormat.CSV
            else jsonl_rows(lines, progress, grader)
        )
        for row in rows:
            if progress.rows > max_rows:
                progress.error(progress.line, f"the file has more than {max_rows} rows; split it")
                break
            if row is not None:
                stager.add(row)
            if progress.rows % (CHUNK_ROWS * 5) == 0:
                stager.flush()  # so every error up to this row is known before it is saved
                _report(batch, progress)
        stager.flush()
    if progress.rows == 0 and not progress.error_count:
        progress.error(1, "the file has no data rows")
    _report(batch, progress)
    with transaction.atomic():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        locked.finished_at = timezone.now()
        if progress.error_count:
            StagedRow.objects.filter(batch=batch).delete()
            locked.status = ImportStatus.INVALID
            locked.save(update_fields=["status", "finished_at"])
            audit_record(
                actor=None,
                action="import.invalid",
                object_type="import",
                object_id=batch.pk,
                after={"rows": progress.rows, "errors": progress.error_count},
            )
            return
        locked.rows_valid = progress.rows
        locked.status = ImportStatus.STAGED
        locked.proposal = Proposal.objects.create(
            kind=ProposalKind.IMPORT,
            author=locked.uploaded_by,
            comment=locked.comment,
            payload={
                "import_batch": batch.pk,
                "rows": progress.rows,
                "sha256": batch.sha256,
                "name": batch.original_name,
            },
        )
        locked.save(update_fields=["rows_valid", "status", "proposal", "finished_at"])
        audit_record(
            actor=None,
            action="import.staged",
            object_type="import",
            object_id=batch.pk,
            after={"rows": progress.rows, "proposal": locked.proposal.pk},
        )
