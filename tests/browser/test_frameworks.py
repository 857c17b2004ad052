"""The grading frameworks' pages in a real browser: an analyst checks and proposes a rule
change, the reviewer sees its rule diff and "regrades N entries" and approves it, an auditor
reads the framework's versions, and an analyst works the list of unassessed entries.
Photographed as ``frameworks``, ``framework-propose-error``, ``framework-propose-check``,
``framework-review``, ``framework-versions``, ``unassessed-index`` and ``unassessed-list``.
Synthetic data only (entries without hashes; no hash value appears on these pages)."""

from __future__ import annotations

import copy
import json
import re

from playwright.sync_api import expect

from hashlist.frameworks.initial import FRAMEWORKS
from hashlist.models import Entry, FrameworkVersion, Proposal, ProposalKind
from hashsync.roles import ANALYST, AUDITOR, REVIEWER
from tests.browser.helpers import shoot
from tests.factories import staff_user


def _entries(count: int, **facts: str) -> None:
    Entry.objects.bulk_create(
        [Entry(category="B", age_group="7-10", **facts) for _ in range(count)]
    )


def test_rule_change_is_checked_proposed_reviewed_and_read_by_an_auditor(
    open_page, browser_problems
):
    analyst, reviewer, auditor = staff_user(ANALYST), staff_user(REVIEWER), staff_user(AUDITOR)
    _entries(4, activity="non_penetrative")
    _entries(2, activity="penetrative")

    page = open_page(analyst)
    page.goto("/frameworks/")
    expect(page.get_by_role("heading", name="Grading frameworks")).to_be_visible()
    shoot(page, "frameworks")
    page.get_by_role("link", name="UK categories A/B/C").click()
    page.get_by_role("link", name="Propose a rule change").click()

    box = page.get_by_label("Rules (JSON)")
    box.fill('{"classes": ["A"], "rules": [}')
    page.get_by_role("button", name="Check the change").click()
    expect(page.get_by_role("alert")).to_contain_text("Not valid JSON (line 1, column 30)")
    shoot(page, "framework-propose-error")
    browser_problems.expect(r"400\b.*/frameworks/uk/propose/")  # the refused rules, on purpose

    changed = copy.deepcopy(FRAMEWORKS["uk"]["definition"])
    changed["rules"][0]["when"]["activity"].append("non_penetrative")
    changed["rules"][0]["source"] += "; synthetic example of a change"
    page.get_by_label("Rules (JSON)").fill(json.dumps(changed, indent=2))
    page.get_by_role("button", name="Check the change").click()
    expect(page.locator("#preview")).to_contain_text("This rule change regrades 4 entries")
    shoot(page, "framework-propose-check")
    page.get_by_label("Why, and the source of the change").fill(
        "Synthetic example: treat non-penetrative activity as category A."
    )
    page.get_by_role("button", name="Send for review").click()
    expect(page.get_by_role("main")).to_contain_text("version 1 → 2 (proposed)")
    proposal = Proposal.objects.get(kind=ProposalKind.FRAMEWORK)

    second = open_page(reviewer)
    second.goto(f"/proposals/{proposal.pk}/")
    main = second.get_by_role("main")
    expect(main).to_contain_text("This rule change regrades 4 entries")
    expect(main).to_contain_text("Changed")
    shoot(second, "framework-review")
    second.get_by_role("button", name="Approve").click()
    assert FrameworkVersion.objects.filter(framework__slug="uk").count() == 2

    third = open_page(auditor)
    third.goto("/frameworks/uk/")
    expect(third.get_by_role("main")).to_contain_text(f"proposal {proposal.pk}")
    expect(third.get_by_role("link", name="Propose a rule change")).to_have_count(0)
    shoot(third, "framework-versions")


def test_analyst_works_the_unassessed_list(open_page):
    analyst = staff_user(ANALYST)
    _entries(3)
    _entries(2, activity="sadism", pubertal_stage="unknown", origin="real")
    page = open_page(analyst)
    page.goto("/unassessed/")
    expect(page.get_by_role("main")).to_contain_text("Industry classification")
    shoot(page, "unassessed-index")
    page.get_by_role("row", name="Industry classification").get_by_role("link", name="5").click()
    expect(page.get_by_role("main")).to_contain_text("Pubertal stage")
    shoot(page, "unassessed-list")
    page.get_by_role("link", name="Record facts").first.click()
    expect(page).to_have_url(re.compile(r"/entries/\d+/regrade/$"))
