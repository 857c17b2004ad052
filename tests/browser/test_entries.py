"""The entry page in a real browser: hashes with working copy buttons, the history, the links to
propose a change, and each role's page photographed (``entry--<role>.png``). Synthetic data
only."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.browse_data import a_list_with_history
from tests.browser.helpers import shoot


@pytest.mark.parametrize("role", ["analyst", "reviewer", "auditor"])
def test_the_entry_page_renders_for_the_roles_that_read_entries(open_page, role):
    listing = a_list_with_history()
    page = open_page(listing.users[role])

    page.goto(f"/entries/{listing.entry.pk}/")

    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Entry {listing.entry.pk}")
    history = page.locator("ol.history > li")
    expect(history).to_have_count(5)  # created, regraded, rejected, pending, disputed
    expect(page.get_by_text("Waiting for review on this entry:")).to_be_visible()
    propose = page.get_by_role("link", name="Regrade")
    expect(propose).to_have_count(0 if role == "auditor" else 1)
    shoot(page, "entry")


@pytest.mark.parametrize("role", ["member_admin", "no-role"])
def test_the_entry_page_is_refused_in_words_to_other_roles(open_page, browser_problems, role):
    listing = a_list_with_history()
    page = open_page(listing.users[role])

    page.goto(f"/entries/{listing.entry.pk}/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    shoot(page, "entry")
    browser_problems.expect(rf"403\b.*/entries/{listing.entry.pk}/")


def test_the_copy_button_puts_the_hash_on_the_clipboard(open_page):
    listing = a_list_with_history()
    page = open_page(listing.users["analyst"])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"/entries/{listing.entry.pk}/")

    button = page.get_by_role("button", name="Copy the MD5 hash").first
    button.click()

    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == listing.md5


def test_a_propose_link_leads_to_the_form_for_this_entry(open_page):
    listing = a_list_with_history()
    page = open_page(listing.users["analyst"])
    page.goto(f"/entries/{listing.entry.pk}/")

    page.get_by_role("link", name="Add a hash").click()

    expect(page).to_have_url(
        f"{page.url.split('/entries/')[0]}/entries/{listing.entry.pk}/add-hash/"
    )
