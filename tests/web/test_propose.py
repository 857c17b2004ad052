"""The propose pages (web/views/propose.py): a new entry, and a regrade, an added or removed
hash and a retraction of an existing one. Who may open them, what a proposal made looks like,
and every refusal shown next to its field — never a 500, never a hash in a URL, title or log.

Synthetic hashes only (``tests.conftest.synthetic``)."""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path, reverse

from hashlist import services
from hashlist.models import Entry, Proposal, ProposalKind, ProposalStatus
from hashsync import urls as site_urls
from hashsync_client.algorithms import get_algorithm
from tests.conftest import synthetic
from tests.factories import approved_entry
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db

# The site's URLs plus a stand-in for the entry page (another area's), for the tests of the
# links to it: ``@pytest.mark.urls(__name__)``.
urlpatterns = [
    path("entries/<int:entry_id>/", lambda request, entry_id: HttpResponse(), name="web-entry"),
    *site_urls.urlpatterns,
]

PROPOSERS = {"analyst", "reviewer"}
ROLES = ("analyst", "reviewer", "member_admin", "auditor", "outsider", "anonymous")


@pytest.fixture
def people(analyst, reviewer, member_admin, auditor, outsider) -> dict[str, Any]:
    return {
        "analyst": analyst,
        "reviewer": reviewer,
        "member_admin": member_admin,
        "auditor": auditor,
        "outsider": outsider,
        "anonymous": None,
    }


@pytest.fixture
def entry(analyst2, reviewer2) -> Entry:
    """An approved entry with an md5 and a sha1 hash, proposed and approved by other people."""
    return approved_entry(
        analyst2,
        reviewer2,
        hashes=[
            {"algorithm": "md5", "value": synthetic("md5")},
            {"algorithm": "sha1", "value": synthetic("sha1")},
        ],
    )


def _client(user: Any) -> Client:
    client = Client()
    return client if user is None else signed_in(client, user)


def _title(response: Any) -> str:
    match = re.search(rb"<title>(.*?)</title>", response.content, re.DOTALL)
    assert match, "the page has no title"
    return match.group(1).decode()


def _new_entry_data(*rows: tuple[str, str], **fields: str) -> dict[str, str]:
    data = {
        "hashes-TOTAL_FORMS": str(max(len(rows), 3)),
        "hashes-INITIAL_FORMS": "0",
        "hashes-MIN_NUM_FORMS": "0",
        "hashes-MAX_NUM_FORMS": "32",
        "category": "A",
        "age_group": "7-10",
        "baseline": "",
        "industry_class": "",
        "content_type": "image",
        "source": "synthetic-test",
        "notes": "",
        "comment": "",
    }
    for i, (algorithm, value) in enumerate(rows):
        data[f"hashes-{i}-algorithm"] = algorithm
        data[f"hashes-{i}-value"] = value
    data.update(fields)
    return data


def _field_error(response: Any, field_id: str) -> str:
    """The error shown next to the field whose input has ``field_id``."""
    html = response.content.decode()
    match = re.search(rf'<p class="error" id="{re.escape(field_id)}-error">(.*?)</p>', html, re.S)
    assert match, f"no error next to {field_id}"
    return re.sub(r"<[^>]+>", "", match.group(1)).replace("!", "", 1).strip()


def _entry_pages(entry_id: int) -> list[str]:
    return [
        reverse(name, args=[entry_id])
        for name in (
            "web-propose-regrade",
            "web-propose-add-hash",
            "web-propose-remove-hash",
            "web-propose-retract",
        )
    ]


# --- Who may open the pages --------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_propose_pages_open_for_proposers_only(role, people, entry):
    client = _client(people[role])
    for url in [reverse("web-propose"), *_entry_pages(entry.pk)]:
        response = client.get(url)
        if role in PROPOSERS:
            assert response.status_code == 200, url
        elif role == "anonymous":
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login"))
        else:
            assert response.status_code == 403, url
            assert b"does not allow this page" in response.content


@pytest.mark.parametrize("role", ["member_admin", "auditor", "outsider", "anonymous"])
def test_people_who_may_not_propose_cannot_post_a_proposal(role, people, entry):
    client = _client(people[role])
    md5 = synthetic("md5")
    client.post(reverse("web-propose"), _new_entry_data(("md5", md5)))
    client.post(reverse("web-propose-retract", args=[entry.pk]), {"reason": "wrong"})
    assert Proposal.objects.filter(status=ProposalStatus.PENDING).count() == 0


def test_navigation_offers_propose_to_proposers(analyst, auditor):
    assert reverse("web-propose").encode() in _client(analyst).get(reverse("front")).content
    assert reverse("web-propose").encode() not in _client(auditor).get(reverse("front")).content


def test_unknown_entry_is_a_not_found_page(analyst):
    response = _client(analyst).get(reverse("web-propose-regrade", args=[999999]))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- A new entry -------------------------------------------------------------------------------


def test_analyst_proposes_an_entry_and_lands_on_its_pending_proposal(analyst):
    md5 = synthetic("md5")
    sha1 = get_algorithm("sha1").parse(synthetic("sha1"))
    client = _client(analyst)
    response = client.post(
        reverse("web-propose"),
        _new_entry_data(
            ("md5", md5.upper()),  # any case
            ("sha1", base64.b64encode(sha1).decode()),  # base64
            category="B",
            age_group="11-13",
            baseline="yes",
            industry_class="B1",
            content_type="video",
            notes="synthetic note",
            comment="from a synthetic report",
        ),
    )
    proposal = Proposal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("web-proposal", args=[proposal.pk])
    assert proposal.kind == ProposalKind.CREATE and proposal.author == analyst
    assert proposal.payload["grading"] == {
        "category": "B",
        "age_group": "11-13",
        "baseline": True,
        "industry_class": "B1",
        "content_type": "video",
    }
    assert proposal.payload["hashes"] == sorted([["md5", md5], ["sha1", sha1.hex()]])
    assert proposal.payload["notes"] == "synthetic note"
    assert proposal.comment == "from a synthetic report"
    page = client.get(response["Location"])
    assert b"Pending review" in page.content
    assert f"Proposal {proposal.pk} is waiting for a second person".encode() in page.content


def test_blank_hash_rows_are_left_out(analyst):
    md5 = synthetic("md5")
    data = _new_entry_data(("", ""), ("md5", md5), ("", ""))
    response = _client(analyst).post(reverse("web-propose"), data)
    assert response.status_code == 302
    assert Proposal.objects.get().payload["hashes"] == [["md5", md5]]


def test_a_hash_that_does_not_parse_is_marked_on_its_row_without_repeating_it(analyst):
    md5, bad = synthetic("md5"), synthetic("md5")[:-2]
    response = _client(analyst).post(
        reverse("web-propose"), _new_entry_data(("md5", md5), ("md5", bad))
    )
    assert response.status_code == 400
    error = _field_error(response, "id_hashes-1-value")
    assert "expected 32 hexadecimal characters" in error
    assert bad not in error
    assert "id_hashes-0-value-error" not in response.content.decode()
    assert not Proposal.objects.exists()


def test_a_value_without_an_algorithm_asks_for_the_algorithm(analyst):
    response = _client(analyst).post(
        reverse("web-propose"), _new_entry_data(("", synthetic("md5")))
    )
    assert response.status_code == 400
    assert "Choose the algorithm" in _field_error(response, "id_hashes-0-algorithm")


def test_an_entry_needs_at_least_one_hash(analyst):
    response = _client(analyst).post(reverse("web-propose"), _new_entry_data())
    assert response.status_code == 400
    assert b"Paste at least one hash" in response.content
    assert not Proposal.objects.exists()


def test_every_problem_of_the_form_shows_at_once(analyst):
    data = _new_entry_data(("md5", "nothex"), category="", age_group="")
    response = _client(analyst).post(reverse("web-propose"), data)
    assert response.status_code == 400
    assert _field_error(response, "id_category") == "Choose the category."
    assert _field_error(response, "id_age_group").startswith("Choose the age group")
    assert "md5: expected" in _field_error(response, "id_hashes-0-value")
    assert b'class="error-summary"' in response.content


def test_a_hash_already_on_the_list_names_and_links_the_entry_that_holds_it(analyst, entry):
    held = entry.hashes.get(algorithm="md5")
    value = get_algorithm("md5").canonical(held.value)
    response = _client(analyst).post(
        reverse("web-propose"), _new_entry_data(("sha1", synthetic("sha1")), ("md5", value))
    )
    assert response.status_code == 400
    error = _field_error(response, "id_hashes-1-value")
    assert f"already on the list, on entry {entry.pk}" in error
    assert not Proposal.objects.filter(status=ProposalStatus.PENDING).exists()


@pytest.mark.urls(__name__)
def test_the_entry_holding_a_hash_is_a_link_once_the_entry_page_exists(analyst, entry):
    value = get_algorithm("md5").canonical(entry.hashes.get(algorithm="md5").value)
    response = _client(analyst).post(reverse("web-propose"), _new_entry_data(("md5", value)))
    link = f'<a href="{reverse("web-entry", args=[entry.pk])}">entry {entry.pk}</a>'
    assert link in response.content.decode()


def test_the_same_hash_twice_is_refused_on_the_second_row(analyst):
    md5 = synthetic("md5")
    response = _client(analyst).post(
        reverse("web-propose"), _new_entry_data(("md5", md5), ("md5", md5.upper()))
    )
    assert response.status_code == 400
    assert "Repeats an earlier hash" in _field_error(response, "id_hashes-1-value")


def test_add_another_hash_without_javascript_keeps_what_was_typed(analyst):
    md5 = synthetic("md5")
    data = _new_entry_data(("md5", md5), category="C", comment="half done")
    data["add_row"] = "1"
    response = _client(analyst).post(reverse("web-propose"), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="hashes-TOTAL_FORMS" value="4"' in html
    assert f'value="{md5}"' in html
    assert 'name="hashes-3-value"' in html
    assert '<option value="C" selected>' in html
    assert "half done" in html
    assert 'class="error' not in html  # nothing was submitted yet: no errors
    assert not Proposal.objects.exists()


def test_hash_rows_stop_at_the_most_an_entry_may_hold(analyst):
    data = _new_entry_data()
    data["hashes-TOTAL_FORMS"] = "33"
    response = _client(analyst).post(reverse("web-propose"), data)
    assert response.status_code == 400
    assert b"at most 32" in response.content


def test_a_tampered_hash_row_count_is_an_error_not_a_crash(analyst):
    data = _new_entry_data(("md5", synthetic("md5")))
    data["hashes-TOTAL_FORMS"] = "lots"
    response = _client(analyst).post(reverse("web-propose"), data)
    assert response.status_code == 400
    assert not Proposal.objects.exists()


def test_an_unknown_grading_choice_is_a_field_error(analyst):
    response = _client(analyst).post(
        reverse("web-propose"), _new_entry_data(("md5", synthetic("md5")), category="Z")
    )
    assert response.status_code == 400
    assert "Select a valid choice" in _field_error(response, "id_category")


# --- A change to an entry ----------------------------------------------------------------------


def test_regrade_starts_from_the_entrys_grading(analyst, entry):
    html = _client(analyst).get(reverse("web-propose-regrade", args=[entry.pk])).content.decode()
    assert f'<option value="{entry.category}" selected>' in html
    assert f'<option value="{entry.age_group}" selected>' in html


def test_analyst_proposes_a_regrade(analyst, entry):
    data = {
        "category": "C",
        "age_group": entry.age_group,
        "baseline": "no",
        "industry_class": "",
        "content_type": "image",
        "comment": "recheck",
    }
    response = _client(analyst).post(reverse("web-propose-regrade", args=[entry.pk]), data)
    proposal = Proposal.objects.get(kind=ProposalKind.REGRADE)
    assert response["Location"] == reverse("web-proposal", args=[proposal.pk])
    assert proposal.entry == entry and proposal.base_revision == entry.revision
    assert proposal.payload["grading"]["category"] == "C"
    assert proposal.payload["grading"]["baseline"] is False


def test_a_regrade_that_changes_nothing_says_so(analyst, entry):
    response = _client(analyst).post(
        reverse("web-propose-regrade", args=[entry.pk]),
        {
            "category": entry.category,
            "age_group": entry.age_group,
            "baseline": "",
            "industry_class": "",
            "content_type": entry.content_type,
        },
    )
    assert response.status_code == 400
    assert b"same as the entry&#x27;s current grading" in response.content
    assert not Proposal.objects.filter(kind=ProposalKind.REGRADE).exists()


def test_analyst_proposes_adding_a_hash(analyst, entry):
    sha256 = synthetic("sha256")
    response = _client(analyst).post(
        reverse("web-propose-add-hash", args=[entry.pk]),
        {"algorithm": "sha256", "value": f"  {sha256.upper()}  ", "comment": ""},
    )
    proposal = Proposal.objects.get(kind=ProposalKind.ADD_HASH)
    assert response.status_code == 302
    assert proposal.payload["hash"] == ["sha256", sha256]


def test_adding_a_hash_another_entry_holds_names_that_entry(analyst, analyst2, reviewer2, entry):
    other = approved_entry(analyst2, reviewer2)
    value = get_algorithm("md5").canonical(other.hashes.get().value)
    response = _client(analyst).post(
        reverse("web-propose-add-hash", args=[entry.pk]), {"algorithm": "md5", "value": value}
    )
    assert response.status_code == 400
    assert f"already on the list, on entry {other.pk}" in _field_error(response, "id_value")


def test_adding_a_hash_of_the_wrong_length_is_a_field_error(analyst, entry):
    response = _client(analyst).post(
        reverse("web-propose-add-hash", args=[entry.pk]),
        {"algorithm": "sha1", "value": synthetic("md5")},
    )
    assert response.status_code == 400
    assert "sha1: expected 40 hexadecimal" in _field_error(response, "id_value")


def test_analyst_chooses_which_hash_to_remove(analyst, entry):
    sha1 = entry.hashes.get(algorithm="sha1")
    page = _client(analyst).get(reverse("web-propose-remove-hash", args=[entry.pk]))
    assert get_algorithm("sha1").canonical(sha1.value).encode() in page.content
    response = _client(analyst).post(
        reverse("web-propose-remove-hash", args=[entry.pk]),
        {"hash": str(sha1.pk), "comment": "not this item's"},
    )
    proposal = Proposal.objects.get(kind=ProposalKind.REMOVE_HASH)
    assert response.status_code == 302
    assert proposal.payload["hash"] == ["sha1", get_algorithm("sha1").canonical(sha1.value)]
    assert proposal.comment == "not this item's"


def test_removing_a_hash_needs_a_choice_and_a_reason(analyst, entry):
    response = _client(analyst).post(reverse("web-propose-remove-hash", args=[entry.pk]), {})
    assert response.status_code == 400
    assert b"Choose the hash to remove." in response.content
    assert _field_error(response, "id_comment").startswith("Say why the hash should be removed")


def test_removing_a_hash_of_another_entry_is_refused(analyst, analyst2, reviewer2, entry):
    other = approved_entry(analyst2, reviewer2)
    response = _client(analyst).post(
        reverse("web-propose-remove-hash", args=[entry.pk]),
        {"hash": str(other.hashes.get().pk), "comment": "x"},
    )
    assert response.status_code == 400
    assert b"not on this entry any more" in response.content


def test_removing_the_only_hash_points_to_a_retraction(analyst, analyst2, reviewer2):
    single = approved_entry(analyst2, reviewer2)
    url = reverse("web-propose-remove-hash", args=[single.pk])
    page = _client(analyst).get(url)
    assert reverse("web-propose-retract", args=[single.pk]).encode() in page.content
    response = _client(analyst).post(url, {"hash": str(single.hashes.get().pk), "comment": "x"})
    assert response.status_code == 400
    assert b"propose a retraction instead" in response.content
    assert not Proposal.objects.filter(kind=ProposalKind.REMOVE_HASH).exists()


def test_retraction_needs_a_reason(analyst, entry):
    response = _client(analyst).post(
        reverse("web-propose-retract", args=[entry.pk]), {"reason": "   "}
    )
    assert response.status_code == 400
    assert _field_error(response, "id_reason").startswith("Say why the entry should be retracted")


def test_analyst_proposes_a_retraction(analyst, entry):
    response = _client(analyst).post(
        reverse("web-propose-retract", args=[entry.pk]), {"reason": "false positive"}
    )
    proposal = Proposal.objects.get(kind=ProposalKind.RETRACT)
    assert response["Location"] == reverse("web-proposal", args=[proposal.pk])
    assert proposal.comment == "false positive"


def test_a_retracted_entry_offers_no_form_and_refuses_a_change(analyst, reviewer2, entry):
    retraction = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="wrong")
    services.proposal_approve(actor=reviewer2, proposal_id=retraction.pk)
    client = _client(analyst)
    page = client.get(reverse("web-propose-regrade", args=[entry.pk]))
    assert b"is retracted" in page.content
    assert b"Propose regrade" not in page.content
    response = client.post(reverse("web-propose-retract", args=[entry.pk]), {"reason": "again"})
    assert response.status_code == 400
    assert b"it cannot be changed" in response.content
    assert Proposal.objects.filter(kind=ProposalKind.RETRACT).count() == 1


def test_the_change_pages_list_proposals_already_waiting_for_the_entry(analyst, analyst2, entry):
    waiting = services.proposal_retract(actor=analyst2, entry_id=entry.pk, reason="dup")
    page = _client(analyst).get(reverse("web-propose-regrade", args=[entry.pk]))
    assert reverse("web-proposal", args=[waiting.pk]).encode() in page.content
    assert b"1 proposal for this entry waits for review" in page.content


# --- Forms and privacy -------------------------------------------------------------------------


def test_proposing_needs_the_csrf_token(analyst, entry):
    client = signed_in(Client(enforce_csrf_checks=True), analyst)
    response = client.post(reverse("web-propose"), _new_entry_data(("md5", synthetic("md5"))))
    assert response.status_code == 403
    response = client.post(reverse("web-propose-retract", args=[entry.pk]), {"reason": "x"})
    assert response.status_code == 403
    assert not Proposal.objects.filter(status=ProposalStatus.PENDING).exists()


def test_no_hash_reaches_a_url_a_title_or_a_log(analyst, entry, caplog):
    caplog.set_level(logging.DEBUG)
    md5, bad = synthetic("md5"), synthetic("sha1")
    client = _client(analyst)
    made = client.post(reverse("web-propose"), _new_entry_data(("md5", md5)))
    refused = client.post(reverse("web-propose"), _new_entry_data(("md5", bad)))
    page = client.get(made["Location"])
    held = get_algorithm("md5").canonical(entry.hashes.get(algorithm="md5").value)
    clash = client.post(
        reverse("web-propose-add-hash", args=[entry.pk]), {"algorithm": "md5", "value": held}
    )
    assert refused.status_code == 400 and clash.status_code == 400
    assert md5 not in made["Location"]
    assert md5.encode() in page.content  # shown in the body, for the reviewer
    for response in (refused, page, clash):
        assert md5 not in _title(response) and bad not in _title(response)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in (md5, bad, held):
        assert value not in logged
