"""The fleet view and the dispute queue in a real browser, per role: current, lagging,
mismatched and missed-retraction clients, sorted and filtered; a dispute resolved by an
analyst. Screenshots ``fleet…--<role>.png`` and ``dispute…--<role>.png``. Synthetic only."""

from __future__ import annotations

from playwright.sync_api import expect

from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER
from tests.browser.helpers import shoot
from tests.factories import staff_user
from tests.web.fleet_helpers import build_fleet, dispute


def _world():
    return build_fleet(staff_user(ANALYST), staff_user(REVIEWER), staff_user(MEMBER_ADMIN))


def test_the_fleet_per_role_sorted_and_filtered(open_page, browser_problems):
    world = _world()
    for role in (MEMBER_ADMIN, AUDITOR):
        page = open_page(staff_user(role))
        page.goto("/fleet/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Fleet")
        table = page.locator("table.fleet")
        expect(table.locator("tbody tr")).to_have_count(5)
        expect(table.get_by_text("Digest mismatch")).to_be_visible()
        expect(table.get_by_text("Never acked")).to_be_visible()
        expect(table.get_by_text("Missed retraction")).to_have_count(2)
        shoot(page, "fleet")

    page = open_page(staff_user(MEMBER_ADMIN))
    page.goto("/fleet/")
    page.get_by_role("link", name="Behind", exact=True).click()
    expect(page.locator("table.fleet tbody tr").first).to_contain_text("hooli")
    shoot(page, "fleet-sorted")

    page.get_by_role("link", name="Show them").click()
    expect(page.locator("table.fleet tbody tr")).to_have_count(2)
    shoot(page, "fleet-missed-retraction")

    page.goto("/fleet/")
    page.select_option("#id_release", str(world.retraction.version))
    page.get_by_role("button", name="Show").click()
    expect(
        page.get_by_role("heading", name=f"Not holding release {world.retraction.version}")
    ).to_be_visible()
    expect(page.locator("table.fleet tbody tr")).to_have_count(2)
    shoot(page, "fleet-not-holding")

    page.goto("/fleet/?member=globex")
    expect(page.locator("table.fleet tbody tr")).to_have_count(1)
    shoot(page, "fleet-member")

    refused = open_page(staff_user(ANALYST))
    refused.goto("/fleet/")
    expect(refused.get_by_role("heading", level=1)).to_have_text("Not allowed")
    browser_problems.expect(r"403\b.*/fleet/")


def test_an_analyst_resolves_a_dispute(open_page, browser_problems):
    world = _world()
    first = dispute("acme", world.entries[1], reason="synthetic: our product screenshot")
    dispute("globex", world.entries[2], reason="synthetic: a stock photo we licensed")

    auditor = open_page(staff_user(AUDITOR))
    auditor.goto("/disputes/")
    expect(auditor.get_by_role("heading", level=1)).to_have_text("Disputes")
    shoot(auditor, "disputes")
    auditor.goto(f"/disputes/{first.pk}/")
    expect(auditor.get_by_text("analysts and reviewers resolve them")).to_be_visible()
    shoot(auditor, "dispute")

    page = open_page(staff_user(ANALYST))
    page.goto("/disputes/")
    shoot(page, "disputes")
    page.get_by_role("link", name=f"Dispute {first.pk}").click()
    page.get_by_role("button", name="Resolve dispute").click()
    expect(page.get_by_text("Choose upheld or dismissed.").first).to_be_visible()
    browser_problems.expect(r"400\b.*/resolve/")
    shoot(page, "dispute-refused")

    page.get_by_label("Dismissed: the entry stays as it is").check()
    page.fill("#id_resolution", "Checked against the source: listed correctly.")
    page.get_by_role("button", name="Resolve dispute").click()
    expect(page.get_by_text(f"Dispute {first.pk} dismissed")).to_be_visible()
    shoot(page, "dispute-next")


def test_a_reviewer_upholds_a_dispute_and_is_offered_the_correction(open_page):
    world = _world()
    upheld = dispute("acme", world.entries[1], reason="synthetic: our product screenshot")

    page = open_page(staff_user(REVIEWER))
    page.goto(f"/disputes/{upheld.pk}/")
    page.get_by_label("Upheld: the member is right; I will propose the correction").check()
    page.fill("#id_resolution", "Confirmed with the member: their own artwork.")
    page.get_by_role("button", name="Resolve dispute").click()

    expect(page.get_by_text(f"Dispute {upheld.pk} upheld.")).to_be_visible()
    expect(page.get_by_role("link", name="Retract entry")).to_be_visible()
    shoot(page, "dispute-upheld")
