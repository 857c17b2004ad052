"""Forms of the dispute pages: the queue's filters (GET) and the resolution (POST)."""

from __future__ import annotations

from django import forms

from hashsync.validation import MAX_TEXT
from members.models import FeedbackKind, FeedbackStatus


class DisputeFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *FeedbackStatus.choices]
    )
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *FeedbackKind.choices]
    )


class ResolveForm(forms.Form):
    status = forms.ChoiceField(
        label="Decision",
        choices=[
            (FeedbackStatus.UPHELD, "Upheld: the member is right; I will propose the correction"),
            (FeedbackStatus.DISMISSED, "Dismissed: the entry stays as it is"),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose upheld or dismissed."},
    )
    resolution = forms.CharField(
        label="Resolution",
        max_length=MAX_TEXT,
        help_text="Required: what you found. It goes on the audit trail.",
        error_messages={"required": "Say what you found: it is the answer to the member."},
        widget=forms.Textarea(attrs={"rows": 3}),
    )
