"""The auditors' pages in a real browser: an auditor filters the trail, opens an event, exports
the filtered range as CSV, runs the chain verification (and watches a running one finish),
finds the first bad event of a tampered chain, and asks who held a retracted hash. Each page is
photographed as ``audit…--<role>.png``. Synthetic hashes only."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditEvent, ChainCheck
from distribution import keys, releases
from distribution.models import Feed
from hashlist import services
from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER
from tests.audit.tampering import append_only_triggers_off
from tests.browser.helpers import shoot
from tests.factories import approved_entry, member_with_token, staff_user
from tests.members.test_holders import ack_from_feed_list
from tests.sync.test_flow import Replica


def _history() -> tuple[Any, Any]:
    """A few genuine events: an entry proposed and approved, a regrade rejected."""
    analyst, reviewer = staff_user(ANALYST), staff_user(REVIEWER)
    for _ in range(3):
        entry = approved_entry(analyst, reviewer)
    regrade = services.proposal_regrade(
        actor=analyst, entry_id=entry.pk, grading={"category": "B"}, comment="looks like B"
    )
    services.proposal_reject(actor=reviewer, proposal_id=regrade.pk, reason="it is A")
    return analyst, reviewer


def test_an_auditor_filters_the_trail_opens_an_event_and_exports_csv(open_page):
    _, reviewer = _history()
    page = open_page(staff_user(AUDITOR))
    page.goto("/audit/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    expect(page.get_by_role("table").get_by_text("proposal.reject")).to_be_visible()
    shoot(page, "audit-trail")

    page.select_option("#id_action", "proposal.approve")
    page.fill("#id_actor", reviewer.get_username())
    page.get_by_role("button", name="Show events").click()
    rows = page.locator("table.audit-trail tbody tr")
    expect(rows).to_have_count(3)
    expect(
        page.get_by_role("heading", name="Events matching the filters, newest first")
    ).to_be_visible()
    shoot(page, "audit-trail-filtered")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export these events as CSV").click()
    assert download.value.suggested_filename.startswith("audit-trail-start-to-")
    text = download.value.path().read_text(encoding="utf-8")
    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header[:4] == ["seq", "at", "actor", "action"]
    assert [line[3] for line in lines] == ["proposal.approve"] * 3
    assert {line[2] for line in lines} == {reviewer.get_username()}

    page.goto("/audit/?action=proposal.reject")
    page.locator("table.audit-trail tbody tr th a").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("proposal.reject")
    expect(page.locator("dl.facts").get_by_text("it is A")).to_be_visible()
    shoot(page, "audit-event")


def test_other_roles_are_not_allowed(open_page, browser_problems):
    page = open_page(staff_user(MEMBER_ADMIN))
    page.goto("/audit/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    browser_problems.expect(r"403\b.*/audit/")
    shoot(page, "audit-trail")


def test_the_chain_verification_runs_from_the_page(open_page):
    _history()
    page = open_page(staff_user(AUDITOR))
    page.goto("/audit/checks/")
    expect(page.get_by_text("Nobody has verified the chain from these pages")).to_be_visible()
    shoot(page, "audit-checks-empty")

    page.get_by_role("button", name="Verify the chain now").click()
    # Embedded mode: the task ran in-process once the request committed.
    expect(page.locator("#audit-check").get_by_text("Intact")).to_be_visible()
    expect(page.get_by_text("Nobody has changed, removed or inserted an event")).to_be_visible()
    shoot(page, "audit-checks-intact")


def test_a_running_check_updates_itself_when_it_finishes(open_page):
    auditor = staff_user(AUDITOR)
    check = ChainCheck.objects.create(
        started_at=timezone.now(), started_by=auditor, started_by_name=auditor.get_username()
    )
    page = open_page(auditor)
    page.goto("/audit/checks/")
    expect(page.locator("#audit-check").get_by_text("Running")).to_be_visible()
    shoot(page, "audit-checks-running")

    ChainCheck.objects.filter(pk=check.pk).update(
        finished_at=timezone.now(), ok=True, events_checked=12, head_seq=12
    )
    expect(page.locator("#audit-check").get_by_text("Intact")).to_be_visible(timeout=8000)


def test_a_tampered_chain_names_its_first_bad_event(open_page):
    _history()
    target = AuditEvent.objects.order_by("seq")[2]
    with append_only_triggers_off():
        AuditEvent.objects.filter(pk=target.pk).update(reason="approved after a second look")
    page = open_page(staff_user(AUDITOR))
    page.goto("/audit/checks/")
    page.get_by_role("button", name="Verify the chain now").click()

    card = page.locator("#audit-check")
    expect(card.get_by_text("Not intact")).to_be_visible()
    link = card.get_by_role("link", name=f"event #{target.seq}")
    expect(link).to_be_visible()
    shoot(page, "audit-checks-tampered")
    link.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Event #{target.seq}")


def test_hash_holders_shows_a_client_that_never_acknowledged_a_retraction(
    open_page, browser_problems, api, settings
):
    settings.HASHSYNC_POLL_INTERVAL_SECONDS = 0
    analyst, reviewer = staff_user(ANALYST), staff_user(REVIEWER)
    admin = staff_user(MEMBER_ADMIN)
    Feed.objects.create(name="md5-all", algorithms=["md5"])
    entry = approved_entry(analyst, reviewer)
    releases.release_cut()
    _, acme = member_with_token(admin, name="acme", feeds=("md5-all",))
    _, globex = member_with_token(admin, name="globex", feeds=("md5-all",))
    keyring = keys.current_keyring()
    assert keyring is not None
    replica = Replica(api(None), acme, "md5-all", keyring.root_keyids)
    replica.sync()
    replica.ack()
    ack_from_feed_list(api(None), globex)
    proposal = services.proposal_retract(actor=analyst, entry_id=entry.pk, reason="synthetic")
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    releases.release_cut()
    replica.sync()
    replica.ack()
    md5 = bytes(entry.hashes.get(algorithm="md5").value).hex()

    page = open_page(staff_user(AUDITOR))
    page.goto("/audit/hash-holders/")
    shoot(page, "audit-hash-holders-form")
    page.select_option("#id_algorithm", "md5")
    page.fill("#id_value", md5[:-2])
    page.get_by_role("button", name="Show who held it").click()
    expect(page.locator("#id_value-error")).to_contain_text("expected 32 hexadecimal")
    browser_problems.expect(r"400\b.*/audit/hash-holders/")
    shoot(page, "audit-hash-holders-refused")

    page.fill("#id_value", md5)
    page.get_by_role("button", name="Show who held it").click()
    assert md5 not in page.url
    expect(page.get_by_text("1 client never acknowledged the removal")).to_be_visible()
    globex_card = page.locator("li.holder.open")
    expect(globex_card).to_have_count(1)
    expect(globex_card.get_by_role("heading")).to_contain_text("globex / edge-1")
    expect(
        globex_card.get_by_text("No acknowledgement of a version without it yet.")
    ).to_be_visible()
    expect(
        page.locator("li.holder", has_text="acme").get_by_text("Acknowledged a version without it")
    ).to_be_visible()
    shoot(page, "audit-hash-holders")
