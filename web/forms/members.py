"""Forms of the member administrators' pages. They check the shape of the input only, as the
API's serializers do; what is allowed (a free name, a feed that needs a licence, a date in the
future) is ``members.services``' to decide, and its refusal is shown next to the field. Each
form has a prefix, so that the many forms of a member's page keep their fields apart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils import timezone

from hashsync.validation import MAX_LABEL, MAX_TEXT, NAME_RULE
from members.models import ContactRole, MemberStatus, TokenScope
from members.services import MAX_TOKEN_DAYS

# Longer than any name (64) so the service, not the form, explains what a name may be.
NAME_INPUT = 100


class MemberFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *MemberStatus.choices]
    )
    text = forms.CharField(
        label="Name contains",
        required=False,
        max_length=MAX_LABEL,
        widget=forms.TextInput(attrs={"type": "search"}),
    )


class MemberCreateForm(forms.Form):
    prefix = "create"
    name = forms.CharField(
        label="Short name",
        max_length=NAME_INPUT,
        help_text=f"The member's stable identifier in the API and its pages: {NAME_RULE}.",
        error_messages={"required": "Give the member a short name."},
    )
    display_name = forms.CharField(
        label="Organisation name",
        max_length=MAX_LABEL,
        help_text="As people write it, e.g. “Acme Cloud Ltd”.",
        error_messages={"required": "Give the organisation's name."},
    )


class ReasonForm(forms.Form):
    """Suspend or reinstate: the reason goes on the audit trail and into the member's history."""

    reason = forms.CharField(
        label="Reason",
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why: it goes into the member's history."},
    )


class SuspendForm(ReasonForm):
    prefix = "suspend"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = "Reason for suspending"


class ReinstateForm(ReasonForm):
    prefix = "reinstate"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = "Reason for reinstating"


class ContactForm(forms.Form):
    prefix = "contact"
    name = forms.CharField(label="Name", max_length=MAX_LABEL)
    email = forms.CharField(
        label="E-mail", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(label="Role", choices=ContactRole.choices)


class LicenceForm(forms.Form):
    prefix = "licence"
    reference = forms.CharField(
        label="Reference",
        required=False,
        max_length=MAX_LABEL,
        help_text="The licence agreement's number or file, for the auditors.",
    )
    valid_until = forms.DateField(
        label="Valid through",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last day it is valid (UTC). Leave empty for a licence without end.",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )

    def clean_valid_until(self) -> dt.date | None:
        day = self.cleaned_data.get("valid_until")
        if day is not None and day < timezone.now().date():
            raise forms.ValidationError("That day is in the past: choose today or a later day.")
        return day

    def valid_until_moment(self) -> dt.datetime | None:
        """The end of the chosen day in UTC, as the service wants a moment."""
        day = self.cleaned_data.get("valid_until")
        if day is None:
            return None
        return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


class EntitlementForm(forms.Form):
    prefix = "entitlement"
    # A select, but any text reaches the service, whose "no such feed" is shown next to it.
    feed = forms.CharField(
        label="Feed", max_length=NAME_INPUT, error_messages={"required": "Choose a feed."}
    )

    def __init__(self, *args: Any, feeds: Sequence[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "Choose a feed…")]
        for feed in feeds:
            needs = " (carries PhotoDNA: needs the licence)" if feed.carries_photodna else ""
            label = feed.name + needs
            choices.append((feed.name, label))
        self.fields["feed"].widget = forms.Select(choices=choices)


class ClientForm(forms.Form):
    prefix = "client"
    name = forms.CharField(
        label="Client name",
        max_length=NAME_INPUT,
        help_text=f"One machine or deployment of the member, e.g. edge-1: {NAME_RULE}.",
        error_messages={"required": "Give the client a name."},
    )


class TokenForm(forms.Form):
    prefix = "token"
    client = forms.CharField(
        label="Sync client", max_length=NAME_INPUT, error_messages={"required": "Choose a client."}
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[TokenScope.SYNC],
        help_text="Give only what the machine needs.",
        error_messages={"required": "Choose at least one scope."},
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        initial=365,
        help_text=f"1 to {MAX_TOKEN_DAYS} days. Leave empty for a token that does not expire.",
    )
    # Each rendering of the form carries a fresh single-use value: a form sent twice (a reload
    # of the page that showed the token, the back button) is refused instead of issuing and
    # showing a second token.
    once = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, clients: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(name, name) for name in clients]
        if len(choices) != 1:
            choices.insert(0, ("", "Choose a client…"))
        self.fields["client"].widget = forms.Select(choices=choices)
