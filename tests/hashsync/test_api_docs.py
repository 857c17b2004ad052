"""The rendered API documentation (/api/v1/docs/, /api/v1/docs/redoc/) and the schema behind it:
public pages whose every asset is the application's own, under the site's strict
Content-Security-Policy, and a schema that generates without a single warning."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from drf_spectacular.drainage import reset_generator_stats

# Every request passes through all the middleware, some of which may use the database.
pytestmark = pytest.mark.django_db

SWAGGER = "/api/v1/docs/"
REDOC = "/api/v1/docs/redoc/"
SCHEMA = "/api/v1/schema/"


class _Page(HTMLParser):
    """Every element of a page with its attributes, and the text inside each <script>."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)

    def urls(self) -> list[str]:
        """What the browser loads while it renders the page (scripts, stylesheets, icons,
        images)."""
        urls = []
        for tag, attrs in self.elements:
            if tag in ("script", "img") and "src" in attrs:
                urls.append(attrs["src"])
            elif tag == "link":
                urls.append(attrs["href"])
        return urls


def _get_page(path: str, **headers: str) -> tuple[Any, _Page]:
    response = Client(headers=headers).get(path)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    return response, _Page(response.content.decode())


def _swagger_script_url(page: _Page) -> str:
    """The split view's start-up script: the page's own URL with ``?script``."""
    (url,) = [url for url in page.urls() if "script" in urlsplit(url).query]
    return url


def _policy(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


@pytest.fixture
def site_csp(settings: Any) -> dict[str, list[str]]:
    """The policy every page is sent (hashsync/settings.py); the docs views are judged
    against it."""
    assert "csp.middleware.CSPMiddleware" in settings.MIDDLEWARE
    return {
        name: list(sources)
        for name, sources in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"].items()
    }


# --- Public, and the application's own assets --------------------------------------------------


@pytest.mark.parametrize("path", [SWAGGER, REDOC])
def test_docs_page_answers_without_credentials(path):
    _get_page(path)


@pytest.mark.parametrize("path", [SWAGGER, REDOC])
@pytest.mark.parametrize(
    "authorization",
    [
        "Basic bm9ib2R5OndoYXRldmVy",  # nobody:whatever, a sign-in that does not exist
        "Bearer hsk_synthetic-not-a-token",  # a member token, which the staff API refuses
    ],
)
def test_docs_page_ignores_credentials_the_staff_api_would_refuse(path, authorization):
    _get_page(path, authorization=authorization)


@pytest.mark.parametrize("path", [SWAGGER, REDOC])
def test_docs_page_loads_only_assets_the_application_serves(path):
    _, page = _get_page(path)

    urls = page.urls()
    assert any(url.endswith(".js") for url in urls)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not on this server"
        if parts.path.startswith("/static/"):
            assert finders.find(parts.path.removeprefix("/static/")), f"{url} is not served"
        else:
            assert parts.path == path and "script" in parts.query, url


@pytest.mark.parametrize("path", [SWAGGER, REDOC])
def test_docs_page_has_no_inline_script_or_style(path):
    _, page = _get_page(path)

    assert page.inline_scripts == []
    for tag, attrs in page.elements:
        assert tag != "style"
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag


def test_swagger_ui_start_up_script_is_javascript_that_loads_the_served_schema():
    _, page = _get_page(SWAGGER)

    script = Client().get(_swagger_script_url(page))

    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    (schema_url,) = re.findall(r'\burl: "([^"]*)"', script.content.decode())
    assert schema_url == reverse("schema") == SCHEMA
    schema = Client().get(schema_url)
    assert schema.status_code == 200
    assert schema.content.startswith(b"openapi: 3.")


def test_redoc_loads_the_served_schema():
    _, page = _get_page(REDOC)

    (spec_url,) = [attrs["spec-url"] for tag, attrs in page.elements if tag == "redoc"]
    assert spec_url == reverse("schema") == SCHEMA
    schema = Client().get(spec_url)
    assert schema.status_code == 200
    assert schema.content.startswith(b"openapi: 3.")


# --- Content-Security-Policy --------------------------------------------------------------------


def test_swagger_ui_is_served_under_the_site_policy_unchanged(site_csp):
    response, page = _get_page(SWAGGER)
    script = Client().get(_swagger_script_url(page))

    assert _policy(response) == site_csp
    assert _policy(script) == site_csp


def test_redoc_alone_may_add_styles_at_run_time_and_start_its_search_worker(site_csp):
    response, _ = _get_page(REDOC)

    policy = _policy(response)
    assert policy.pop("style-src") == [*site_csp.pop("style-src"), "'unsafe-inline'"]
    assert policy.pop("worker-src") == [*site_csp.pop("worker-src", []), "blob:"]
    # Nothing else is loosened: scripts still come from the application only.
    assert policy == site_csp
    assert "'unsafe-inline'" not in policy["script-src"]


def test_redoc_loosening_does_not_reach_other_pages(site_csp):
    response = Client().get("/")

    assert response.status_code == 200
    assert _policy(response) == site_csp


# --- The schema ---------------------------------------------------------------------------------


def test_schema_generates_and_validates_without_a_warning(tmp_path: Path, capsys):
    """Colliding operationIds, hash-named enums, unresolvable fields: drf-spectacular only
    warns, and names the result arbitrarily. Any warning fails here, so it is fixed at its
    source (``extend_schema(operation_id=...)``, ENUM_NAME_OVERRIDES) when it appears."""
    reset_generator_stats()  # judge this generation alone, not warnings left by earlier tests
    try:
        call_command(
            "spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yaml")
        )
    except CommandError as exc:
        pytest.fail(f"{exc}:\n{capsys.readouterr().err}", pytrace=False)
