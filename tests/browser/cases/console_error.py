"""Run only by tests/browser/test_problems.py, in a pytest of its own (the file name keeps it
out of the suite): a test whose page logs a console error must end in an error naming it."""

from __future__ import annotations

PAGE = "<!doctype html><title>c</title><script>console.error('harness: deliberate')</script>"


def test_a_page_that_logs_a_console_error(page, base_url):
    page.route(
        f"{base_url}/harness/console-error",
        lambda route: route.fulfill(content_type="text/html", body=PAGE),
    )

    page.goto("/harness/console-error")
