"""The fleet view's filters: all GET parameters, none of them a hash."""

from __future__ import annotations

from typing import Any

from django import forms

from members.fleet import MISSED_RETRACTION, SORT_LABELS, STATUS_LABELS

STATUS_CHOICES = [
    ("", "Any status"),
    *STATUS_LABELS.items(),
    (MISSED_RETRACTION, "Missed the newest retraction"),
]


_REVERSED = {
    "member": "Member, client, feed (Z to A)",
    "behind_versions": "Fewest versions behind first",
    "behind_time": "Shortest behind first",
    "last_seen": "Most recently seen first",
}
SORT_CHOICES = [*SORT_LABELS.items(), *((f"-{k}", v) for k, v in _REVERSED.items())]


class FleetFilterForm(forms.Form):
    member = forms.ChoiceField(label="Member", required=False)
    status = forms.ChoiceField(label="Status", required=False, choices=STATUS_CHOICES)
    release = forms.TypedChoiceField(
        label="Not holding release",
        required=False,
        coerce=int,
        empty_value=None,
    )
    sort = forms.ChoiceField(label="Sort", required=False, choices=SORT_CHOICES)

    def __init__(
        self,
        data: Any,
        *,
        members: list[tuple[str, str]],
        releases: list[dict[str, Any]],
    ) -> None:
        super().__init__(data)
        member_field: Any = self.fields["member"]
        member_field.choices = [("", "Every member"), *members]
        release_field: Any = self.fields["release"]
        release_field.choices = [("", "Any"), *(_release_choice(r) for r in releases)]


def _release_choice(release: dict[str, Any]) -> tuple[int, str]:
    when = release["created_at"].strftime("%a %d %b %Y %H:%M UTC")
    retracted = release["retractions"]
    said = f" — {retracted} retraction{'s' if retracted != 1 else ''}" if retracted else ""
    return release["version"], f"Release {release['version']}, {when}{said}"
