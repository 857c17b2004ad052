"""The releases, release, keyring and feeds pages in a real browser, for each role that reads
them (every staff role), with releases cut for real; the copy buttons; screenshots
``releases--<role>.png``, ``release--…``, ``keyring--…``, ``feeds--…``, ``feed--…``.
Synthetic hashes only."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from distribution.models import Feed, Manifest
from distribution.releases import release_cut
from distribution.selectors import release_latest
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER
from members import services as member_services
from tests.browser.helpers import shoot
from tests.conftest import synthetic
from tests.factories import approved_entry, staff_user

ROLES = (ANALYST, REVIEWER, MEMBER_ADMIN, AUDITOR)


def _published() -> dict[str, Any]:
    """Four feeds like the demo's, a few releases of synthetic entries, and two members."""
    analyst, reviewer, admin = staff_user(ANALYST), staff_user(REVIEWER), staff_user(MEMBER_ADMIN)
    Feed.objects.create(name="all", description="Every hash on the list, every algorithm")
    Feed.objects.create(
        name="md5-sha1-category-a",
        description="Cryptographic hashes of category A images",
        algorithms=["md5", "sha1"],
        categories=["A"],
    )
    Feed.objects.create(name="photodna-all", algorithms=["photodna"])
    Feed.objects.create(name="pdq-baseline", algorithms=["pdq"], baseline_only=True)
    release_cut()
    for category in ("A", "B", "A"):
        for _ in range(2):
            approved_entry(
                analyst,
                reviewer,
                category=category,
                hashes=[
                    {"algorithm": "md5", "value": synthetic("md5")},
                    {"algorithm": "sha1", "value": synthetic("sha1")},
                ],
            )
        release_cut()
    for name, display in (("acme", "Acme Hosting"), ("northwind", "Northwind Cloud")):
        member_services.member_create(actor=admin, name=name, display_name=display)
        member_services.entitlement_grant(actor=admin, member_name=name, feed="md5-sha1-category-a")
    member_services.licence_grant(actor=admin, member_name="acme", kind="photodna")
    member_services.entitlement_grant(actor=admin, member_name="acme", feed="photodna-all")
    # Each approval also asks for a cut (after commit), so count what was published.
    latest = release_latest()
    assert latest is not None
    return {"latest": latest.version}


@pytest.mark.parametrize("role", ROLES)
def test_every_staff_role_reads_the_published_state(open_page, role):
    data = _published()
    page = open_page(staff_user(role))

    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Releases").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Releases")
    expect(page.locator("table.releases tbody tr")).to_have_count(data["latest"])
    shoot(page, "releases")

    page.get_by_role("link", name=f"Release {data['latest']}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Release {data['latest']}")
    expect(page.locator("section.feed-release")).to_have_count(2)  # all, md5-sha1-category-a
    expect(page.get_by_text("Verified").first).to_be_visible()
    shoot(page, "release")

    page.goto("/releases/1/")
    expect(page.locator("section.feed-release")).to_have_count(4)
    shoot(page, "release-first")

    page.goto("/keyring/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Keyring")
    expect(page.get_by_text("verifies from version 1")).to_be_visible()
    shoot(page, "keyring")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Feeds").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Feeds")
    expect(page.locator("table.feeds tbody tr")).to_have_count(4)
    shoot(page, "feeds")

    page.get_by_role("link", name="md5-sha1-category-a").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Feed md5-sha1-category-a")
    members = page.get_by_role("heading", name="Members entitled")
    expect(members).to_be_visible()
    if role in (MEMBER_ADMIN, AUDITOR):
        expect(page.locator("table.feed-members").get_by_text("Acme Hosting")).to_be_visible()
    else:
        expect(page.get_by_text("Members are not shown to your role")).to_be_visible()
    shoot(page, "feed")


def test_someone_without_a_role_is_refused_in_words(open_page, browser_problems):
    _published()
    page = open_page(staff_user(None))
    page.goto("/releases/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    browser_problems.expect(r"403\b.*/releases/")
    shoot(page, "releases")


def test_the_copy_buttons_copy_the_whole_digest_and_signature(open_page):
    latest = _published()["latest"]
    manifest = Manifest.objects.filter(feed__name="all", version=latest).order_by("id").first()
    assert manifest is not None
    page = open_page(staff_user(AUDITOR))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"/releases/{latest}/")

    section = page.locator("#feed-all")
    button = section.get_by_role("button", name="Copy the manifest sha256").first
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == manifest.sha256

    section.get_by_role("button", name="Copy the whole signature (base64)").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert len(copied) == 88 and copied.endswith("==")  # an Ed25519 signature, all of it


def test_an_expired_feed_stands_out(open_page):
    from datetime import timedelta

    from django.utils import timezone

    latest = _published()["latest"]
    Manifest.objects.filter(feed__name="md5-sha1-category-a", version=latest).update(
        expires_at=timezone.now() - timedelta(hours=2)
    )
    page = open_page(staff_user(AUDITOR))
    page.goto("/feeds/")
    expect(page.locator("table.feeds").get_by_text("Expired")).to_be_visible()
    shoot(page, "feeds-expired")
    page.goto(f"/releases/{latest}/")
    expect(page.get_by_text("refuse this feed until it is re-signed")).to_be_visible()
    shoot(page, "release-expired")


def test_empty_pages_say_what_happens_next(open_page):
    page = open_page(staff_user(MEMBER_ADMIN))
    for url, text, name in (
        ("/releases/", "No release has been cut yet", "releases-empty"),
        ("/keyring/", "No keyring yet", "keyring-empty"),
        ("/feeds/", "No feed yet", "feeds-empty"),
    ):
        page.goto(url)
        expect(page.get_by_text(text)).to_be_visible()
        shoot(page, name)


def test_the_keyring_after_rotations(open_page):
    from pathlib import Path

    from django.conf import settings
    from django.db import transaction

    from distribution import keys
    from hashsync_client.signing import generate_key, load_private_key

    _published()
    root = load_private_key(Path(settings.VAR_DIR) / "keys" / keys.DEVELOPMENT_ROOT)
    with transaction.atomic():
        keys.keyring_issue(root_keys=[root])
    with transaction.atomic():
        keys.keyring_issue(
            root_keys=[root], new_root_keys=[generate_key()], issue_signing_key=False
        )
    page = open_page(staff_user(AUDITOR))
    page.goto("/keyring/")
    expect(page.get_by_text("The chain of 3 versions verifies")).to_be_visible()
    expect(page.get_by_text("Root rotated")).to_be_visible()
    expect(page.locator("table.keys tbody tr")).to_have_count(2)
    shoot(page, "keyring-rotated")
