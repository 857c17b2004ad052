"""The import pages (web/views/imports.py): who may open them, uploading, the error report as
CSV, the progress fragment, and deciding a staged import through the proposal services.

What each state of a batch says is tested in test_import_state.py. Synthetic hashes only."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from hashlist.models import ImportBatch, ImportRowError, ImportStatus
from tests.factories import approved_entry, invalid_import_batch
from tests.web import import_helpers
from tests.web.conftest import signed_in
from tests.web.import_helpers import (
    HEADER,
    checked_batch,
    csv_rows,
    field_error,
    title_of,
    upload,
    urls_in,
)
from web.views.imports import csv_cell

pytestmark = pytest.mark.django_db

# The shared fixtures of the import page tests.
as_role = import_helpers.as_role
eager_tasks = import_helpers.eager_tasks
staged = import_helpers.staged

ROLES = ["analyst", "reviewer", "member_admin", "auditor", "outsider", None]
MAY_VIEW = {"analyst", "reviewer", "auditor"}


# --- Who may open what -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", ["web-import", "web-import-progress", "web-import-errors-csv"])
def test_import_pages_open_to_roles_that_may_view_imports(as_role, staged, role, name):
    url = reverse(name, args=[staged.pk])

    response = as_role(role).get(url)

    if role is None:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    elif role in MAY_VIEW:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert b"does not allow this page" in response.content


@pytest.mark.parametrize("role", ROLES)
def test_imports_list_shows_the_upload_form_only_to_those_who_may_propose(as_role, role):
    response = as_role(role).get(reverse("web-imports"))

    if role is None:
        assert response.status_code == 302
        return
    if role not in MAY_VIEW:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    has_form = reverse("web-import-upload").encode() in response.content
    assert has_form == (role in ("analyst", "reviewer"))


@pytest.mark.parametrize("role", ["member_admin", "auditor", "outsider"])
def test_roles_that_may_not_propose_cannot_upload(as_role, role):
    body, _ = csv_rows(1)

    response = as_role(role).post(
        reverse("web-import-upload"), {"file": upload("synthetic.csv", body)}
    )

    assert response.status_code == 403
    assert not ImportBatch.objects.exists()


def test_a_missing_import_is_a_404_page(as_role):
    response = as_role("analyst").get(reverse("web-import", args=[999999]))

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- The list ----------------------------------------------------------------------------------


def test_list_shows_batches_newest_first_and_pages_by_keyset(as_role, analyst, monkeypatch):
    monkeypatch.setattr("web.views.imports.LIST_PAGE", 2)
    batches = [invalid_import_batch(analyst) for _ in range(3)]
    client = as_role("reviewer")

    first = client.get(reverse("web-imports"))
    page = first.content.decode()
    older = client.get(reverse("web-imports"), {"before": batches[1].pk})

    assert first.status_code == 200
    assert page.index(f"Import {batches[2].pk}<") < page.index(f"Import {batches[1].pk}<")
    assert f"Import {batches[0].pk}<" not in page
    assert f"?before={batches[1].pk}" in page
    assert f"Import {batches[0].pk}<" in older.content.decode()
    assert "Older imports" not in older.content.decode()


def test_list_filters_by_status_and_by_uploader(as_role, analyst, reviewer, staged):
    mine = invalid_import_batch(reviewer)
    client = as_role("reviewer")

    invalid = client.get(reverse("web-imports"), {"status": "invalid"}).content.decode()
    by_me = client.get(reverse("web-imports"), {"mine": "on"}).content.decode()

    assert f"Import {mine.pk}<" in invalid and f"Import {staged.pk}<" not in invalid
    assert f"Import {mine.pk}<" in by_me and f"Import {staged.pk}<" not in by_me


def test_list_says_when_nothing_was_imported_yet_and_when_no_import_matches(as_role):
    client = as_role("analyst")

    empty = client.get(reverse("web-imports")).content.decode()
    filtered = client.get(reverse("web-imports"), {"status": "approved"}).content.decode()

    assert "No file has been imported yet" in empty
    assert "No import matches these filters" in filtered


@pytest.mark.parametrize("query", [{"before": "-1"}, {"before": "x"}, {"status": "bogus"}])
def test_list_refuses_bad_query_parameters_with_a_400_page(as_role, query):
    response = as_role("analyst").get(reverse("web-imports"), query)

    assert response.status_code == 400
    assert b"There is a problem" in response.content


def test_upload_form_states_the_size_and_row_limits(as_role, settings):
    settings.HASHSYNC_IMPORT_MAX_BYTES = 5 * 1024 * 1024
    settings.HASHSYNC_IMPORT_MAX_ROWS = 1000

    page = as_role("analyst").get(reverse("web-imports")).content.decode()

    assert "at most 5.0\xa0MB and 1,000 rows" in page


# --- Uploading ---------------------------------------------------------------------------------


def test_analyst_uploads_a_file_and_follows_it_to_its_staged_page(
    as_role, analyst, django_capture_on_commit_callbacks
):
    body, _ = csv_rows(2)
    client = as_role("analyst")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("web-import-upload"),
            {"file": upload("export.csv", body), "comment": "weekly export"},
        )
    batch = ImportBatch.objects.get()
    page = client.get(response["Location"]).content.decode()

    assert response.status_code == 302
    assert response["Location"] == reverse("web-import", args=[batch.pk])
    assert batch.status == ImportStatus.STAGED and batch.uploaded_by == analyst
    assert batch.comment == "weekly export"
    assert f"Import {batch.pk} uploaded" in page
    assert "All 2 rows are valid and staged" in page


def test_a_format_chosen_on_the_form_wins_over_the_file_name(
    as_role, django_capture_on_commit_callbacks
):
    body, _ = csv_rows(1)

    with django_capture_on_commit_callbacks(execute=True):
        response = as_role("analyst").post(
            reverse("web-import-upload"), {"file": upload("export.txt", body), "format": "csv"}
        )

    assert response.status_code == 302
    assert ImportBatch.objects.get().status == ImportStatus.STAGED


@pytest.mark.parametrize(
    ("name", "body", "form", "field", "says"),
    [
        ("empty.csv", b"", {}, "file", "The uploaded file is empty."),
        ("export.txt", b"x", {}, "format", "Choose CSV or JSON Lines here"),
        ("export.csv", b"x", {"format": "xml"}, "format", "Select a valid choice"),
    ],
)
def test_upload_refusals_show_next_to_the_field(as_role, name, body, form, field, says):
    response = as_role("analyst").post(
        reverse("web-import-upload"), {"file": upload(name, body), **form}
    )

    assert response.status_code == 400
    assert says in field_error(response.content.decode(), field)
    assert b"There is a problem" in response.content
    assert not ImportBatch.objects.exists()


def test_upload_without_a_file_asks_for_one(as_role):
    response = as_role("analyst").post(reverse("web-import-upload"), {"comment": "x"})

    assert response.status_code == 400
    assert "Choose the file to import." in field_error(response.content.decode(), "file")


def test_a_file_over_the_size_limit_is_refused_with_what_to_do(as_role, settings):
    settings.HASHSYNC_IMPORT_MAX_BYTES = 64
    body, _ = csv_rows(3)

    response = as_role("reviewer").post(
        reverse("web-import-upload"), {"file": upload("big.csv", body)}
    )

    error = field_error(response.content.decode(), "file")
    assert response.status_code == 400
    assert "the limit is 64 bytes" in error and "Split it" in error
    assert not ImportBatch.objects.exists()


# --- Progress ----------------------------------------------------------------------------------


def _running(batch: ImportBatch, **fields: Any) -> ImportBatch:
    ImportBatch.objects.filter(pk=batch.pk).update(**fields)
    batch.refresh_from_db()
    return batch


def test_a_batch_being_checked_polls_its_progress_and_offers_a_reload_link(as_role, staged):
    batch = _running(
        staged, status=ImportStatus.VALIDATING, bytes_processed=staged.size // 2, finished_at=None
    )

    page = as_role("analyst").get(reverse("web-import", args=[batch.pk])).content.decode()

    progress_url = reverse("web-import-progress", args=[batch.pk])
    assert f'hx-get="{progress_url}" hx-trigger="every 2s" hx-swap="outerHTML"' in page
    assert "Reload the page" in page
    assert '<progress max="100" value="' in page


def test_the_progress_fragment_stops_polling_and_reloads_the_page_once_done(as_role, staged):
    client = as_role("analyst")
    url = reverse("web-import-progress", args=[staged.pk])

    _running(staged, status=ImportStatus.VALIDATING, finished_at=None)
    running = client.get(url, HTTP_HX_REQUEST="true")
    _running(staged, status=ImportStatus.STAGED)
    done = client.get(url, HTTP_HX_REQUEST="true")
    plain = client.get(url)

    assert b'hx-trigger="every 2s"' in running.content
    assert "HX-Refresh" not in running
    assert b"hx-trigger" not in done.content
    assert done["HX-Refresh"] == "true"
    assert b"Show the result" in done.content
    assert "HX-Refresh" not in plain


def test_applying_shows_rows_applied_of_rows_valid(as_role, staged, reviewer):
    from django.utils import timezone

    _running(
        staged,
        status=ImportStatus.APPLYING,
        apply_started_at=timezone.now(),
        rows_applied=2,
        rows_valid=4,
    )

    page = as_role("reviewer").get(reverse("web-import-progress", args=[staged.pk]))

    assert b"2 of 4 rows applied." in page.content
    assert b'value="50.0"' in page.content


# --- The error report as CSV -------------------------------------------------------------------


def _csv_rows(response: Any) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_error_report_streams_every_error_with_a_header_row(as_role, analyst):
    bad = "".join(f"D,7-10,,,{'0' * 31},\n" for _ in range(3))
    batch = checked_batch(analyst, HEADER + bad)

    response = as_role("auditor").get(reverse("web-import-errors-csv", args=[batch.pk]))

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="import-{batch.pk}-errors.csv"' in response["Content-Disposition"]
    rows = _csv_rows(response)
    assert rows[0] == ["line", "field", "reason"]
    assert [r[0] for r in rows[1:]] == ["2", "3", "4"]
    assert rows[1][1] == "category"
    assert rows[1][2].startswith("category must be one of A, B, C")


def test_error_report_neutralises_cells_that_a_spreadsheet_would_run(as_role, analyst):
    batch = invalid_import_batch(analyst)
    for start in ("=", "+", "-", "@", "\t"):
        ImportRowError.objects.create(batch=batch, line=9, message=f"{start}HYPERLINK(1)")

    rows = _csv_rows(as_role("analyst").get(reverse("web-import-errors-csv", args=[batch.pk])))

    cells = [r[2] for r in rows[2:]]
    assert cells == ["'=HYPERLINK(1)", "'+HYPERLINK(1)", "'-HYPERLINK(1)", "'@HYPERLINK(1)",
                     "'\tHYPERLINK(1)"]  # fmt: skip


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cell_prefixes_formula_starts(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["category must be …", "", 12, "a=b"])
def test_csv_cell_leaves_other_values_alone(value):
    assert csv_cell(value) == value


def test_error_report_and_page_hold_no_hash_value(as_role, analyst, reviewer):
    existing = synthetic_on_list(analyst, reviewer)
    body, values = csv_rows(2)
    short = values[0][:-1]  # a hash with a character missing
    repeated = values[1]
    body += f"A,7-10,,,{short},\nA,7-10,,,{existing},\nA,7-10,,,{values[0]},{repeated}\n"
    batch = checked_batch(analyst, body)
    client = as_role("analyst")

    csv_url = reverse("web-import-errors-csv", args=[batch.pk])
    report = b"".join(client.get(csv_url).streaming_content)
    page = client.get(reverse("web-import", args=[batch.pk])).content

    assert batch.status == ImportStatus.INVALID and batch.error_count == 3
    for value in [*values, short, existing]:
        for text in (report, page):
            assert value[:16].encode() not in text


def synthetic_on_list(analyst: Any, reviewer: Any) -> str:
    from tests.conftest import synthetic

    value = synthetic("md5")
    approved_entry(analyst, reviewer, hashes=[{"algorithm": "md5", "value": value}])
    return value


# --- CSRF, URLs, titles and logs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["web-import-approve", "web-import-reject", "web-import-withdraw", "web-import-upload"]
)
def test_posts_without_a_csrf_token_are_refused(reviewer, staged, name):
    client = signed_in(Client(enforce_csrf_checks=True), reviewer)
    args = [] if name == "web-import-upload" else [staged.pk]

    response = client.post(reverse(name, args=args), {"reject-reason": "x"})

    assert response.status_code == 403
    staged.refresh_from_db()
    assert staged.status == ImportStatus.STAGED


def test_no_hash_value_in_a_url_a_title_or_a_log_line(
    as_role, analyst, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    body, values = csv_rows(3)
    with django_capture_on_commit_callbacks(execute=True):
        as_role("analyst").post(reverse("web-import-upload"), {"file": upload("a.csv", body)})
    batch = ImportBatch.objects.get()
    client = as_role("reviewer")
    pages = [
        client.get(reverse("web-imports")),
        client.get(reverse("web-import", args=[batch.pk])),
        client.get(reverse("web-import-progress", args=[batch.pk])),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("web-import-approve", args=[batch.pk]), {})
    pages.append(client.get(reverse("web-import", args=[batch.pk])))

    sample = pages[1].content.decode()
    assert any(value in sample for value in values)  # shown in the page body, as intended
    for response in pages:
        html = response.content.decode()
        for url in urls_in(html):
            assert not any(value in url for value in values)
        if "<title>" in html:
            assert not any(value in title_of(html) for value in values)
    assert not any(value in caplog.text for value in values)
