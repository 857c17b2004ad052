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
import datetime as dt
import hashlib
import json
import logging
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
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
from hashlist.services import PROPOSE, User, _text, as_staff, require_permission
from hashsync.errors import Conflict, DomainError, InvalidInput
from hashsync.middleware import current_request_id
from hashsync_client.algorithms import ALGORITHMS, HashParseError, get_algorithm

logger = logging.getLogger(__name__)

CHUNK_ROWS = 2000
GRADING_COLUMNS = ("category", "age_group", "baseline", "industry_class", "content_type")
TEXT_COLUMNS = ("source", "notes")
KNOWN_COLUMNS = frozenset((*GRADING_COLUMNS, *TEXT_COLUMNS, *ALGORITHMS))
csv.field_size_limit(64 * 1024)


class UploadTooLarge(DomainError):
    code = "upload_too_large"
    http_status = 413


class RowError(Exception):
    pass


@dataclass(slots=True)
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
    line: int = 0  # line of the last data row read: rows and lines differ (header, blanks)
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
        raise InvalidInput(
            f"format must be csv or jsonl; got {requested[:20]!r}.", code="unknown_format"
        )
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
        uploaded_by=as_staff(actor),
        original_name=name,
        format=fmt,
        size=size,
        sha256=digest.hexdigest(),
        comment=_text(comment, "comment"),
    )
    batch.file.save(f"{digest.hexdigest()}{PurePath(name).suffix.lower()}", file, save=False)
    batch.save()
    audit_record(
        actor=actor,
        action="import.upload",
        object_type="import",
        object_id=batch.pk,
        after={"name": name, "format": fmt, "size": size, "sha256": batch.sha256},
    )
    batch_id = batch.pk
    transaction.on_commit(lambda: enqueue_validation(batch_id))
    return batch


def enqueue_validation(batch_id: int) -> None:
    """Send the validation task. A broker outage must not fail the upload, which is already
    committed: the batch stays ``uploaded`` and ``import_sweep`` sends it again later."""
    from hashlist.tasks import import_validate_task

    try:
        # The request id travels with the task, so the worker's audit events name the upload.
        import_validate_task.delay(batch_id, request_id=current_request_id())
    except Exception as exc:
        if import_validate_task.app.conf.task_always_eager:
            raise  # in-process: this is the validation itself failing, not the broker
        logger.warning(
            "Could not enqueue validation of import %s (%s); the sweeper will retry it.",
            batch_id,
            type(exc).__name__,
        )


def import_sweep(*, older_than: dt.timedelta = dt.timedelta(minutes=5)) -> list[int]:
    """Re-send validation for batches whose task was lost: still ``uploaded``, or stuck in
    ``validating`` past the task time limit (a worker killed mid-file). Returns their ids."""
    now = timezone.now()
    stuck_validating = now - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) - older_than
    ids = list(
        ImportBatch.objects.filter(
            Q(status=ImportStatus.UPLOADED, created_at__lt=now - older_than)
            | Q(status=ImportStatus.VALIDATING, started_at__lt=stuck_validating)
        ).values_list("pk", flat=True)
    )
    for batch_id in ids:
        enqueue_validation(batch_id)
    return ids


# --- Validation and staging -------------------------------------------------------------------


def _decoded_lines(handle: IO[bytes], progress: _Progress) -> Iterator[str]:
    for number, raw in enumerate(handle, start=1):
        progress.bytes_read += len(raw)
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            progress.error(
                number,
                f"not valid UTF-8 (invalid byte at position {exc.start + 1}); "
                "save the file as UTF-8",
            )
            yield raw.decode("utf-8", "replace")


def _shown(name: str) -> str:
    """A column or field name as quoted in a message. Long or digit-only names are described,
    not quoted: a file without a header row puts its first row here, and hash values never go
    into messages (no hash is shorter than 22 characters)."""
    if len(name) <= 20 and any(c.isalpha() for c in name):
        return repr(name)
    return f"<{len(name)} characters, not shown>"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of repeated names silently; a repeated "md5" would drop a hash.
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"the name {_shown(name)} appears twice in one object")
            seen.add(name)
    return record


def _pairs_from(items: Iterable[tuple[str, Any]]) -> list[tuple[str, bytes]]:
    pairs: list[tuple[str, bytes]] = []
    for name, value in items:
        if value is None or value == "":
            continue
        try:
            algo = get_algorithm(name)
        except ValueError as exc:
            raise RowError(str(exc)) from None
        if any(algo.name == done for done, _ in pairs):
            raise RowError(f"hashes: {algo.name} given twice; give one value per algorithm")
        if not isinstance(value, str):
            raise RowError(f"{algo.name}: expected a string")
        try:
            pairs.append((algo.name, algo.parse(value)))
        except HashParseError as exc:
            raise RowError(str(exc)) from None
    if not pairs:
        raise RowError(_NO_HASH)
    return pairs


_NO_HASH = f"no hash: give at least one of {', '.join(ALGORITHMS)}"


def _grading(fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_grading(fields)
    except InvalidInput as exc:
        raise RowError(exc.message) from None


def _texts(source: Any, notes: Any) -> tuple[str, str]:
    source = source or ""
    notes = notes or ""
    if not isinstance(source, str) or len(source) > 200:
        raise RowError("source must be text of at most 200 characters")
    if not isinstance(notes, str) or len(notes) > 4000:
        raise RowError("notes must be text of at most 4000 characters")
    return source.strip(), notes.strip()


def _row_from(line: int, fields: dict[str, Any], hashes: Iterable[tuple[str, Any]]) -> _Row:
    grading = _grading({k: fields.get(k) for k in GRADING_COLUMNS})
    source, notes = _texts(fields.get("source"), fields.get("notes"))
    return _Row(line, grading, source, notes, _pairs_from(hashes))


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
    if (
        unknown
        or missing
        or not any(c in ALGORITHMS for c in columns)
        or len(set(columns)) != len(columns)
    ):
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(_shown(c) for c in unknown[:5])}")
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if not any(c in ALGORITHMS for c in columns):
            problems.append(f"no hash column (one of {', '.join(ALGORITHMS)})")
        if len(set(columns)) != len(columns):
            problems.append("a column is named twice")
        progress.error(
            1,
            "header: "
            + "; ".join(problems)
            + f". Known columns: {', '.join(sorted(KNOWN_COLUMNS))}",
        )
        return
    # The per-row work below is _row_from's, specialised to a known column layout: this loop
    # runs a million times per P6 file. Checks and their order (grading, texts, hashes) are
    # the same; a grading is validated once per distinct spelling and then looked up.
    at = {c: i for i, c in enumerate(columns)}
    # category and age_group are required columns, so this getter always returns a tuple.
    grading_names = [c for c in GRADING_COLUMNS if c in at]
    grading_of = operator.itemgetter(*[at[c] for c in grading_names])
    source_at, notes_at = at.get("source"), at.get("notes")
    hash_at = [(i, ALGORITHMS[c]) for i, c in enumerate(columns) if c in ALGORITHMS]
    gradings: dict[tuple[str, ...], dict[str, Any]] = {}
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
        progress.line = line
        if len(values) != width:
            progress.error(line, f"expected {width} fields as in the header, found {len(values)}")
            yield None
            continue
        try:
            key = grading_of(values)
            grading = gradings.get(key)
            if grading is None:
                grading = _grading(dict(zip(grading_names, key, strict=True)))
                if len(gradings) < 10_000:  # bounds memory against a file of odd spellings
                    gradings[key] = grading
            source, notes = _texts(
                values[source_at] if source_at is not None else "",
                values[notes_at] if notes_at is not None else "",
            )
            pairs = [(algo.name, algo.parse(values[i])) for i, algo in hash_at if values[i]]
            if not pairs:
                raise RowError(_NO_HASH)
        except (RowError, HashParseError) as exc:
            progress.error(line, str(exc))
            yield None
            continue
        yield _Row(line, grading, source, notes, pairs)


def _jsonl_rows(lines: Iterator[str], progress: _Progress) -> Iterator[_Row | None]:
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        progress.rows += 1
        progress.line = line
        try:
            record = json.loads(text, object_pairs_hook=_no_duplicate_keys)
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
                names = ", ".join(sorted(_shown(u) for u in unknown)[:5])
                raise RowError(f"unknown field(s) {names}")
            if isinstance(hashes, list):
                for item in hashes:
                    if not isinstance(item, dict) or set(item) != {"algorithm", "value"}:
                        raise RowError('hashes: each item must be {"algorithm": ..., "value": ...}')
                    if not isinstance(item["algorithm"], str):
                        raise RowError("hashes: algorithm must be a string")
                pairs = [(item["algorithm"], item["value"]) for item in hashes]
            elif isinstance(hashes, dict):
                pairs = list(hashes.items())
            else:
                raise RowError("hashes must be an object {algorithm: value} or a list")
            yield _row_from(line, record, pairs)
        except RowError as exc:
            progress.error(line, str(exc))
            yield None


class _Stager:
    """Checks a chunk of valid rows against the list and writes them to the staging table."""

    def __init__(self, batch: ImportBatch, progress: _Progress) -> None:
        self.batch = batch
        self.progress = progress
        # Per algorithm, each value seen so far and the line it was first seen on. The full
        # value is the key: a digest could collide and report a duplicate that is not one.
        self.seen: dict[str, dict[bytes, int]] = {name: {} for name in ALGORITHMS}
        self.pending: list[_Row] = []
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
            "source, notes, hashes"
        )
        self.insert_sql = (
            f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
        )
        self.copy_sql = f"COPY {table} ({columns}) FROM STDIN"

    def add(self, row: _Row) -> None:
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
        clean: list[_Row] = rows
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


def _save_errors(batch: ImportBatch, progress: _Progress) -> None:
    if progress.errors:
        # Ids follow line order, so the keyset-paginated error list reads top to bottom: the
        # caller flushes the stager first, so no earlier line can gain an error later.
        progress.errors.sort(key=lambda error: error[0])
        ImportRowError.objects.bulk_create(
            [ImportRowError(batch=batch, line=line, message=msg) for line, msg in progress.errors],
            batch_size=5000,
        )
        progress.errors.clear()


def _report(batch: ImportBatch, progress: _Progress) -> None:
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
    progress = _Progress()
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


def _validate_file(batch: ImportBatch, progress: _Progress) -> None:
    stager = _Stager(batch, progress)
    max_rows = settings.HASHSYNC_IMPORT_MAX_ROWS
    with batch.file.open("rb") as handle:
        lines = _decoded_lines(handle, progress)
        rows = (
            _csv_rows(lines, progress)
            if batch.format == ImportFormat.CSV
            else _jsonl_rows(lines, progress)
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


# --- Approval ---------------------------------------------------------------------------------


def import_apply(*, proposal: Proposal, approved_at: Any) -> int:
    """Apply every staged row of the proposal's batch; runs inside the approval transaction,
    so either every row becomes an entry or none does."""
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
                after={
                    "category": e.category,
                    "age_group": e.age_group,
                    "baseline": e.baseline,
                    "industry_class": e.industry_class,
                    "content_type": e.content_type,
                    "status": e.status,
                    "hashes": canonical_pairs(ps),
                },
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
