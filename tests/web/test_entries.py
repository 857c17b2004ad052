"""The entry page (``/entries/<id>/``): hashes with copy buttons, grading, and the whole history
— proposals and their review, the release that carried each change, members' disputes — and
links to the changes the viewer may propose. Synthetic hashes only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from distribution import releases
from hashlist import imports, services
from hashlist.models import Entry, ImportStatus
from hashlist.selectors import hash_canonical
from members.models import Feedback, SyncClient
from members.services import feedback_resolve
from tests.conftest import synthetic
from tests.factories import approved_entry, member_with_token
from tests.web.conftest import sign_in

pytestmark = pytest.mark.django_db

STUB_URLS = "tests.web.propose_stub_urls"


@pytest.fixture
def entry(analyst: Any, reviewer: Any) -> Entry:
    return approved_entry(
        analyst,
        reviewer,
        hashes=[
            {"algorithm": "md5", "value": synthetic("md5")},
            {"algorithm": "photodna", "value": synthetic("photodna")},
        ],
    )


def _page(response: Any) -> str:
    assert response.status_code == 200, response.content[:300]
    return response.content.decode()


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("analyst", 200),
        ("reviewer", 200),
        ("auditor", 200),
        ("member_admin", 403),
        ("outsider", 403),
    ],
)
def test_the_entry_page_is_for_roles_that_read_entries(client_as, entry, role, status):
    response = client_as(role).get(f"/entries/{entry.pk}/")

    assert response.status_code == status
    if status == 403:
        assert "does not allow this page" in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in_and_back(client_as, entry):
    response = client_as("anonymous").get(f"/entries/{entry.pk}/")

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=/entries/{entry.pk}/"


def test_an_unknown_entry_is_a_404_page(client_as):
    response = client_as("analyst").get("/entries/999999/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_page_refuses_to_change_anything(client_as, entry):
    assert client_as("analyst").post(f"/entries/{entry.pk}/").status_code == 405


def test_hashes_show_in_monospace_with_a_copy_button_and_never_in_the_title(client_as, entry):
    page = _page(client_as("analyst").get(f"/entries/{entry.pk}/"))

    values = [hash_canonical(h.algorithm, h.value) for h in entry.hashes.all()]
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None and title.group(1).startswith(f"Entry {entry.pk}")
    for value in values:
        assert '<span class="hash" id="hash-' in page
        assert f">{value}</span>" in page
        assert f'data-copy="{value}"' in page
        assert value not in title.group(1)
    assert "PhotoDNA" in page and "MD5" in page


def test_the_grading_is_shown_as_people_read_it(client_as, analyst, reviewer):
    entry = approved_entry(analyst, reviewer, category="B", age_group="0-2", baseline=True)

    page = _page(client_as("auditor").get(f"/entries/{entry.pk}/"))

    assert "<dt>Category</dt><dd>B</dd>" in page
    assert "<dt>Age group</dt><dd>0–2</dd>" in page
    assert "<dt>INTERPOL baseline</dt><dd>Yes</dd>" in page


def test_the_history_tells_who_proposed_and_approved_each_change_and_its_release(
    client_as, entry, analyst, analyst2, reviewer
):
    first = releases.release_cut()
    assert first is not None
    regrade = services.proposal_regrade(
        actor=analyst2, entry_id=entry.pk, grading={"category": "C"}, comment="Looked again."
    )
    services.proposal_approve(actor=reviewer, proposal_id=regrade.pk, reason="Agreed.")

    page = _page(client_as("analyst").get(f"/entries/{entry.pk}/"))

    assert "Create entry" in page and "Regrade entry" in page
    assert "Proposed by analyst2" in page and "Looked again." in page
    assert "Approved by reviewer" in page and "Agreed." in page
    assert "Category: <del>A</del>" in page and "<ins>C</ins>" in page
    assert f"Published in release {first.version}" in page
    assert "Approved; waiting for the next release." in page  # the regrade, not cut yet

    second = releases.release_cut()
    assert second is not None
    page = _page(client_as("analyst").get(f"/entries/{entry.pk}/"))
    assert f"Published in release {second.version}" in page
    assert "waiting for the next release" not in page


def test_rejected_withdrawn_and_pending_proposals_are_in_the_history(
    client_as, entry, analyst, analyst2, reviewer
):
    rejected = services.proposal_regrade(
        actor=analyst2, entry_id=entry.pk, grading={"age_group": "3-6"}
    )
    services.proposal_reject(actor=reviewer, proposal_id=rejected.pk, reason="Not supported.")
    withdrawn = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="Wrong entry.")
    services.proposal_withdraw(actor=analyst, proposal_id=withdrawn.pk)
    pending = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"baseline": True}
    )

    page = _page(client_as("reviewer").get(f"/entries/{entry.pk}/"))

    assert "Rejected by reviewer" in page and "Not supported." in page
    assert "Age group: <del>7–10</del>" in page  # what it proposed, against its revision
    assert "Withdrawn by its author." in page and "Wrong entry." in page
    assert "Waiting for review on this entry:" in page
    assert f"Proposal {pending.pk}</" in page or f"proposal {pending.pk}" in page
    assert "INTERPOL baseline: <del>Not assessed</del>" in page


def test_an_added_hash_shows_in_the_history_with_a_copy_button(client_as, entry, analyst, reviewer):
    value = synthetic("sha1")
    proposal = services.proposal_add_hash(
        actor=analyst, entry_id=entry.pk, algorithm="sha1", value=value.upper()
    )
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)

    page = _page(client_as("analyst").get(f"/entries/{entry.pk}/"))

    assert "Add hash" in page
    assert page.count(f'data-copy="{value}"') == 2  # in the hash list and in the history


def _dispute(entry: Entry, member_admin: Any) -> Feedback:
    member, _ = member_with_token(member_admin, name="acme")
    first = entry.hashes.order_by("id").first()
    assert first is not None
    return Feedback.objects.create(
        member=member,
        client=SyncClient.objects.get(member=member),
        entry=entry,
        algorithm=first.algorithm,
        value=first.value,
        kind="false_positive",
        reason="Matches a stock landscape photo (synthetic).",
    )


def test_disputes_are_in_the_history_with_their_resolution(client_as, entry, member_admin, analyst):
    dispute = _dispute(entry, member_admin)
    feedback_resolve(
        actor=analyst, feedback_id=dispute.pk, status="dismissed", resolution="Hash checked."
    )

    page = _page(client_as("auditor").get(f"/entries/{entry.pk}/"))

    assert "Disputed by Acme" in page
    assert "Matches a stock landscape photo (synthetic)." in page
    assert "Resolved by analyst" in page and "Hash checked." in page


def test_a_role_without_the_disputes_permission_does_not_see_them(entry, member_admin, make_user):
    _dispute(entry, member_admin)
    reader = make_user(None, "reader")
    group = Group.objects.create(name="entry-readers")
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="hashlist", codename__in=["view_entry", "view_proposal"]
        )
    )
    reader.groups.add(group)

    page = _page(sign_in(Client(), reader).get(f"/entries/{entry.pk}/"))

    assert "Create entry" in page
    assert "Disputed by" not in page
    assert "members' disputes are not shown to your role" in page


def test_an_entry_created_by_an_import_names_the_import_in_its_history(
    client_as, analyst, reviewer, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    body = f"category,age_group,source,md5\nA,3-6,synthetic,{synthetic('md5')}\n"
    batch = imports.import_upload(
        actor=analyst, file=SimpleUploadedFile("synthetic-batch.csv", body.encode())
    )
    imports.import_validate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.STAGED
    with django_capture_on_commit_callbacks(execute=True):
        services.proposal_approve(actor=reviewer, proposal_id=batch.proposal_id)
    entry = Entry.objects.get(changes__proposal_id=batch.proposal_id)

    page = _page(client_as("analyst").get(f"/entries/{entry.pk}/"))

    assert "Bulk import" in page and "synthetic-batch.csv" in page
    assert "Proposed by analyst" in page and "Approved by reviewer" in page


# --- Links to the pages other areas build -------------------------------------------------


def test_the_viewer_gets_links_to_propose_each_change(client_as, entry, settings):
    settings.ROOT_URLCONF = STUB_URLS

    page = _page(client_as("analyst").get(f"/entries/{entry.pk}/"))

    for path in ("regrade", "add-hash", "remove-hash", "retract"):
        assert f'href="/entries/{entry.pk}/{path}/"' in page


def test_an_entry_with_one_hash_offers_retraction_instead_of_removing_it(
    client_as, analyst, reviewer, settings
):
    settings.ROOT_URLCONF = STUB_URLS
    entry = approved_entry(analyst, reviewer)

    page = _page(client_as("reviewer").get(f"/entries/{entry.pk}/"))

    assert "remove-hash/" not in page
    assert f'href="/entries/{entry.pk}/retract/"' in page


def test_a_retracted_entry_offers_no_change(client_as, entry, analyst, reviewer, settings):
    settings.ROOT_URLCONF = STUB_URLS
    retract = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="Not CSAM.")
    services.proposal_approve(actor=reviewer, proposal_id=retract.pk)

    page = _page(client_as("analyst").get(f"/entries/{entry.pk}/"))

    assert "/regrade/" not in page and "/retract/" not in page
    assert "A retracted entry cannot be changed." in page
    assert '<span class="badge bad">Retracted</span>' in page


def test_a_read_only_role_gets_no_propose_links(client_as, entry, settings):
    settings.ROOT_URLCONF = STUB_URLS

    page = _page(client_as("auditor").get(f"/entries/{entry.pk}/"))

    assert "/regrade/" not in page and "/add-hash/" not in page


def test_the_history_links_each_proposal_and_dispute_to_its_page(
    client_as, entry, member_admin, settings
):
    settings.ROOT_URLCONF = STUB_URLS
    dispute = _dispute(entry, member_admin)
    created = entry.proposals.get()

    page = _page(client_as("analyst").get(f"/entries/{entry.pk}/"))

    assert f'href="/proposals/{created.pk}/"' in page
    assert f'href="/disputes/{dispute.pk}/"' in page
