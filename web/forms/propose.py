"""Forms of the propose pages.

They check the shape of what was typed (a choice from the grading vocabulary, a known
algorithm) and read each pasted hash with the parser the services use
(``hashlist.grading.parse_hash``), so every row's problem shows at once instead of one per
submit. The services check everything again and have the last word: the views put their
refusals on these forms.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from hashlist.frameworks.facts import LABELS as FACT_LABELS
from hashlist.frameworks.facts import NEW_FACTS, UNKNOWN, allowed
from hashlist.grading import parse_hash
from hashlist.models import (
    AGE_GROUP_CHOICES,
    CATEGORY_CHOICES,
    CONTENT_TYPE_CHOICES,
    INDUSTRY_CLASS_CHOICES,
    Entry,
    Hash,
)
from hashsync.errors import InvalidInput
from hashsync.validation import MAX_LABEL, MAX_TEXT
from hashsync_client.algorithms import ALGORITHM_CHOICES, MAX_HASH_TEXT_LENGTH

CHOOSE = ("", "Choose…")
# The service reads a three-valued baseline; the form offers words for each value.
BASELINE_CHOICES = [("", "Not assessed"), ("yes", "Yes: on the baseline"), ("no", "No")]
_BASELINE_VALUE = {"": None, "yes": True, "no": False}
_BASELINE_CHOICE = {None: "", True: "yes", False: "no"}
# An entry holds at most 32 hashes (hashlist.grading.parse_hash_list).
MAX_HASH_ROWS = 32
FIRST_HASH_ROWS = 3


def _text(label: str, *, required: str = "", help_text: str = "", rows: int = 3) -> forms.CharField:
    """Free text; ``required`` is the message that asks for it when it is required."""
    return forms.CharField(
        label=label,
        required=bool(required),
        error_messages={"required": required} if required else None,
        max_length=MAX_TEXT,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": rows}),
    )


def _hash_value(*, required: bool, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label="Value",
        required=required,
        max_length=MAX_HASH_TEXT_LENGTH,
        strip=False,  # the parser strips; a value is never changed before it reads it
        help_text=help_text,
        error_messages={"required": "Paste the hash value."},
        widget=forms.TextInput(
            attrs={"class": "mono", "autocomplete": "off", "spellcheck": "false"}
        ),
    )


def _fact(name: str, help_text: str) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_FACT_LABELS[name],
        choices=[(value, FACT_LABELS[value]) for value in allowed(name)],
        initial=UNKNOWN,
        required=False,  # left out (a client posting only the grading): unknown
        help_text=help_text,
    )


_FACT_LABELS = {
    "pubertal_stage": "Pubertal stage",
    "activity": "Most serious activity",
    "origin": "Real or computer-generated",
    "self_generated": "Self-generated",
}


class GradingForm(forms.Form):
    # Facts first: what the analyst saw. Every framework's class is derived from them
    # (docs/grading.md); a stored field below that they determine follows them.
    pubertal_stage = _fact("pubertal_stage", "Of the youngest child shown.")
    activity = _fact("activity", "The most serious activity shown.")
    origin = _fact("origin", "Computer-generated: made to look like a photograph.")
    self_generated = _fact("self_generated", "Made by the child themselves.")
    category = forms.ChoiceField(
        label="Category",
        choices=[CHOOSE, *CATEGORY_CHOICES],
        required=False,
        help_text="Severity under UK law: A is the most severe. Leave it to the facts when "
        "the activity is recorded.",
    )
    age_group = forms.ChoiceField(
        label="Age group",
        choices=[CHOOSE, *AGE_GROUP_CHOICES],
        help_text="Of the youngest child shown; Unknown when it cannot be assessed.",
        error_messages={"required": "Choose the age group (Unknown if it cannot be assessed)."},
    )
    baseline = forms.ChoiceField(
        label="INTERPOL baseline", choices=BASELINE_CHOICES, required=False
    )
    industry_class = forms.ChoiceField(
        label="Industry class",
        choices=INDUSTRY_CLASS_CHOICES,
        required=False,
        help_text="The NCMEC/industry class A1, A2, B1 or B2, if classified.",
    )
    content_type = forms.ChoiceField(
        label="Content type", choices=CONTENT_TYPE_CHOICES, initial="image"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("category") and (data.get("activity") or UNKNOWN) == UNKNOWN:
            self.add_error("category", "Choose the category.")
        return data

    def grading(self) -> dict[str, Any]:
        """The stored fields as chosen. A category, baseline or industry class left empty is
        left out, so that where the facts determine it the service takes the facts' class."""
        data = self.cleaned_data
        grading = {
            "category": data["category"],
            "age_group": data["age_group"],
            "baseline": _BASELINE_VALUE[data.get("baseline") or ""],
            "industry_class": data.get("industry_class") or "",
            "content_type": data["content_type"],
        }
        return {k: v for k, v in grading.items() if v not in ("", None)}

    def facts(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name) or UNKNOWN for name in NEW_FACTS}

    @staticmethod
    def initial_of(entry: Entry) -> dict[str, Any]:
        """The entry's grading, as the form's initial values (a regrade starts from it)."""
        return {
            **{name: getattr(entry, name) for name in NEW_FACTS},
            "category": entry.category,
            "age_group": entry.age_group,
            "baseline": _BASELINE_CHOICE[entry.baseline],
            "industry_class": entry.industry_class,
            "content_type": entry.content_type,
        }


class CreateEntryForm(GradingForm):
    source = forms.CharField(
        label="Source",
        required=False,
        max_length=MAX_LABEL,
        help_text="Where the item came from (a report reference, a case). Never distributed.",
    )
    notes = _text("Notes", help_text="Internal analyst notes. Never distributed to members.")
    comment = _text("Comment for the reviewer", rows=2)


class RegradeForm(GradingForm):
    comment = _text("Why regrade", help_text="The reviewer reads this.", rows=2)


class HashRowForm(forms.Form):
    """One row of the new entry's hashes. A row left blank is left out."""

    algorithm = forms.ChoiceField(
        label="Algorithm", choices=[CHOOSE, *ALGORITHM_CHOICES], required=False
    )
    value = _hash_value(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        algorithm, value = data.get("algorithm"), (data.get("value") or "")
        if value.strip() and not algorithm:
            self.add_error("algorithm", "Choose the algorithm of this hash.")
        elif algorithm and not value.strip():
            self.add_error(
                "value", "Paste the hash value, or choose no algorithm to leave the row out."
            )
        elif algorithm:
            _check_hash(self, algorithm, value)
        return data

    @property
    def filled(self) -> bool:
        return bool(self.cleaned_data.get("algorithm"))


class BaseHashRowFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        if not self.filled_forms():
            raise ValidationError("Paste at least one hash of the item.", code="no_hashes")

    def filled_forms(self) -> list[HashRowForm]:
        return [f for f in self.forms if getattr(f, "cleaned_data", None) and f.filled]

    def hashes(self) -> list[dict[str, str]]:
        return [
            {"algorithm": f.cleaned_data["algorithm"], "value": f.cleaned_data["value"]}
            for f in self.filled_forms()
        ]


def hash_row_formset(
    data: Any = None, *, initial: list[dict[str, str]] | None = None
) -> BaseHashRowFormSet:
    """The new entry's hash rows: as posted (``data``), as typed so far (``initial``, when a
    row is added without JavaScript), or a few blank ones."""
    formset_class = forms.formset_factory(
        HashRowForm,
        formset=BaseHashRowFormSet,
        extra=0 if initial else FIRST_HASH_ROWS,
        max_num=MAX_HASH_ROWS,
        absolute_max=MAX_HASH_ROWS,
        validate_max=True,
    )
    return cast(BaseHashRowFormSet, formset_class(data, initial=initial, prefix="hashes"))


class AddHashForm(forms.Form):
    algorithm = forms.ChoiceField(
        label="Algorithm",
        choices=[CHOOSE, *ALGORITHM_CHOICES],
        error_messages={"required": "Choose the algorithm of the hash."},
    )
    value = _hash_value(
        required=True,
        help_text="Hex in any case, base64, or PhotoDNA's 144 comma-separated numbers.",
    )
    comment = _text("Comment for the reviewer", rows=2)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("algorithm") and data.get("value"):
            _check_hash(self, data["algorithm"], data["value"])
        return data


class RemoveHashForm(forms.Form):
    hash = forms.ChoiceField(label="Hash to remove", widget=forms.RadioSelect)
    comment = _text(
        "Reason",
        required="Say why the hash should be removed: the reviewer needs to know.",
        help_text="Why this hash does not belong to the entry. The reviewer reads this.",
    )

    def __init__(self, *args: Any, hashes: list[Hash], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hashes = {str(h.pk): h for h in hashes}
        field = cast(forms.ChoiceField, self.fields["hash"])
        field.choices = [(key, h.algorithm) for key, h in self.hashes.items()]
        field.error_messages["invalid_choice"] = (
            "That hash is not on this entry any more; choose one of those listed."
        )
        field.error_messages["required"] = "Choose the hash to remove."

    def chosen(self) -> Hash:
        return self.hashes[self.cleaned_data["hash"]]


class RetractForm(forms.Form):
    reason = _text(
        "Reason",
        required="Say why the entry should be retracted: the reviewer needs to know.",
        help_text="Why the entry should come off the list. The reviewer reads this.",
    )


def _check_hash(form: forms.Form, algorithm: str, value: str) -> None:
    try:
        parse_hash(algorithm, value)
    except InvalidInput as error:
        # "hash: md5: expected …": the row already says which hash it is.
        form.add_error("value", error.message.removeprefix("hash: "))
