"""The dashboard in a real browser, for every role: it renders without errors (strict CSP, no
console errors), its imports section refreshes itself while an import runs, and each role's
page is photographed (``dashboard--<role>.png``). Synthetic data only."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hashlist.models import ImportBatch
from tests.browser.browse_data import a_list_with_history
from tests.browser.helpers import shoot

ROLES = ["analyst", "reviewer", "member_admin", "auditor", "no-role"]


@pytest.mark.parametrize("role", ROLES)
def test_the_dashboard_renders_for_each_role(open_page, role):
    listing = a_list_with_history()
    page = open_page(listing.users[role])

    page.goto("/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    if role == "no-role":
        expect(page.get_by_text("Your account has no role yet")).to_be_visible()
    else:
        expect(page.get_by_role("heading", name="Latest release")).to_be_visible()
    shoot(page, "dashboard")


def test_the_imports_section_follows_a_running_import_without_a_reload(open_page):
    listing = a_list_with_history()
    page = open_page(listing.users["reviewer"])
    page.goto("/")
    section = page.locator("#dashboard-imports")
    expect(section).to_contain_text("40% of the file read")

    ImportBatch.objects.filter(pk=listing.running_import.pk).update(bytes_processed=900)

    expect(section).to_contain_text("90% of the file read", timeout=10_000)
    ImportBatch.objects.filter(pk=listing.running_import.pk).update(status="staged")
    expect(section).to_contain_text("No import is being validated or applied", timeout=10_000)
    expect(section).not_to_have_attribute("hx-trigger", "every 3s")
