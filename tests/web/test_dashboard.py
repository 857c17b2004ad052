"""The dashboard (``/`` for signed-in staff): each role sees the sections it may read, every
section has a designed empty state, and its reads stay cheap. Synthetic hashes only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from distribution import releases
from distribution.services import feed_create
from hashlist import services
from hashlist.models import ImportBatch, Proposal
from tests.factories import approved_entry, invalid_import_batch, propose_entry

pytestmark = pytest.mark.django_db

# The heading of each section, and the roles that see it.
SECTIONS = {
    "Review queue": {"analyst", "reviewer", "auditor"},
    "My open proposals": {"analyst", "reviewer"},
    "Latest release": {"analyst", "reviewer", "member_admin", "auditor"},
    "List size per feed": {"analyst", "reviewer", "member_admin", "auditor"},
    "Imports": {"analyst", "reviewer", "auditor"},
    "Open disputes": {"analyst", "reviewer", "auditor"},
    "Members": {"member_admin", "auditor"},
    "Audit trail": {"auditor"},
}


def _page(response: Any) -> str:
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


@pytest.mark.parametrize("role", ["analyst", "reviewer", "member_admin", "auditor", "outsider"])
def test_each_role_sees_the_sections_it_may_read(client_as, role):
    page = _page(client_as(role).get("/"))

    assert "<h1>Dashboard</h1>" in page
    for heading, roles in SECTIONS.items():
        assert (f">{heading}<" in page or f">{heading} <" in page) == (role in roles), heading


def test_someone_without_a_role_is_told_so_instead_of_an_empty_page(client_as):
    page = _page(client_as("outsider").get("/"))

    assert "Your account has no role yet" in page


def test_anonymous_visitors_get_the_public_front_page(client_as):
    page = _page(client_as("anonymous").get("/"))

    assert "<h1>Dashboard</h1>" not in page
    assert "Sign in" in page


def test_a_new_install_says_there_is_no_release_and_no_feed_yet(client_as):
    page = _page(client_as("analyst").get("/"))

    assert "No release yet" in page
    assert "No feeds yet" in page
    assert "No import is being validated or applied" in page
    assert "Nothing of yours is waiting for review" in page


def test_the_reviewer_sees_the_queue_of_others_proposals_and_the_oldest_age(
    client_as, analyst, reviewer
):
    propose_entry(analyst)
    propose_entry(analyst)
    propose_entry(reviewer)  # the reviewer's own: not in their queue
    Proposal.objects.filter(author=analyst).update(
        created_at=timezone.now() - dt.timedelta(hours=3)
    )

    page = _page(client_as("reviewer").get("/"))

    assert '<p class="stat">2</p>' in page
    assert "waiting for your review; the oldest for" in page
    assert "3\xa0hours" in page


def test_an_analyst_sees_only_how_many_proposals_wait(client_as, analyst, analyst2):
    propose_entry(analyst2)
    propose_entry(analyst)

    page = _page(client_as("analyst").get("/"))

    assert "proposals waiting for a reviewer" in page
    assert "the oldest for" not in page
    assert "Work the queue" not in page


def test_my_open_proposals_lists_only_mine_still_pending_with_their_entry(
    client_as, analyst, analyst2, reviewer
):
    entry = approved_entry(analyst2, reviewer)
    regrade = services.proposal_regrade(actor=analyst, entry_id=entry.pk, grading={"category": "B"})
    created = propose_entry(analyst)
    withdrawn = propose_entry(analyst)
    services.proposal_withdraw(actor=analyst, proposal_id=withdrawn.pk)
    someone_elses = propose_entry(analyst2)

    page = _page(client_as("analyst").get("/"))

    assert "(2 waiting for review)" in page
    assert f"Proposal {regrade.pk}<" in page and f"Proposal {created.pk}<" in page
    assert f"Proposal {withdrawn.pk}<" not in page
    assert f"Proposal {someone_elses.pk}<" not in page
    assert f'href="/entries/{entry.pk}/"' in page


def test_the_latest_release_shows_its_version_and_changes_waiting_for_the_next(
    client_as, analyst, reviewer
):
    approved_entry(analyst, reviewer)
    release = releases.release_cut()
    assert release is not None
    approved_entry(analyst, reviewer)

    page = _page(client_as("member_admin").get("/"))

    assert f"Version {release.version}" in page
    assert "cut <time" in page and "under a minute ago" in page
    assert "Approved changes are waiting for the next release" in page


def test_feeds_show_their_size_version_and_state(client_as, analyst, reviewer, member_admin):
    feed_create(actor=member_admin, name="md5-all", algorithms=["md5"])
    feed_create(actor=member_admin, name="pdq-only", algorithms=["pdq"])
    approved_entry(analyst, reviewer)
    releases.release_cut()

    page = _page(client_as("auditor").get("/"))

    assert "md5-all" in page and "pdq-only" in page
    assert '<td class="num">1</td>' in page  # the md5 feed carries the one md5 hash
    assert "Published" in page


def _batch(uploader: Any, **fields: Any) -> ImportBatch:
    defaults = {
        "file": "imports/synthetic.csv",
        "original_name": "synthetic.csv",
        "format": "csv",
        "size": 1000,
        "sha256": "0" * 64,
    }
    return ImportBatch.objects.create(uploaded_by=uploader, **{**defaults, **fields})


def test_a_running_import_shows_its_progress_and_the_section_polls(client_as, analyst):
    _batch(analyst, original_name="validating.csv", status="validating", bytes_processed=250)
    _batch(analyst, original_name="applying.csv", status="applying", rows_valid=8, rows_applied=6)

    page = _page(client_as("analyst").get("/"))

    assert 'progress max="100" value="25"' in page and "25% of the file read" in page
    assert 'progress max="100" value="75"' in page and "75% of the rows applied" in page
    assert 'hx-get="/dashboard/imports/"' in page and 'hx-trigger="every 3s"' in page


def test_failed_and_invalid_imports_of_the_last_week_are_flagged(client_as, analyst):
    invalid_import_batch(analyst)
    _batch(analyst, original_name="crashed.csv", status="failed", failure_message="Worker lost.")
    old = _batch(analyst, original_name="long-ago.csv", status="failed")
    ImportBatch.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=8))

    page = _page(client_as("reviewer").get("/"))

    assert "Failed in the last 7 days" in page
    assert "1 row error; nothing was staged." in page
    assert "crashed.csv" in page and "Worker lost." in page
    assert "long-ago.csv" not in page
    assert 'hx-trigger="every 3s"' not in page  # nothing runs: no polling


def test_the_imports_fragment_stops_polling_once_nothing_runs(client_as, analyst):
    batch = _batch(analyst, status="validating")
    client = client_as("analyst")
    assert 'hx-trigger="every 3s"' in _page(client.get("/dashboard/imports/"))

    ImportBatch.objects.filter(pk=batch.pk).update(status="staged")
    fragment = _page(client.get("/dashboard/imports/"))

    assert 'hx-trigger="every 3s"' not in fragment
    assert "<html" not in fragment  # a fragment, not a page


@pytest.mark.parametrize(("role", "status"), [("member_admin", 403), ("outsider", 403)])
def test_the_imports_fragment_is_refused_to_roles_without_imports(client_as, role, status):
    assert client_as(role).get("/dashboard/imports/").status_code == status


def test_the_imports_fragment_sends_anonymous_visitors_to_sign_in(client_as):
    response = client_as("anonymous").get("/dashboard/imports/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_auditor_sees_the_trail_size_and_how_to_verify_it(client_as, analyst, reviewer):
    approved_entry(analyst, reviewer)

    page = _page(client_as("auditor").get("/"))

    assert "events on the trail" in page
    assert "manage.py audit_verify" in page


def test_the_member_administrator_sees_members_and_suspensions(client_as, member_admin):
    from members import services as member_services

    member_services.member_create(actor=member_admin, name="acme", display_name="Acme")
    member_services.member_create(actor=member_admin, name="beta", display_name="Beta")
    member_services.member_suspend(actor=member_admin, name="beta", reason="Unpaid.")

    page = _page(client_as("member_admin").get("/"))

    assert '<p class="stat">2</p>' in page
    assert "1 suspended" in page


def test_the_dashboard_costs_the_same_queries_with_a_longer_list(client_as, analyst, reviewer):
    client = client_as("reviewer")
    approved_entry(analyst, reviewer)
    propose_entry(analyst)
    with CaptureQueriesContext(connection) as few:
        _page(client.get("/"))
    for _ in range(5):
        approved_entry(analyst, reviewer)
        propose_entry(analyst)
    with CaptureQueriesContext(connection) as more:
        _page(client.get("/"))

    assert len(more) == len(few)
