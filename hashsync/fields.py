"""Serializer fields shared by the APIs."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class QuietChoiceField(serializers.ChoiceField):
    """A ChoiceField whose error names the accepted values but never repeats the submitted one
    (DRF's does: a pasted hash, or 100 kB of anything, would come back in the error)."""

    def __init__(self, choices: Any, **kwargs: Any) -> None:
        super().__init__(choices, **kwargs)
        accepted = ", ".join(str(c) for c in self.choices)
        self.error_messages["invalid_choice"] = (
            f"Not an accepted value; expected one of {accepted}."
        )
