"""A small list with a history, for the dashboard, search and entry page tests: synthetic
hashes only, built through the services as real data is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distribution import releases
from distribution.services import feed_create
from hashlist import services
from hashlist.models import Entry, ImportBatch
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER
from members.models import Feedback, SyncClient
from tests.conftest import synthetic
from tests.factories import approved_entry, member_with_token, staff_user


@dataclass
class Listing:
    users: dict[str, Any]
    entry: Entry  # two hashes; regraded, released, a rejected and a pending proposal, a dispute
    md5: str  # the entry's MD5 hash, canonical text
    running_import: ImportBatch


def a_list_with_history() -> Listing:
    users = {
        "analyst": staff_user(ANALYST, username="analyst"),
        "analyst2": staff_user(ANALYST, username="analyst2"),
        "reviewer": staff_user(REVIEWER, username="reviewer"),
        "member_admin": staff_user(MEMBER_ADMIN, username="member-admin"),
        "auditor": staff_user(AUDITOR, username="auditor"),
        "no-role": staff_user(None, username="no-role"),
    }
    analyst, analyst2, reviewer = users["analyst"], users["analyst2"], users["reviewer"]
    feed_create(actor=users["member_admin"], name="all", description="Every entry.")
    feed_create(
        actor=users["member_admin"], name="md5-category-a", algorithms=["md5"], categories=["A"]
    )
    md5 = synthetic("md5")
    entry = approved_entry(
        analyst,
        reviewer,
        hashes=[
            {"algorithm": "md5", "value": md5},
            {"algorithm": "pdq", "value": synthetic("pdq")},
        ],
    )
    for category in ("B", "C", "A"):
        approved_entry(analyst2, reviewer, category=category)
    releases.release_cut()
    regrade = services.proposal_regrade(
        actor=analyst2, entry_id=entry.pk, grading={"category": "B"}, comment="Second look."
    )
    services.proposal_approve(actor=reviewer, proposal_id=regrade.pk, reason="Agreed.")
    releases.release_cut()
    rejected = services.proposal_regrade(
        actor=analyst2, entry_id=entry.pk, grading={"age_group": "3-6"}
    )
    services.proposal_reject(actor=reviewer, proposal_id=rejected.pk, reason="Not supported.")
    services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"baseline": True}, comment="Baseline."
    )
    member, _ = member_with_token(users["member_admin"], name="acme")
    first = entry.hashes.order_by("id").first()
    assert first is not None
    Feedback.objects.create(
        member=member,
        client=SyncClient.objects.get(member=member),
        entry=entry,
        algorithm=first.algorithm,
        value=first.value,
        kind="false_positive",
        reason="Matches a stock photo (synthetic).",
    )
    batch_fields = {"format": "csv", "sha256": "0" * 64, "file": "imports/synthetic.csv"}
    running = ImportBatch.objects.create(
        uploaded_by=analyst,
        original_name="export-monday.csv",
        size=1000,
        status="validating",
        bytes_processed=400,
        **batch_fields,
    )
    ImportBatch.objects.create(
        uploaded_by=analyst2,
        original_name="export-broken.csv",
        size=100,
        status="invalid",
        error_count=3,
        **batch_fields,
    )
    entry.refresh_from_db()
    return Listing(users=users, entry=entry, md5=md5, running_import=running)
