"""Four-eyes in a real browser, end to end: an analyst proposes an entry and sees it pending; a
reviewer approves it with a reason and the release carrying it appears on the dashboard; the
author, even a reviewer, cannot approve their own. Pages photographed as ``propose``,
``proposal-pending``, ``review-queue``, ``proposal-approved``, ``proposal-own``.
Synthetic hashes only."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from hashlist.models import Proposal, ProposalStatus
from hashsync.roles import ANALYST, REVIEWER
from tests.browser.helpers import shoot
from tests.conftest import synthetic
from tests.factories import propose_entry, staff_user


def _propose(page: Page, md5: str) -> None:
    page.goto("/propose/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Propose")
    page.get_by_label("Algorithm").first.select_option("md5")
    page.get_by_label("Value").first.fill(md5)
    page.get_by_label("Category").select_option("B")
    page.get_by_label("Age group").select_option(index=1)
    page.get_by_label("Source").fill("synthetic browser test")
    shoot(page, "propose")
    page.get_by_role("button", name="Propose entry", exact=True).last.click()


def test_an_analyst_proposes_and_a_reviewer_approves_into_a_release(open_page):
    analyst, reviewer = staff_user(ANALYST), staff_user(REVIEWER)
    md5 = synthetic("md5")

    author = open_page(analyst)
    _propose(author, md5)

    expect(author.get_by_text("Pending review", exact=True)).to_be_visible()
    assert md5 not in author.url and md5.lower() not in author.title().lower()
    shoot(author, "proposal-pending")
    proposal = Proposal.objects.get(author=analyst)
    assert proposal.status == ProposalStatus.PENDING
    author.goto("/")
    expect(author.locator("main")).to_contain_text(f"Proposal {proposal.pk}")

    second = open_page(reviewer)
    second.goto("/review/")
    queue = second.get_by_role("main")
    expect(queue).to_contain_text(analyst.username)
    shoot(second, "review-queue")
    second.get_by_role("link", name=re.compile(rf"\b{proposal.pk}\b")).first.click()
    expect(second.get_by_role("button", name="Approve")).to_be_visible()
    second.locator("form", has=second.get_by_role("button", name="Approve")).get_by_label(
        re.compile("reason", re.I)
    ).fill("Checked against the synthetic source: category B stands.")
    second.get_by_role("button", name="Approve").click()
    expect(second.get_by_text(f"Proposal {proposal.pk} approved")).to_be_visible()
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPROVED
    assert proposal.reviewer == reviewer
    assert proposal.review_reason == "Checked against the synthetic source: category B stands."

    second.goto(f"/proposals/{proposal.pk}/")
    expect(second.get_by_text("Approved", exact=True).first).to_be_visible()
    expect(second.locator("main")).to_contain_text("category B stands")
    shoot(second, "proposal-approved")

    # The approval is released (tasks run in-process here) and the dashboard says so.
    second.goto("/")
    release = second.locator("section", has=second.get_by_role("heading", name="Latest release"))
    expect(release).to_contain_text("Version 1")
    expect(release).to_contain_text("with 1 change")
    expect(release).not_to_contain_text("No release yet")


def test_the_author_cannot_approve_their_own_proposal(open_page):
    author = staff_user(REVIEWER)
    proposal = propose_entry(author)
    page = open_page(author)

    page.goto(f"/proposals/{proposal.pk}/")

    own = page.get_by_text("You proposed this, so you cannot approve or reject it")
    expect(own).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    expect(page.get_by_role("button", name="Withdraw my proposal")).to_be_visible()
    shoot(page, "proposal-own")
    page.goto("/review/")
    expect(page.get_by_role("link", name=re.compile(rf"\b{proposal.pk}\b"))).to_have_count(0)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
