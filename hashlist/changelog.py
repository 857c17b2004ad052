"""The change log: the one contract between curation and publication.

Curation writes a ``Change`` row for every approved change of an entry, in the approving
transaction, holding the entry's ``EntryState`` before and after; publication (the
``distribution`` app) reads those rows and cuts releases from them, and nothing else of
curation. Curation never imports publication: it announces that changes are waiting through
``changes_waiting``, to which publication connects when it is installed (``distribution.apps``).
Without a listener, approved changes simply wait for the next scheduled cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

from hashlist.frameworks.facts import FACT_NAMES, NEW_FACTS, UNKNOWN
from hashlist.grading import canonical_pairs
from hashsync_client.algorithms import get_algorithm
from hashsync_client.format import Grading

if TYPE_CHECKING:
    from hashlist.models import Entry

ACTIVE = "active"

# Sent inside the approving transaction, once approved changes wait in the log. A listener
# that starts work must defer it to ``transaction.on_commit`` so that the work sees the rows.
changes_waiting = Signal()


def announce_changes_waiting() -> None:
    changes_waiting.send(sender=announce_changes_waiting)


@dataclass(frozen=True, slots=True)
class EntryState:
    """What members may learn of an entry at one moment: its grading, its status and its
    hashes — never its notes or source. It also holds the entry's facts
    (``hashlist.frameworks.facts``), from which publication derives a framework's classes;
    members receive those classes, not the facts. ``Change.before``/``after`` hold it as JSON
    (``to_json``); the release cutter reads it back with ``from_json``."""

    category: str
    age_group: str
    baseline: bool | None
    industry_class: str
    content_type: str
    status: str
    # Sorted (algorithm, canonical text) pairs: the form a person can read in the log.
    hashes: tuple[tuple[str, str], ...]
    # The facts that are not grading fields; "unknown" in changes logged before facts existed.
    pubertal_stage: str = UNKNOWN
    activity: str = UNKNOWN
    origin: str = UNKNOWN
    self_generated: str = UNKNOWN

    @classmethod
    def of(cls, entry: Entry, pairs: Iterable[tuple[str, bytes]] | None = None) -> EntryState:
        """The state of ``entry`` with its stored hashes (prefetched ones when the entry was
        loaded with them), or with ``pairs`` (algorithm, raw bytes) when given."""
        if pairs is None:
            pairs = ((h.algorithm, bytes(h.value)) for h in entry.hashes.all())
        return cls(
            category=entry.category,
            age_group=entry.age_group,
            baseline=entry.baseline,
            industry_class=entry.industry_class,
            content_type=entry.content_type,
            status=entry.status,
            hashes=tuple((name, text) for name, text in canonical_pairs(pairs)),
            **{name: getattr(entry, name) for name in NEW_FACTS},
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> EntryState | None:
        if data is None:
            return None
        return cls(
            category=data["category"],
            age_group=data["age_group"],
            baseline=data["baseline"],
            industry_class=data["industry_class"],
            content_type=data["content_type"],
            status=data["status"],
            hashes=tuple((name, text) for name, text in data["hashes"]),
            **{name: data.get(name, UNKNOWN) for name in NEW_FACTS},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "age_group": self.age_group,
            "baseline": self.baseline,
            "industry_class": self.industry_class,
            "content_type": self.content_type,
            "status": self.status,
            "hashes": [[name, text] for name, text in self.hashes],
            **{name: getattr(self, name) for name in NEW_FACTS},
        }

    @property
    def facts(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FACT_NAMES}

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def grading(self) -> Grading:
        return Grading(
            self.category, self.age_group, self.baseline, self.industry_class, self.content_type
        )

    def hash_values(self) -> Iterator[tuple[str, bytes]]:
        """(algorithm, raw bytes) of every hash, whatever the status."""
        for name, text in self.hashes:
            yield name, get_algorithm(name).parse(text)
