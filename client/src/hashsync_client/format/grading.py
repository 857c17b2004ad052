"""The grading vocabulary and its codes 0..629 (``docs/bundle-format.md``, "Gradings").

The one statement of what a grading is: its field names and the allowed values of each. The
bundle codec and the state digest encode them; the server takes its model choices from here.
"""

from __future__ import annotations

import itertools
import math
from types import MappingProxyType
from typing import Any, Final, NamedTuple


class Grading(NamedTuple):
    """A grading; the field order is the order of the digits of its code."""

    category: str
    age_group: str
    baseline: bool | None  # None: not assessed against the Interpol baseline
    industry_class: str  # "": not classified
    content_type: str


# Each value's position in its tuple is its digit in the grading code, so bundles and state
# digests depend on this order: never reorder or extend a tuple (that would be a new format).
CATEGORIES: Final = ("A", "B", "C")
AGE_GROUPS: Final = ("0-2", "3-6", "7-10", "11-13", "14-15", "16-17", "unknown")
BASELINES: Final = (None, True, False)
INDUSTRY_CLASSES: Final = ("", "A1", "A2", "B1", "B2")
CONTENT_TYPES: Final = ("image", "video")

GRADING_FIELD_NAMES: Final[tuple[str, ...]] = Grading._fields
# Mixed radix, first field most significant: code = ((((c*7 + a)*3 + b)*5 + i)*2 + t), where
# each digit is the value's position in its tuple.
GRADING_FIELDS: Final[MappingProxyType[str, tuple[Any, ...]]] = MappingProxyType(
    dict(
        zip(
            GRADING_FIELD_NAMES,
            (CATEGORIES, AGE_GROUPS, BASELINES, INDUSTRY_CLASSES, CONTENT_TYPES),
            strict=True,
        )
    )
)
GRADING_COUNT: Final = math.prod(len(values) for values in GRADING_FIELDS.values())  # 630


_GRADINGS: Final[tuple[Grading, ...]] = tuple(
    Grading(*values) for values in itertools.product(*GRADING_FIELDS.values())
)
# Keyed with the type of baseline so that 1/0 are not taken for True/False (1 == True).
_GRADING_CODES: Final[dict[tuple[Any, ...], int]] = {
    (*grading, type(grading.baseline)): code for code, grading in enumerate(_GRADINGS)
}


def encode_grading(
    category: str,
    age_group: str,
    baseline: bool | None,
    industry_class: str,
    content_type: str,
) -> int:
    """The grading code 0..629 of a grading; ``ValueError`` if any field is not a known value.

    Values are compared exactly (``"a"`` is not ``"A"``); normalise with
    ``hashlist.grading.validate_grading`` first.
    """
    key = (category, age_group, baseline, industry_class, content_type, type(baseline))
    try:
        return _GRADING_CODES[key]
    except (KeyError, TypeError):  # TypeError: an unhashable value
        pass
    for (field, allowed), value in zip(GRADING_FIELDS.items(), key, strict=False):
        if field == "baseline":
            valid = value is None or type(value) is bool
        else:
            valid = type(value) is str and value in allowed
        if not valid:
            choices = ", ".join(map(repr, allowed))
            raise ValueError(f"{field} must be one of {choices}; got {_short(value)}")
    raise AssertionError("unreachable: every valid grading has a code")


def decode_grading(code: int) -> Grading:
    """The grading of a code 0..629; ``ValueError`` for anything else."""
    if type(code) is not int or not 0 <= code < GRADING_COUNT:
        raise ValueError(f"grading code must be an integer 0..{GRADING_COUNT - 1}")
    return _GRADINGS[code]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 12 else f"a value of {len(text)} characters"
