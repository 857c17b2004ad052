"""What a reviewer reads before approving an import: its staged rows page by page, a summary,
and a random sample (hashlist/import_apis.py). Roles are in the matrix in test_apis.py.

Synthetic hashes only (``tests.conftest.synthetic``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hashlist import imports
from hashlist.models import ImportBatch, ImportStatus
from hashsync.celery import app as celery_app
from tests.conftest import synthetic
from tests.factories import approved_entry
from tests.utils import assert_error

pytestmark = pytest.mark.django_db

HEADER = "category,age_group,baseline,content_type,source,notes,md5,sha1\n"


@pytest.fixture(autouse=True)
def _eager_tasks_and_private_media(settings: Any, tmp_path: Any, monkeypatch: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


def _row(category: str = "A", baseline: str = "", content_type: str = "image", sha1: bool = True):
    return {
        "category": category,
        "baseline": baseline,
        "content_type": content_type,
        "md5": synthetic("md5"),
        "sha1": synthetic("sha1") if sha1 else "",
    }


def _staged(author: Any, rows: list[dict[str, str]]) -> ImportBatch:
    body = HEADER + "".join(
        f"{r['category']},3-6,{r['baseline']},{r['content_type']},synthetic,note {i},"
        f"{r['md5']},{r['sha1']}\n"
        for i, r in enumerate(rows)
    )
    batch = imports.import_upload(
        actor=author, file=SimpleUploadedFile("synthetic.csv", body.encode())
    )
    imports.import_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED
    return batch


def test_reviewer_pages_through_the_staged_rows_in_line_order(analyst, reviewer, api):
    rows = [_row() for _ in range(5)]
    batch = _staged(analyst, rows)
    url = f"/api/v1/imports/{batch.pk}/rows/"

    first = api(reviewer).get(url, {"limit": 3}).json()
    second = api(reviewer).get(url, {"limit": 3, "after": first["next_after"]}).json()

    assert [r["line"] for r in first["results"]] == [2, 3, 4]
    assert first["next_after"] == 4
    assert [r["line"] for r in second["results"]] == [5, 6]
    assert second["next_after"] is None
    shown = first["results"][0]
    assert shown == {
        "line": 2,
        "category": "A",
        "age_group": "3-6",
        "baseline": None,
        "industry_class": "",
        "content_type": "image",
        # Category A alone determines no fact (the activity is one of three).
        "pubertal_stage": "unknown",
        "activity": "unknown",
        "origin": "unknown",
        "self_generated": "unknown",
        "source": "synthetic",
        "notes": "note 0",
        "hashes": [
            {"algorithm": "md5", "value": rows[0]["md5"]},
            {"algorithm": "sha1", "value": rows[0]["sha1"]},
        ],
    }


def test_summary_counts_the_rows_and_names_lines_whose_hash_reached_the_list(
    analyst, analyst2, reviewer, reviewer2, api
):
    rows = [
        _row("A", "yes"),
        _row("A", "no", "video"),
        _row("B", sha1=False),
        _row("C", "yes"),
    ]
    batch = _staged(analyst, rows)
    # After validation another approval put row 3's md5 (line 4) on the list.
    approved_entry(analyst2, reviewer2, hashes=[{"algorithm": "md5", "value": rows[2]["md5"]}])

    response = api(reviewer).get(f"/api/v1/imports/{batch.pk}/summary/")

    assert response.status_code == 200
    assert response.json() == {
        "rows": 4,
        "by_algorithm": {"md5": 4, "sha1": 3},
        "by_category": {"A": 2, "B": 1, "C": 1},
        "by_age_group": {"3-6": 4},
        "by_content_type": {"image": 3, "video": 1},
        "by_baseline": {"no": 1, "unknown": 1, "yes": 2},
        "by_industry_class": {"": 4},
        # The facts the old columns determine (docs/grading.md): B is non-penetrative, C with
        # baseline yes a lascivious exhibition of a real child, A not baseline under 13 is
        # computer-generated.
        "by_pubertal_stage": {"unknown": 4},
        "by_activity": {"lascivious_exhibition": 1, "non_penetrative": 1, "unknown": 2},
        "by_origin": {"computer_generated": 1, "real": 2, "unknown": 1},
        "by_self_generated": {"unknown": 4},
        "on_list": {"count": 1, "lines": [4]},
    }


def test_summary_without_new_hashes_on_the_list_reports_none(analyst, reviewer, api):
    batch = _staged(analyst, [_row(), _row()])

    summary = api(reviewer).get(f"/api/v1/imports/{batch.pk}/summary/").json()

    assert summary["on_list"] == {"count": 0, "lines": []}


def test_sample_draws_distinct_rows_of_the_batch_in_line_order(analyst, reviewer, api):
    batch = _staged(analyst, [_row() for _ in range(30)])
    other = _staged(analyst, [_row() for _ in range(5)])

    sample = api(reviewer).get(f"/api/v1/imports/{batch.pk}/sample/", {"size": 10}).json()
    everything = api(reviewer).get(f"/api/v1/imports/{other.pk}/sample/").json()

    lines = [r["line"] for r in sample["results"]]
    assert len(lines) == 10 and lines == sorted(set(lines))
    assert set(lines) <= set(range(2, 32))
    assert [r["line"] for r in everything["results"]] == [2, 3, 4, 5, 6]  # fewer than asked


@pytest.mark.parametrize("size", ["0", "101", "ten", "-1"])
def test_sample_size_outside_one_to_a_hundred_is_refused(size, analyst, reviewer, api):
    batch = _staged(analyst, [_row()])

    response = api(reviewer).get(f"/api/v1/imports/{batch.pk}/sample/", {"size": size})

    assert_error(response, 400, "invalid_input")


@pytest.mark.parametrize("part", ["rows", "summary", "sample"])
def test_review_reads_of_an_unknown_import_are_not_found(part, reviewer, api):
    response = api(reviewer).get(f"/api/v1/imports/999999/{part}/")

    assert_error(response, 404, "not_found")


def test_decided_import_has_no_staged_rows_left(analyst, reviewer, api):
    batch = _staged(analyst, [_row()])
    api(reviewer).post(
        f"/api/v1/proposals/{batch.proposal_id}/reject/", {"reason": "no"}, format="json"
    )

    page = api(reviewer).get(f"/api/v1/imports/{batch.pk}/rows/").json()

    assert page == {"results": [], "next_after": None}
