"""The done-when path on the pages: an analyst records facts for a new image, and the reviewer
sees the derived class in every framework before approving, and again for a regrade of facts.
Synthetic hashes only."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from hashlist import services
from hashlist.models import Entry, Proposal
from tests.conftest import synthetic
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


def _text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def test_analyst_records_facts_and_reviewer_sees_every_class(analyst, reviewer) -> None:
    response = signed_in(Client(), analyst).post(
        reverse("web-propose"),
        {
            "hashes-TOTAL_FORMS": "1",
            "hashes-INITIAL_FORMS": "0",
            "hashes-0-algorithm": "md5",
            "hashes-0-value": synthetic("md5"),
            "age_group": "3-6",
            "content_type": "image",
            "activity": "penetrative",
            "pubertal_stage": "prepubescent",
            "origin": "real",
            "self_generated": "no",
        },
    )
    assert response.status_code == 302, _text(response.content)[:2000]
    proposal = Proposal.objects.latest("id")
    page = _text(
        signed_in(Client(), reviewer).get(reverse("web-proposal", args=[proposal.pk])).content
    )
    assert "Classes under the current rules" in page
    assert "UK categories A/B/C (v1) A" in page
    assert "INTERPOL Baseline (v1) yes" in page
    assert "Industry classification A1/A2/B1/B2 (v1) A1" in page
    assert "Most serious activity Penetrative sexual activity" in page

    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    entry = Entry.objects.get(proposals=proposal)
    regrade = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, facts={"origin": "computer_generated"}
    )
    page = _text(
        signed_in(Client(), reviewer).get(reverse("web-proposal", args=[regrade.pk])).content
    )
    assert "INTERPOL Baseline (v1) yes" in page  # before
    assert "INTERPOL Baseline (v1) no changed" in page  # after
    assert "UK categories A/B/C (v1) A" in page


def test_the_create_form_refuses_a_category_that_contradicts_the_facts(analyst) -> None:
    response = signed_in(Client(), analyst).post(
        reverse("web-propose"),
        {
            "hashes-TOTAL_FORMS": "1",
            "hashes-INITIAL_FORMS": "0",
            "hashes-0-algorithm": "md5",
            "hashes-0-value": synthetic("md5"),
            "category": "C",
            "age_group": "3-6",
            "content_type": "image",
            "activity": "sadism",
        },
    )
    assert response.status_code == 400
    assert "disagrees with the facts" in _text(response.content)
    assert not Proposal.objects.exists()
