"""The member administrators' pages in a real browser (issue 13 item 5): an administrator
creates a member, is refused a PhotoDNA feed without the licence, grants the licence and the
entitlement, creates a client and a token and sees the token once; then suspends the member,
whose next sync is refused. An auditor reads the same pages without any action. Each page is
photographed as ``member…--<role>.png``. Synthetic data only."""

from __future__ import annotations

import datetime as dt
import re

import requests
from django.utils import timezone
from playwright.sync_api import expect

from distribution.models import Feed
from hashsync.roles import AUDITOR, MEMBER_ADMIN
from members import services
from tests.browser.helpers import shoot
from tests.factories import member_with_token, staff_user


def test_an_administrator_sets_up_a_member_and_suspends_it(
    open_page, live_server, browser_problems
):
    Feed.objects.create(name="md5-all", algorithms=["md5"])
    Feed.objects.create(name="photodna-all", algorithms=["photodna"])
    page = open_page(staff_user(MEMBER_ADMIN))

    page.goto("/members/")
    expect(page.get_by_text("No member organisation yet")).to_be_visible()
    shoot(page, "members-empty")
    page.fill("#id_create-name", "acme-cloud")
    page.fill("#id_create-display_name", "Acme Cloud Ltd")
    page.get_by_role("button", name="Create member").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme Cloud Ltd")

    # The PhotoDNA feed is refused, next to the field, until the licence is granted.
    page.select_option("#id_entitlement-feed", "photodna-all")
    page.get_by_role("button", name="Grant entitlement").click()
    expect(page.locator("#id_entitlement-feed-error")).to_contain_text(
        "grant the member a PhotoDNA licence first"
    )
    browser_problems.expect(r"400\b.*/members/acme-cloud/entitlements/")
    shoot(page, "member-licence-refused")

    page.fill("#id_licence-reference", "MS-PDNA-2026-17")
    until = (timezone.now() + dt.timedelta(days=365)).date().isoformat()
    page.fill("#id_licence-valid_until", until)
    page.get_by_role("button", name="Grant licence").click()
    expect(page.get_by_text("PhotoDNA licence recorded.")).to_be_visible()
    page.select_option("#id_entitlement-feed", "photodna-all")
    page.get_by_role("button", name="Grant entitlement").click()
    expect(page.get_by_text("Entitled to feed photodna-all.")).to_be_visible()

    page.fill("#id_contact-name", "Ada Ops")
    page.fill("#id_contact-email", "ops@acme.example")
    page.select_option("#id_contact-role", "technical")
    page.get_by_role("button", name="Add contact").click()
    page.fill("#id_client-name", "edge-1")
    page.get_by_role("button", name="Create client").click()
    expect(page.get_by_text("Client edge-1 created")).to_be_visible()

    page.check("#id_token-scopes_0")
    page.get_by_role("button", name="Create token").click()
    secret = page.input_value("#new-token")
    assert re.fullmatch(r"hsk_\S+", secret)
    expect(page.get_by_text("shown only this once")).to_be_visible()
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    assert secret not in page.url
    shoot(page, "member-token-shown")

    # A synced client: the token works.
    api = f"{live_server.url}/api/v1/sync/feeds/"
    headers = {"Authorization": f"Bearer {secret}"}
    assert requests.get(api, headers=headers, timeout=10).status_code == 200

    # Reloading does not show it again (a re-sent form issues nothing either).
    page.reload()
    expect(page.locator("#new-token")).to_have_count(0)
    assert secret not in page.content()
    page.goto("/members/acme-cloud/")
    assert secret not in page.content()
    shoot(page, "member")

    page.fill("#id_suspend-reason", "Agreement lapsed; renewal pending")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Suspend member").click()
    expect(page.get_by_text("Acme Cloud Ltd is suspended")).to_be_visible()
    expect(page.locator(".member-history")).to_contain_text("Agreement lapsed")
    shoot(page, "member-suspended")

    refused = requests.get(api, headers=headers, timeout=10)
    assert refused.status_code in (401, 403), refused.status_code
    assert refused.json()["error"]["code"] == "member_suspended"

    page.goto("/members/")
    expect(page.get_by_role("table").get_by_text("Suspended")).to_be_visible()
    shoot(page, "members")


def _demo_members() -> None:
    admin = staff_user(MEMBER_ADMIN)
    Feed.objects.create(name="md5-all", algorithms=["md5"])
    member_with_token(admin, name="acme", feeds=("md5-all",))
    member_with_token(admin, name="globex", client="dc-west", photodna=True)
    services.contact_add(
        actor=admin, member_name="acme", name="Ada Ops", email="ops@acme.example", role="technical"
    )
    services.member_create(actor=admin, name="initech", display_name="Initech")
    services.member_suspend(actor=admin, name="initech", reason="Unpaid since October")


def test_an_auditor_reads_members_without_actions(open_page, browser_problems):
    _demo_members()
    page = open_page(staff_user(AUDITOR))
    page.goto("/members/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    expect(page.get_by_role("button", name="Create member")).to_have_count(0)
    shoot(page, "members")
    page.get_by_role("link", name="Acme").click()
    expect(page.get_by_role("heading", name="Sync clients and tokens")).to_be_visible()
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)
    shoot(page, "member")
