"""The browser-test harness: Debian's Chromium, headless, driven by Playwright against the live
server, one browser per xdist worker and a fresh context per test (docs/development.md).

A test that uses a page carries the ``browser`` marker by itself (the fixture chain names
``chromium``); browser tests run in the embedded pass only (scripts/run-tests).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from hashlist.framework_store import ensure_frameworks
from tests.browser.helpers import new_context, shoot, signed_in_context
from tests.browser.problems import BrowserProblems
from tests.conftest import IN_CI

# Without these the browser keeps trying to reach Google's services from a machine with no
# way out, and floods the run with network errors; the sandbox needs privileges CI lacks.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that drives the browser ``browser`` (before ``-m`` selects), and run
    them after the others: see ``browser`` for why they go last."""
    in_browser = []
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
            in_browser.append(item)
    if in_browser:
        chosen = set(in_browser)
        items[:] = [item for item in items if item not in chosen] + in_browser


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (``apt-get install chromium``; .ci/run installs it). Playwright's own
    browser downloads are not used: the machines that run the tests cannot download them."""
    path = shutil.which("chromium")
    if path is None:
        message = (
            "BROWSER TESTS NOT RUN: no `chromium` on PATH. Install Debian's package "
            "(apt-get install -y chromium) to run the page tests."
        )
        if IN_CI:
            pytest.fail(message + " In CI nothing may be skipped.", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Browser]:
    # Playwright's sync API marks its asyncio loop as running in this thread from start() to
    # stop(), between its calls too. Django then takes every ORM call in a test (creating a
    # user, checking a row) for one made inside async code and refuses it; here that is a
    # false alarm, as the loop is idle whenever the test's own code runs. So the check is off
    # while this worker's Playwright lives, and browser tests run after every other test of
    # the worker (pytest_collection_modifyitems) so that no other test runs without it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        yield launched
        launched.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_db(live_server: Any, transactional_db: None) -> Iterator[None]:
    """The live server's requests run in threads of their own and commit for real (a test
    using ``live_server`` is transactional), so each test ends with a flush of every table.

    On SQLite the flush deletes row by row, which the audit trail's append-only triggers
    refuse: the events a test wrote are removed first with the triggers off, as someone with
    the table owner's rights could. (PostgreSQL's flush truncates, which the triggers allow.)
    The flush also empties what migrations seeded: the grading frameworks come back first."""
    ensure_frameworks()
    yield
    if connection.vendor == "sqlite":
        from audit.models import AuditEvent
        from tests.audit.tampering import append_only_triggers_off

        with append_only_triggers_off():
            AuditEvent.objects.all().delete()


@pytest.fixture
def base_url(live_server: Any, browser_db: None) -> str:
    """Where the live server listens, e.g. ``http://localhost:41234``."""
    return str(live_server.url)


@pytest.fixture
def browser_problems(live_server: Any) -> BrowserProblems:
    return BrowserProblems(live_server.url)


def _slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9_]+", "-", text.lower())).strip("-")


@pytest.fixture
def open_page(
    request: pytest.FixtureRequest,
    browser: Browser,
    live_server: Any,
    browser_db: None,
    browser_problems: BrowserProblems,
) -> Iterator[Callable[..., Page]]:
    """``open_page()`` is a page in a fresh anonymous context; ``open_page(user)`` one signed in
    as ``user`` (second factor passed). Relative URLs go to the live server. At teardown the
    test fails if any page had a console error, an uncaught exception, a CSP violation or a
    failed same-origin request (see ``browser_problems.expect`` for provoked ones); a failed
    test leaves screenshots of its pages named ``failed-<test>--<role>.png``."""
    contexts: list[BrowserContext] = []

    def open_(user: Any = None) -> Page:
        if user is None:
            context = new_context(browser, live_server.url)
        else:
            context = signed_in_context(browser, live_server, user)
        contexts.append(browser_problems.watch(context))
        return context.new_page()

    yield open_
    browser_problems.settle()
    # The snapshot is taken before the contexts close: closing cancels requests in flight.
    found = list(browser_problems.messages)
    try:
        if request.node.stash.get(_CALL_FAILED, False):
            name = f"failed-{_slug(request.node.name)}"
            pages = [page for context in contexts for page in context.pages]
            for number, page in enumerate(pages, start=1):
                shoot(page, name if len(pages) == 1 else f"{name}-{number}")
    finally:
        for context in contexts:
            context.close()
    browser_problems.check(found)


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A page in a fresh anonymous context (see ``open_page``)."""
    return open_page()
