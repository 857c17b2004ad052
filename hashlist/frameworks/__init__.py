"""Grading frameworks: facts recorded once per entry (``facts``), each framework's rules as
versioned data and the pure function that applies them (``rules``), version 1 of the built-in
frameworks (``initial``), and what the fields stored before facts say (``legacy``).
docs/grading.md is the reference."""

from __future__ import annotations

from hashlist.frameworks.facts import FACT_NAMES, FACTS, UNKNOWN, validate_facts
from hashlist.frameworks.rules import UNASSESSED, Definition, classify

__all__ = [
    "FACTS",
    "FACT_NAMES",
    "UNASSESSED",
    "UNKNOWN",
    "Definition",
    "classify",
    "validate_facts",
]
