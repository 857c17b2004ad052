"""Forms of the auditors' pages: the trail's filters (GET: never a hash value) and the
"who held hash X" question (POST: the value never enters a URL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from hashlist.grading import parse_hash
from hashlist.models import ProposalKind
from hashsync.errors import InvalidInput
from hashsync.validation import MAX_BIGINT
from hashsync_client.algorithms import ALGORITHM_CHOICES, MAX_HASH_TEXT_LENGTH

# Every action the services write to the trail, for the filter's select. An action missing here
# can still be read on the trail, unfiltered; tests/web/test_audit_pages.py scans the source
# for actions this list lacks.
KNOWN_ACTIONS: tuple[str, ...] = tuple(
    sorted(
        {
            *(f"proposal.{kind}" for kind in ProposalKind.values),
            "proposal.approve",
            "proposal.reject",
            "proposal.withdraw",
            "import.upload",
            "import.staged",
            "import.invalid",
            "import.applied",
            "import.apply_failed",
            "release.cut",
            "release.change_withheld",
            "release.resumed",
            "tlog.backfilled",
            "tlog.cosigned",
            "audit.anchor",
            "feed.create",
            "feed.retire",
            "framework.version",
            "bundle.download",
            "keyring.issue",
            "keyring.rotate_root",
            "member.create",
            "member.suspend",
            "member.reinstate",
            "member.contact_add",
            "member.contact_remove",
            "member.licence_grant",
            "member.licence_revoke",
            "member.entitlement_grant",
            "member.entitlement_revoke",
            "member.client_create",
            "member.token_create",
            "member.token_revoke",
            "feedback.create",
            "feedback.resolve",
            "sync.plan",
            "sync.bundle",
            "sync.ack",
            "sync.lookup",
            "sync.match",
            "sync.stopncii",
            "staff.sign_in",
            "staff.sign_in_failed",
            "staff.sign_out",
            "staff.lockout",
            "staff.password_change",
            "staff.second_factor_enrol",
            "staff.second_factor_verified",
            "staff.second_factor_failed",
            "staff.second_factor_remove",
            "staff.second_factor_reset",
            "staff.recovery_codes_regenerate",
            "user.create",
            "staff_token.create",
            "staff_token.revoke",
            "audit.chain_check",
            "admin.add",
            "admin.change",
            "admin.delete",
        }
    )
)

_DATE = forms.DateInput(attrs={"type": "date"})


class TrailFilterForm(forms.Form):
    """The trail's filters, all optional; a date range is whole UTC days, both ends included."""

    actor = forms.CharField(
        label="Actor",
        required=False,
        max_length=150,
        help_text="A username, or member:name/client.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    action = forms.ChoiceField(
        label="Action",
        required=False,
        choices=[("", "Any action"), *((a, a) for a in KNOWN_ACTIONS)],
    )
    entry = forms.IntegerField(
        label="Entry",
        required=False,
        min_value=1,
        max_value=MAX_BIGINT,
        help_text="Its proposals and changes.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    member = forms.CharField(
        label="Member",
        required=False,
        max_length=64,
        help_text="Short name; with its clients' syncs.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    date_from = forms.DateField(label="From", required=False, widget=_DATE)
    date_to = forms.DateField(label="To", required=False, widget=_DATE)

    def clean_actor(self) -> str:
        return _no_nul(self.cleaned_data["actor"], "actor")

    def clean_member(self) -> str:
        return _no_nul(self.cleaned_data["member"], "member")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end of the range is before its start.")
        for name in ("date_from", "date_to"):
            day = data.get(name)
            if day is not None and not (dt.date(2000, 1, 1) <= day <= dt.date(9998, 12, 30)):
                self.add_error(name, "Choose a date between 2000 and 9998.")
        return data


def _no_nul(value: str, name: str) -> str:
    if "\x00" in value:
        raise forms.ValidationError(f"The {name} cannot contain a NUL character.")
    return value


class HashHoldersForm(forms.Form):
    algorithm = forms.ChoiceField(
        label="Algorithm",
        choices=[("", "Choose the algorithm"), *ALGORITHM_CHOICES],
        error_messages={"required": "Choose the hash's algorithm."},
    )
    value = forms.CharField(
        label="Hash",
        max_length=MAX_HASH_TEXT_LENGTH,
        strip=False,
        error_messages={"required": "Paste the hash to ask about."},
        help_text="Hex in any case, base64, or PhotoDNA's 144 comma-separated numbers. "
        "It is sent in the form, never in the page's address.",
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "class": "mono",
                "autocomplete": "off",
                "spellcheck": "false",
                "autocapitalize": "off",
            }
        ),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        algorithm, value = data.get("algorithm"), data.get("value")
        if algorithm and value is not None and "value" not in self.errors:
            try:
                data["parsed"] = parse_hash(algorithm, value, where="hash")
            except InvalidInput as error:
                self.add_error("value", error.message.removeprefix("hash: "))
        return data
