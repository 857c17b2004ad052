"""The pages with the demo of ``make run`` behind them (``seed_demo``: weeks of SYNTHETIC
history): each renders without errors and is photographed (``demo-*--<role>.png``), so the
screenshots show what a new user sees after ``make run``, not a test's handful of rows."""

from __future__ import annotations

from django.core.management import call_command
from playwright.sync_api import expect

from hashlist.models import Change, ChangeKind
from members.models import Feedback
from tests.browser.helpers import shoot
from tests.factories import staff_user

ROLES = ["analyst", "reviewer", "member_admin", "auditor"]


def test_the_pages_show_the_demo_history(open_page):
    # Seeded first: the history must come before anything else on the audit trail.
    call_command("seed_demo", entries=40, pending=3)
    users = {role: staff_user(role) for role in ROLES}

    for role in ROLES:
        page = open_page(users[role])
        page.goto("/")
        expect(page.get_by_role("heading", name="Latest release")).to_be_visible()
        shoot(page, "demo-dashboard")

    page = open_page(users["reviewer"])
    page.goto("/review/")
    expect(page.get_by_role("link", name="Open").or_(page.locator("tbody tr"))).not_to_have_count(0)
    shoot(page, "demo-review-queue")

    upheld = Feedback.objects.get(status="upheld")
    retraction = Change.objects.get(kind=ChangeKind.RETRACT, entry=upheld.entry)
    page = open_page(users["analyst"])
    page.goto(f"/entries/{retraction.entry_id}/")
    expect(page.get_by_text("Retracted").first).to_be_visible()
    shoot(page, "demo-entry-retracted")
