"""Bulk import through the API: upload, validation and staging, review as one proposal, and
every way a file can be wrong.

Synthetic data only: every hash is random bytes (``tests.conftest.synthetic`` or
``secrets.token_bytes``), every row's source is "synthetic". Celery runs eagerly and the
validation task is enqueued with ``transaction.on_commit``, so uploads run inside
``django_capture_on_commit_callbacks(execute=True)``.
"""

from __future__ import annotations

import base64
import codecs
import csv
import io
import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from audit.models import AuditEvent
from audit.verify import verify_chain
from hashlist import imports
from hashlist.grading import canonical_pairs
from hashlist.imports import parse
from hashlist.models import (
    Change,
    Entry,
    Hash,
    ImportBatch,
    ImportRowError,
    ImportStatus,
    Proposal,
    ProposalStatus,
    StagedRow,
)
from hashsync.celery import app as celery_app
from tests.conftest import synthetic
from tests.factories import approved_entry

URL = "/api/v1/imports/"
ALL_COLUMNS = [
    "category", "age_group", "baseline", "industry_class", "content_type", "source", "notes",
    "md5", "sha1", "sha256", "pdq", "photodna",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _eager_tasks_and_private_media(settings: Any, tmp_path: Any, monkeypatch: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    # The embedded default is eager already; a CELERY_BROKER_URL in the environment must not
    # turn these tests into ones that wait for a worker.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)


# --- Building files ---------------------------------------------------------------------------


def row(**fields: str) -> dict[str, str]:
    """A valid CSV row with a synthetic md5 and sha1."""
    return {
        "category": "A", "age_group": "7-10", "source": "synthetic",
        "md5": synthetic("md5"), "sha1": synthetic("sha1"), **fields,
    }  # fmt: skip


def to_csv(
    rows: list[dict[str, str]], columns: list[str] = ALL_COLUMNS, newline: str = "\n"
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([r.get(c, "") for c in columns])
    return out.getvalue().encode()


def jrow(**fields: Any) -> dict[str, Any]:
    """A valid JSON Lines record with a synthetic md5."""
    return {
        "category": "B", "age_group": "11-13", "source": "synthetic",
        "hashes": {"md5": synthetic("md5")}, **fields,
    }  # fmt: skip


def to_jsonl(records: list[Any], newline: str = "\n") -> bytes:
    return "".join(json.dumps(r) + newline for r in records).encode()


def photodna_list(raw: bytes) -> str:
    return ",".join(str(b) for b in raw)


def b64(hex_value: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_value)).decode()


def replace_line(content: bytes, line: int, new: bytes) -> bytes:
    """``content`` with 1-based physical ``line`` replaced (its line ending kept)."""
    lines = content.split(b"\n")
    lines[line - 1] = new
    return b"\n".join(lines)


# --- Driving the API --------------------------------------------------------------------------


@pytest.fixture
def upload(
    api: Callable[[Any], Any], analyst: Any, django_capture_on_commit_callbacks: Any
) -> Callable[..., Any]:
    """POST a file; the validation task runs when the upload's transaction commits."""

    def do(content: bytes, name: str = "list.csv", *, user: Any = None, **data: str) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return api(user or analyst).post(
                URL, {"file": SimpleUploadedFile(name, content), **data}, format="multipart"
            )

    return do


@pytest.fixture
def imported(
    upload: Callable[..., Any], api: Callable[[Any], Any], analyst: Any
) -> Callable[..., dict[str, Any]]:
    """Upload a file and return the batch as the API shows it once validation has run."""

    def do(content: bytes, name: str = "list.csv", **kwargs: Any) -> dict[str, Any]:
        response = upload(content, name, **kwargs)
        assert response.status_code == 202, response.json()
        detail = api(analyst).get(f"{URL}{response.json()['id']}/")
        assert detail.status_code == 200
        return detail.json()

    return do


@pytest.fixture
def errors_of(api: Callable[[Any], Any], analyst: Any) -> Callable[[int], list[tuple[int, str]]]:
    """Every reported error of a batch as (line, message), following the pages."""

    def do(batch_id: int) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        after = 0
        while True:
            response = api(analyst).get(f"{URL}{batch_id}/errors/", {"after": after, "limit": 1000})
            assert response.status_code == 200
            page = response.json()
            found += [(e["line"], e["message"]) for e in page["results"]]
            if page["next_after"] is None:
                return found
            after = page["next_after"]

    return do


def approve(api: Callable[[Any], Any], user: Any, proposal_id: int) -> Any:
    """Approve; the apply task, sent when the approval commits, runs in-process."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return api(user).post(f"/api/v1/proposals/{proposal_id}/approve/", {}, format="json")


def assert_refused_and_nothing_staged(batch: dict[str, Any]) -> None:
    assert batch["status"] == ImportStatus.INVALID
    assert batch["proposal"] is None
    assert batch["rows_valid"] == 0
    assert StagedRow.objects.count() == 0
    assert not Proposal.objects.filter(kind="import").exists()


# --- Valid files: staging, approval, rejection, four eyes -------------------------------------


def test_valid_csv_is_staged_as_one_pending_import_proposal(imported, analyst):
    rows = [row() for _ in range(5)]

    batch = imported(to_csv(rows))

    assert batch["status"] == ImportStatus.STAGED
    assert (batch["rows_processed"], batch["rows_valid"], batch["error_count"]) == (5, 5, 0)
    proposal = Proposal.objects.get(pk=batch["proposal"])
    assert (proposal.kind, proposal.status, proposal.author) == ("import", "pending", analyst)
    assert proposal.payload["rows"] == 5
    staged = StagedRow.objects.filter(batch_id=batch["id"]).order_by("line")
    assert [s.line for s in staged] == [2, 3, 4, 5, 6]
    assert json.loads(staged[0].hashes) == sorted(
        [["md5", rows[0]["md5"]], ["sha1", rows[0]["sha1"]]]
    )
    assert Entry.objects.count() == 0, "nothing reaches the list before review"


def test_valid_jsonl_in_every_accepted_form_is_staged(imported):
    pdna, md5 = secrets.token_bytes(144), synthetic("md5")
    records = [
        jrow(),
        jrow(hashes=[{"algorithm": "sha256", "value": synthetic("sha256").upper()}]),
        jrow(hashes={"md5": b64(md5), "pdq": synthetic("pdq")}),
        jrow(hashes={"photodna": photodna_list(pdna)}, baseline=True, industry_class="a1"),
        jrow(content_type="VIDEO", baseline="no", notes="synthetic note"),
    ]

    batch = imported(to_jsonl(records), "export.jsonl")

    assert batch["status"] == ImportStatus.STAGED, batch
    assert batch["format"] == "jsonl"
    assert batch["rows_valid"] == 5
    assert Proposal.objects.get(pk=batch["proposal"]).kind == "import"
    staged = {s.line: s for s in StagedRow.objects.filter(batch_id=batch["id"])}
    assert sorted(staged) == [1, 2, 3, 4, 5]  # no header: the first record is line 1
    assert json.loads(staged[3].hashes) == sorted(
        [["md5", md5], ["pdq", records[2]["hashes"]["pdq"]]]
    )
    assert json.loads(staged[4].hashes) == [["photodna", photodna_list(pdna)]]
    # Byte for byte the form approval and payloads use.
    assert staged[3].hashes == json.dumps(
        canonical_pairs(
            [("pdq", bytes.fromhex(records[2]["hashes"]["pdq"])), ("md5", bytes.fromhex(md5))]
        ),
        separators=(",", ":"),
    )
    assert (staged[4].baseline, staged[4].industry_class) == (True, "A1")
    assert (staged[5].content_type, staged[5].baseline) == ("video", False)


def test_reviewer_approval_applies_every_row_as_entries_hashes_and_changes(imported, api, reviewer):
    pdna = secrets.token_bytes(144)
    rows = [row() for _ in range(4)]
    rows.append(row(md5="", sha1="", sha256=synthetic("sha256").upper(), pdq=synthetic("pdq")))
    rows.append(
        row(
            md5="",
            sha1="",
            photodna=photodna_list(pdna),
            category="c",
            baseline="yes",
            industry_class="B2",
            content_type="video",
            notes="synthetic internal note",
        )
    )
    batch = imported(to_csv(rows))

    response = approve(api, reviewer, batch["proposal"])

    assert response.status_code == 202, response.json()
    assert response.json()["status"] == ProposalStatus.APPROVED
    detail = api(reviewer).get(f"/api/v1/proposals/{batch['proposal']}/").json()
    assert (detail["status"], detail["import_status"]) == ("approved", ImportStatus.APPROVED)
    assert Entry.objects.count() == 6
    assert Hash.objects.count() == 4 * 2 + 2 + 1
    assert Change.objects.filter(proposal_id=batch["proposal"], kind="create").count() == 6
    # Announced when the rows became visible: the in-process cutter released them, all in one.
    assert Change.objects.filter(release__isnull=True).count() == 0
    assert Change.objects.values("release").distinct().count() == 1
    for r in rows[:4]:
        entry = Hash.objects.get(algorithm="md5", value=bytes.fromhex(r["md5"])).entry
        assert {(h.algorithm, bytes(h.value)) for h in entry.hashes.all()} == {
            ("md5", bytes.fromhex(r["md5"])),
            ("sha1", bytes.fromhex(r["sha1"])),
        }
        assert (entry.category, entry.age_group, entry.source) == ("A", "7-10", "synthetic")
    last = Hash.objects.get(algorithm="photodna", value=pdna).entry
    assert (last.category, last.baseline, last.industry_class, last.content_type) == (
        "C",
        True,
        "B2",
        "video",
    )
    assert last.notes == "synthetic internal note"
    change = Change.objects.get(entry=last)
    assert "notes" not in change.after, "internal notes never enter the change log"
    assert ImportBatch.objects.get(pk=batch["id"]).status == ImportStatus.APPROVED
    assert StagedRow.objects.count() == 0
    assert verify_chain().ok


def test_rejected_import_creates_nothing(imported, api, reviewer):
    batch = imported(to_csv([row() for _ in range(3)]))

    response = api(reviewer).post(
        f"/api/v1/proposals/{batch['proposal']}/reject/", {"reason": "wrong export"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert (Entry.objects.count(), Hash.objects.count(), Change.objects.count()) == (0, 0, 0)
    assert ImportBatch.objects.get(pk=batch["id"]).status == ImportStatus.REJECTED
    assert StagedRow.objects.count() == 0


def test_uploader_cannot_approve_their_own_import(imported, api, reviewer, reviewer2):
    batch = imported(to_csv([row() for _ in range(3)]), user=reviewer)

    own = approve(api, reviewer, batch["proposal"])

    assert own.status_code == 403
    assert own.json()["error"]["code"] == "four_eyes_violation"
    assert Entry.objects.count() == 0
    assert ImportBatch.objects.get(pk=batch["id"]).status == ImportStatus.STAGED
    assert approve(api, reviewer2, batch["proposal"]).status_code == 202
    assert Entry.objects.count() == 3


def test_analyst_without_review_role_cannot_approve_an_import(imported, api, analyst2):
    batch = imported(to_csv([row()]))

    response = approve(api, analyst2, batch["proposal"])

    assert response.status_code == 403
    assert Entry.objects.count() == 0


# --- Bad rows ---------------------------------------------------------------------------------


def test_one_bad_row_among_a_thousand_refuses_the_file_and_reports_only_that_line(
    imported, errors_of, monkeypatch
):
    # Small chunks, so rows before the bad one have been staged by the time it is read: the
    # test then also proves that a refused file leaves nothing staged behind.
    monkeypatch.setattr(imports.stage, "CHUNK_ROWS", 100)
    rows = [row() for _ in range(1000)]
    rows[899] = row(md5=synthetic("md5")[:31])

    batch = imported(to_csv(rows))

    assert errors_of(batch["id"]) == [
        (901, "md5: expected 32 hexadecimal characters or base64 of 16 bytes (22 or 24 "
              "characters); got 31 characters")
    ]  # fmt: skip
    assert (batch["rows_processed"], batch["error_count"]) == (1000, 1)
    assert_refused_and_nothing_staged(batch)
    assert Entry.objects.count() == 0


def _bad_photodna() -> str:
    values = list(secrets.token_bytes(144))
    values[6] = 300
    return ",".join(map(str, values))


def _with_inner_space(value: str) -> str:
    return value[:10] + " " + value[11:]


def _with_char(value: str, position: int, char: str) -> str:
    return value[: position - 1] + char + value[position:]


# (fields of the bad row, fragment of the message). The bad row is line 4 of the file.
BAD_CSV_ROWS = {
    "md5-too-short": (lambda: {"md5": synthetic("md5")[:30]}, "md5: expected 32 hexadecimal"),
    "sha1-non-hex": (
        lambda: {"sha1": _with_char(synthetic("sha1"), 6, "g")},
        "sha1: expected 40 hexadecimal characters or base64 of 20 bytes (27 or 28 characters); "
        "got 40 characters with a non-hex character at position 6",
    ),
    "sha256-inner-space": (
        lambda: {"md5": "", "sha1": "", "sha256": _with_inner_space(synthetic("sha256"))},
        "sha256: expected 64 hexadecimal",
    ),
    "pdq-0x-prefix": (
        lambda: {"md5": "", "sha1": "", "pdq": "0x" + synthetic("pdq")},
        "pdq: expected 64 hexadecimal characters or base64 of 32 bytes (43 or 44 characters); "
        "got 66 characters (remove the 0x prefix)",
    ),
    "photodna-value-out-of-range": (
        lambda: {"md5": "", "sha1": "", "photodna": _bad_photodna()},
        "photodna: expected 288 hexadecimal characters, base64 of 144 bytes (192 characters), or "
        "144 comma-separated decimal values 0-255; value 7 is not a byte 0-255",
    ),
    "unknown-category": (lambda: {"category": "D"}, "category must be one of A, B, C; got 'D'."),
    "unknown-age-group": (
        lambda: {"age_group": "18-20"},
        "age_group must be one of 0-2, 11-13, 14-15, 16-17, 3-6, 7-10, unknown; got '18-20'.",
    ),
    "bad-baseline": (lambda: {"baseline": "maybe"}, "baseline must be true, false or empty"),
    "bad-industry-class": (lambda: {"industry_class": "C1"}, "industry_class must be one of"),
    "bad-content-type": (lambda: {"content_type": "audio"}, "content_type must be one of"),
    "no-hash": (lambda: {"md5": "", "sha1": ""}, "no hash: give at least one of md5, sha1"),
    "source-too-long": (
        lambda: {"source": "s" * 201},
        "source is too long (201 characters; at most 200)",
    ),
    # PostgreSQL text cannot hold NUL: as in JSON Lines, the row is refused, not the batch.
    "nul-in-notes": (lambda: {"notes": "before\x00after"}, "notes must not contain NUL"),
}


@pytest.mark.parametrize("case", list(BAD_CSV_ROWS), ids=list(BAD_CSV_ROWS))
def test_bad_csv_row_is_reported_on_its_line_with_its_reason(case, imported, errors_of):
    fields, reason = BAD_CSV_ROWS[case]
    rows = [row() for _ in range(5)]
    rows[2] = row(**fields())

    batch = imported(to_csv(rows))

    [(line, message)] = errors_of(batch["id"])
    assert line == 4
    assert reason in message
    assert_refused_and_nothing_staged(batch)


def test_row_with_wrong_field_count_is_reported_on_its_line(imported, errors_of):
    content = to_csv([row() for _ in range(5)], columns=["category", "age_group", "md5"])
    content = replace_line(content, 5, f"A,7-10,{synthetic('md5')},extra".encode())

    batch = imported(content)

    assert errors_of(batch["id"]) == [(5, "expected 3 fields as in the header, found 4")]
    assert_refused_and_nothing_staged(batch)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_non_utf8_bytes_are_reported_on_their_line(fmt, imported, errors_of):
    if fmt == "csv":
        content = to_csv([row(notes="PLACEHOLDER") if i == 3 else row() for i in range(5)])
    else:
        content = to_jsonl([jrow(notes="PLACEHOLDER") if i == 3 else jrow() for i in range(5)])
    content = content.replace(b"PLACEHOLDER", b"caf\xe9")  # Latin-1, not UTF-8

    batch = imported(content, f"list.{fmt}")

    [(line, message)] = errors_of(batch["id"])
    assert line == (5 if fmt == "csv" else 4)
    assert message.startswith("not valid UTF-8 (invalid byte at position ")
    assert "save the file as UTF-8" in message
    assert_refused_and_nothing_staged(batch)


# (header columns, fragment of the message reported on line 1)
BAD_HEADERS = {
    "unknown-column": ([*ALL_COLUMNS, "colour"], "header: unknown column(s) 'colour'"),
    "no-hash-column": (["category", "age_group", "source"], "no hash column (one of md5, sha1"),
    "no-category-column": (["age_group", "md5"], "missing column(s) category"),
    "column-named-twice": (["category", "age_group", "md5", "md5"], "a column is named twice"),
}


@pytest.mark.parametrize("case", list(BAD_HEADERS), ids=list(BAD_HEADERS))
def test_bad_header_is_reported_on_line_one(case, imported, errors_of):
    columns, reason = BAD_HEADERS[case]

    batch = imported(to_csv([row() for _ in range(3)], columns=columns))

    [(line, message)] = errors_of(batch["id"])
    assert line == 1
    assert reason in message
    assert "Known columns: activity, age_group, baseline, category" in message
    assert_refused_and_nothing_staged(batch)


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"category,age_group,md5\n", "list.csv"),
        (b"category,age_group,md5\r\n\r\n\n", "list.csv"),
        (b"\n\n  \n", "list.jsonl"),
    ],
    ids=["csv-header-only", "csv-header-and-blank-lines", "jsonl-blank-lines"],
)
def test_file_without_data_rows_is_refused(content, name, imported, errors_of):
    batch = imported(content, name)

    assert errors_of(batch["id"]) == [(1, "the file has no data rows")]
    assert_refused_and_nothing_staged(batch)


# (the bad record, fragment of the message). The bad record is line 3 of the file.
BAD_JSONL_LINES = {
    "syntax-error": ('{"category": "A", "age_group": ', "not valid JSON: Expecting value"),
    "array": ('["A", "7-10"]', "expected a JSON object"),
    "number": ("42", "expected a JSON object"),
    "unknown-field": (lambda: jrow(colour="red"), "unknown field(s) 'colour'"),
    "hashes-not-object": (lambda: jrow(hashes="abc"), "hashes must be an object"),
    "hashes-missing": (lambda: {"category": "A", "age_group": "0-2"}, "hashes must be an object"),
    "hashes-empty": (lambda: jrow(hashes={}), "no hash: give at least one of"),
    "hash-not-string": (lambda: jrow(hashes={"md5": 5}), "md5: expected a string"),
    "unknown-algorithm": (
        lambda: jrow(hashes={"sha512": synthetic("sha256")}),
        "unknown hash algorithm",
    ),
    "bad-hash-in-list": (
        lambda: jrow(hashes=[{"algorithm": "sha256", "value": synthetic("sha256")[:-2]}]),
        "sha256: expected 64 hexadecimal characters",
    ),
    "hash-list-item-shape": (
        lambda: jrow(hashes=[{"algorithm": "md5"}]),
        'each item must be {"algorithm": ...',
    ),
    "algorithm-twice-in-list": (
        lambda: jrow(
            hashes=[
                {"algorithm": "md5", "value": synthetic("md5")},
                {"algorithm": "MD5", "value": synthetic("md5")},
            ]
        ),
        "hashes: md5 given twice",
    ),
    "name-twice-in-object": (
        lambda: (
            '{"category": "A", "age_group": "0-2", "hashes": '
            f'{{"md5": "{synthetic("md5")}", "md5": "{synthetic("md5")}"}}}}'
        ),
        "not valid JSON: the name 'md5' appears twice in one object",
    ),
    "unknown-age-group": (lambda: jrow(age_group="18+"), "age_group must be one of"),
    "notes-not-text": (lambda: jrow(notes=["x"]), "notes must be a string"),
    # PostgreSQL text cannot hold NUL: without a row error the whole COPY batch would fail.
    "nul-in-notes": (lambda: jrow(notes="before\u0000after"), "notes must not contain NUL"),
    "nul-in-source": (lambda: jrow(source="\u0000"), "source must not contain NUL"),
    # Nested deeper than the decoder's recursion limit (and still under the line limit).
    "nested-too-deeply": (lambda: "[" * 20_000 + "]" * 20_000, "JSON nested too deeply"),
    "nested-too-deeply-in-a-field": (
        lambda: (
            '{"category": "A", "age_group": "0-2", "notes": ' + "[" * 20_000 + "]" * 20_000 + "}"
        ),
        "JSON nested too deeply",
    ),
}


@pytest.mark.parametrize("case", list(BAD_JSONL_LINES), ids=list(BAD_JSONL_LINES))
def test_bad_jsonl_line_is_reported_on_its_line_with_its_reason(case, imported, errors_of):
    bad, reason = BAD_JSONL_LINES[case]
    records: list[Any] = [jrow() for _ in range(5)]
    content = to_jsonl(records)
    line = bad if isinstance(bad, str) else bad()
    line = line if isinstance(line, str) else json.dumps(line)
    content = replace_line(content, 3, line.encode())

    batch = imported(content, "list.jsonl")

    [(reported, message)] = errors_of(batch["id"])
    assert reported == 3
    assert reason in message
    assert_refused_and_nothing_staged(batch)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_line_longer_than_the_limit_is_a_line_error_and_later_lines_keep_their_numbers(
    fmt, imported, errors_of, settings
):
    settings.HASHSYNC_IMPORT_MAX_LINE_BYTES = 4096
    long_notes = "n" * 10_000
    if fmt == "csv":
        content = to_csv([row(), row(notes=long_notes), row(category="Z")])  # lines 2, 3, 4
        bad_line = 4
    else:
        content = to_jsonl([jrow(), jrow(notes=long_notes), jrow(category="Z")])
        bad_line = 3

    batch = imported(content, f"list.{fmt}")

    [(long_at, long_message), (bad_at, _)] = errors_of(batch["id"])
    assert (long_at, bad_at) == (bad_line - 1, bad_line)
    assert long_message.startswith("the line is longer than the limit of 4096 bytes")
    assert_refused_and_nothing_staged(batch)


class _ReadRecorder(io.BytesIO):
    """A file that remembers the largest piece it handed out."""

    largest = 0

    def readline(self, size: int | None = -1) -> bytes:
        piece = super().readline(size)
        self.largest = max(self.largest, len(piece))
        return piece


def test_an_overlong_line_is_read_past_in_pieces_not_whole():
    handle = _ReadRecorder(b"a,b\n" + b"x" * 5_000_000 + b"\nc,d\n")
    progress = parse.Progress()

    lines = list(parse.decoded_lines(handle, progress, 65536))

    assert lines == ["a,b\n", "\n", "c,d\n"]
    assert handle.largest <= 65537
    assert progress.errors[0][0] == 2
    assert progress.bytes_read == len(handle.getvalue())


def test_blank_lines_and_multiline_quoted_fields_do_not_shift_line_numbers(imported, errors_of):
    header = len(to_csv([]))
    content = to_csv([row(notes="first line\nsecond line"), row()])  # the first row spans 2-3
    content += b"\n" + to_csv([row(category="Z")])[header:]

    batch = imported(content)

    # header 1, multi-line row 2-3, row 4, blank 5, bad row 6
    assert errors_of(batch["id"]) == [(6, "category must be one of A, B, C; got 'Z'.")]
    assert_refused_and_nothing_staged(batch)


def test_more_rows_than_the_limit_is_reported_on_the_first_row_over_it(
    imported, errors_of, settings
):
    settings.HASHSYNC_IMPORT_MAX_ROWS = 3

    batch = imported(to_csv([row() for _ in range(5)]))

    # Rows 1-3 are lines 2-4; the fourth row, over the limit, is line 5.
    assert errors_of(batch["id"]) == [(5, "the file has more than 3 rows; split it")]
    assert_refused_and_nothing_staged(batch)


# --- Duplicates -------------------------------------------------------------------------------


def test_hash_repeated_in_the_file_is_reported_on_the_later_line_naming_the_earlier(
    imported, errors_of
):
    rows = [row() for _ in range(6)]
    rows[4]["md5"] = rows[1]["md5"].upper()  # same value as line 3, different spelling
    rows[5] = row(md5="", sha1=b64(rows[0]["sha1"]))  # same as line 2, in base64

    batch = imported(to_csv(rows))

    assert errors_of(batch["id"]) == [
        (6, "md5 hash repeats the one on line 3"),
        (7, "sha1 hash repeats the one on line 2"),
    ]
    assert_refused_and_nothing_staged(batch)


def test_hash_already_on_the_list_is_reported_with_its_entry(
    imported, errors_of, analyst2, reviewer
):
    existing = synthetic("sha256")
    entry = approved_entry(analyst2, reviewer, hashes=[{"algorithm": "sha256", "value": existing}])
    rows = [row() for _ in range(5)]
    rows[3]["sha256"] = existing.upper()

    batch = imported(to_csv(rows))

    assert errors_of(batch["id"]) == [(5, f"sha256 hash is already on the list (entry {entry.pk})")]
    assert_refused_and_nothing_staged(batch)
    assert Entry.objects.count() == 1


# --- Upload checks ----------------------------------------------------------------------------


def test_empty_upload_is_refused_with_empty_file(upload):
    response = upload(b"")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "empty_file"
    assert ImportBatch.objects.count() == 0


def test_upload_over_the_size_limit_is_refused_with_413(upload, settings):
    content = to_csv([row()])
    settings.HASHSYNC_IMPORT_MAX_BYTES = len(content) - 1

    response = upload(content)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    assert ImportBatch.objects.count() == 0
    settings.HASHSYNC_IMPORT_MAX_BYTES = len(content)
    assert upload(content).status_code == 202, "a file of exactly the limit is accepted"


def test_unknown_extension_without_format_is_refused_but_accepted_with_format(upload, imported):
    content = to_csv([row()])

    response = upload(content, "export.txt")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_format"
    assert ImportBatch.objects.count() == 0
    assert imported(content, "export.txt", format="csv")["status"] == ImportStatus.STAGED


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_utf8_byte_order_mark_is_accepted(fmt, imported):
    body = to_csv([row(), row()]) if fmt == "csv" else to_jsonl([jrow(), jrow()])

    batch = imported(codecs.BOM_UTF8 + body, f"list.{fmt}")

    assert batch["status"] == ImportStatus.STAGED, batch
    assert batch["rows_valid"] == 2
    assert batch["bytes_processed"] == len(body) + 3


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_crlf_line_endings_are_accepted_and_lines_counted_alike(fmt, imported, errors_of):
    def build(rows: int, bad_at: int | None = None) -> bytes:
        if fmt == "csv":
            return to_csv(
                [row(category="X") if i == bad_at else row() for i in range(rows)], newline="\r\n"
            )
        return to_jsonl(
            [jrow(category="X") if i == bad_at else jrow() for i in range(rows)], newline="\r\n"
        )

    good = imported(build(3), f"good.{fmt}")
    bad = imported(build(4, bad_at=2), f"bad.{fmt}")

    assert good["status"] == ImportStatus.STAGED, good
    staged = StagedRow.objects.get(batch_id=good["id"], line=2 if fmt == "csv" else 1)
    assert not staged.source.endswith("\r") and staged.source == "synthetic"
    [(line, _)] = errors_of(bad["id"])
    assert line == (4 if fmt == "csv" else 3)


# --- Error list, progress, privacy ------------------------------------------------------------


def test_error_list_paginates_in_line_order(imported, api, analyst):
    rows = [row(category="Q") if i % 2 else row() for i in range(14)]  # 7 bad rows
    batch = imported(to_csv(rows))
    url = f"{URL}{batch['id']}/errors/"

    pages, after = [], 0
    while True:
        page = api(analyst).get(url, {"after": after, "limit": 3}).json()
        pages.append([e["line"] for e in page["results"]])
        if page["next_after"] is None:
            break
        after = page["next_after"]

    assert pages == [[3, 5, 7], [9, 11, 13], [15]]
    assert batch["error_count"] == 7
    too_many = api(analyst).get(url, {"limit": 1001})
    assert too_many.status_code == 400


def test_progress_fields_are_filled_when_validation_ends(imported):
    content = to_csv([row() for _ in range(20)])

    batch = imported(content)

    assert batch["rows_processed"] == 20
    assert batch["bytes_processed"] == len(content) == batch["size"]
    assert batch["percent"] == 100.0
    assert batch["started_at"] and batch["finished_at"]


def test_progress_is_visible_through_the_api_while_validation_runs(
    upload, api, analyst, monkeypatch
):
    monkeypatch.setattr(imports.stage, "CHUNK_ROWS", 10)  # a progress report every 50 rows
    seen: list[dict[str, Any]] = []
    report = imports.stage._report

    def observed_report(batch: ImportBatch, progress: Any) -> None:
        report(batch, progress)
        seen.append(api(analyst).get(f"{URL}{batch.pk}/").json())

    monkeypatch.setattr(imports.stage, "_report", observed_report)
    content = to_csv([row() for _ in range(200)])

    upload(content)

    running = [s for s in seen if s["status"] == ImportStatus.VALIDATING]
    assert [s["rows_processed"] for s in running][:3] == [50, 100, 150]
    assert 0 < running[0]["percent"] < running[1]["percent"] < 100
    assert 0 < running[0]["bytes_processed"] < running[1]["bytes_processed"] < len(content)


def _windows(text: str, width: int = 12) -> set[str]:
    text = text.lower()
    return {text[i : i + width] for i in range(len(text) - width + 1)}


def test_error_messages_never_contain_hash_values(
    imported, errors_of, api, analyst, analyst2, reviewer
):
    on_list = synthetic("md5")
    approved_entry(analyst2, reviewer, hashes=[{"algorithm": "md5", "value": on_list}])
    rows = [row() for _ in range(9)]
    secrets_used = [
        rows[1]["md5"],  # line 3: truncated below
        synthetic("sha256"),  # line 4: one character made non-hex below
        rows[0]["md5"],  # line 5 repeats it
        on_list,
        rows[7]["md5"],  # line 9: given in the category column (columns swapped)
        synthetic("sha1"),
    ]
    rows[1]["md5"] = secrets_used[0][:-1]
    rows[2]["sha256"] = _with_char(secrets_used[1], 40, "z")
    rows[3]["md5"] = secrets_used[2].upper()
    rows[4]["md5"] = on_list
    rows[7]["category"], rows[7]["md5"] = rows[7]["md5"], "A"
    rows[8]["md5"] = secrets_used[5]  # a sha1 in the md5 column: wrong length

    batch = imported(to_csv(rows))
    found = errors_of(batch["id"])

    assert [line for line, _ in found] == [3, 4, 5, 6, 9, 10]
    text = " ".join(message for _, message in found)
    text += json.dumps(api(analyst).get(f"{URL}{batch['id']}/").json())
    for value in secrets_used:
        leaked = _windows(value) & _windows(text)
        assert not leaked, f"a message contains part of a hash value: {sorted(leaked)[:1]}"


def test_file_without_header_is_refused_without_echoing_its_first_row(imported, errors_of):
    first = [row() for _ in range(2)]
    content = b"".join(
        f"{r['category']},{r['age_group']},{r['md5']},{r['sha1']}\n".encode() for r in first
    )

    batch = imported(content)

    [(line, message)] = errors_of(batch["id"])
    assert line == 1
    assert message.startswith("header: unknown column(s)")
    for value in (first[0]["md5"], first[0]["sha1"]):
        assert not _windows(value) & _windows(message), "the header error echoes a hash"
    assert_refused_and_nothing_staged(batch)


# --- Idempotency and failures -----------------------------------------------------------------


@pytest.mark.parametrize("outcome", [ImportStatus.STAGED, ImportStatus.INVALID])
def test_validating_a_finished_batch_again_is_a_no_op(outcome, imported):
    rows = [row() for _ in range(3)]
    if outcome == ImportStatus.INVALID:
        rows[1]["category"] = "Z"
    batch = imported(to_csv(rows))
    assert batch["status"] == outcome
    before = (
        StagedRow.objects.count(),
        ImportRowError.objects.count(),
        Proposal.objects.count(),
        AuditEvent.objects.count(),
    )

    assert imports.import_validate(batch_id=batch["id"]) is None

    after = (
        StagedRow.objects.count(),
        ImportRowError.objects.count(),
        Proposal.objects.count(),
        AuditEvent.objects.count(),
    )
    assert after == before
    assert ImportBatch.objects.get(pk=batch["id"]).status == outcome


def test_interrupted_validation_restarts_from_scratch(
    api, analyst, django_capture_on_commit_callbacks
):
    content = to_csv([row() for _ in range(4)])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api(analyst).post(
            URL, {"file": SimpleUploadedFile("list.csv", content)}, format="multipart"
        )
    assert response.status_code == 202 and len(callbacks) == 1
    batch = ImportBatch.objects.get(pk=response.json()["id"])
    # What a worker killed half-way through leaves behind.
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.VALIDATING)
    StagedRow.objects.create(
        batch=batch, line=2, category="A", age_group="0-2", content_type="image", hashes="[]"
    )
    ImportRowError.objects.create(batch=batch, line=3, message="left over")

    result = imports.import_validate(batch_id=batch.pk)

    assert result is not None and result.status == ImportStatus.STAGED
    staged = StagedRow.objects.filter(batch=batch).order_by("line")
    assert list(staged.values_list("line", "age_group")) == [
        (2, "7-10"),
        (3, "7-10"),
        (4, "7-10"),
        (5, "7-10"),
    ]
    assert ImportRowError.objects.filter(batch=batch).count() == 0


def test_unexpected_error_during_validation_marks_batch_failed_and_stages_nothing(
    upload, monkeypatch
):
    def broken_flush(self: Any) -> None:
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(imports.stage._Stager, "flush", broken_flush)

    with pytest.raises(RuntimeError, match="synthetic failure"):
        upload(to_csv([row()]))

    batch = ImportBatch.objects.get()
    assert batch.status == ImportStatus.FAILED
    assert "Nothing was staged" in batch.failure_message
    assert StagedRow.objects.count() == 0
    assert Proposal.objects.count() == 0


def test_hash_added_to_the_list_after_validation_fails_the_approved_import_and_applies_nothing(
    imported, api, analyst2, reviewer, reviewer2, monkeypatch
):
    # Chunks of two rows: the clash is in the third chunk, after two chunks were applied.
    monkeypatch.setattr(imports.apply, "CHUNK_ROWS", 2)
    rows = [row() for _ in range(6)]
    batch = imported(to_csv(rows))
    assert batch["status"] == ImportStatus.STAGED
    interloper = approved_entry(
        analyst2, reviewer2, hashes=[{"algorithm": "sha1", "value": rows[4]["sha1"]}]
    )

    response = approve(api, reviewer, batch["proposal"])

    assert response.status_code == 202, response.json()
    detail = api(reviewer).get(f"{URL}{batch['id']}/").json()
    assert detail["status"] == ImportStatus.FAILED
    assert detail["failure_message"].startswith(
        "Approved, but nothing was applied: Line 6: its sha1 hash was added to the list"
    )
    assert detail["rows_applied"] == 0
    assert list(Entry.objects.values_list("pk", flat=True)) == [interloper.pk]
    assert Hash.objects.count() == 1 and Change.objects.count() == 1
    proposal = api(reviewer).get(f"/api/v1/proposals/{batch['proposal']}/").json()
    assert (proposal["status"], proposal["import_status"]) == ("failed", "failed")
    event = AuditEvent.objects.get(action="import.apply_failed")
    assert event.after == {
        "proposal": batch["proposal"],
        "code": "hash_exists",
        "line": 6,
        "entry_id": interloper.pk,
    }
    assert StagedRow.objects.count() == 0
    assert verify_chain().ok


# --- Roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["auditor", "member_admin", "outsider"])
def test_roles_without_propose_permission_cannot_upload(role, request, upload):
    user = request.getfixturevalue(role)

    response = upload(to_csv([row()]), user=user)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert ImportBatch.objects.count() == 0


def test_anonymous_cannot_upload(db, api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(None).post(
            URL, {"file": SimpleUploadedFile("list.csv", to_csv([row()]))}, format="multipart"
        )

    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"
    assert ImportBatch.objects.count() == 0


def test_auditor_can_read_import_status_and_errors(imported, api, auditor):
    batch = imported(to_csv([row(category="Z")]))

    detail = api(auditor).get(f"{URL}{batch['id']}/")
    errors = api(auditor).get(f"{URL}{batch['id']}/errors/")

    assert detail.status_code == 200 and detail.json()["status"] == ImportStatus.INVALID
    assert errors.status_code == 200 and [e["line"] for e in errors.json()["results"]] == [2]


@pytest.mark.parametrize("role", ["member_admin", "outsider"])
def test_roles_without_view_permission_cannot_read_imports(role, request, imported, api):
    batch = imported(to_csv([row()]))
    user = request.getfixturevalue(role)

    assert api(user).get(f"{URL}{batch['id']}/").status_code == 403
    assert api(user).get(f"{URL}{batch['id']}/errors/").status_code == 403


def test_unknown_import_is_not_found(api, analyst):
    assert api(analyst).get(f"{URL}999999/").json()["error"]["code"] == "not_found"
    assert api(analyst).get(f"{URL}999999/errors/").status_code == 404
