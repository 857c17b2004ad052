"""Signing in, in a real browser: the sign-in page and its refusals, the second step, setting
up the second factor and its recovery codes, the account pages for every role, and the lockout
pages; each photographed (docs/web.md describes the flow)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from accounts.second_factor import totp_device
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER
from tests.browser.helpers import role_of, shoot, sign_in, totp_code
from tests.factories import staff_user

ROLES = [ANALYST, REVIEWER, MEMBER_ADMIN, AUDITOR, None]


def _type_password(page: Page, username: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def test_sign_in_page(page):
    page.goto("/login/")

    expect(page).to_have_title("Sign in · hashsync")
    expect(page.locator("#id_username")).to_be_focused()
    shoot(page, "login")


def test_sign_in_page_refuses_a_wrong_password_next_to_nothing_but_the_summary(
    page, browser_problems
):
    analyst = staff_user(ANALYST)

    _type_password(page, analyst.username, "not the password")

    expect(page.locator(".error-summary")).to_contain_text("username or password is not right")
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.locator("#id_username")).to_have_value(analyst.username)
    shoot(page, "login-error")
    browser_problems.expect(r"400\b.*/login/")


def test_sign_in_page_says_the_account_is_locked(page, browser_problems):
    analyst = staff_user(ANALYST)

    with override_settings(AXES_FAILURE_LIMIT=2):
        for _ in range(2):
            _type_password(page, analyst.username, "not the password")
        _type_password(page, analyst.username, analyst.plain_password)

    expect(page.locator(".error-summary")).to_contain_text("Signing in is paused")
    expect(page.locator(".error-summary")).to_contain_text("even with the right password")
    shoot(page, "login-locked")
    browser_problems.expect(r"400\b.*/login/")
    browser_problems.expect(r"429\b.*/login/")


@pytest.mark.parametrize("role", [ANALYST, REVIEWER])
def test_second_step_asks_for_the_code_then_opens_the_dashboard(page, browser_problems, role):
    user = staff_user(role, second_factor=True)

    _type_password(page, user.username, user.plain_password)
    expect(page).to_have_title("Second factor · hashsync")
    expect(page.locator("#id_otp_token")).to_be_focused()
    # Before the code, the frame offers no navigation into the work.
    expect(page.locator("nav.primary")).to_have_count(0)
    shoot(page, "verify", role=role_of(user))

    page.fill("#id_otp_token", "000000" if totp_code(totp_device(user)) != "000000" else "111111")
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()
    expect(page.locator("#id_otp_token-error")).to_contain_text("That code does not match")
    shoot(page, "verify-error", role=role_of(user))
    browser_problems.expect(r"400\b.*/login/verify/")


def test_second_step_passes_with_the_code(page):
    reviewer = staff_user(REVIEWER)

    sign_in(page, reviewer)

    expect(page.locator("nav.primary")).to_be_visible()


def test_enrolment_shows_the_qr_code_then_the_recovery_codes_once(page, browser_problems):
    reviewer = staff_user(REVIEWER, second_factor=False)

    _type_password(page, reviewer.username, reviewer.plain_password)
    expect(page.locator(".notice")).to_contain_text("Your role needs a second factor")
    expect(page.locator("figure.qr svg")).to_be_visible()
    shoot(page, "second-factor-enrol", role=role_of(reviewer))
    page.get_by_text("Cannot scan? Type the key instead").click()
    expect(page.locator(".key")).to_be_visible()

    page.fill("#id_otp_token", "12345x")
    with page.expect_navigation():
        page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#id_otp_token-error")).to_be_visible()
    shoot(page, "second-factor-enrol-error", role=role_of(reviewer))
    browser_problems.expect(r"400\b.*/account/second-factor/")

    pending = TOTPDevice.objects.get(user=reviewer, confirmed=False)
    page.fill("#id_otp_token", totp_code(pending))
    with page.expect_navigation():
        page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    shoot(page, "second-factor-codes", role=role_of(reviewer))

    page.get_by_role("link", name="I have stored them — continue").click()
    expect(page.locator("nav.primary")).to_be_visible()
    page.goto("/account/second-factor/")
    expect(page.locator("#recovery-codes")).to_have_count(0)
    expect(page.get_by_text("10 recovery codes left.")).to_be_visible()


@pytest.mark.parametrize("role", ROLES)
def test_account_pages(open_page, role):
    user = staff_user(role)
    page = open_page(user)

    for path, name in [
        ("/account/", "account"),
        ("/account/second-factor/", "second-factor"),
        ("/account/password/", "password-change"),
        ("/account/confirm-password/", "reauthenticate"),
        ("/logout/", "logout"),
    ]:
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        shoot(page, name)


def test_password_change_shows_each_problem_next_to_its_field(open_page, browser_problems):
    analyst: Any = staff_user(ANALYST)
    page = open_page(analyst)
    page.goto("/account/password/")

    page.fill("#id_old_password", "not it")
    page.fill("#id_new_password1", "short")
    page.fill("#id_new_password2", "shorter")
    with page.expect_navigation():
        page.get_by_role("button", name="Change password").click()

    expect(page.locator(".error-summary li")).to_have_count(2)
    expect(page.locator("#id_old_password-error")).to_contain_text("That is not your password.")
    expect(page.locator("#id_new_password2-error")).to_contain_text("differ")
    # The password rules stay styled as help (a list inside <p> used to escape it).
    expect(page.locator("#id_new_password1_helptext li")).to_have_count(4)
    shoot(page, "password-change-errors")
    browser_problems.expect(r"400\b.*/account/password/")


def test_confirming_the_password_too_often_wrong_pauses_password_checks(
    open_page, browser_problems
):
    analyst = staff_user(ANALYST)
    page = open_page(analyst)

    with override_settings(AXES_FAILURE_LIMIT=2):
        for _ in range(2):
            page.goto("/account/confirm-password/")
            page.fill("#id_password", "not it")
            with page.expect_navigation():
                page.get_by_role("button", name="Confirm").click()

    expect(page.locator("main h1")).to_have_text("Password checks paused")
    shoot(page, "locked")
    browser_problems.expect(r"400\b.*/account/confirm-password/")
    browser_problems.expect(r"429\b.*/account/confirm-password/")


def test_removing_the_second_factor_asks_first_and_then_sends_a_reviewer_to_set_up(open_page):
    reviewer = staff_user(REVIEWER)
    page = open_page(reviewer)
    page.goto("/account/second-factor/")
    shoot(page, "second-factor-on")
    page.once("dialog", lambda dialog: dialog.accept())

    with page.expect_navigation():
        page.get_by_role("button", name="Remove second factor").click()

    expect(page.locator(".messages")).to_contain_text("Your role needs one")
    expect(page.locator("figure.qr svg")).to_be_visible()
    assert totp_device(reviewer) is None
