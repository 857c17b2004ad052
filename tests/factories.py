"""Builders that go through the services, so test data obeys the same rules as real data."""

from __future__ import annotations

from typing import Any

from hashlist import services
from hashlist.models import Entry, ImportBatch, ImportRowError, Proposal
from tests.conftest import synthetic

GRADING = {"category": "A", "age_group": "7-10", "content_type": "image"}


def propose_entry(
    author: Any, *, hashes: list[dict[str, str]] | None = None, **grading: Any
) -> Proposal:
    return services.proposal_create_entry(
        actor=author,
        grading={**GRADING, **grading},
        hashes=hashes or [{"algorithm": "md5", "value": synthetic("md5")}],
        source="synthetic-test",
    )


def approved_entry(author: Any, reviewer: Any, **kwargs: Any) -> Entry:
    proposal = propose_entry(author, **kwargs)
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.entry is not None
    return proposal.entry


def invalid_import_batch(uploader: Any) -> ImportBatch:
    """An import that failed validation with one row error (no file is read)."""
    batch = ImportBatch.objects.create(
        uploaded_by=uploader,
        file="imports/synthetic.csv",
        original_name="synthetic.csv",
        format="csv",
        size=100,
        sha256="0" * 64,
        status="invalid",
        error_count=1,
    )
    ImportRowError.objects.create(batch=batch, line=2, message="category is required")
    return batch
