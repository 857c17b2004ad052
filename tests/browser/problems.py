"""What went wrong in the browser while a test used a page: console errors, uncaught exceptions,
Content-Security-Policy violations, and same-origin requests that failed.

The ``page`` fixtures attach a :class:`BrowserProblems` to every context they open and fail the
test at teardown if it recorded anything. A test that provokes an error on purpose (a 403 page,
a form answered with 400) says so with :meth:`BrowserProblems.expect`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Request, Response, WebError

# The page reports each violation to this binding; an init script installs the listener in
# every document before the page's own scripts run.
_CSP_BINDING = "__hashsyncCspViolation"
_CSP_LISTENER = f"""
document.addEventListener("securitypolicyviolation", (event) => {{
  window.{_CSP_BINDING}({{
    directive: event.effectiveDirective || event.violatedDirective,
    blocked: event.blockedURI || "inline",
    source: event.sourceFile || document.location.href,
    line: event.lineNumber,
  }});
}});
"""
# Console messages of these types count as errors (console.error, console.assert failing, and
# the browser's own "Failed to load resource" lines).
_ERROR_TYPES = {"error", "assert"}
# A navigation away from a page cancels its pending requests, and a download (a CSV export)
# ends its navigation the same way: neither is a failure of the application.
_BENIGN_FAILURES = ("net::ERR_ABORTED",)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class BrowserProblems:
    """Collects what went wrong in the contexts it watches, for the server at ``origin``."""

    def __init__(self, origin: str) -> None:
        self.origin = _origin(origin)
        self.messages: list[str] = []
        self._contexts: list[BrowserContext] = []

    # --- collecting --------------------------------------------------------------------------
    def watch(self, context: BrowserContext) -> BrowserContext:
        """Record the problems of every page of ``context`` (the page fixtures do this)."""
        context.on("console", self._console)
        context.on("weberror", self._uncaught)
        context.on("response", self._response)
        context.on("requestfailed", self._request_failed)
        context.expose_binding(_CSP_BINDING, lambda _source, report: self._csp(report))
        context.add_init_script(_CSP_LISTENER)
        self._contexts.append(context)
        return context

    def _same_origin(self, url: str) -> bool:
        return _origin(url) == self.origin

    def _console(self, message: ConsoleMessage) -> None:
        if message.type not in _ERROR_TYPES:
            return
        where = message.location.get("url", "")
        # Chromium fetches /favicon.ico by itself after the load event when a page declares no
        # icon, and reports a 404 whenever that fetch ends: a test could pass or fail depending
        # on when it finished. Pages declare their icon (templates/base.html); Django's admin
        # does not.
        if where and _path(where) == "/favicon.ico":
            return
        line = int(message.location.get("lineNumber") or 0) + 1  # Playwright counts from 0
        at = f" [{_path(where) if self._same_origin(where) else where}:{line}]" if where else ""
        self.messages.append(f"console {message.type}: {message.text}{at}")

    def _uncaught(self, error: WebError) -> None:
        self.messages.append(f"uncaught exception: {error.error.name}: {error.error.message}")

    def _csp(self, report: dict[str, object]) -> None:
        source = str(report.get("source") or "")
        shown = _path(source) if self._same_origin(source) else source
        self.messages.append(
            f"CSP violation: {report.get('directive')} blocked {report.get('blocked')} "
            f"[{shown}:{report.get('line')}]"
        )

    def _response(self, response: Response) -> None:
        if response.status >= 400 and self._same_origin(response.url):
            self.messages.append(
                f"HTTP {response.status} {response.request.method} {_path(response.url)}"
            )

    def _request_failed(self, request: Request) -> None:
        failure = request.failure or "failed"
        if self._same_origin(request.url) and not failure.startswith(_BENIGN_FAILURES):
            self.messages.append(
                f"request failed: {request.method} {_path(request.url)}: {failure}"
            )

    # --- judging -----------------------------------------------------------------------------
    def settle(self) -> None:
        """Let events already raised in the pages reach us: a round trip through each page's
        event loop, after which reports queued before it have been delivered."""
        for context in self._contexts:
            for page in context.pages:
                if page.is_closed():
                    continue
                # A page that is navigating or gone can report nothing more.
                with contextlib.suppress(Error):
                    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")

    def expect(self, pattern: str) -> list[str]:
        """Take the problems matching the regular expression ``pattern`` off the list (they
        were provoked on purpose) and return them; fail if none matches, so an expectation
        that no longer holds is noticed. A failed request is reported twice, as the response
        (``HTTP 403 GET /path``) and as the browser's console line (``… status of 403 …
        [/path:1]``): ``r"403\b.*/path"`` takes both."""
        self.settle()
        regex = re.compile(pattern)
        taken = [m for m in self.messages if regex.search(m)]
        if not taken:
            pytest.fail(
                f"expected a browser problem matching {pattern!r}; recorded: "
                + ("; ".join(self.messages) or "none"),
                pytrace=False,
            )
        self.messages = [m for m in self.messages if m not in taken]
        return taken

    def check(self, messages: Iterable[str] | None = None) -> None:
        """Fail the test naming every problem recorded (or ``messages``, a snapshot)."""
        found = list(self.messages if messages is None else messages)
        if found:
            listed = "\n  ".join(found)
            pytest.fail(f"the browser reported {len(found)} problem(s):\n  {listed}", pytrace=False)
