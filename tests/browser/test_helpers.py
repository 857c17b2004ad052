"""The page-test helpers: screenshots named after page and role, the fast signed-in context, and
signing in through the pages with a second factor, for the users the role factory makes."""

from __future__ import annotations

import struct

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from accounts.second_factor import totp_device
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER
from tests.browser.helpers import shoot, sign_in, totp_code
from tests.factories import staff_user


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def session_of(context):
    (cookie,) = [c for c in context.cookies() if c["name"] == "sessionid"]
    return SessionStore(session_key=cookie["value"])


def test_shoot_saves_the_whole_page_named_after_page_and_role(
    page, base_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("HASHSYNC_SCREENSHOTS_DIR", str(tmp_path))
    page.route(
        f"{base_url}/harness/tall",
        lambda route: route.fulfill(
            content_type="text/html",
            body="<!doctype html><html lang='en'><title>t</title><body style='margin:0'>"
            "<div style='height:2500px'></div>",
        ),
    )
    page.goto("/harness/tall")

    path = shoot(page, "tall-page")

    assert path == tmp_path / "tall-page--anonymous.png"
    assert png_size(path) == (1366, 2500)  # a laptop's width, the page's full height


@pytest.mark.parametrize("name", ["Front", "review--queue", "../front", ""])
def test_shoot_refuses_a_name_that_would_break_the_naming(page, name):
    with pytest.raises(ValueError, match="slugs"):
        shoot(page, name)


def test_role_factory_gives_a_second_factor_to_the_roles_that_need_one(db):
    with_device = {
        role: totp_device(staff_user(role)) is not None
        for role in (ANALYST, REVIEWER, MEMBER_ADMIN, AUDITOR, None)
    }

    assert with_device == {
        ANALYST: False,
        REVIEWER: True,
        MEMBER_ADMIN: True,
        AUDITOR: True,
        None: False,
    }


def test_totp_code_is_accepted_even_when_this_steps_code_was_used(db):
    device = totp_device(staff_user(REVIEWER))

    assert device.verify_token(totp_code(device))
    assert device.verify_token(totp_code(device))  # replay protection refuses the same code


@pytest.mark.parametrize("role", [ANALYST, REVIEWER])
def test_a_signed_in_context_is_the_users_session_past_its_second_factor(open_page, role):
    user = staff_user(role)

    page = open_page(user)
    page.goto("/admin/")

    # The admin knows who is signed in, though staff roles may not use it.
    assert f"You are authenticated as {user.username}" in page.inner_text("body")
    session = session_of(page.context)
    assert session[SESSION_KEY] == str(user.pk)
    device = totp_device(user)
    assert session.get("otp_device_id") == (device.persistent_id if device else None)


@pytest.mark.parametrize("role", [ANALYST, REVIEWER])
def test_signing_in_through_the_pages_lands_on_the_front_page(page, base_url, role):
    user = staff_user(role)

    sign_in(page, user)

    assert page.url == f"{base_url}/"
    session = session_of(page.context)
    assert session[SESSION_KEY] == str(user.pk)
    device = totp_device(user)
    assert session.get("otp_device_id") == (device.persistent_id if device else None)


def test_signing_in_goes_on_to_the_page_asked_for(page, base_url):
    user = staff_user(AUDITOR)

    sign_in(page, user, next_url="/account/")

    assert page.url == f"{base_url}/account/"


def test_signing_in_with_a_wrong_password_fails_saying_what_the_page_said(page, browser_problems):
    user = staff_user(ANALYST)

    with pytest.raises(AssertionError, match=r"stopped at .*/login/: .*password"):
        sign_in(page, user, password="not-the-password")
    # The answer, and the browser's own console line about it.
    assert len(browser_problems.expect(r"400\b.*/login/")) == 2
