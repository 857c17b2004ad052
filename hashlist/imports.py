"""Bulk import of grading-tool exports (CSV and JSON Lines).

The file is streamed once: every row is validated, every error is kept with its line number,
hashes repeated inside the file or already on the list are reported, and valid rows are staged
with bulk inserts. A file with any error stages nothing. A valid file becomes one proposal of
kind ``import`` that a second person approves or rejects as a unit; approval applies every row
in one transaction. The format is documented in ``docs/import-format.md``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from hashlist.algorithms import ALGORITHMS, HashParseError, get_algorithm
from hashlist.audit import audit_record
from hashlist.grading import canonical_pairs, validate_grading
from hashlist.models import (
    Change,
    ChangeKind,
    Entry,
    EntryStatus,
    Hash,
    ImportBatch,
    ImportFormat,
    ImportRowError,
    ImportStatus,
    Proposal,
    ProposalKind,
    StagedRow,
)
from hashlist.services import PROPOSE, User, _text, require_permission
from hashsync.errors import Conflict, DomainError, InvalidInput

logger = logging.getLogger(__name__)

CHUNK_ROWS = 2000
GRADING_COLUMNS = ("category", "age_group", "baseline", "industry_class", "content_type")
TEXT_COLUMNS = ("source", "notes")
KNOWN_COLUMNS = frozenset((*GRADING_COLUMNS, *TEXT_COLUMNS, *ALGORITHMS))
_ALGO_INDEX = {name: bytes([i]) for i, name in enumerate(ALGORITHMS)}
csv.field_size_limit(64 * 1024)


class UploadTooLarge(DomainError):
    code = "upload_too_large"
    http_status = 413


class RowError(Exception):
    pass


@dataclass
class _Row:
    line: int
    grading: dict[str, Any]
    source: str
    notes: str
    pairs: list[tuple[str, bytes]]


@dataclass
class _Progress:
    bytes_read: int = 0
    rows: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0

    def error(self, line: int, message: str) -> None:
        self.errors.append((line, message))
        self.error_count += 1


# --- Upload -----------------------------------------------------------------------------------


def _detect_format(name: str, requested: str | None) -> str:
    if requested:
        value = requested.strip().lower()
        if value in ("jsonl", "ndjson", "json-lines"):
            return ImportFormat.JSONL
        if value == "csv":
            return ImportFormat.CSV
        raise InvalidInput(f"format must be csv or jsonl; got {requested[:20]!r}.", code="unknown_format")
    suffix = PurePath(name).suffix.lower()
    if suffix == ".csv":
        return ImportFormat.CSV
    if suffix in (".jsonl", ".ndjson"):
        return ImportFormat.JSONL
    raise InvalidInput(
        "Cannot tell the file's format from its name; name it .csv or .jsonl, or pass format.",
        code="unknown_format",
    )


@transaction.atomic
def import_upload(
    *, actor: User, file: UploadedFile, format: str | None = None, comment: Any = ""
) -> ImportBatch:
    require_permission(actor, PROPOSE, "import entries")
    size = file.size or 0
    if size == 0:
        raise InvalidInput("The uploaded file is empty.", code="empty_file")
    limit = settings.HASHSYNC_IMPORT_MAX_BYTES
    if size > limit:
        raise UploadTooLarge(f"The file is {size} bytes; the limit is {limit} bytes.")
    name = PurePath(file.name or "upload").name[:255]
    fmt = _detect_format(name, format)
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    batch = ImportBatch(
        uploaded_by=actor, original_name=name, format=fmt, size=size,
        sha256=digest.hexdigest(), comment=_text(comment, "comment"),
    )
    batch.file.save(f"{digest.hexdigest()}{PurePath(name).suffix.lower()}", file, save=False)
    batch.save()
    audit_record(
        actor=actor, action="import.upload", object_type="import", object_id=batch.pk,
        after={"name": name, "format": fmt, "size": size, "sha256": batch.sha256},
    )
    from hashlist.tasks import import_validate_task

    batch_id = batch.pk
    transaction.on_commit(lambda: import_validate_task.delay(batch_id))
    return batch


# --- Validation and staging -------------------------------------------------------------------


def _decoded_lines(handle: IO[bytes], progress: _Progress) -> Iterator[str]:
    for number, raw in enumerate(handle, start=1):
        progress.bytes_read += len(raw)
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            progress.error(number, f"not valid UTF-8 (invalid byte at position {exc.start + 1}); "
                                   "save the file as UTF-8")
            yield raw.decode("utf-8", "replace")


def _pairs_from(items: dict[str, Any]) -> list[tuple[str, bytes]]:
    pairs: list[tuple[str, bytes]] = []
    for name, value in items.items():
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise RowError(f"{name}: expected a string")
        try:
            algo = get_algorithm(name)
            pairs.append((algo.name, algo.parse(value)))
        except (HashParseError, ValueError) as exc:
            raise RowError(str(exc)) from None
    if not pairs:
        raise RowError(f"no hash: give at least one of {', '.join(ALGORITHMS)}")
    return pairs


def _row_from(line: int, fields: dict[str, Any], hashes: dict[str, Any]) -> _Row:
    try:
        grading = validate_grading({k: fields.get(k) for k in GRADING_COLUMNS})
    except InvalidInput as exc:
        raise RowError(exc.message) from None
    source = fields.get("source") or ""
    notes = fields.get("notes") or ""
    if not isinstance(source, str) or len(source) > 200:
        raise RowError("source must be text of at most 200 characters")
    if not isinstance(notes, str) or len(notes) > 4000:
        raise RowError("notes must be text of at most 4000 characters")
    return _Row(line, grading, source.strip(), notes.strip(), _pairs_from(hashes))


def _csv_rows(lines: Iterator[str], progress: _Progress) -> Iterator[_Row | None]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        progress.error(1, f"header is not valid CSV: {exc}")
        return
    columns = [c.strip().lower() for c in header]
    unknown = [c for c in columns if c not in KNOWN_COLUMNS]
    missing = [c for c in ("category", "age_group") if c not in columns]
    if unknown or missing or not any(c in ALGORITHMS for c in columns) or len(set(columns)) != len(columns):
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(repr(c[:30]) for c in unknown[:5])}")
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if not any(c in ALGORITHMS for c in columns):
            problems.append(f"no hash column (one of {', '.join(ALGORITHMS)})")
        if len(set(columns)) != len(columns):
            problems.append("a column is named twice")
        progress.error(1, "header: " + "; ".join(problems) +
                       f". Known columns: {', '.join(sorted(KNOWN_COLUMNS))}")
        return
    hash_columns = [c for c in columns if c in ALGORITHMS]
    width = len(columns)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            progress.error(reader.line_num, f"not valid CSV: {exc}")
            continue
        line = reader.line_num
        if not values or (len(values) == 1 and not values[0].strip()):
            continue  # blank line
        progress.rows += 1
        if len(values) != width:
            progress.error(line, f"expected {width} fields as in the header, found {len(values)}")
            yield None
            continue
        record = dict(zip(columns, values, strict=True))
        try:
            yield _row_from(line, record, {c: record[c] for c in hash_columns})
        except RowError as exc:
            progress.error(line, str(exc))
            yield None


def _jsonl_rows(lines: Iterator[str], progress: _Progress) -> Iterator[_Row | None]:
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        progress.rows += 1
        try:
            record = json.loads(text)
        except ValueError as exc:
            progress.error(line, f"not valid JSON: {exc.args[0] if exc.args else exc}")
            yield None
            continue
        if not isinstance(record, dict):
            progress.error(line, "expected a JSON object")
            yield None
            continue
        unknown = set(record) - set(GRADING_COLUMNS) - set(TEXT_COLUMNS) - {"hashes"}
        hashes = record.get("hashes")
        try:
            if unknown:
                raise RowError(f"unknown field(s) {', '.join(sorted(repr(u[:30]) for u in unknown)[:5])}")
            if isinstance(hashes, list):
                items: dict[str, Any] = {}
                for item in hashes:
                    if not isinstance(item, dict) or set(item) != {"algorithm", "value"}:
                        raise RowError("hashes: each item must be {\"algorithm\": ..., \"value\": ...}")
                    if not isinstance(item["algorithm"], str):
                        raise RowError("hashes: algorithm must be a string")
                    if item["algorithm"] in items:
                        raise RowError(f"hashes: {item['algorithm'][:20]} given twice")
                    items[item["algorithm"]] = item["value"]
                hashes = items
            if not isinstance(hashes, dict):
                raise RowError("hashes must be an object {algorithm: value} or a list")
            yield _row_from(line, record, hashes)
        except RowError as exc:
            progress.error(line, str(exc))
            yield None


class _Stager:
    """Checks a chunk of valid rows against the list and writes them to the staging table."""

    def __init__(self, batch: ImportBatch, progress: _Progress) -> None:
        self.batch = batch
        self.progress = progress
        self.seen: dict[bytes, int] = {}
        self.pending: list[_Row] = []
        table = StagedRow._meta.db_table
        self.insert_sql = (
            f"INSERT INTO {table} (batch_id, line, category, age_group, baseline, industry_class, "
            "content_type, source, notes, hashes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )

    def add(self, row: _Row) -> None:
        for name, value in row.pairs:
            key = _ALGO_INDEX[name] + value
            first = self.seen.setdefault(key, row.line)
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
        for name, values in by_algo.items():
            for value, entry_id in Hash.objects.filter(algorithm=name, value__in=values).values_list(
                "value", "entry_id"
            ):
                existing[(name, bytes(value))] = entry_id
        clean: list[_Row] = []
        for row in rows:
            clash = next((p for p in row.pairs if p in existing), None)
            if clash:
                self.progress.error(
                    row.line, f"{clash[0]} hash is already on the list (entry {existing[clash]})"
                )
            else:
                clean.append(row)
        if self.progress.error_count:
            return  # the file will be refused: staging more would only be undone
        params = [
            (
                self.batch.pk, r.line, r.grading["category"], r.grading["age_group"],
                r.grading["baseline"], r.grading["industry_class"], r.grading["content_type"],
                r.source, r.notes, json.dumps(canonical_pairs(r.pairs), separators=(",", ":")),
            )
            for r in clean
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(self.insert_sql, params)


def _save_errors(batch: ImportBatch, progress: _Progress) -> None:
    if progress.errors:
        ImportRowError.objects.bulk_create(
            [ImportRowError(batch=batch, line=line, message=msg) for line, msg in progress.errors],
            batch_size=5000,
        )
        progress.errors.clear()


def _report(batch: ImportBatch, progress: _Progress) -> None:
    _save_errors(batch, progress)
    ImportBatch.objects.filter(pk=batch.pk).update(
        bytes_processed=progress.bytes_read, rows_processed=progress.rows,
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
    progress = _Progress()
    try:
        _validate_file(batch, progress)
    except Exception:
        logger.exception("Import %s failed unexpectedly", batch_id)
        StagedRow.objects.filter(batch=batch).delete()
        ImportBatch.objects.filter(pk=batch_id).update(
            status=ImportStatus.FAILED, finished_at=timezone.now(),
            failure_message="Validation stopped on an unexpected error; it was logged. "
                            "Nothing was staged. Upload the file again or contact an operator.",
        )
        raise
    return ImportBatch.objects.get(pk=batch_id)


def _validate_file(batch: ImportBatch, progress: _Progress) -> None:
    stager = _Stager(batch, progress)
    max_rows = settings.HASHSYNC_IMPORT_MAX_ROWS
    with batch.file.open("rb") as handle:
        lines = _decoded_lines(handle, progress)
        rows = _csv_rows(lines, progress) if batch.format == ImportFormat.CSV else _jsonl_rows(lines, progress)
        for row in rows:
            if progress.rows > max_rows:
                progress.error(progress.rows, f"the file has more than {max_rows} rows; split it")
                break
            if row is not None:
                stager.add(row)
            if progress.rows % (CHUNK_ROWS * 5) == 0:
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
                actor=None, action="import.invalid", object_type="import", object_id=batch.pk,
                after={"rows": progress.rows, "errors": progress.error_count},
            )
            return
        locked.rows_valid = progress.rows
        locked.status = ImportStatus.STAGED
        locked.proposal = Proposal.objects.create(
            kind=ProposalKind.IMPORT, author=locked.uploaded_by, comment=locked.comment,
            payload={"import_batch": batch.pk, "rows": progress.rows, "sha256": batch.sha256,
                     "name": batch.original_name},
        )
        locked.save(update_fields=["rows_valid", "status", "proposal", "finished_at"])
        audit_record(
            actor=None, action="import.staged", object_type="import", object_id=batch.pk,
            after={"rows": progress.rows, "proposal": locked.proposal.pk},
        )


# --- Approval ---------------------------------------------------------------------------------


def import_apply(*, proposal: Proposal, approved_at: Any) -> int:
    """Apply every staged row of the proposal's batch; runs inside the approval transaction,
    so either every row becomes an entry or none does."""
    batch = ImportBatch.objects.select_for_update().get(proposal=proposal)
    if batch.status != ImportStatus.STAGED:
        raise Conflict(f"Import {batch.pk} is {batch.status}, not staged.", code="import_not_staged")
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
            line = next(r.line for r, ps in zip(chunk, decoded, strict=True) if (name, bytes(clash.value)) in ps)
            raise Conflict(
                f"Line {line}: its {name} hash was added to the list (entry {clash.entry_id}) after "
                "this file was validated. Reject this import and upload the file again.",
                code="hash_exists",
                details={"line": line, "entry_id": clash.entry_id},
            )
    entries = Entry.objects.bulk_create(
        [
            Entry(category=r.category, age_group=r.age_group, baseline=r.baseline,
                  industry_class=r.industry_class, content_type=r.content_type,
                  source=r.source, notes=r.notes, status=EntryStatus.ACTIVE)
            for r in chunk
        ]
    )
    try:
        with transaction.atomic():
            Hash.objects.bulk_create(
                [Hash(entry=e, algorithm=n, value=v) for e, ps in zip(entries, decoded, strict=True) for n, v in ps]
            )
    except IntegrityError:
        raise Conflict("A hash of this import was added to the list concurrently; try again.",
                       code="hash_exists") from None
    Change.objects.bulk_create(
        [
            Change(
                entry=e, proposal=proposal, kind=ChangeKind.CREATE, before=None,
                approved_at=approved_at,
                after={"category": e.category, "age_group": e.age_group, "baseline": e.baseline,
                       "industry_class": e.industry_class, "content_type": e.content_type,
                       "status": e.status, "hashes": canonical_pairs(ps)},
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
