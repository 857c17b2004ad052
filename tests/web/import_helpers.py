"""Fixtures and builders of the import page tests; batches are built through the import
services.

Synthetic hashes only (``tests.conftest.synthetic``): random bytes, never list values."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from hashlist import imports
from hashlist.models import ImportBatch, ImportStatus
from hashsync.celery import app as celery_app
from tests.conftest import synthetic
from tests.web.conftest import signed_in

HEADER = "category,age_group,source,notes,md5,sha1\n"


def csv_rows(count: int, *, category: str = "A") -> tuple[str, list[str]]:
    """A valid CSV file of ``count`` rows and every hash value in it."""
    values: list[str] = []
    lines = [HEADER]
    for n in range(count):
        md5, sha1 = synthetic("md5"), synthetic("sha1")
        values += [md5, sha1]
        lines.append(f"{category},7-10,synthetic,note {n},{md5},{sha1}\n")
    return "".join(lines), values


def upload(name: str, body: str | bytes) -> SimpleUploadedFile:
    data = body.encode() if isinstance(body, str) else body
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def checked_batch(
    uploader: Any, body: str, *, name: str = "synthetic.csv", format: str | None = None
) -> ImportBatch:
    """An uploaded and validated batch (staged when ``body`` is valid, else invalid)."""
    batch = imports.import_upload(actor=uploader, file=upload(name, body), format=format)
    imports.import_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def urls_in(html: str) -> list[str]:
    """Every URL a page links to, posts to or polls."""
    return re.findall(r'(?:href|action|hx-get|hx-post|src)="([^"]*)"', html)


def title_of(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    assert found is not None
    return found.group(1)


def field_error(html: str, field: str) -> str:
    start = html.index(f'id="id_{field}-error"')
    return html[start : html.index("</p>", start)]


# --- Fixtures (imported by the test modules) ----------------------------------------------------


@pytest.fixture(autouse=True)
def eager_tasks(monkeypatch: Any) -> None:
    # Validation and applying run in-process, as in the embedded mode.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)


@pytest.fixture
def as_role(request: pytest.FixtureRequest, client: Client) -> Any:
    def sign_in(role: str | None) -> Client:
        if role is None:
            return client
        return signed_in(client, request.getfixturevalue(role))

    return sign_in


@pytest.fixture
def staged(analyst: Any) -> ImportBatch:
    body, _ = csv_rows(3)
    batch = checked_batch(analyst, body)
    assert batch.status == ImportStatus.STAGED
    return batch
