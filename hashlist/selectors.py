"""Reads of the hash list. No permission checks here: the API layer checks roles first."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from hashlist.grading import parse_hash
from hashlist.models import (
    Entry,
    Hash,
    ImportBatch,
    ImportRowError,
    Proposal,
    ProposalStatus,
)
from hashsync.errors import InvalidInput
from hashsync_client.algorithms import ALGORITHMS, get_algorithm, parse_any


def entry_queryset() -> QuerySet[Entry]:
    return Entry.objects.prefetch_related(
        Prefetch("hashes", queryset=Hash.objects.order_by("algorithm", "id"))
    )


def entry_list(*, status: str | None = None, category: str | None = None) -> QuerySet[Entry]:
    qs = entry_queryset()
    if status:
        qs = qs.filter(status=status)
    if category:
        qs = qs.filter(category=category)
    return qs


def entry_get(*, entry_id: int) -> Entry | None:
    return entry_queryset().filter(pk=entry_id).first()


def hash_search(*, value: str, algorithm: str | None = None) -> list[tuple[str, Entry]]:
    """Entries holding the hash, given in any accepted form. Without an algorithm, every
    algorithm whose parser accepts the text is tried (sha256 and pdq share a length)."""
    if algorithm:
        candidates = [parse_hash(algorithm, value)]
    else:
        candidates = [(algo.name, raw) for algo, raw in parse_any(value)]
    if not candidates:
        forms = ", ".join(f"{a.name} ({a.hex_length} hex characters)" for a in ALGORITHMS.values())
        raise InvalidInput(
            f"That is not a hash in any accepted form. Expected hex or base64 of one of: {forms}; "
            "or PhotoDNA's 144 comma-separated values.",
            code="invalid_hash",
        )
    condition = Q()
    for name, raw in candidates:
        condition |= Q(algorithm=name, value=raw)
    hits = Hash.objects.filter(condition).select_related("entry")
    by_entry = {h.entry_id: h.algorithm for h in hits}
    entries = entry_queryset().filter(pk__in=by_entry).order_by("pk")
    return [(by_entry[e.pk], e) for e in entries]


def hash_canonical(algorithm: str, value: bytes) -> str:
    return get_algorithm(algorithm).canonical(bytes(value))


def proposal_list(
    *, status: str | None = None, kind: str | None = None, author_id: int | None = None
) -> QuerySet[Proposal]:
    qs = Proposal.objects.select_related("author", "reviewer", "import_batch")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if author_id is not None:
        qs = qs.filter(author_id=author_id)
    return qs


def review_queue(*, reviewer_id: int) -> QuerySet[Proposal]:
    """Pending proposals the reviewer may decide: everything not written by them."""
    return proposal_list(status=ProposalStatus.PENDING).exclude(author_id=reviewer_id)


def import_get(*, batch_id: int) -> ImportBatch | None:
    return ImportBatch.objects.select_related("uploaded_by", "proposal").filter(pk=batch_id).first()


def import_errors(*, batch_id: int) -> QuerySet[ImportRowError]:
    return ImportRowError.objects.filter(batch_id=batch_id)
