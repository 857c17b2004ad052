"""The Reports pages in a real browser, with several weeks of synthetic history (entries,
regrades, a retraction, weekly releases, a small fleet): each chart renders as SVG with its
axes, its table opens, the CSV downloads, and each role sees only its charts. Screenshots:
``reports…--<role>.png``."""

from __future__ import annotations

from playwright.sync_api import expect

from hashsync.roles import ANALYST, AUDITOR, MEMBER_ADMIN, REVIEWER
from tests.browser.helpers import shoot
from tests.factories import staff_user
from tests.web.report_helpers import build_fleet, build_history

PAGES = {
    "feed-sizes": "Feed sizes",
    "changes": "Changes per week",
    "review-turnaround": "Review turnaround",
    "releases": "Releases",
    "member-lag": "Member lag",
}


def _history() -> None:
    analyst, reviewer = staff_user(ANALYST), staff_user(REVIEWER)
    admin = staff_user(MEMBER_ADMIN)
    found = build_history(analyst, reviewer, admin, weeks=6)
    build_fleet(admin, found["feeds"][0])


def test_each_chart_page_renders_with_history(open_page):
    _history()
    page = open_page(staff_user(AUDITOR))
    for slug, title in PAGES.items():
        page.goto(f"/reports/{slug}/")
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        charts = page.locator("svg.chart")
        expect(charts.first).to_be_visible()
        # Units and dates on the axes.
        expect(page.locator("svg.chart .axis-label").first).to_be_visible()
        page.locator("details.report-table summary").first.click()
        expect(page.locator("details.report-table table").first).to_be_visible()
        shoot(page, f"reports-{slug}")


def test_the_range_selector_and_the_csv(open_page):
    _history()
    page = open_page(staff_user(ANALYST))
    page.goto("/reports/changes/")
    page.select_option("#id_weeks", "4")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url("/reports/changes/?weeks=4")
    expect(page.locator("details.report-table tbody tr")).to_have_count(4)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("hashsync-changes-4w-")
    shoot(page, "reports-changes-4-weeks")


def test_the_index_shows_each_role_its_charts(open_page, browser_problems):
    _history()
    expected = {
        ANALYST: 5,  # all but member lag
        REVIEWER: 5,
        AUDITOR: 6,
        MEMBER_ADMIN: 4,  # feed sizes, member lag, release cuts, bundle sizes
    }
    for role, count in expected.items():
        page = open_page(staff_user(role))
        page.goto("/reports/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
        expect(page.locator("section.figure")).to_have_count(count)
        expect(page.locator("nav.primary").get_by_role("link", name="Reports")).to_be_visible()
        shoot(page, "reports")

    page = open_page(staff_user(ANALYST))
    page.goto("/reports/member-lag/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    browser_problems.expect(r"403\b.*/reports/member-lag/")


def test_a_new_install_shows_empty_states(open_page):
    page = open_page(staff_user(AUDITOR))
    page.goto("/reports/")
    expect(page.locator("svg.chart")).to_have_count(0)
    expect(page.get_by_text("No feed has been published yet.")).to_be_visible()
    shoot(page, "reports-empty")
