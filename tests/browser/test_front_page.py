"""The pages that exist before the staff web application: the front page and the admin's
sign-in page render in a real browser without errors, and are photographed."""

from __future__ import annotations

from tests.browser.helpers import shoot


def test_front_page_renders_without_browser_errors(page):
    page.goto("/")

    assert page.get_by_role("heading", level=1).inner_text() == "hashsync"
    assert page.get_by_role("link", name="OpenAPI schema").is_visible()
    shoot(page, "front")


def test_admin_sign_in_page_renders_without_browser_errors(page):
    page.goto("/admin/login/")

    assert page.locator("#id_username").is_visible()
    assert page.locator("#id_password").is_visible()
    shoot(page, "admin-login")
