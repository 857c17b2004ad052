"""A row's grading and facts, from whichever of the old grading columns and the fact columns the
file has (docs/import-format.md, "Facts").

The old columns are read as classes of the frameworks they came from and turned into facts
where they determine them — the rule of migration 0007 (``frameworks.legacy.facts_from_grading``,
here with the row's recorded facts fixed as well); the stored fields are then filled from the
facts and checked against them by the rule every proposal follows (``framework_store.reconcile``).
A row whose old columns no facts could give together with its recorded facts is refused, naming
the column and the facts it contradicts.

The same values give the same answer, so each distinct spelling of a row's grading is worked out
once per file (a million-row file has a few hundred).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hashlist.framework_store import reconcile
from hashlist.frameworks.facts import NEW_FACTS, UNKNOWN, all_unknown, validate_facts
from hashlist.frameworks.legacy import LEGACY_FIELDS, facts_from_grading, stated_class
from hashlist.frameworks.rules import Definition
from hashlist.grading import GRADING_FIELDS, validate_grading
from hashsync.errors import InvalidInput

# The fact columns that are not grading columns already (age_group and content_type are both).
FACT_COLUMNS: Final = NEW_FACTS
_CACHE_LIMIT: Final = 10_000  # bounds memory against a file of odd spellings


class GradeError(Exception):
    """A row's grading or facts are refused; the message names the column."""


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else repr(str(value))


class Grader:
    """Turns a row's grading and fact columns into (stored grading, new facts)."""

    def __init__(self, definitions: Mapping[str, Definition]) -> None:
        self.definitions = dict(definitions)
        self.cache: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, str]]] = {}

    def grade(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """``fields``: column name → raw value for the grading and fact columns the row has."""
        # With each value's type: JSON's 1, 1.0 and true are equal in Python, not here.
        key = tuple(
            (type(value), value)
            for value in (fields.get(name) for name in (*GRADING_FIELDS, *FACT_COLUMNS))
        )
        try:
            found = self.cache.get(key)
        except TypeError:  # a JSON list or object in a field: not hashable, checked below
            key, found = (), None
        if found is None:
            try:
                found = self._grade(fields)
            except InvalidInput as exc:
                raise GradeError(exc.message) from None
            if key and len(self.cache) < _CACHE_LIMIT:
                self.cache[key] = found
        grading, facts = found
        return dict(grading), dict(facts)

    def _grade(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        given = {
            name: fields[name]
            for name in GRADING_FIELDS
            if name in fields and fields[name] is not None and fields[name] != ""
        }
        # Each old column's own checks, as before facts (the same messages); a category may be
        # left out where the facts determine it.
        stored = validate_grading(given, category_optional=True)
        recorded = validate_facts(
            {name: fields[name] for name in FACT_COLUMNS if name in fields},
            partial_of=all_unknown(
                age_group=stored["age_group"], content_type=stored["content_type"]
            ),
        )
        records_facts = any(recorded[name] != UNKNOWN for name in FACT_COLUMNS)
        derived = facts_from_grading(stored, self.definitions, known=recorded)
        if not records_facts:
            # Old columns only: the stored fields exactly as before facts (what members would
            # have received), and the facts they determine, as migration 0007 gave every entry
            # then. Old columns that contradict each other are accepted as they always were,
            # facts unknown (``manage.py grading_report`` lists such entries).
            facts = derived or recorded
            return validate_grading(given), {name: facts[name] for name in FACT_COLUMNS}
        if derived is None:
            raise InvalidInput(self._contradiction(stored, recorded))
        try:
            clean, facts = reconcile(grading=given, facts=derived, defs=self.definitions)
        except InvalidInput as exc:
            if not given.get("category") and "category is required" in exc.message:
                raise InvalidInput(
                    f"{exc.message} The facts given do not determine it (the UK class follows "
                    "from the activity)."
                ) from None
            raise
        return clean, {name: facts[name] for name in FACT_COLUMNS}

    def _contradiction(self, stored: Mapping[str, Any], recorded: Mapping[str, str]) -> str:
        """Which old column contradicts which recorded facts, in words."""
        said = [
            (slug, field, klass)
            for slug, field in LEGACY_FIELDS.items()
            if slug in self.definitions and (klass := stated_class(slug, stored)) is not None
        ]

        def possible(columns: list[tuple[str, str, str]], facts: Mapping[str, str]) -> bool:
            # Could any facts agreeing with ``facts`` give every class ``columns`` state?
            grading = {
                "age_group": facts["age_group"],
                "content_type": facts["content_type"],
                **{field: stored[field] for _, field, _ in columns},
            }
            defs = {slug: self.definitions[slug] for slug, _, _ in columns}
            return facts_from_grading(grading, defs, known=facts) is not None

        culprits = [column for column in said if not possible([column], recorded)] or said
        given = [name for name in ("age_group", *FACT_COLUMNS) if recorded[name] != UNKNOWN]
        # The facts the columns contradict: those whose being unknown would make them possible.
        blamed = [
            name for name in given if possible(culprits, {**recorded, name: UNKNOWN})
        ] or given
        columns = ", ".join(f"{field} {_shown(_raw(stored, field))}" for _, field, _ in culprits)
        facts_text = ", ".join(f"{name} {recorded[name]!r}" for name in blamed)
        classes = ", ".join(f"{slug} {klass}" for slug, _, klass in culprits)
        fields = " and ".join(field for _, field, _ in culprits)
        return (
            f"{columns} contradicts the facts ({facts_text}): no facts with those values give "
            f"{classes}. Correct the facts, or leave {fields} empty to take the facts' class."
        )


def _raw(stored: Mapping[str, Any], field: str) -> Any:
    value = stored[field]
    if field == "baseline":
        return {True: "yes", False: "no"}.get(value, "")
    return value
