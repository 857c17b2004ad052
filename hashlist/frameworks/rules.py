"""A framework's rules as data, and the one function that applies them: ``classify``.

A definition is JSON (stored per framework version, changed only by a reviewed proposal):

    {"classes": ["A", "B", "C"],
     "rules": [{"when": {"activity": ["penetrative", "animal", "sadism"]},
                "class": "A", "source": "Sentencing Council ..."}, ...]}

Over facts that are all known, the first rule whose every condition holds (the fact's value is
one of those listed) gives the class; no matching rule gives ``UNASSESSED``, and a rule may say
``unassessed`` itself where the scheme turns on something the facts do not record.

With unknown facts the answer is a class only if **every** way of filling in the unknown facts
gives that same class; otherwise it is ``UNASSESSED``. So an unknown is never guessed: learning a
fact can turn "unassessed" into a class, but never one class into another. No database here.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from hashlist.frameworks.facts import FACT_NAMES, FACTS, UNKNOWN, Facts, facts_key
from hashsync.errors import InvalidInput

UNASSESSED: Final = "unassessed"
MAX_RULES: Final = 64
MAX_CLASSES: Final = 16
MAX_SOURCE: Final = 500
_CLASS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}")


@dataclass(frozen=True, slots=True)
class Rule:
    # (fact name, allowed known values), in FACT_NAMES order; empty: always holds.
    when: tuple[tuple[str, frozenset[str]], ...]
    klass: str
    source: str

    def holds(self, key: tuple[str, ...]) -> bool:
        return all(key[_INDEX[name]] in values for name, values in self.when)

    def to_json(self) -> dict[str, Any]:
        return {
            "when": {name: [v for v in FACTS[name] if v in values] for name, values in self.when},
            "class": self.klass,
            "source": self.source,
        }


_INDEX: Final = {name: i for i, name in enumerate(FACT_NAMES)}


@dataclass(frozen=True, slots=True)
class Definition:
    classes: tuple[str, ...]
    rules: tuple[Rule, ...]

    @property
    def used_facts(self) -> tuple[str, ...]:
        """The facts some rule looks at: only these can make a class undetermined."""
        used = {name for rule in self.rules for name, _ in rule.when}
        return tuple(name for name in FACT_NAMES if name in used)

    def first_match(self, key: tuple[str, ...]) -> str:
        """The class of fully known facts (``facts_key`` order)."""
        for rule in self.rules:
            if rule.holds(key):
                return rule.klass
        return UNASSESSED

    def to_json(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "rules": [r.to_json() for r in self.rules]}

    @classmethod
    def parse(cls, data: Any) -> Definition:
        """Validate a definition; every refusal is an ``InvalidInput`` (code
        ``invalid_framework_rules``) that says which rule and what was expected."""
        if not isinstance(data, Mapping) or set(data) != {"classes", "rules"}:
            _refuse("a definition is an object with exactly classes and rules.")
        classes = data["classes"]
        if (
            not isinstance(classes, list)
            or not 1 <= len(classes) <= MAX_CLASSES
            or not all(isinstance(c, str) and _CLASS_NAME.fullmatch(c) for c in classes)
            or len(set(classes)) != len(classes)
            or UNASSESSED in classes
        ):
            _refuse(
                f"classes must be 1 to {MAX_CLASSES} distinct names of letters, digits, _ and - "
                f"(at most 16 characters), not {UNASSESSED!r}."
            )
        rules = data["rules"]
        if not isinstance(rules, list) or not 1 <= len(rules) <= MAX_RULES:
            _refuse(f"rules must be a list of 1 to {MAX_RULES} rules.")
        return cls(tuple(classes), tuple(_rule(i, r, classes) for i, r in enumerate(rules)))


def _refuse(message: str) -> Any:
    raise InvalidInput(message, code="invalid_framework_rules")


def _rule(index: int, data: Any, classes: list[str]) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(data, Mapping) or set(data) != {"when", "class", "source"}:
        _refuse(f"{where} must be an object with exactly when, class and source.")
    klass, source, when = data["class"], data["source"], data["when"]
    if klass != UNASSESSED and klass not in classes:
        _refuse(f"{where}: class must be one of the classes or {UNASSESSED!r}.")
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE:
        _refuse(f"{where}: source must say where the rule comes from (1-{MAX_SOURCE} characters).")
    if not isinstance(when, Mapping):
        _refuse(f"{where}: when must be an object of fact name to a list of values.")
    conditions = []
    for name in FACT_NAMES:
        if name not in when:
            continue
        values = when[name]
        known = FACTS[name]
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v in known for v in values)
        ):
            _refuse(f"{where}: when.{name} must be a non-empty list of {', '.join(known)}.")
        conditions.append((name, frozenset(values)))
    extra = set(when) - set(FACT_NAMES)
    if extra:
        _refuse(f"{where}: unknown fact(s) in when; expected {', '.join(FACT_NAMES)}.")
    return Rule(tuple(conditions), klass, source.strip())


@functools.lru_cache(maxsize=65536)
def _classify(definition: Definition, key: tuple[str, ...]) -> str:
    unknown = [name for name in definition.used_facts if key[_INDEX[name]] == UNKNOWN]
    found: str | None = None
    for values in itertools.product(*(FACTS[name] for name in unknown)):
        filled = list(key)
        for name, value in zip(unknown, values, strict=True):
            filled[_INDEX[name]] = value
        klass = definition.first_match(tuple(filled))
        if found is None:
            found = klass
        elif klass != found:
            return UNASSESSED
    assert found is not None  # product() of no lists yields one empty tuple
    return found


def classify(definition: Definition, facts: Facts) -> str:
    """The class ``definition`` gives ``facts``, or ``UNASSESSED`` (module docstring).
    Cached: a list of millions of entries has a few thousand distinct sets of facts."""
    return _classify(definition, facts_key(facts))
