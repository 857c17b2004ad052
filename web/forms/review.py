"""Forms of the review page: approve and reject each carry a reason (reject needs one). The
prefixes keep the two reason boxes apart on one page."""

from __future__ import annotations

from django import forms

from hashsync.validation import MAX_TEXT


class ApproveForm(forms.Form):
    prefix = "approve"
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=MAX_TEXT,
        help_text="Optional: what you checked. It goes on the audit trail.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RejectForm(forms.Form):
    prefix = "reject"
    reason = forms.CharField(
        label="Reason",
        max_length=MAX_TEXT,
        help_text="Required: the author reads it, and it goes on the audit trail.",
        error_messages={"required": "Say why you reject it: the author needs to know."},
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class WithdrawForm(forms.Form):
    """No fields: a button, and a place for the service's refusal."""
