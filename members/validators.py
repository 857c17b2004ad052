"""Checks of the values staff and member clients send to the members' services, each raising
``InvalidInput`` with a message that names the field."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.utils import timezone

from hashsync.errors import InvalidInput

NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


def clean_name(value: Any, field: str) -> str:
    # fullmatch: with match, "$" also matches before a trailing newline.
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidInput(
            f"{field} must be 1–64 lowercase letters, digits and inner hyphens (e.g. acme-cloud)."
        )
    return value


def clean_text(
    value: Any, field: str, *, limit: int, required: bool = True, minimum: int = 1
) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.")
    value = value.strip()
    if required and len(value) < minimum:
        raise InvalidInput(f"{field} must have at least {minimum} characters.")
    if len(value) > limit:
        raise InvalidInput(f"{field} is too long ({len(value)} characters; at most {limit}).")
    # PostgreSQL text cannot hold NUL: storing it was a 500 there (and accepted on SQLite).
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters.")
    return value


def clean_choice(value: Any, field: str, choices: Any) -> str:
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}.")
    return str(value)


def clean_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{field} must be an integer id.")
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{field} must be an integer id.") from None
    if not 0 < number < 2**63:
        raise InvalidInput(f"{field} must be a positive integer id.")
    return number


def clean_future(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{field} must be a date-time with a time zone.")
    if timezone.is_naive(value):
        raise InvalidInput(f"{field} must include a time zone (e.g. 2027-01-01T00:00:00Z).")
    if value <= timezone.now():
        raise InvalidInput(f"{field} must be in the future.")
    return value
