"""The dispute pages (web/views/disputes.py): the queue (open first, filters), a dispute's
page (the hash in the body only) and resolving it through ``members.services.feedback_resolve``
— roles, the happy paths and bad input (missing, too long, unknown, already resolved, an
unknown dispute), never a 500. Synthetic hashes only."""

from __future__ import annotations

from typing import Any

import pytest

from members.models import Feedback, FeedbackStatus
from tests.web.fleet_helpers import build_fleet, dispute

pytestmark = pytest.mark.django_db


@pytest.fixture
def disputes(analyst: Any, reviewer: Any, member_admin: Any) -> list[Feedback]:
    world = build_fleet(analyst, reviewer, member_admin)
    return [
        dispute("acme", world.entries[1], reason="synthetic: our product screenshot"),
        dispute("globex", world.entries[2], reason="synthetic: a stock photo we licensed"),
    ]


def _url(d: Feedback, action: str = "") -> str:
    return f"/disputes/{d.pk}/{action}"


@pytest.mark.parametrize("role", ["analyst", "reviewer", "auditor"])
def test_the_queue_is_open_to_analysts_reviewers_and_auditors(client_as, disputes, role):
    response = client_as(role).get("/disputes/")

    assert response.status_code == 200
    assert b"synthetic: our product screenshot" in response.content
    assert b"2</strong> disputes from members wait" in response.content


@pytest.mark.parametrize("role", ["member_admin", "outsider"])
def test_other_roles_are_refused(client_as, disputes, role):
    assert client_as(role).get("/disputes/").status_code == 403
    assert client_as(role).get(_url(disputes[0])).status_code == 403


def test_the_hash_is_in_the_body_never_in_the_title(client_as, disputes):
    d = disputes[0]
    value = bytes(d.value).hex()

    response = client_as("analyst").get(_url(d))

    body = response.content.decode()
    assert value in body
    title = body[body.index("<title>") : body.index("</title>")]
    assert value not in title
    assert f'href="/entries/{d.entry_id}/"' in body


def test_an_analyst_dismisses_a_dispute_and_goes_to_the_next_open_one(client_as, disputes):
    first, second = disputes
    response = client_as("analyst").post(
        _url(first, "resolve/"),
        {"status": "dismissed", "resolution": "Checked: it is listed right"},
    )

    assert response.status_code == 302
    assert response["Location"] == _url(second)
    first.refresh_from_db()
    assert (first.status, first.resolution) == ("dismissed", "Checked: it is listed right")


def test_upholding_stays_on_the_dispute_and_offers_the_correction(client_as, disputes):
    d = disputes[0]
    reviewer_client = client_as("reviewer")

    response = reviewer_client.post(
        _url(d, "resolve/"), {"status": "upheld", "resolution": "The member is right"}
    )

    assert response.status_code == 302 and response["Location"] == _url(d)
    page = reviewer_client.get(_url(d))
    assert b"Upholding does not change the list" in page.content
    assert f"/entries/{d.entry_id}/retract/".encode() in page.content
    d.refresh_from_db()
    assert d.status == FeedbackStatus.UPHELD


def test_resolving_the_last_open_dispute_returns_to_the_queue(client_as, disputes):
    analyst_client = client_as("analyst")
    for d in disputes:
        last = analyst_client.post(
            _url(d, "resolve/"), {"status": "dismissed", "resolution": "Listed right"}
        )
    assert last["Location"] == "/disputes/"
    queue = analyst_client.get("/disputes/")
    assert b"No member has an open dispute." in queue.content


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"resolution": "no decision"}, b"Choose upheld or dismissed."),
        ({"status": "upheld"}, b"Say what you found"),
        ({"status": "upheld", "resolution": "   "}, b"Say what you found"),
        ({"status": "open", "resolution": "x"}, b"Select a valid choice"),
        ({"status": "banana", "resolution": "x"}, b"Select a valid choice"),
        ({"status": "dismissed", "resolution": "x" * 5000}, b"at most 4000 characters"),
        ({"status": "dismissed", "resolution": "a\x00b"}, b"Null characters are not allowed"),
    ],
)
def test_bad_resolutions_are_named_next_to_the_field(client_as, disputes, data, message):
    d = disputes[0]
    response = client_as("analyst").post(_url(d, "resolve/"), data)

    assert response.status_code == 400
    assert message in response.content
    d.refresh_from_db()
    assert d.status == FeedbackStatus.OPEN


def test_a_dispute_resolved_meanwhile_is_refused_with_the_reason(client_as, disputes, reviewer):
    from members import services

    d = disputes[0]
    analyst_client = client_as("analyst")
    analyst_client.get(_url(d))  # the analyst opens the page ...
    services.feedback_resolve(actor=reviewer, feedback_id=d.pk, status="upheld", resolution="x")

    response = analyst_client.post(  # ... and decides after someone else did
        _url(d, "resolve/"), {"status": "dismissed", "resolution": "Listed right"}
    )

    assert response.status_code == 400
    assert b"This feedback is already resolved." in response.content
    d.refresh_from_db()
    assert d.status == FeedbackStatus.UPHELD


def test_auditors_read_but_cannot_resolve(client_as, disputes):
    d = disputes[0]
    page = client_as("auditor").get(_url(d))
    refused = client_as("auditor").post(
        _url(d, "resolve/"), {"status": "dismissed", "resolution": "x"}
    )

    assert b"Resolve dispute" not in page.content
    assert b"analysts and reviewers resolve them" in page.content
    assert refused.status_code == 403


def test_an_unknown_dispute_is_not_found(client_as, disputes):
    assert client_as("analyst").get("/disputes/999999/").status_code == 404
    missing = client_as("analyst").post(
        "/disputes/999999/resolve/", {"status": "dismissed", "resolution": "x"}
    )
    assert missing.status_code == 404


def test_resolve_is_post_only(client_as, disputes):
    assert client_as("analyst").get(_url(disputes[0], "resolve/")).status_code == 405


def test_open_disputes_come_first_then_filters(client_as, disputes, reviewer):
    from members import services

    services.feedback_resolve(
        actor=reviewer, feedback_id=disputes[0].pk, status="dismissed", resolution="x"
    )
    analyst_client = client_as("analyst")

    everything = analyst_client.get("/disputes/").content.decode()
    dismissed = analyst_client.get("/disputes/", {"status": "dismissed"}).content.decode()
    kind = analyst_client.get("/disputes/", {"kind": "false_positive"}).content.decode()

    assert everything.index(f"Dispute {disputes[1].pk}<") < everything.index(
        f"Dispute {disputes[0].pk}<"
    )
    assert f"Dispute {disputes[0].pk}<" in dismissed
    assert f"Dispute {disputes[1].pk}<" not in dismissed
    assert f"Dispute {disputes[1].pk}<" in kind


@pytest.mark.parametrize(
    "params", [{"status": "nope"}, {"kind": "x" * 3000}, {"status": "a\x00"}, {"page": "junk"}]
)
def test_bad_queue_parameters_give_a_normal_page(client_as, disputes, params):
    response = client_as("analyst").get("/disputes/", params)

    assert response.status_code in (200, 400)
    assert b"Dispute " in response.content


def test_the_empty_queue_says_what_happens(client_as):
    response = client_as("analyst").get("/disputes/")

    assert b"No member has disputed an entry yet." in response.content
