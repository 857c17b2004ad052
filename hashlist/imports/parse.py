"""Reading an uploaded file into rows: decoding, CSV and JSON Lines, and every row's checks, each
failure a ``RowError`` reported with its line number (docs/import-format.md)."""

from __future__ import annotations

import codecs
import csv
import json
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from hashlist.grading import GRADING_FIELDS
from hashlist.imports.grade import FACT_COLUMNS, GradeError, Grader
from hashsync.errors import InvalidInput
from hashsync.validation import MAX_LABEL, MAX_TEXT, clean_text
from hashsync_client.algorithms import ALGORITHMS, HashParseError, get_algorithm

CHUNK_ROWS = 2000
TEXT_COLUMNS = ("source", "notes")
KNOWN_COLUMNS = frozenset((*GRADING_FIELDS, *FACT_COLUMNS, *TEXT_COLUMNS, *ALGORITHMS))
# The grading and fact columns, in the order a row's grading is read.
GRADE_COLUMNS = (*GRADING_FIELDS, *FACT_COLUMNS)
csv.field_size_limit(64 * 1024)


class RowError(Exception):
    pass


@dataclass(slots=True)
class Row:
    line: int
    grading: dict[str, Any]
    facts: dict[str, str]  # the facts that are not grading fields (FACT_COLUMNS)
    source: str
    notes: str
    pairs: list[tuple[str, bytes]]


@dataclass
class Progress:
    bytes_read: int = 0
    rows: int = 0
    line: int = 0  # line of the last data row read: rows and lines differ (header, blanks)
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0

    def error(self, line: int, message: str) -> None:
        self.errors.append((line, message))
        self.error_count += 1


def decoded_lines(handle: IO[bytes], progress: Progress, max_bytes: int) -> Iterator[str]:
    """The file's lines as text. A line longer than ``max_bytes`` is reported on its number and
    read past in pieces, never held whole; a blank line stands in for it, so the parsers skip
    it and later lines keep their numbers (the file is refused anyway)."""
    number = 0
    while raw := handle.readline(max_bytes + 1):
        number += 1
        progress.bytes_read += len(raw)
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 16)) and not rest.endswith(b"\n"):
                progress.bytes_read += len(rest)
            progress.bytes_read += len(rest)
            progress.error(
                number,
                f"the line is longer than the limit of {max_bytes} bytes "
                "(HASHSYNC_IMPORT_MAX_LINE_BYTES); is it one row?",
            )
            yield "\n"
            continue
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


def _grading(grader: Grader, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        return grader.grade(fields)
    except GradeError as exc:
        raise RowError(str(exc)) from None


def _texts(source: Any, notes: Any) -> tuple[str, str]:
    # The rules of a proposal's texts (length, NUL), reported as this row's error.
    try:
        return (
            clean_text(source, "source", limit=MAX_LABEL),
            clean_text(notes, "notes", limit=MAX_TEXT),
        )
    except InvalidInput as exc:
        raise RowError(exc.message) from None


def _row_from(
    grader: Grader, line: int, fields: dict[str, Any], hashes: Iterable[tuple[str, Any]]
) -> Row:
    grading, facts = _grading(grader, {k: fields[k] for k in GRADE_COLUMNS if k in fields})
    source, notes = _texts(fields.get("source"), fields.get("notes"))
    return Row(line, grading, facts, source, notes, _pairs_from(hashes))


def csv_rows(lines: Iterator[str], progress: Progress, grader: Grader) -> Iterator[Row | None]:
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
    # A category column is required unless the file records facts, which may determine it.
    records_facts = any(c in FACT_COLUMNS for c in columns)
    required: tuple[str, ...] = ("age_group",) if records_facts else ("category", "age_group")
    missing = [c for c in required if c not in columns]
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
    # Two or more columns (age_group and category or a fact column are required), so this
    # getter always returns a tuple.
    grading_names = [c for c in GRADE_COLUMNS if c in at]
    grading_of = operator.itemgetter(*[at[c] for c in grading_names])
    source_at, notes_at = at.get("source"), at.get("notes")
    hash_at = [(i, ALGORITHMS[c]) for i, c in enumerate(columns) if c in ALGORITHMS]
    gradings: dict[tuple[str, ...], tuple[dict[str, Any], dict[str, str]]] = {}
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
            found = gradings.get(key)
            if found is None:
                found = _grading(grader, dict(zip(grading_names, key, strict=True)))
                if len(gradings) < 10_000:  # bounds memory against a file of odd spellings
                    gradings[key] = found
            grading, facts = found
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
        yield Row(line, grading, facts, source, notes, pairs)


def jsonl_rows(lines: Iterator[str], progress: Progress, grader: Grader) -> Iterator[Row | None]:
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
        except RecursionError:
            # The decoder recurses per level: arrays nested thousands deep exhaust the stack.
            progress.error(line, "not valid here: JSON nested too deeply; a row is one flat object")
            yield None
            continue
        if not isinstance(record, dict):
            progress.error(line, "expected a JSON object")
            yield None
            continue
        unknown = set(record) - set(GRADE_COLUMNS) - set(TEXT_COLUMNS) - {"hashes"}
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
            yield _row_from(grader, line, record, pairs)
        except RowError as exc:
            progress.error(line, str(exc))
            yield None
