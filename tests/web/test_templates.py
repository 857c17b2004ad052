"""No template holds anything the strict Content-Security-Policy would block, so the CSP never
silently breaks a page (a blocked script or style shows only in the browser's console)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.csp import inline_problems

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
ALL = sorted(TEMPLATES.rglob("*.html"))


def test_there_are_templates_to_check():
    assert len(ALL) > 5


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_inline_script_style_or_handlers(path):
    assert inline_problems(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("<script>alert(1)</script>", "inline script"),
        ('<script type="module">x()</script>', "inline script"),
        ("<style>p{}</style>", "style element"),
        ('<p style="color:red">', "style attribute"),
        ('<p {% if x %}style="color:red"{% endif %}>', "style attribute"),
        ('<button onclick="go()">', "event handler onclick="),
        ('<body ONLOAD="go()">', "event handler onload="),
        ('<a href="javascript:go()">', "javascript: URL"),
        ('<div hx-on:click="go()">', "hx-on:click"),
        ('<div hx-on::after-request="go()">', "hx-on::after-request"),
    ],
)
def test_the_check_finds_what_the_csp_would_block(html, problem):
    found = inline_problems(html)
    assert found and problem in found[0]


def test_the_check_reads_past_template_comments():
    html = '{% comment %}without its inline <style>{% endcomment %}<p style="x">'

    assert [problem.split(": ", 1)[1] for problem in inline_problems(html)] == [
        "<p> style attribute"
    ]


@pytest.mark.parametrize(
    "html",
    [
        '<script src="/static/app.js" defer></script>',
        '<a href="/x" data-copy="y" class="copy">',
        '<div hx-get="/x" hx-trigger="every 2s">',
        '<form data-confirm="Remove?">',
        '<input name="online">',
        "{% comment %}a page without its inline <style> or <script>{% endcomment %}",
        "{# <script>alert(1)</script> #}",
    ],
)
def test_the_check_lets_through_what_the_csp_allows(html):
    assert inline_problems(html) == []
