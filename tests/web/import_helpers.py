"""Building import batches for the import page tests, through the import services.

Synthetic hashes only (``tests.conftest.synthetic``): random bytes, never list values."""

from __future__ import annotations

import re
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from hashlist import imports
from hashlist.models import ImportBatch
from tests.conftest import synthetic

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
