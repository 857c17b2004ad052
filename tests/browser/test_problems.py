"""The harness notices what goes wrong in a page: each kind of problem is recorded with a
message a person can act on, and a test that met one fails at teardown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.helpers import REPOSITORY

# Pages served by Playwright at the live server's origin, so they count as the application's:
# what each does wrong, the headers it comes with, and what the harness must record (in order).
PAGES = {
    "console-error": (
        "<script>console.error('harness: deliberate console error')</script>",
        {},
        [r"^console error: harness: deliberate console error \[/harness/console-error:1\]$"],
    ),
    "uncaught-exception": (
        "<script>throw new TypeError('harness: deliberate exception')</script>",
        {},
        [r"^uncaught exception: TypeError: harness: deliberate exception$"],
    ),
    "csp-violation": (
        "<script>document.title = 'inline script ran'</script>",
        {"Content-Security-Policy": "script-src 'self'"},
        [
            r"^console error: Executing inline script violates .* \[/harness/csp-violation:1\]$",
            r"^CSP violation: script-src-elem blocked inline \[/harness/csp-violation:1\]$",
        ],
    ),
    "missing-asset": (
        "<img src='/static/harness/missing.png' alt=''>",
        {},
        [
            r"^HTTP 404 GET /static/harness/missing\.png$",
            r"^console error: Failed to load resource: .* 404 "
            r".*\[/static/harness/missing\.png:1\]$",
        ],
    ),
    "refused-request": (
        "<script src='/harness/refused.js'></script>",
        {},
        [
            r"^request failed: GET /harness/refused\.js: net::ERR_CONNECTION_REFUSED$",
            r"^console error: Failed to load resource: net::ERR_CONNECTION_REFUSED "
            r"\[/harness/refused\.js:1\]$",
        ],
    ),
}


def serve(page, base_url, name):
    body, headers, _ = PAGES[name]
    page.route(
        f"{base_url}/harness/{name}",
        lambda route: route.fulfill(
            content_type="text/html",
            headers=headers,
            body=f"<!doctype html><html lang='en'><title>{name}</title>{body}</html>",
        ),
    )
    page.route(f"{base_url}/harness/refused.js", lambda route: route.abort("connectionrefused"))


@pytest.mark.parametrize("name", PAGES)
def test_each_kind_of_problem_is_recorded_and_fails_the_check(
    page, base_url, browser_problems, name
):
    serve(page, base_url, name)

    page.goto(f"/harness/{name}")
    browser_problems.settle()

    assert len(browser_problems.messages) == len(PAGES[name][2]), browser_problems.messages
    with pytest.raises(pytest.fail.Exception, match="the browser reported") as failed:
        browser_problems.check()
    for pattern in PAGES[name][2]:
        (message,) = browser_problems.expect(pattern)
        assert message in str(failed.value)
    assert browser_problems.messages == []


def test_a_page_without_problems_records_nothing(page, base_url, browser_problems):
    page.route(
        f"{base_url}/harness/clean",
        lambda route: route.fulfill(
            content_type="text/html", body="<!doctype html><html lang='en'><title>c</title></html>"
        ),
    )

    page.goto("/harness/clean")
    browser_problems.settle()

    assert browser_problems.messages == []


def test_an_expectation_that_nothing_meets_fails(page, browser_problems):
    with pytest.raises(pytest.fail.Exception, match="expected a browser problem matching"):
        browser_problems.expect("HTTP 403")


@pytest.mark.browser
def test_a_test_whose_page_logs_a_console_error_fails_naming_it(chromium, tmp_path):
    """The whole path, in a pytest of its own: fixture teardown, not just the collector."""
    case = Path(__file__).parent / "cases" / "console_error.py"
    # Its own in-memory SQLite database, whatever database this run uses.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "TEST_DATABASE_NAME")
    }
    env["HASHSYNC_SCREENSHOTS_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", str(case)],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 passed, 1 error" in output, output
    assert "ERROR at teardown of test_a_page_that_logs_a_console_error" in output, output
    assert "console error: harness: deliberate [/harness/console-error:" in output, output
