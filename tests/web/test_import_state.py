"""What an import's page says in each state (web/views/import_state.py): a failed or invalid
file says what to do next, the error report pages on the server, and the steps show where the
batch stands. Synthetic hashes only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hashlist.models import ImportBatch, ImportStatus
from tests.factories import invalid_import_batch
from tests.web import import_helpers
from tests.web.conftest import signed_in
from tests.web.import_helpers import HEADER, checked_batch, csv_rows
from web.views.import_state import steps_of

pytestmark = pytest.mark.django_db

# The shared fixtures of the import page tests.
eager_tasks = import_helpers.eager_tasks


@pytest.fixture
def page(client: Client, analyst: Any) -> Any:
    """``page(batch, **query)``: the import's page as the analyst reads it."""
    signed_in(client, analyst)

    def read(batch: ImportBatch, **query: Any) -> Any:
        return client.get(reverse("web-import", args=[batch.pk]), query)

    return read


def _text(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_a_file_with_some_bad_rows_lists_them_by_line_field_and_reason(page, analyst):
    good, _ = csv_rows(2)
    batch = checked_batch(analyst, good + "A,9-99,,,,\n")

    html = _text(page(batch))

    assert "1 error in 3 rows: nothing was staged" in html
    assert '<td class="num">4</td><td><code>age_group</code></td>' in html
    assert "age_group must be one of" in html
    assert reverse("web-import-errors-csv", args=[batch.pk]) in html
    assert "Upload a corrected file" in html


def test_the_error_report_pages_on_the_server(page, analyst, monkeypatch):
    monkeypatch.setattr("web.views.import_state.ERRORS_PAGE", 2)
    batch = checked_batch(analyst, HEADER + "D,7-10,,,,\n" * 3)
    errors = list(batch.errors.order_by("pk"))

    first = _text(page(batch))
    second = _text(page(batch, errors_after=errors[1].pk))

    assert '<td class="num">3</td>' in first and '<td class="num">4</td>' not in first
    assert f"?errors_after={errors[1].pk}#errors" in first
    assert '<td class="num">4</td>' in second and '<td class="num">2</td>' not in second
    assert "First errors" in second and "errors_after=" not in second


@pytest.mark.parametrize("after", ["x", "-3", "1e3"])
def test_a_malformed_error_page_is_a_400_that_shows_the_first_errors(page, analyst, after):
    batch = invalid_import_batch(analyst)

    response = page(batch, errors_after=after)

    assert response.status_code == 400
    assert b"That page of errors does not exist" in response.content
    assert b"category is required" in response.content


def test_a_file_where_every_row_is_bad_suggests_the_other_format(page, analyst):
    body, _ = csv_rows(3)
    batch = checked_batch(analyst, body, name="export.jsonl")

    html = _text(page(batch))

    assert batch.status == ImportStatus.INVALID
    assert "Every row has an error" in html
    assert "if the file is CSV, upload it again choosing CSV as its format" in html


def test_a_json_lines_file_read_as_csv_explains_the_header(page, analyst):
    batch = checked_batch(analyst, '{"category": "A"}\n{"category": "B"}\n', name="export.csv")

    html = _text(page(batch))

    assert "The first line is not a header this import knows" in html
    assert "upload it again choosing JSON Lines" in html


@pytest.mark.parametrize("body", [HEADER, HEADER + "\n\n"])
def test_a_file_without_data_rows_says_so(page, analyst, body):
    batch = checked_batch(analyst, body)

    html = _text(page(batch))

    assert "The file has no data rows" in html
    assert "holds only a header" in html


def test_a_file_over_the_row_limit_says_to_split_it(page, analyst, settings):
    settings.HASHSYNC_IMPORT_MAX_ROWS = 2
    body, _ = csv_rows(3)
    batch = checked_batch(analyst, body)

    html = _text(page(batch))

    assert "The file has more rows than one import takes" in html
    assert "at most 2 rows. Split the file" in html


def test_checking_that_stopped_on_a_server_fault_says_so_and_how_to_go_on(page, analyst):
    batch = invalid_import_batch(analyst)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportStatus.FAILED,
        error_count=0,
        failure_message="Validation stopped on an unexpected error; it was logged.",
    )
    batch.refresh_from_db()

    html = _text(page(batch))

    assert "Checking the file stopped on a server fault" in html
    assert "Validation stopped on an unexpected error; it was logged." in html
    assert "✗</span>\n      Checking failed" in html


def test_an_upload_no_worker_took_says_it_is_sent_again(page, analyst):
    batch = invalid_import_batch(analyst)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportStatus.UPLOADED,
        error_count=0,
        created_at=timezone.now() - dt.timedelta(minutes=20),
    )
    batch.refresh_from_db()

    html = _text(page(batch))

    assert "Waiting for a worker to start checking the file." in html
    assert "If it stays here, tell an operator." in html
    assert '<progress max="100" aria-label' in html  # indeterminate: no value


def _batch(status: str, proposal: bool = False) -> ImportBatch:
    batch = ImportBatch(status=status)
    if proposal:
        batch.proposal_id = 1
    return batch


@pytest.mark.parametrize(
    ("status", "proposal", "states"),
    [
        ("uploaded", False, ["done", "current", "todo", "todo"]),
        ("validating", False, ["done", "current", "todo", "todo"]),
        ("invalid", False, ["done", "failed", "todo", "todo"]),
        ("failed", False, ["done", "failed", "todo", "todo"]),
        ("staged", True, ["done", "done", "current", "todo"]),
        ("rejected", True, ["done", "done", "failed", "todo"]),
        ("applying", True, ["done", "done", "done", "current"]),
        ("failed", True, ["done", "done", "done", "failed"]),
        ("approved", True, ["done", "done", "done", "done"]),
    ],
)
def test_steps_show_where_each_state_stands(status, proposal, states):
    steps = steps_of(_batch(status, proposal), "Rejected")

    assert [s["state"] for s in steps] == states
