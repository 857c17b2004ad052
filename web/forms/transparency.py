"""The auditors' inclusion check on the transparency log page: a manifest named either by its
feed and version or by its SHA-256 (the signed payload's digest, not a listed hash)."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from hashsync.validation import MAX_BIGINT

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class InclusionForm(forms.Form):
    feed = forms.ChoiceField(label="Feed", required=False)
    version = forms.IntegerField(
        label="Version",
        required=False,
        min_value=0,
        max_value=MAX_BIGINT,
        error_messages={"invalid": "A version is a whole number, such as 12."},
    )
    sha256 = forms.CharField(
        label="Or the manifest's SHA-256",
        required=False,
        max_length=200,
        help_text="64 hex digits: the digest of the signed manifest, as the client shows it.",
        widget=forms.TextInput(
            attrs={"class": "mono", "autocomplete": "off", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, feeds: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        feed = self.fields["feed"]
        assert isinstance(feed, forms.ChoiceField)
        feed.choices = [("", "Choose a feed"), *((f, f) for f in feeds)]

    def clean_sha256(self) -> str:
        value = "".join(self.cleaned_data.get("sha256", "").split()).lower()
        if value and not SHA256_HEX.fullmatch(value):
            raise forms.ValidationError("A manifest's SHA-256 is exactly 64 hex digits.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        by_version = bool(data.get("feed")) or data.get("version") is not None
        if data.get("sha256") and by_version:
            raise forms.ValidationError("Choose a feed and version, or paste a SHA-256 — not both.")
        if data.get("sha256"):
            return data
        if not data.get("feed"):
            self.add_error("feed", "Choose the feed, or paste the manifest's SHA-256 instead.")
        if data.get("version") is None:
            self.add_error("version", "Give the version, or paste the manifest's SHA-256.")
        return data
