"""Helpers for page tests: contexts like a staff member's laptop, signing in (by typing, or the
fast way), second-factor codes, and screenshots for people to judge."""

from __future__ import annotations

import os
import re
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.utils import timezone
from django.utils.module_loading import import_string
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from playwright.sync_api import Browser, BrowserContext, Page

from accounts.policy import SIGNED_IN_AT, mark_password_checked
from accounts.second_factor import totp_device

REPOSITORY = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1366, "height": 900}  # a laptop: what the hotline's staff work on
ANONYMOUS = "anonymous"

# The role each signed-in context was opened for, so a screenshot is named after it.
_context_roles: weakref.WeakKeyDictionary[BrowserContext, str] = weakref.WeakKeyDictionary()


def screenshots_dir() -> Path:
    return Path(os.environ.get("HASHSYNC_SCREENSHOTS_DIR") or REPOSITORY / "var" / "screenshots")


def role_of(user: Any) -> str:
    """The name a user's pages are filed under: their roles, or ``no-role``."""
    names = sorted(user.groups.values_list("name", flat=True))
    return "+".join(names) or "no-role"


def new_context(browser: Browser, base_url: str, *, role: str = ANONYMOUS) -> BrowserContext:
    """A fresh context (no cookies) at the live server, with a laptop's screen and UTC clock."""
    context = browser.new_context(
        base_url=base_url,
        viewport=VIEWPORT,  # type: ignore[arg-type]
        locale="en-GB",
        timezone_id="UTC",
    )
    _context_roles[context] = role
    return context


def shoot(page: Page, name: str, *, role: str | None = None) -> Path:
    """Save a full-page screenshot as ``<name>--<role>.png`` in the screenshots folder
    (``HASHSYNC_SCREENSHOTS_DIR``, default ``var/screenshots/``). ``role`` defaults to the role
    the page's context was signed in for, or ``anonymous``."""
    role = role or _context_roles.get(page.context, ANONYMOUS)
    for part in (name, role):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_+-]*", part) or "--" in part:
            raise ValueError(f"screenshot names are lower-case slugs without '--', not {part!r}")
    path = screenshots_dir() / f"{name}--{role}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
    return path


# --- second factor ------------------------------------------------------------------------------
def totp_code(device: Any) -> str:
    """A code the device accepts now, as an authenticator app would show it.

    A device refuses a code of a time step it has already accepted (replay protection); when
    this step's code is spent, the next step's is given, which the device's tolerance of one
    step accepts."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    if totp.t() <= device.last_t:
        step = device.last_t + 1
        if step > totp.t() + device.tolerance:
            raise AssertionError("the device has used up the codes of the next steps")
        totp.time = device.t0 + (step + device.drift) * device.step
    return f"{totp.token():0{device.digits}d}"


# --- signing in ---------------------------------------------------------------------------------
def sign_in(page: Page, user: Any, *, password: str | None = None, next_url: str = "") -> None:
    """Sign in through the pages, as a person does: the login form, then the second step if the
    user has a device. ``password`` defaults to the one ``tests.factories.staff_user`` set.
    Fails, with what the page said, if the sign-in does not get past the login pages."""
    page.goto("/login/" + (f"?{urlencode({'next': next_url})}" if next_url else ""))
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password or user.plain_password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    device = totp_device(user)
    if device is not None and urlsplit(page.url).path == "/login/verify/":
        page.fill("#id_otp_token", totp_code(device))
        with page.expect_navigation():
            page.get_by_role("button", name="Verify").click()
    if urlsplit(page.url).path.startswith("/login/"):
        said = " ".join(page.inner_text("main").split())
        raise AssertionError(f"signing in as {user.get_username()} stopped at {page.url}: {said}")


def _session_backend() -> str:
    # As Django's test client chooses: the first backend that can load a session's user (a
    # lockout backend in front of it only refuses passwords).
    for path in settings.AUTHENTICATION_BACKENDS:
        if hasattr(load_backend(path), "get_user"):
            return path
    raise AssertionError("no authentication backend loads users from sessions")


def signed_in_session(user: Any) -> Any:
    """A saved session for ``user`` as the login and verify views would leave it (Django's
    keys, the sign-in policy's clocks, django-otp's verified device if the user has one),
    without their audit events."""
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = _session_backend()
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[SIGNED_IN_AT] = timezone.now().timestamp()
    mark_password_checked(store)
    device = totp_device(user)
    if device is not None:
        store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store.save()
    return store


def signed_in_context(browser: Browser, live_server: Any, user: Any) -> BrowserContext:
    """A new context already signed in as ``user``, second factor passed if the user has one
    (``signed_in_session``'s cookie): for the many tests that are not about signing in."""
    session = signed_in_session(user)
    context = new_context(browser, live_server.url, role=role_of(user))
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key or "",
                "url": live_server.url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    return context
