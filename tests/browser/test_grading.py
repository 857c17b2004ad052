"""Facts and framework classes in a real browser: an analyst records what an image shows, and
the reviewer sees the class in every framework before approving. Pages photographed as
``propose-facts`` and ``proposal-classes``. Synthetic hashes only."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from hashlist.models import Entry, Proposal
from hashsync.roles import ANALYST, REVIEWER
from tests.browser.helpers import shoot
from tests.conftest import synthetic
from tests.factories import staff_user


def test_analyst_records_facts_and_reviewer_sees_every_framework(open_page):
    analyst, reviewer = staff_user(ANALYST), staff_user(REVIEWER)
    page = open_page(analyst)
    page.goto("/propose/")
    page.get_by_label("Algorithm").first.select_option("md5")
    page.get_by_label("Value").first.fill(synthetic("md5"))
    page.get_by_label("Most serious activity").select_option("penetrative")
    page.get_by_label("Pubertal stage").select_option("prepubescent")
    page.get_by_label("Real or computer-generated").select_option("real")
    page.get_by_label("Age group").select_option("3-6")
    shoot(page, "propose-facts")
    page.get_by_role("button", name="Propose entry", exact=True).last.click()
    expect(page.get_by_text("Pending review", exact=True)).to_be_visible()
    proposal = Proposal.objects.get(author=analyst)

    second = open_page(reviewer)
    second.goto(f"/proposals/{proposal.pk}/")
    main = second.get_by_role("main")
    expect(main).to_contain_text("Classes under the current rules")
    expect(main).to_contain_text(re.compile(r"INTERPOL Baseline \(v1\)\s*yes"))
    expect(main).to_contain_text(re.compile(r"Industry classification A1/A2/B1/B2 \(v1\)\s*A1"))
    shoot(second, "proposal-classes")
    second.get_by_role("button", name="Approve").click()
    entry = Entry.objects.get(proposals=proposal)
    assert (entry.category, entry.baseline, entry.industry_class) == ("A", True, "A1")
