"""Forms of the import pages. They check the shape of the input only, as the API's serializers
do; what a file may be (size, format, rows) is the import service's to decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from hashlist.models import ImportStatus
from hashsync.validation import MAX_TEXT

FORMAT_CHOICES = [
    ("", "From the file name (.csv, .jsonl or .ndjson)"),
    ("csv", "CSV"),
    ("jsonl", "JSON Lines"),
]


class UploadForm(forms.Form):
    # Empty files reach the service, which refuses them with its own message (as the API).
    file = forms.FileField(
        label="File",
        allow_empty_file=True,
        error_messages={"required": "Choose the file to import."},
    )
    format = forms.ChoiceField(
        label="Format",
        required=False,
        choices=FORMAT_CHOICES,
        help_text="Only needed when the file's name does not end in .csv, .jsonl or .ndjson.",
    )
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=MAX_TEXT,
        help_text="For the reviewer: where the export comes from, what it holds.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = filesizeformat(settings.HASHSYNC_IMPORT_MAX_BYTES)
        rows = f"{settings.HASHSYNC_IMPORT_MAX_ROWS:,}"
        self.fields["file"].help_text = (
            f"CSV or JSON Lines, UTF-8, at most {limit} and {rows} rows. "
            "Every row is checked; one bad row and nothing from the file is staged."
        )
        self.fields["file"].widget.attrs["accept"] = ".csv,.jsonl,.ndjson,text/csv"


# A batch's status in a few words, for the list, its badge and the filter (the model's labels
# are sentences).
STATUS_WORDS = {
    ImportStatus.UPLOADED: "Waiting to be checked",
    ImportStatus.VALIDATING: "Checking",
    ImportStatus.INVALID: "Invalid",
    ImportStatus.FAILED: "Failed",
    ImportStatus.STAGED: "Waiting for review",
    ImportStatus.APPLYING: "Applying",
    ImportStatus.APPROVED: "Applied",
    ImportStatus.REJECTED: "Rejected",
}
STATUS_CHOICES = [
    ("", "Any status"),
    *[(status.value, words) for status, words in STATUS_WORDS.items()],
]


class ImportFilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", required=False, choices=STATUS_CHOICES)
    mine = forms.BooleanField(label="Uploaded by me", required=False)


class ApproveForm(forms.Form):
    prefix = "approve"
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=MAX_TEXT,
        help_text="Optional: what you checked (the summary, the sample). It goes on the audit "
        "trail.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RejectForm(forms.Form):
    prefix = "reject"
    reason = forms.CharField(
        label="Reason",
        max_length=MAX_TEXT,
        help_text="Required: the uploader reads it, and it goes on the audit trail.",
        error_messages={"required": "Say why you reject it: the uploader needs to know."},
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class WithdrawForm(forms.Form):
    """No fields: a button, and a place for the service's refusal."""
