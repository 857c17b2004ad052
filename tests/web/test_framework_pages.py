"""The grading frameworks' pages: proposing a rule change (good and bad input), its review
with the rule diff and "regrades N entries", the versions auditors read, and the analysts'
list of unassessed entries. Synthetic data only; hash values never appear in these pages."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from hashlist import framework_store, services
from hashlist.frameworks.initial import FRAMEWORKS
from hashlist.frameworks.rules import Definition
from hashlist.models import Entry, EntryStatus, FrameworkVersion, Proposal, ProposalKind
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


def _text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def _uk_b_becomes_a() -> dict[str, Any]:
    data = copy.deepcopy(FRAMEWORKS["uk"]["definition"])
    data["rules"][0]["when"]["activity"].append("non_penetrative")
    data["rules"][0]["source"] += " (synthetic test change)"
    return data


def _entries(**facts: str) -> list[Entry]:
    return Entry.objects.bulk_create(
        [Entry(category="B", age_group="7-10", **facts) for _ in range(3)]
    )


def _propose(client: Client, definition: Any, comment: str = "test change", **extra: str) -> Any:
    text = definition if isinstance(definition, str) else json.dumps(definition)
    return client.post(
        reverse("web-framework-propose", args=["uk"]),
        {"definition": text, "comment": comment, **extra},
    )


# --- Proposing -------------------------------------------------------------------------------


def test_propose_page_shows_the_current_rules_to_edit(analyst):
    response = signed_in(Client(), analyst).get(reverse("web-framework-propose", args=["uk"]))
    assert response.status_code == 200
    shown = response.context["form"].initial["definition"]
    assert Definition.parse(json.loads(shown)) == framework_store.definitions()["uk"]


def test_check_shows_the_rule_diff_and_the_impact_without_proposing(analyst):
    _entries(activity="non_penetrative")
    _entries(activity="penetrative")
    response = _propose(signed_in(Client(), analyst), _uk_b_becomes_a(), comment="", preview="1")
    assert response.status_code == 200
    text = _text(response.content)
    assert "This rule change regrades 3 entries" in text
    assert (
        "Changed" in text and "Most serious activity adds Non-penetrative sexual activity" in text
    )
    assert "Source reworded" in text
    assert not Proposal.objects.filter(kind=ProposalKind.FRAMEWORK).exists()


def test_sending_makes_a_proposal_and_the_review_page_shows_diff_impact_and_four_eyes(
    analyst, reviewer
):
    _entries(activity="non_penetrative")
    response = _propose(signed_in(Client(), analyst), _uk_b_becomes_a(), send="1")
    assert response.status_code == 302
    proposal = Proposal.objects.get(kind=ProposalKind.FRAMEWORK)
    assert response["Location"] == reverse("web-proposal", args=[proposal.pk])

    own = _text(signed_in(Client(), analyst).get(response["Location"]).content)
    assert "This rule change regrades 3 entries" in own
    review = signed_in(Client(), reviewer).get(response["Location"])
    text = _text(review.content)
    assert "UK categories A/B/C: version 1 → 2 (proposed)" in text
    assert "This rule change regrades 3 entries" in text
    assert "B A 3" in text  # the move: from B to A, three entries
    assert "synthetic test change" in text  # the changed rule's new source
    # No feed is published here, so no member would receive a regrade, and the page says so.
    assert review.context["impact_feeds"] == (0, 0, ())
    assert "no member receives a regrade" in text

    signed_in(Client(), reviewer).post(
        reverse("web-proposal-approve", args=[proposal.pk]), {"approve-reason": "checked"}
    )
    assert FrameworkVersion.objects.filter(framework__slug="uk").count() == 2
    versions = _text(
        signed_in(Client(), reviewer).get(reverse("web-framework", args=["uk"])).content
    )
    assert f"{analyst.username} ( proposal {proposal.pk} )" in versions
    assert f"{reviewer.username}," in versions


def test_a_stale_rule_change_says_approval_is_refused(analyst, analyst2, reviewer):
    first = services.proposal_framework(
        actor=analyst, framework="uk", definition=_uk_b_becomes_a(), comment="one"
    )
    other = copy.deepcopy(FRAMEWORKS["uk"]["definition"])
    other["rules"][2]["source"] += " (synthetic)"
    second = services.proposal_framework(
        actor=analyst2, framework="uk", definition=other, comment="two"
    )
    services.proposal_approve(actor=reviewer, proposal_id=second.pk, reason="")
    text = _text(
        signed_in(Client(), reviewer).get(reverse("web-proposal", args=[first.pk])).content
    )
    assert "Stale: the rules moved on to version 2" in text


@pytest.mark.parametrize(
    ("definition", "said"),
    [
        ("{not json", "Not valid JSON (line 1, column 2)"),
        ("[" * 100_000, "Ensure this value has at most"),
        ('{"classes": ["A"]}', "a definition is an object with exactly classes and rules."),
        (
            json.dumps(
                {
                    "classes": ["A"],
                    "rules": [{"when": {"activity": ["kissing"]}, "class": "A", "source": "x"}],
                }
            ),
            "rules[0]: when.activity must be a non-empty list of penetrative",
        ),
        (
            json.dumps({"classes": ["A"], "rules": [{"when": {}, "class": "A", "source": ""}]}),
            "rules[0]: source must say where the rule comes from",
        ),
        ("", "Give the rules"),
    ],
    ids=["syntax", "too-long", "shape", "bad-value", "no-source", "empty"],
)
def test_bad_rules_are_shown_next_to_the_field_not_a_500(definition, said, analyst):
    response = _propose(signed_in(Client(), analyst), definition, send="1")
    assert response.status_code == 400
    errors = response.context["form"].errors["definition"]
    assert any(said in e for e in errors), errors
    assert said.split(" (")[0] in _text(response.content)
    assert not Proposal.objects.filter(kind=ProposalKind.FRAMEWORK).exists()


def test_unchanged_rules_and_a_missing_reason_are_refused_clearly(analyst):
    current = FRAMEWORKS["uk"]["definition"]
    same = _propose(signed_in(Client(), analyst), current, send="1")
    assert same.status_code == 400
    assert "Those are the rules of uk version 1 already." in _text(same.content)
    no_reason = _propose(signed_in(Client(), analyst), _uk_b_becomes_a(), comment="", send="1")
    assert no_reason.status_code == 400
    assert "Say why the rules change" in _text(no_reason.content)


def test_unknown_framework_is_a_404_page(analyst):
    client = signed_in(Client(), analyst)
    for name in ("web-framework", "web-framework-propose", "web-unassessed-list"):
        assert client.get(reverse(name, args=["nope"])).status_code == 404


# --- Frameworks and versions, for auditors ---------------------------------------------------


def test_auditor_sees_every_framework_and_the_versions_but_no_propose_link(auditor):
    client = signed_in(Client(), auditor)
    listing = _text(client.get(reverse("web-frameworks")).content)
    for data in FRAMEWORKS.values():
        assert data["name"] in listing
    page = client.get(reverse("web-framework", args=["interpol-baseline"]))
    text = _text(page.content)
    assert "INTERPOL Baseline criteria (ICSE, 2013)" in text
    assert "Built in: seeded by the database migration" in text
    assert "Propose a rule change" not in text


# --- Unassessed entries ------------------------------------------------------------------------


def test_unassessed_pages_count_list_and_page_by_entry_id(analyst):
    from web.views import frameworks

    unknown = _entries()  # every fact unknown: unassessed in uk
    known = _entries(activity="penetrative")
    Entry.objects.filter(pk=unknown[0].pk).update(status=EntryStatus.RETRACTED)
    client = signed_in(Client(), analyst)

    index = _text(client.get(reverse("web-unassessed")).content)
    assert "UK categories A/B/C 2" in index

    original = frameworks.PAGE_SIZE
    frameworks.PAGE_SIZE = 1
    try:
        first = client.get(reverse("web-unassessed-list", args=["uk"]))
        rows = first.context["rows"]
        assert [r["entry_id"] for r in rows] == [unknown[1].pk]
        assert rows[0]["unknown"] == ["Most serious activity"]
        assert rows[0]["regrade_url"] == reverse("web-propose-regrade", args=[unknown[1].pk])
        assert first.context["next_url"] == f"?after={unknown[1].pk}"
        second = client.get(
            reverse("web-unassessed-list", args=["uk"]), {"after": str(unknown[1].pk)}
        )
        assert [r["entry_id"] for r in second.context["rows"]] == [unknown[2].pk]
        assert second.context["next_url"] is None
    finally:
        frameworks.PAGE_SIZE = original
    assert all(k.pk not in [r["entry_id"] for r in rows] for k in known)


@pytest.mark.parametrize("after", ["-1", "abc", "1e3", "9" * 30])
def test_bad_paging_is_a_400_page_with_the_first_page(after, analyst):
    response = signed_in(Client(), analyst).get(
        reverse("web-unassessed-list", args=["uk"]), {"after": after}
    )
    assert response.status_code == 400
    assert "after must be an integer" in _text(response.content)


def test_no_unassessed_entries_says_so(auditor):
    _entries(activity="other")
    text = _text(
        signed_in(Client(), auditor).get(reverse("web-unassessed-list", args=["uk"])).content
    )
    assert "Every active entry has a class in UK categories A/B/C" in text
