"""The database refuses a change-log row whose proposal is not approved by a person other than
its author (hashlist migration 0005), whoever writes it: here raw SQL, as someone holding the
application's database credentials would. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from hashlist import services
from hashlist.models import Change, Proposal, ProposalKind, ProposalStatus, approved_by_another
from hashsync.roles import ANALYST, REVIEWER
from tests.factories import approved_entry
from tests.hashlist.change_tampering import (
    forged_after,
    insert_change_sql,
    pending_hash_addition,
)

pytestmark = pytest.mark.django_db

REFUSAL = "not approved by a person other than its author"


def test_a_change_for_a_pending_proposal_inserted_by_raw_sql_is_refused(analyst, reviewer):
    entry, proposal, md5 = pending_hash_addition(analyst, reviewer)
    before = Change.objects.count()

    with pytest.raises(IntegrityError, match=REFUSAL), transaction.atomic():
        insert_change_sql(
            entry_id=entry.pk, proposal_id=proposal.pk, after=forged_after(entry, md5)
        )

    assert Change.objects.count() == before


@pytest.mark.postgres
def test_a_temporary_table_cannot_stand_in_for_the_proposals(analyst, reviewer):
    # A session's temporary tables come first in its search path; the trigger's function has
    # its own path, so a fake "approved" proposal in a temporary table changes nothing.
    entry, proposal, md5 = pending_hash_addition(analyst, reviewer)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE hashlist_proposal "
            "(id bigint, status text, reviewer_id integer, author_id integer)"
        )
        cursor.execute(
            "INSERT INTO hashlist_proposal VALUES (%s, 'approved', %s, %s)",
            [proposal.pk, reviewer.pk, analyst.pk],
        )

    with pytest.raises(IntegrityError, match=REFUSAL), transaction.atomic():
        insert_change_sql(
            entry_id=entry.pk, proposal_id=proposal.pk, after=forged_after(entry, md5)
        )


def test_moving_a_change_onto_an_unapproved_proposal_is_refused(analyst, reviewer):
    entry, pending, _ = pending_hash_addition(analyst, reviewer)
    change = Change.objects.get(entry=entry)

    with (
        pytest.raises(IntegrityError, match=REFUSAL),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE hashlist_change SET proposal_id = %s WHERE id = %s", [pending.pk, change.pk]
        )

    change.refresh_from_db()
    assert change.proposal_id != pending.pk


# Every proposal state the database can store: a decided proposal has a reviewer
# (``proposal_reviewed_has_reviewer``), and no proposal is reviewed by its own author
# (``proposal_four_eyes``).
STORABLE_STATES = [
    (status, reviewed_by)
    for status in ProposalStatus.values
    for reviewed_by in ("nobody", "another person")
    if not (status in ("approved", "rejected", "failed") and reviewed_by == "nobody")
]


@pytest.mark.parametrize(("status", "reviewed_by"), STORABLE_STATES)
def test_the_database_and_approved_by_another_agree_on_every_proposal_state(
    analyst, reviewer, status, reviewed_by
):
    """The triggers are hand-written SQL; ``approved_by_another`` is the rule the cutter reads.
    They must refuse exactly the same proposals."""
    entry = approved_entry(analyst, reviewer)
    proposal = Proposal.objects.create(
        kind=ProposalKind.REGRADE,
        status=status,
        entry=entry,
        base_revision=entry.revision,
        author=analyst,
        reviewer=None if reviewed_by == "nobody" else reviewer,
    )
    allowed = Proposal.objects.filter(approved_by_another(), pk=proposal.pk).exists()

    try:
        with transaction.atomic():
            insert_change_sql(entry_id=entry.pk, proposal_id=proposal.pk, after={})
        accepted = True
    except IntegrityError:
        accepted = False

    assert accepted == allowed == (status == ProposalStatus.APPROVED)


def test_approving_writes_the_changes_after_marking_the_proposal_approved(analyst, reviewer):
    """The approval's order of writes satisfies the triggers, for every kind of proposal."""
    entry = approved_entry(analyst, reviewer)
    regrade = services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "B"})
    services.proposal_approve(actor=reviewer, proposal_id=regrade.pk)
    retract = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="synthetic")
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)

    kinds = list(Change.objects.filter(entry=entry).order_by("id").values_list("kind", flat=True))
    assert kinds == ["create", "regrade", "retract"]


# --- The migration on a database that already holds changes ------------------------------------

BEFORE_THE_GUARD: list[tuple[str, str | None]] = [("hashlist", "0004_import_apply_task")]


def _migrate(targets: list[tuple[str, str | None]] | None = None) -> Any:
    executor = MigrationExecutor(connection)
    return executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_guard_migrates_a_database_that_holds_changes_and_migrates_back(
    make_user: Callable[..., Any],
):
    author, other = make_user(ANALYST), make_user(REVIEWER)
    state = _migrate(BEFORE_THE_GUARD)
    try:
        apps = state.apps
        entry = apps.get_model("hashlist", "Entry").objects.create(category="A", age_group="7-10")
        proposal_model = apps.get_model("hashlist", "Proposal")
        change_model = apps.get_model("hashlist", "Change")
        approved = proposal_model.objects.create(
            kind="create", status="approved", entry=entry, author_id=author.pk, reviewer_id=other.pk
        )
        pending = proposal_model.objects.create(
            kind="regrade", status="pending", entry=entry, author_id=author.pk
        )
        # One genuine change, and one written behind the services' back before the upgrade.
        for proposal in (approved, pending):
            change_model.objects.create(
                entry=entry, proposal=proposal, kind="create", after={}, approved_at=timezone.now()
            )

        _migrate()

        assert Change.objects.filter(entry_id=entry.pk).count() == 2
        with pytest.raises(IntegrityError, match=REFUSAL), transaction.atomic():
            insert_change_sql(entry_id=entry.pk, proposal_id=pending.pk, after={})
        # The old unapproved row stays out of releases: the cutter reads only these.
        assert list(
            Change.objects.filter(entry_id=entry.pk)
            .approved_by_another()
            .values_list("proposal_id", flat=True)
        ) == [approved.pk]

        _migrate(BEFORE_THE_GUARD)
        with transaction.atomic():
            insert_change_sql(entry_id=entry.pk, proposal_id=pending.pk, after={})
    finally:
        _migrate()
