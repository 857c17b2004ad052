"""Facts and framework rules through the services and the API: an analyst records facts once,
the stored fields follow them, a rule change is a reviewed proposal that becomes the next
version, and every role is allowed or refused as it should be. Synthetic hashes only."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from hashlist import framework_store, services
from hashlist.frameworks.initial import FRAMEWORKS
from hashlist.models import Entry, FrameworkVersion, ProposalKind
from hashsync.errors import Conflict, FourEyesViolation, InvalidInput, NotFound, PermissionDenied
from tests.conftest import synthetic
from tests.utils import assert_error, audit_events_since, last_audit_seq

pytestmark = pytest.mark.django_db

SEEN = {
    "pubertal_stage": "prepubescent",
    "activity": "penetrative",
    "origin": "real",
    "self_generated": "no",
}


def _create(actor: Any, *, grading: dict[str, Any] | None = None, facts: Any = None) -> Any:
    return services.proposal_create_entry(
        actor=actor,
        grading={"age_group": "3-6", **(grading or {})},
        facts=facts,
        hashes=[{"algorithm": "md5", "value": synthetic("md5")}],
        source="synthetic-test",
    )


def _approved(analyst: Any, reviewer: Any, **kwargs: Any) -> Entry:
    proposal = _create(analyst, **kwargs)
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    return Entry.objects.get(proposals=proposal)


def test_recorded_facts_fill_every_stored_field_they_determine(analyst, reviewer) -> None:
    entry = _approved(analyst, reviewer, facts=SEEN)
    assert (entry.category, entry.baseline, entry.industry_class) == ("A", True, "A1")
    assert framework_store.facts_of(entry) == {
        **SEEN,
        "age_group": "3-6",
        "content_type": "image",
    }
    classes = framework_store.classes_of(
        framework_store.facts_of(entry), framework_store.definitions()
    )
    assert classes == {
        "uk": "A",
        "interpol-baseline": "yes",
        "industry": "A1",
        "us-2256": "explicit",
    }


def test_facts_that_determine_nothing_leave_the_analysts_fields(analyst, reviewer) -> None:
    entry = _approved(
        analyst, reviewer, grading={"category": "B", "industry_class": ""}, facts={"origin": "real"}
    )
    assert (entry.category, entry.baseline, entry.industry_class) == ("B", None, "")
    assert entry.activity == "unknown"


def test_a_stored_field_that_contradicts_the_facts_is_refused(analyst) -> None:
    before = last_audit_seq()
    with pytest.raises(InvalidInput) as caught:
        _create(analyst, grading={"category": "C"}, facts=SEEN)
    assert caught.value.code == "grading_disagrees_with_facts"
    assert "category" in caught.value.message
    assert last_audit_seq() == before


def test_age_group_given_twice_differently_is_refused(analyst) -> None:
    with pytest.raises(InvalidInput) as caught:
        _create(analyst, facts={**SEEN, "age_group": "14-15"})
    assert caught.value.code == "grading_disagrees_with_facts"


def test_without_facts_or_a_category_the_create_is_refused(analyst) -> None:
    with pytest.raises(InvalidInput, match="category is required"):
        _create(analyst, facts={"origin": "real"})


def test_a_regrade_of_facts_alone_changes_the_derived_fields(analyst, reviewer) -> None:
    entry = _approved(analyst, reviewer, facts=SEEN)
    proposal = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, facts={"activity": "non_penetrative"}
    )
    assert proposal.payload["facts"]["activity"] == "non_penetrative"
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    entry.refresh_from_db()
    assert (entry.category, entry.baseline, entry.industry_class) == ("B", True, "A1")
    change = entry.changes.order_by("-id").first()
    assert change is not None and change.state_after is not None
    assert change.state_after.activity == "non_penetrative"
    assert change.state_before is not None and change.state_before.activity == "penetrative"


def test_a_regrade_that_changes_nothing_is_refused(analyst, reviewer) -> None:
    entry = _approved(analyst, reviewer, facts=SEEN)
    with pytest.raises(InvalidInput, match="same"):
        services.proposal_regrade(actor=analyst, entry_id=entry.pk, facts={"origin": "real"})


# --- framework rules ----------------------------------------------------------------------------


def _uk_with_nudity_out() -> dict[str, Any]:
    """UK rules in which nudity without sexual activity is no longer category C (a made-up
    change, to see a rule change through)."""
    definition = copy.deepcopy(FRAMEWORKS["uk"]["definition"])
    definition["rules"][2]["when"]["activity"] = ["lascivious_exhibition", "other"]
    return definition


def test_a_rule_change_is_a_new_version_once_another_person_approves(analyst, reviewer) -> None:
    proposal = services.proposal_framework(
        actor=analyst, framework="uk", definition=_uk_with_nudity_out(), comment="test change"
    )
    assert proposal.kind == ProposalKind.FRAMEWORK
    assert framework_store.definitions()["uk"].to_json() == FRAMEWORKS["uk"]["definition"]
    seq = last_audit_seq()
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    newest = FrameworkVersion.objects.filter(framework__slug="uk").order_by("-version").first()
    assert newest is not None and (newest.version, newest.proposal_id) == (2, proposal.pk)
    assert [e.action for e in audit_events_since(seq)] == ["framework.version", "proposal.approve"]
    facts = {**framework_store.facts_of(Entry(age_group="3-6")), "activity": "nudity_posing"}
    assert framework_store.classes_of(facts, framework_store.definitions())["uk"] == "unassessed"


def test_the_author_of_a_rule_change_cannot_approve_it(reviewer) -> None:
    proposal = services.proposal_framework(
        actor=reviewer, framework="uk", definition=_uk_with_nudity_out(), comment="test change"
    )
    with pytest.raises(FourEyesViolation):
        services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    assert FrameworkVersion.objects.filter(framework__slug="uk").count() == 1


def test_a_rule_change_made_against_an_older_version_is_refused(
    analyst, analyst2, reviewer
) -> None:
    first = services.proposal_framework(
        actor=analyst, framework="uk", definition=_uk_with_nudity_out(), comment="one"
    )
    other = copy.deepcopy(FRAMEWORKS["uk"]["definition"])
    other["rules"][0]["source"] = "a corrected citation"
    second = services.proposal_framework(
        actor=analyst2, framework="uk", definition=other, comment="two"
    )
    services.proposal_approve(actor=reviewer, proposal_id=first.pk)
    with pytest.raises(Conflict) as caught:
        services.proposal_approve(actor=reviewer, proposal_id=second.pk)
    assert caught.value.code == "proposal_stale"
    assert FrameworkVersion.objects.filter(framework__slug="uk").count() == 2


@pytest.mark.parametrize(
    ("framework", "definition", "error", "code"),
    [
        ("uk", FRAMEWORKS["uk"]["definition"], InvalidInput, "framework_unchanged"),
        ("uk", {"classes": ["A"], "rules": "all"}, InvalidInput, "invalid_framework_rules"),
        ("narnia", FRAMEWORKS["uk"]["definition"], NotFound, "framework_not_found"),
        (None, FRAMEWORKS["uk"]["definition"], NotFound, "framework_not_found"),
    ],
)
def test_bad_rule_changes_are_refused(analyst, framework, definition, error, code) -> None:
    before = last_audit_seq()
    with pytest.raises(error) as caught:
        services.proposal_framework(
            actor=analyst, framework=framework, definition=definition, comment="x"
        )
    assert caught.value.code == code
    assert last_audit_seq() == before


@pytest.mark.parametrize("role", ["auditor", "member_admin", "outsider"])
def test_only_staff_who_propose_may_propose_rule_changes(request, role) -> None:
    with pytest.raises(PermissionDenied):
        services.proposal_framework(
            actor=request.getfixturevalue(role),
            framework="uk",
            definition=_uk_with_nudity_out(),
            comment="x",
        )


# --- the API ------------------------------------------------------------------------------------


def test_api_creates_an_entry_from_facts_and_shows_its_classes(api, analyst, reviewer) -> None:
    body = {
        "age_group": "3-6",
        "content_type": "image",
        "facts": SEEN,
        "hashes": [{"algorithm": "md5", "value": synthetic("md5")}],
    }
    response = api(analyst).post(reverse("propose-create"), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["payload"]["grading"]["category"] == "A"
    proposal_id = response.json()["id"]
    api(reviewer).post(reverse("proposal-approve", args=[proposal_id]), {}, format="json")
    entry = Entry.objects.get(proposals=proposal_id)
    shown = api(analyst).get(f"/api/v1/entries/{entry.pk}/").json()
    assert shown["facts"]["activity"] == "penetrative"
    assert shown["classes"] == {
        "uk": "A",
        "interpol-baseline": "yes",
        "industry": "A1",
        "us-2256": "explicit",
    }
    listed = api(analyst).get("/api/v1/entries/").json()
    assert listed["results"][0]["classes"]["industry"] == "A1"


@pytest.mark.parametrize(
    "facts",
    [{"activity": "dancing"}, {"origin": ["real"]}, "real", {"activity": "x" * 300}],
)
def test_api_refuses_bad_facts_with_a_json_error(api, analyst, facts) -> None:
    body = {
        "age_group": "3-6",
        "category": "A",
        "facts": facts,
        "hashes": [{"algorithm": "md5", "value": synthetic("md5")}],
    }
    response = api(analyst).post(reverse("propose-create"), body, format="json")
    error = assert_error(response, 400)
    assert "x" * 300 not in error["message"]


def test_api_regrades_facts(api, analyst, reviewer) -> None:
    entry = _approved(analyst, reviewer, facts=SEEN)
    body = {"entry": entry.pk, "facts": {"pubertal_stage": "pubescent"}}
    response = api(analyst).post(reverse("propose-regrade"), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["payload"]["grading"]["industry_class"] == "B1"
    empty = api(analyst).post(reverse("propose-regrade"), {"entry": entry.pk}, format="json")
    assert_error(empty, 400, "invalid_input")


VIEWERS = ["analyst", "reviewer", "auditor"]


@pytest.mark.parametrize("role", [*VIEWERS, "member_admin", "outsider"])
def test_frameworks_are_shown_to_staff_who_read_entries(request, api, role) -> None:
    response = api(request.getfixturevalue(role)).get(reverse("framework-list"))
    if role in VIEWERS:
        assert response.status_code == 200
        assert [f["slug"] for f in response.json()] == sorted(FRAMEWORKS)
    else:
        assert_error(response, 403)


@pytest.mark.parametrize("role", [*VIEWERS, "member_admin", "outsider"])
def test_auditors_see_every_version_and_who_approved_it(
    request, api, analyst2, reviewer2, role
) -> None:
    proposal = services.proposal_framework(
        actor=analyst2, framework="uk", definition=_uk_with_nudity_out(), comment="test change"
    )
    services.proposal_approve(actor=reviewer2, proposal_id=proposal.pk)
    response = api(request.getfixturevalue(role)).get(reverse("framework-versions", args=["uk"]))
    if role not in VIEWERS:
        assert_error(response, 403)
        return
    versions = response.json()
    assert [(v["version"], v["author"], v["reviewer"]) for v in versions] == [
        (2, analyst2.username, reviewer2.username),
        (1, None, None),
    ]
    missing = api(request.getfixturevalue(role)).get(reverse("framework-versions", args=["x"]))
    assert_error(missing, 404, "framework_not_found")


def test_api_proposes_a_rule_change_and_refuses_bad_rules(
    api: Callable[[Any], Any], analyst
) -> None:
    url = reverse("propose-framework")
    body = {"framework": "uk", "definition": _uk_with_nudity_out(), "comment": "why"}
    assert api(analyst).post(url, body, format="json").status_code == 201
    bad = {**body, "definition": {"classes": ["A"], "rules": [{"when": 1}]}}
    assert_error(api(analyst).post(url, bad, format="json"), 400, "invalid_framework_rules")
    assert_error(api(analyst).post(url, {"framework": "uk"}, format="json"), 400)


# --- the report ---------------------------------------------------------------------------------


def test_grading_report_lists_disagreeing_and_unassessed_entries(analyst, reviewer) -> None:
    agreeing = _approved(analyst, reviewer, facts=SEEN)
    unknown = _approved(analyst, reviewer, grading={"category": "A"})
    # Stored fields that contradict each other, as the list held before facts: written behind
    # the services' back (the services now refuse it).
    contradicting = _approved(analyst, reviewer, grading={"category": "C"})
    Entry.objects.filter(pk=contradicting.pk).update(industry_class="A1")

    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("grading_report", "--json", "--unassessed", "industry", stdout=out)
    assert exited.value.code == 1
    report = json.loads(out.getvalue())
    assert report["disagreeing_entries"] == 1
    assert report["disagreements"][0]["entry_ids"] == [contradicting.pk]
    assert report["unassessed"]["uk"] == 2  # no activity recorded: the two graded by hand
    assert report["unassessed_entries"]["industry"] == [unknown.pk, contradicting.pk]
    assert agreeing.pk not in report["unassessed_entries"]["industry"]
