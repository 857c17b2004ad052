"""What a strict Content-Security-Policy (script-src 'self'; style-src 'self') would block in a
page: inline scripts, style elements and attributes, event-handler attributes, javascript:
URLs and htmx's hx-on (which needs eval)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Template tags and comments inside a tag (``<p {% if x %}style=...{% endif %}>``) would stop
# the HTML parser reading the attributes after them; variables become a placeholder value.
_TAG = re.compile(r"{%\s*comment\b.*?%}.*?{%\s*endcomment\s*%}|{%.*?%}|{#.*?#}", re.S)
_VARIABLE = re.compile(r"{{.*?}}", re.S)


class _InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        where = f"line {self.getpos()[0]}: <{tag}>"
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append(f"{where} inline script (no src)")
        if tag == "style":
            self.problems.append(f"{where} style element")
        for name, value in names.items():
            if name == "style":
                self.problems.append(f"{where} style attribute")
            elif name.startswith("on") and name.isalpha():
                self.problems.append(f"{where} event handler {name}=")
            elif name.startswith(("hx-on", "data-hx-on")):
                self.problems.append(f"{where} {name} (htmx evaluates it)")
            elif name in ("href", "src", "action", "formaction") and (
                value.strip().lower().startswith("javascript:")
            ):
                self.problems.append(f"{where} javascript: URL in {name}")


def inline_problems(html: str) -> list[str]:
    """Everything in ``html`` that a strict CSP would block, as readable lines."""
    finder = _InlineFinder()
    finder.feed(_VARIABLE.sub("v", _TAG.sub(" ", html)))
    finder.close()
    return finder.problems
