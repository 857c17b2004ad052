"""The import pages in a real browser, per role: uploading, the live progress card, an invalid
file's report and its CSV, the review of a staged file and its outcome. Each page is
photographed as ``import…--<role>.png``. Synthetic hashes only."""

from __future__ import annotations

import csv
import io
from typing import Any

from playwright.sync_api import expect

from hashlist.models import ImportBatch, ImportStatus
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER
from tests.browser.helpers import shoot
from tests.factories import staff_user
from tests.web.import_helpers import HEADER, checked_batch, csv_rows


def _csv_file(body: str, name: str = "weekly-export.csv") -> dict[str, Any]:
    return {"name": name, "mimeType": "text/csv", "buffer": body.encode()}


def test_the_imports_list_per_role(open_page, browser_problems):
    analyst = staff_user(ANALYST)
    checked_batch(analyst, csv_rows(3)[0])
    checked_batch(analyst, HEADER + "D,7-10,,,,\n", name="typos.csv")

    for role in (ANALYST, REVIEWER, AUDITOR):
        page = open_page(staff_user(role))
        page.goto("/imports/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Imports")
        expect(page.get_by_role("table").get_by_text("Waiting for review")).to_be_visible()
        uploads = page.get_by_role("button", name="Upload and check")
        expect(uploads).to_have_count(0 if role == AUDITOR else 1)
        shoot(page, "imports")

    page = open_page(staff_user(MEMBER_ADMIN))
    page.goto("/imports/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    browser_problems.expect(r"403\b.*/imports/")
    shoot(page, "imports")


def test_the_list_with_no_import_yet(open_page):
    page = open_page(staff_user(ANALYST))
    page.goto("/imports/")

    expect(page.get_by_text("No file has been imported yet.")).to_be_visible()
    shoot(page, "imports-empty")


def test_an_analyst_uploads_a_file_and_lands_on_its_staged_page(open_page, browser_problems):
    page = open_page(staff_user(ANALYST))
    page.goto("/imports/")

    page.get_by_role("button", name="Upload and check").click()
    expect(page.locator("#id_file-error")).to_contain_text("Choose the file to import.")
    browser_problems.expect(r"400\b.*/imports/upload/")
    shoot(page, "imports-upload-refused")

    page.set_input_files("#id_file", _csv_file(csv_rows(4)[0]))
    page.fill("#id_comment", "Weekly export, batch 48")
    page.get_by_role("button", name="Upload and check").click()

    expect(page.get_by_text("All 4 rows are valid and staged")).to_be_visible()
    expect(page.get_by_text("Waiting for a reviewer other than you")).to_be_visible()
    shoot(page, "import-staged")


def test_a_reviewer_reads_the_sample_and_approves(open_page):
    batch = checked_batch(staff_user(ANALYST), csv_rows(5)[0])
    page = open_page(staff_user(REVIEWER))
    page.goto(f"/imports/{batch.pk}/")

    expect(page.get_by_role("heading", name="A random sample of 5 rows")).to_be_visible()
    expect(page.get_by_role("button", name="Approve import")).to_be_visible()
    shoot(page, "import-review")

    page.fill("#id_approve-reason", "Counts and sample checked")
    page.get_by_role("button", name="Approve import").click()

    expect(page.get_by_role("heading", name="Applied", exact=True)).to_be_visible()
    expect(page.get_by_text("All 5 rows are entries on the list now")).to_be_visible()
    shoot(page, "import-applied")


def test_a_reviewer_who_uploaded_reads_why_they_cannot_decide(open_page):
    reviewer = staff_user(REVIEWER)
    batch = checked_batch(reviewer, csv_rows(2)[0])
    page = open_page(reviewer)
    page.goto(f"/imports/{batch.pk}/")

    expect(page.get_by_text("the four-eyes rule needs a second person")).to_be_visible()
    expect(page.get_by_role("button", name="Approve import")).to_have_count(0)
    shoot(page, "import-four-eyes")


def test_rejecting_without_a_reason_is_answered_next_to_the_field(open_page, browser_problems):
    batch = checked_batch(staff_user(ANALYST), csv_rows(2)[0])
    page = open_page(staff_user(REVIEWER))
    page.goto(f"/imports/{batch.pk}/")

    page.get_by_role("button", name="Reject import").click()

    expect(page.locator("#id_reject-reason-error")).to_contain_text("Say why you reject it")
    browser_problems.expect(rf"400\b.*/imports/{batch.pk}/reject/")
    shoot(page, "import-reject-refused")


def test_an_invalid_file_lists_its_errors_and_downloads_them_as_csv(open_page):
    good, _ = csv_rows(2)
    batch = checked_batch(staff_user(ANALYST), good + "D,7-10,,,,\nA,9-99,,,,\n")

    for role in (ANALYST, AUDITOR):
        page = open_page(staff_user(role))
        page.goto(f"/imports/{batch.pk}/")
        expect(page.get_by_text("2 errors in 4 rows: nothing was staged")).to_be_visible()
        shoot(page, "import-invalid")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download every error as CSV").click()
    text = download.value.path().read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["line", "field", "reason"]
    assert [r[:2] for r in rows[1:]] == [["4", "category"], ["5", "age_group"]]


def test_a_file_in_the_wrong_format_says_which_to_choose(open_page):
    batch = checked_batch(staff_user(ANALYST), csv_rows(3)[0], name="export.jsonl")
    page = open_page(staff_user(ANALYST))
    page.goto(f"/imports/{batch.pk}/")

    expect(page.get_by_role("heading", name="Every row has an error")).to_be_visible()
    expect(page.get_by_text("upload it again choosing CSV")).to_be_visible()
    shoot(page, "import-every-row-bad")


def test_the_progress_card_follows_the_check_and_shows_the_result_when_done(open_page):
    batch = checked_batch(staff_user(ANALYST), csv_rows(3)[0])
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportStatus.VALIDATING, bytes_processed=batch.size // 3, finished_at=None
    )
    page = open_page(staff_user(ANALYST))
    page.goto(f"/imports/{batch.pk}/")
    expect(page.get_by_text("Checking every row.")).to_be_visible()
    shoot(page, "import-checking")

    # The task finishes: the card's next poll notices and the page shows the result.
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.STAGED)

    expect(page.get_by_text("All 3 rows are valid and staged")).to_be_visible(timeout=15_000)


def test_applying_shows_rows_applied(open_page):
    from django.utils import timezone

    batch = checked_batch(staff_user(ANALYST), csv_rows(4)[0])
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportStatus.APPLYING, apply_started_at=timezone.now(), rows_applied=1
    )
    page = open_page(staff_user(REVIEWER))
    page.goto(f"/imports/{batch.pk}/")

    expect(page.get_by_text("1 of 4 rows applied.")).to_be_visible()
    shoot(page, "import-applying")


def test_a_file_of_facts_is_reviewed_with_its_facts_and_a_contradiction_named(
    open_page, browser_problems
):
    from tests.conftest import synthetic

    analyst = staff_user(ANALYST)
    header = "age_group,pubertal_stage,activity,origin,self_generated,category,md5\n"
    good = "".join(
        f"3-6,prepubescent,{activity},real,no,,{synthetic('md5')}\n"
        for activity in ("penetrative", "sadism", "lascivious_exhibition", "nudity_posing")
    )
    batch = checked_batch(analyst, header + good, name="facts.csv")
    bad = checked_batch(
        analyst,
        header + f"7-10,,nudity_posing,,,A,{synthetic('md5')}\n",
        name="contradiction.csv",
    )
    page = open_page(staff_user(REVIEWER))
    page.goto(f"/imports/{batch.pk}/")
    expect(page.get_by_role("main")).to_contain_text("Most serious activity")
    expect(page.get_by_role("main")).to_contain_text("Real child")
    shoot(page, "import-facts-review")
    page.goto(f"/imports/{bad.pk}/")
    expect(page.get_by_role("main")).to_contain_text(
        "category 'A' contradicts the facts (activity 'nudity_posing')"
    )
    shoot(page, "import-facts-contradiction")
