"""The form for proposing a framework's next rules: the whole definition as JSON (the
analyst edits the current rules, shown pretty-printed) and the reason, which is required."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from hashlist.frameworks.rules import Definition
from hashsync.errors import InvalidInput
from hashsync.validation import MAX_TEXT

MAX_DEFINITION = 64 * 1024  # a definition of 64 rules with long sources is about 40 KiB


class FrameworkRulesForm(forms.Form):
    definition = forms.CharField(
        label="Rules (JSON)",
        max_length=MAX_DEFINITION,
        strip=False,
        help_text=(
            "The framework's whole definition: <code>classes</code>, then <code>rules</code> "
            "in order — the first rule whose every condition holds gives the class. Each rule "
            "has <code>when</code> (fact → list of values; empty: always holds), "
            "<code>class</code> and <code>source</code> (where the rule comes from: required)."
        ),
        error_messages={"required": "Give the rules: edit the current ones shown here."},
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "mono"}),
    )
    comment = forms.CharField(
        label="Why, and the source of the change",
        max_length=MAX_TEXT,
        help_text="Required: the reviewer reads it, and it goes on the audit trail.",
        error_messages={"required": "Say why the rules change and where the change comes from."},
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_definition(self) -> Definition:
        text = self.cleaned_data["definition"]
        try:
            data: Any = json.loads(text)
        except ValueError as exc:
            line = getattr(exc, "lineno", None)
            column = getattr(exc, "colno", None)
            where = f" (line {line}, column {column})" if line else ""
            reason = getattr(exc, "msg", "not valid JSON")
            raise forms.ValidationError(f"Not valid JSON{where}: {reason}.") from None
        except RecursionError:
            raise forms.ValidationError("Not valid here: JSON nested too deeply.") from None
        try:
            return Definition.parse(data)
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from None


def pretty(definition: Definition) -> str:
    """A definition as the analyst edits it: two-space indented JSON, facts in order."""
    return json.dumps(definition.to_json(), indent=2, ensure_ascii=False)
