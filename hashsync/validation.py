"""The checks every app applies to what people and machines send, stated once.

Services call the ``clean_*`` functions on raw values (so a web form, a bulk import row, a
management command and the API are held to the same rule); DRF views use the fields at the
bottom. Every failure is an ``InvalidInput`` whose message names the field and what was
expected, and never repeats the submitted value: a pasted hash must not reach a message, a log
or an error report.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from hashsync.errors import InvalidInput
from hashsync_client.algorithms import ALGORITHM_CHOICES, ALGORITHMS

# Free text people write: notes, comments, reasons, resolutions.
MAX_TEXT = 4000
# Short labels: display names, sources, licence references, contact names.
MAX_LABEL = 200

# Names of feeds, members and sync clients: they appear in URLs and file names.
NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
NAME_RULE = "1–64 lowercase letters, digits and inner hyphens (e.g. acme-cloud)"

SHA256_HEX = re.compile(r"[0-9a-f]{64}")

# The largest value a PostgreSQL bigint holds: ids and versions above it cannot exist.
MAX_BIGINT = 2**63 - 1


def refuse_nul(value: str, field: str) -> str:
    """PostgreSQL text cannot hold NUL: storing one is a database error (a 500, or a failed
    COPY batch), while SQLite would accept it. Refuse it at the edge, on every backend."""
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters.")
    return value


def clean_text(
    value: Any, field: str, *, limit: int = MAX_TEXT, required: bool = False, minimum: int = 1
) -> str:
    """Text with surrounding white space removed; ``None`` is empty."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.")
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} is required.")
    if value and len(value) < minimum:
        raise InvalidInput(f"{field} must have at least {minimum} characters.")
    if len(value) > limit:
        raise InvalidInput(f"{field} is too long ({len(value)} characters; at most {limit}).")
    return refuse_nul(value, field)


def clean_name(value: Any, field: str) -> str:
    # fullmatch: with match, "$" also matches before a trailing newline.
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidInput(f"{field} must be {NAME_RULE}.")
    return value


def is_name(value: Any) -> bool:
    """Whether ``value`` could be a feed's, member's or client's name. Look-ups by a name that
    could not exist answer "not found" without a query (PostgreSQL refuses NUL in a query)."""
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def clean_id(value: Any, field: str) -> int:
    """A database id: a positive integer (or its decimal text) that a bigint can hold."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{field} must be an integer id.")
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{field} must be an integer id.") from None
    if not 0 < number <= MAX_BIGINT:
        raise InvalidInput(f"{field} must be a positive integer id.")
    return number


def query_int(
    params: Mapping[str, str],
    name: str,
    *,
    default: int | None,
    minimum: int,
    maximum: int,
    code: str = "invalid_input",
) -> int:
    """An integer query parameter: plain ASCII digits only (no sign, no spaces, no "1e3"),
    within [minimum, maximum]; absent or empty means ``default`` (``None``: required)."""
    raw = params.get(name)
    details = {"parameter": name, "minimum": minimum, "maximum": maximum}
    if raw is None or raw == "":
        if default is None:
            raise InvalidInput(
                f"{name} is required: an integer from {minimum} to {maximum}.",
                code=code,
                details=details,
            )
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and minimum <= int(raw) <= maximum):
        raise InvalidInput(
            f"{name} must be an integer from {minimum} to {maximum}.", code=code, details=details
        )
    return int(raw)


def clean_choice(value: Any, field: str, choices: Iterable[str]) -> str:
    """One of ``choices`` (the values of a TextChoices, or any strings), matched exactly."""
    allowed = [str(choice) for choice in choices]
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}.")
    return value


def clean_future(value: Any, field: str) -> dt.datetime | None:
    """A time-zone-aware moment in the future, or None."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{field} must be a date-time with a time zone.")
    if timezone.is_naive(value):
        raise InvalidInput(f"{field} must include a time zone (e.g. 2027-01-01T00:00:00Z).")
    if value <= timezone.now():
        raise InvalidInput(f"{field} must be in the future.")
    return value


def json_object(data: Any) -> dict[str, Any]:
    """A request body that must be a JSON object (DRF hands lists and scalars through)."""
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return data


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """The validated data of a JSON-object body, or the serializer's field errors."""
    serializer = serializer_class(data=json_object(data))
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class QuietChoiceField(serializers.ChoiceField):
    """A ChoiceField whose error names the accepted values but never repeats the submitted one
    (DRF's does: a pasted hash, or 100 kB of anything, would come back in the error)."""

    def __init__(self, choices: Any, **kwargs: Any) -> None:
        super().__init__(choices, **kwargs)
        accepted = ", ".join(str(c) for c in self.choices if c != "")
        empty = " (or empty)" if "" in self.choices else ""
        self.error_messages["invalid_choice"] = (
            f"Not an accepted value; expected one of {accepted}{empty}."
        )


class AlgorithmField(QuietChoiceField):
    """A hash algorithm's name. An unknown one is ``unknown_algorithm`` (as everywhere a hash is
    parsed), not a generic validation error; the name given is not repeated (it may be a hash
    pasted into the wrong field)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ALGORITHM_CHOICES, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or data not in self.choice_strings_to_values:
            raise InvalidInput(
                f"{self.field_name}: unknown hash algorithm; expected one of "
                f"{', '.join(ALGORITHMS)}.",
                code="unknown_algorithm",
                details={"field": self.field_name, "accepted": list(ALGORITHMS)},
            )
        return data


class StrictTextField(serializers.CharField):
    """A CharField that refuses JSON numbers instead of turning them into text (DRF's default),
    so ``{"name": 123}`` is an error rather than a feed named "123". (DRF's CharField already
    refuses NUL.)"""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
