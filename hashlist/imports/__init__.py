"""Bulk import of grading-tool exports (CSV and JSON Lines).

The file is streamed once: every row is validated, every error is kept with its line number,
hashes repeated inside the file or already on the list are reported, and valid rows are staged
with bulk inserts. A file with any error stages nothing. A valid file becomes one proposal of
kind ``import`` that a second person approves or rejects as a unit; approval is recorded at once
and a task applies every row in one transaction (``apply``). The format is documented in
``docs/import-format.md``.
"""

from __future__ import annotations

from hashlist.imports.apply import import_accept, import_apply, import_close
from hashlist.imports.parse import CHUNK_ROWS, RowError
from hashlist.imports.stage import import_validate
from hashlist.imports.upload import UploadTooLarge, enqueue_validation, import_sweep, import_upload

__all__ = [
    "CHUNK_ROWS",
    "RowError",
    "UploadTooLarge",
    "enqueue_validation",
    "import_accept",
    "import_apply",
    "import_close",
    "import_sweep",
    "import_upload",
    "import_validate",
]
