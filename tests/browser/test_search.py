"""The search page in a real browser: a hash pasted in another form than the stored one finds
its entry without the hash reaching the address bar, a value that is not a hash is refused
next to the field, the list is worked from the keyboard, and each role's page is photographed
(``search--<role>.png``, ``search-result--…``, ``search-refused--…``). Synthetic data only."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.browse_data import a_list_with_history
from tests.browser.helpers import shoot


@pytest.mark.parametrize("role", ["analyst", "reviewer", "auditor"])
def test_the_search_page_renders_for_the_roles_that_read_entries(open_page, role):
    listing = a_list_with_history()
    page = open_page(listing.users[role])

    page.goto("/search/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Search")
    expect(page.locator("table[data-keyboard-list] tbody tr")).to_have_count(4)
    shoot(page, "search")


@pytest.mark.parametrize("role", ["member_admin", "no-role"])
def test_the_search_page_is_refused_in_words_to_other_roles(open_page, browser_problems, role):
    listing = a_list_with_history()
    page = open_page(listing.users[role])

    page.goto("/search/")

    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    shoot(page, "search")
    browser_problems.expect(r"403\b.*/search/")


def test_a_pasted_hash_finds_its_entry_and_stays_out_of_the_address(open_page):
    listing = a_list_with_history()
    page = open_page(listing.users["analyst"])
    page.goto("/search/")

    page.get_by_label("Hash", exact=True).fill(listing.md5.upper())
    page.get_by_role("button", name="Search").click()

    result = page.locator(".search-result")
    expect(result).to_contain_text("1 entry holds this hash")
    expect(result.get_by_role("link", name=f"Entry {listing.entry.pk}")).to_be_visible()
    assert listing.md5 not in page.url.lower()
    assert listing.md5 not in page.title().lower()
    shoot(page, "search-result")


def test_a_value_that_is_not_a_hash_is_refused_next_to_the_field(open_page, browser_problems):
    listing = a_list_with_history()
    page = open_page(listing.users["reviewer"])
    page.goto("/search/")

    page.get_by_label("Hash", exact=True).fill("not a hash at all")
    page.get_by_role("button", name="Search").click()

    expect(page.locator(".field.has-error .error")).to_contain_text(
        "That is not a hash in any accepted form"
    )
    expect(page.locator(".error-summary")).to_be_focused()
    shoot(page, "search-refused")
    browser_problems.expect(r"400\b.*/search/")


def test_the_list_is_worked_from_the_keyboard(open_page):
    listing = a_list_with_history()
    page = open_page(listing.users["analyst"])
    page.goto("/search/?category=B")
    rows = page.locator("table[data-keyboard-list] tbody tr")
    expect(rows).to_have_count(2)

    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bselected\b"))
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/entries/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Entry")
