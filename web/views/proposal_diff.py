"""What a proposal changes, as the review page shows it: the entry before and after, field by
field and hash by hash, each difference named (not only coloured).

States are the change log's JSON form of an entry (``hashlist.changelog.EntryState``): the
grading fields, the status and sorted ``[algorithm, canonical text]`` hash pairs. Nothing here
reads the database; ``review.py`` finds the states through selectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hashlist.framework_store import Current
from hashlist.frameworks.facts import LABELS as FACT_LABELS
from hashlist.frameworks.facts import NEW_FACTS, UNKNOWN
from hashlist.frameworks.rules import UNASSESSED, classify
from hashlist.models import (
    AGE_GROUP_CHOICES,
    CATEGORY_CHOICES,
    CONTENT_TYPE_CHOICES,
    INDUSTRY_CLASS_CHOICES,
    EntryStatus,
    Proposal,
    ProposalKind,
)
from hashsync_client.algorithms import ALGORITHMS

State = dict[str, Any]

SAME, CHANGED, ADDED, REMOVED = "same", "changed", "added", "removed"

_LABELS: dict[str, dict[Any, str]] = {
    "category": dict(CATEGORY_CHOICES),
    "age_group": dict(AGE_GROUP_CHOICES),
    "baseline": {None: "Not assessed", True: "Yes", False: "No"},
    "industry_class": dict(INDUSTRY_CLASS_CHOICES),
    "content_type": dict(CONTENT_TYPE_CHOICES),
    "status": dict(EntryStatus.choices),
}
FIELDS = (
    ("category", "Category"),
    ("age_group", "Age group"),
    ("baseline", "INTERPOL baseline"),
    ("industry_class", "Industry class"),
    ("content_type", "Content type"),
    ("status", "Status"),
)
FIELD_NAMES = dict(FIELDS)
GRADING, FACTS, CLASSES = "Grading", "Facts", "Classes under the current rules"


def shown(name: str, value: Any) -> str:
    """A grading value as people read it ("Category A", "Unknown", "Not assessed")."""
    if name in _LABELS:
        return _LABELS[name].get(value, str(value))
    if name.startswith("class:"):
        return "Unassessed" if value == UNASSESSED else str(value)
    return FACT_LABELS.get(value, str(value))


def algorithm_label(name: str) -> str:
    algorithm = ALGORITHMS.get(name)
    return algorithm.label if algorithm else name


@dataclass(frozen=True)
class FieldRow:
    name: str
    label: str
    before: str | None
    after: str
    state: str
    group: str = GRADING


@dataclass(frozen=True)
class HashRow:
    algorithm: str
    label: str
    value: str
    state: str


@dataclass
class Diff:
    """Before (None for a new entry) and after, field by field; the hashes it removes (before)
    and adds (after), and apart from them the hashes it leaves alone — a PhotoDNA value fills
    ten lines, and a reviewer should not have to read it twice to see that it did not change."""

    fields: list[FieldRow]
    before_hashes: list[HashRow] = field(default_factory=list)
    after_hashes: list[HashRow] = field(default_factory=list)
    unchanged_hashes: list[HashRow] = field(default_factory=list)
    new_entry: bool = False

    @property
    def changes(self) -> int:
        return (
            sum(row.state != SAME for row in self.fields)
            + len(self.before_hashes)
            + (0 if self.new_entry else len(self.after_hashes))
        )

    @property
    def groups(self) -> list[tuple[str, list[FieldRow]]]:
        """The rows by group: the delivered grading, the facts, each framework's class."""
        order = [GRADING, FACTS, CLASSES]
        return [(g, rows) for g in order if (rows := [r for r in self.fields if r.group == g])]

    @property
    def unchanged_algorithms(self) -> str:
        return ", ".join(row.label for row in self.unchanged_hashes)


def _pairs(state: State) -> list[tuple[str, str]]:
    return [(name, text) for name, text in state.get("hashes", [])]


def _with_classes(state: State, frameworks: list[Current]) -> State:
    """The state with its facts filled in (unknown in states logged before facts) and each
    framework's class for them, as ``class:<slug>``."""
    full = {**{name: UNKNOWN for name in NEW_FACTS}, **state}
    facts = {name: full.get(name, UNKNOWN) for name in (*NEW_FACTS, "age_group", "content_type")}
    for framework in frameworks:
        full[f"class:{framework.slug}"] = classify(framework.definition, facts)
    return full


def diff(before: State | None, after: State, frameworks: list[Current] | None = None) -> Diff:
    """Field by field; with ``frameworks``, also the facts and every framework's class under
    its current rules, before and after (what a reviewer needs to see of a regrade)."""
    named = [(name, label, GRADING) for name, label in FIELDS]
    if frameworks is not None:
        before = _with_classes(before, frameworks) if before is not None else None
        after = _with_classes(after, frameworks)
        named += [(name, FACT_LABELS[name], FACTS) for name in NEW_FACTS]
        named += [(f"class:{f.slug}", f"{f.name} (v{f.version})", CLASSES) for f in frameworks]
    rows = []
    for name, label, group in named:
        new = after.get(name)
        if before is None:
            rows.append(FieldRow(name, label, None, shown(name, new), ADDED, group))
            continue
        old = before.get(name)
        rows.append(
            FieldRow(
                name,
                label,
                shown(name, old),
                shown(name, new),
                SAME if old == new else CHANGED,
                group,
            )
        )
    old_pairs = _pairs(before) if before is not None else []
    new_pairs = _pairs(after)
    kept = [p for p in old_pairs if p in new_pairs]
    removed = [p for p in old_pairs if p not in new_pairs]
    added = [p for p in new_pairs if p not in old_pairs]

    def row(pair: tuple[str, str], state: str) -> HashRow:
        return HashRow(pair[0], algorithm_label(pair[0]), pair[1], state)

    return Diff(
        fields=rows,
        before_hashes=[row(p, REMOVED) for p in removed],
        after_hashes=[row(p, ADDED) for p in added],
        unchanged_hashes=[row(p, SAME) for p in kept],
        new_entry=before is None,
    )


def proposed_state(proposal: Proposal, before: State | None) -> State | None:
    """The entry as it would be (or was) once ``proposal`` is applied to ``before``; None for
    an import, which is reviewed as a batch, not as one entry."""
    payload = proposal.payload or {}
    kind = proposal.kind
    if kind == ProposalKind.CREATE:
        return {
            **payload.get("grading", {}),
            **payload.get("facts", {}),
            "status": EntryStatus.ACTIVE,
            "hashes": sorted(payload.get("hashes", [])),
        }
    if before is None or kind == ProposalKind.IMPORT:
        return None
    after = {**before, "hashes": [list(p) for p in before.get("hashes", [])]}
    if kind == ProposalKind.REGRADE:
        after.update(payload.get("grading", {}))
        after.update(payload.get("facts", {}))
    elif kind == ProposalKind.ADD_HASH:
        after["hashes"] = sorted([*after["hashes"], list(payload["hash"])])
    elif kind == ProposalKind.REMOVE_HASH:
        after["hashes"] = [p for p in after["hashes"] if p != list(payload["hash"])]
    elif kind == ProposalKind.RETRACT:
        after["status"] = EntryStatus.RETRACTED
    return after


def _brief(name: str, grading: dict[str, Any]) -> str:
    value = grading.get(name)
    return str(value) if name == "category" else shown(name, value)


def summary(proposal: Proposal) -> str:
    """One line for the review queue: what the proposal does, without a hash value."""
    payload = proposal.payload or {}
    kind = proposal.kind
    if kind == ProposalKind.CREATE:
        grading = payload.get("grading", {})
        pairs = payload.get("hashes", [])
        names = ", ".join(sorted({algorithm_label(name) for name, _ in pairs}))
        hashes = f"{len(pairs)} hash{'es' if len(pairs) != 1 else ''} ({names})"
        category = shown("category", grading.get("category"))
        return f"{category}, age {_brief('age_group', grading)}; {hashes}"
    if kind == ProposalKind.REGRADE:
        entry = proposal.entry
        if entry is None:
            return ""
        now = {name: getattr(entry, name) for name in payload.get("grading", {})}
        changed = [
            f"{FIELD_NAMES[name].lower()} {_brief(name, now)} → {_brief(name, payload['grading'])}"
            for name in now
            if now[name] != payload["grading"][name]
        ]
        return "; ".join(changed) or "no difference from the entry's grading now"
    if kind in (ProposalKind.ADD_HASH, ProposalKind.REMOVE_HASH):
        verb = "adds" if kind == ProposalKind.ADD_HASH else "removes"
        label = algorithm_label(payload["hash"][0])
        article = "an" if label[:1] in "AEIMOU" else "a"  # "an MD5", "a SHA-1"
        return f"{verb} {article} {label} hash"
    if kind == ProposalKind.RETRACT:
        return "retracts the entry"
    batch = getattr(proposal, "import_batch", None)
    if batch is not None:
        return f"{batch.rows_valid} rows from {batch.original_name}"
    return ""
