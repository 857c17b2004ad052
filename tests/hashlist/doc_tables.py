"""The rule tables of docs/grading.md, generated from version 1 of the frameworks, so a test
can hold the page and the data equal (``test_frameworks.py``)."""

from __future__ import annotations

from hashlist.frameworks.initial import FRAMEWORKS


def framework_tables() -> str:
    lines: list[str] = []
    for slug, framework in FRAMEWORKS.items():
        definition = framework["definition"]
        lines += [f"### {framework['name']} (`{slug}`)", ""]
        lines += ["Classes: " + ", ".join(f"`{c}`" for c in definition["classes"]), ""]
        lines += ["| # | when | class | source |", "|---|---|---|---|"]
        for number, rule in enumerate(definition["rules"], 1):
            when = "; ".join(f"{k} ∈ {', '.join(v)}" for k, v in rule["when"].items())
            lines.append(
                f"| {number} | {when or '(always)'} | `{rule['class']}` | {rule['source']} |"
            )
        lines.append("")
    return "\n".join(lines)
