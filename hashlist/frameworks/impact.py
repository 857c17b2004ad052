"""What a rule change does, for the reviewer deciding it: the rules added, removed and changed
(``rule_diff``), and how many entries' derived class it changes (``regraded``).

Pure (no database): ``regraded`` takes the list already grouped by the facts the two
definitions look at — ``framework_store.rule_change_impact`` runs that one GROUP BY — so the rules
run once per distinct combination of facts, never per entry: a list of millions of entries has
at most a few thousand combinations (docs/grading.md).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Final

from hashlist.frameworks.facts import FACT_NAMES, FACTS, UNKNOWN
from hashlist.frameworks.rules import Definition, Rule, classify

ADDED: Final = "added"
REMOVED: Final = "removed"
CHANGED: Final = "changed"
SAME: Final = "same"


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One line of the rule diff: a rule as it was (``old``), as proposed (``new``), or both,
    with its position in each (1-based) and, for a changed rule, which parts changed."""

    state: str
    old_position: int | None
    new_position: int | None
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    changed_parts: tuple[str, ...] = ()  # "when.<fact>", "class", "source"


@dataclass(frozen=True, slots=True)
class RuleDiff:
    rows: tuple[RuleRow, ...]
    classes_added: tuple[str, ...]
    classes_removed: tuple[str, ...]

    @property
    def changes(self) -> int:
        return (
            sum(1 for row in self.rows if row.state != SAME)
            + len(self.classes_added)
            + len(self.classes_removed)
        )


def _key(rule: Rule) -> str:
    # A rule's identity for matching: everything it says, canonically.
    return sha256(json.dumps(rule.to_json(), sort_keys=True).encode()).hexdigest()


def _parts(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    parts = [
        f"when.{name}" for name in FACT_NAMES if old["when"].get(name) != new["when"].get(name)
    ]
    if old["class"] != new["class"]:
        parts.append("class")
    if old["source"] != new["source"]:
        parts.append("source")
    return tuple(parts)


def rule_diff(old: Definition, new: Definition) -> RuleDiff:
    """The rules in order, each marked same, added, removed or changed. Rules are matched as a
    sequence (order matters: the first rule that holds gives the class); a rule replaced in
    place is "changed" with the parts that differ, the rest of a replaced run added or removed."""
    a = [_key(rule) for rule in old.rules]
    b = [_key(rule) for rule in new.rules]
    rows: list[RuleRow] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                rows.append(
                    RuleRow(SAME, i + 1, j + 1, old.rules[i].to_json(), new.rules[j].to_json())
                )
            continue
        pairs = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(pairs):
            before, after = old.rules[i1 + k].to_json(), new.rules[j1 + k].to_json()
            rows.append(
                RuleRow(CHANGED, i1 + k + 1, j1 + k + 1, before, after, _parts(before, after))
            )
        for i in range(i1 + pairs, i2):
            rows.append(RuleRow(REMOVED, i + 1, None, old.rules[i].to_json(), None))
        for j in range(j1 + pairs, j2):
            rows.append(RuleRow(ADDED, None, j + 1, None, new.rules[j].to_json()))
    return RuleDiff(
        tuple(rows),
        tuple(c for c in new.classes if c not in old.classes),
        tuple(c for c in old.classes if c not in new.classes),
    )


def looked_at(*definitions: Definition) -> tuple[str, ...]:
    """The facts any of ``definitions`` looks at: grouping by these alone is enough."""
    used = {name for definition in definitions for name in definition.used_facts}
    return tuple(name for name in FACT_NAMES if name in used)


@dataclass(frozen=True, slots=True)
class Impact:
    """How a rule change moves the list: ``regraded`` entries change class; ``moves`` counts
    them by (old class, new class), most first."""

    entries: int
    regraded: int
    combinations: int
    moves: tuple[tuple[str, str, int], ...] = field(default=())


def regraded(
    groups: Iterable[tuple[Mapping[str, str], int]], old: Definition, new: Definition
) -> Impact:
    """``groups``: (facts, number of entries) for each distinct combination of the facts
    ``looked_at(old, new)``; a fact missing from ``facts`` is unknown (neither definition
    looks at it, so it cannot change a class)."""
    entries = regraded_count = combinations = 0
    moves: dict[tuple[str, str], int] = {}
    for facts, count in groups:
        combinations += 1
        entries += count
        full = {name: facts.get(name, _filler(name)) for name in FACT_NAMES}
        before, after = classify(old, full), classify(new, full)
        if before != after:
            regraded_count += count
            moves[(before, after)] = moves.get((before, after), 0) + count
    ordered = sorted(moves.items(), key=lambda item: (-item[1], item[0]))
    return Impact(entries, regraded_count, combinations, tuple((a, b, n) for (a, b), n in ordered))


def _filler(name: str) -> str:
    # A fact neither definition looks at: any value gives the same class; the content type
    # has no "unknown".
    return FACTS[name][0] if name == "content_type" else UNKNOWN
