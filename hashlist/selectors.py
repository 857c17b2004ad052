"""Reads of the hash list. No permission checks here: the API layer checks roles first."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, Max, Min, OuterRef, Prefetch, Q, QuerySet

from hashlist.frameworks.facts import NEW_FACTS
from hashlist.grading import GRADING_FIELDS, parse_hash
from hashlist.models import (
    Change,
    ChangeKind,
    Entry,
    Hash,
    ImportBatch,
    ImportRowError,
    ImportStatus,
    Proposal,
    ProposalStatus,
    StagedRow,
)
from hashlist.reports import CHANGE_GROUPS as CHANGE_GROUPS  # the report charts' reads
from hashlist.reports import changes_per_week as changes_per_week
from hashlist.reports import review_turnaround_per_week as review_turnaround_per_week
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


def entry_hash_count(*, entry_id: int) -> int:
    """How many hashes the entry has (its only one can go only with a retraction)."""
    return Hash.objects.filter(entry_id=entry_id).count()


# --- The staff pages: the dashboard, browsing entries, an entry's history ----------------------


def proposals_pending_by(*, author_id: int) -> QuerySet[Proposal]:
    """The author's proposals still waiting for review, oldest first."""
    return (
        proposal_list(status=ProposalStatus.PENDING, author_id=author_id)
        .select_related("entry")
        .order_by("created_at", "id")
    )


@dataclass(frozen=True)
class QueueSummary:
    size: int
    oldest_at: dt.datetime | None


def review_queue_summary(*, reviewer_id: int | None = None) -> QueueSummary:
    """How many proposals wait for review and since when, in one aggregate over the pending
    index. With ``reviewer_id``: the queue that reviewer may work (others' proposals)."""
    pending = Proposal.objects.filter(status=ProposalStatus.PENDING)
    if reviewer_id is not None:
        pending = pending.exclude(author_id=reviewer_id)
    found = pending.aggregate(size=Count("id"), oldest_at=Min("created_at"))
    return QueueSummary(size=found["size"], oldest_at=found["oldest_at"])


IMPORTS_RUNNING = (ImportStatus.UPLOADED, ImportStatus.VALIDATING, ImportStatus.APPLYING)
IMPORTS_FAILED = (ImportStatus.FAILED, ImportStatus.INVALID)


def imports_running() -> QuerySet[ImportBatch]:
    """Batches being validated or applied (or waiting to be), oldest first."""
    return (
        ImportBatch.objects.filter(status__in=IMPORTS_RUNNING)
        .select_related("uploaded_by")
        .order_by("id")
    )


def imports_failed_since(*, since: dt.datetime) -> QuerySet[ImportBatch]:
    """Batches that failed or were found invalid since ``since``, newest first."""
    return (
        ImportBatch.objects.filter(status__in=IMPORTS_FAILED, created_at__gte=since)
        .select_related("uploaded_by")
        .order_by("-id")
    )


def entry_filter(
    *,
    category: str | None = None,
    age_group: str | None = None,
    status: str | None = None,
    created_from: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    author_id: int | None = None,
) -> QuerySet[Entry]:
    """Entries by grading, status, when they were added and who proposed them (the author of
    the proposal or import that created them). Unordered: the caller pages by id."""
    qs = entry_queryset()
    if category:
        qs = qs.filter(category=category)
    if age_group:
        qs = qs.filter(age_group=age_group)
    if status:
        qs = qs.filter(status=status)
    if created_from is not None:
        qs = qs.filter(created_at__gte=created_from)
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    if author_id is not None:
        created_by = Change.objects.filter(
            entry=OuterRef("pk"), kind=ChangeKind.CREATE, proposal__author_id=author_id
        )
        qs = qs.filter(Exists(created_by))
    return qs


def proposal_authors() -> QuerySet[Any]:
    """Everyone who has proposed anything, by username: the choices of an "added by" filter.
    One index probe of proposals per user, not a pass over the proposals."""
    user_model = get_user_model()
    wrote = Proposal.objects.filter(author_id=OuterRef("pk"))
    return user_model.objects.filter(Exists(wrote)).order_by(user_model.USERNAME_FIELD)


@dataclass(frozen=True)
class EntryHistory:
    """Every proposal that touched an entry (the import that created it included) and every
    change approved to it, each oldest first."""

    proposals: list[Proposal]
    changes: list[Change]


def entry_history(*, entry_id: int) -> EntryHistory:
    changes = list(Change.objects.filter(entry_id=entry_id).order_by("id"))
    # An entry created by an import is named by its change only: the import's one proposal
    # creates many entries and names none of them.
    via_changes = {c.proposal_id for c in changes}
    proposals = (
        proposal_list()
        .filter(Q(entry_id=entry_id) | Q(pk__in=via_changes))
        .order_by("created_at", "id")
    )
    return EntryHistory(proposals=list(proposals), changes=changes)


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


def review_queue(*, reviewer_id: int, kind: str | None = None) -> QuerySet[Proposal]:
    """Pending proposals the reviewer may decide: everything not written by them."""
    return (
        proposal_list(status=ProposalStatus.PENDING, kind=kind)
        .exclude(author_id=reviewer_id)
        .select_related("entry")
    )


def import_get(*, batch_id: int) -> ImportBatch | None:
    return ImportBatch.objects.select_related("uploaded_by", "proposal").filter(pk=batch_id).first()


def import_errors(*, batch_id: int) -> QuerySet[ImportRowError]:
    return ImportRowError.objects.filter(batch_id=batch_id)


def import_list(
    *, status: str | None = None, uploaded_by_id: int | None = None
) -> QuerySet[ImportBatch]:
    """Batches with their uploader and proposal (and its reviewer), unordered: the caller
    pages by id."""
    qs = ImportBatch.objects.select_related("uploaded_by", "proposal__reviewer")
    if status:
        qs = qs.filter(status=status)
    if uploaded_by_id is not None:
        qs = qs.filter(uploaded_by_id=uploaded_by_id)
    return qs


def import_release(*, batch: ImportBatch) -> int | None:
    """The release that carried an applied batch, or None while none has. Its rows are applied
    in one transaction, so one release takes all of them (docs/import-format.md, "Approval")."""
    if batch.proposal_id is None:
        return None
    return (
        Change.objects.filter(proposal_id=batch.proposal_id, release__isnull=False)
        .values_list("release", flat=True)
        .first()
    )


# What a row error's message begins with when it is about one field: the parser's messages
# (hashlist/imports/parse.py and the grading and hash checks it calls) name the field first,
# as in "category must be one of A, B, C; got 'D'." or "md5: expected 32 hexadecimal …".
_ERROR_FIELDS = frozenset((*GRADING_FIELDS, "source", "notes", "hashes", "header", *ALGORITHMS))


def import_error_field(message: str) -> str:
    """The field a row error is about (a column, ``hashes`` or ``header``), or "" when it is
    about the whole line (not valid CSV or JSON, a wrong number of fields, no hash)."""
    head = message[:16].replace(":", " ").split(" ", 1)[0]
    return head if head in _ERROR_FIELDS else ""


# --- Reviewing an import: its staged rows, a summary, a sample ---------------------------------

SAMPLE_MAX = 100
_SAMPLE_ROUNDS = 5


def import_staged_rows(*, batch_id: int) -> QuerySet[StagedRow]:
    return StagedRow.objects.filter(batch_id=batch_id)


def _counts(rows: QuerySet[StagedRow], field: str) -> dict[str, int]:
    found = rows.values_list(field).annotate(n=Count("id")).order_by(field)
    return {_label(value): n for value, n in found}


def _label(value: Any) -> str:
    # baseline is three-valued; JSON object keys are text.
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def import_summary(*, batch: ImportBatch) -> dict[str, Any]:
    """What a reviewer needs before approving: the staged rows counted by each grading field
    and by hash algorithm, and the rows whose hash has reached the list since validation began
    (the only ones that can clash: validation refused every hash then on the list)."""
    rows = import_staged_rows(batch_id=batch.pk)
    by_algorithm = {
        # Staged hashes are canonical JSON pairs, '["md5","…"]': one value per algorithm a row.
        name: n
        for name in ALGORITHMS
        if (n := rows.filter(hashes__contains=f'["{name}",').count())
    }
    on_list = _lines_on_list(batch, rows)
    return {
        "rows": rows.count(),
        "by_algorithm": by_algorithm,
        "by_category": _counts(rows, "category"),
        "by_age_group": _counts(rows, "age_group"),
        "by_content_type": _counts(rows, "content_type"),
        "by_baseline": _counts(rows, "baseline"),
        "by_industry_class": _counts(rows, "industry_class"),
        **{f"by_{name}": _counts(rows, name) for name in NEW_FACTS},
        "on_list": {"count": len(on_list), "lines": on_list[:SAMPLE_MAX]},
    }


def _lines_on_list(batch: ImportBatch, rows: QuerySet[StagedRow]) -> list[int]:
    since = batch.started_at or batch.created_at
    added = Hash.objects.filter(created_at__gte=since)
    if not added.exists():
        return []  # the common case costs one indexed query, not a pass over the rows
    new = {
        (name, hash_canonical(name, bytes(value)))
        for name, value in added.values_list("algorithm", "value").iterator(chunk_size=5000)
    }
    lines = []
    for line, text in rows.order_by("line").values_list("line", "hashes").iterator(5000):
        if any((name, value) in new for name, value in json.loads(text)):
            lines.append(line)
    return lines


def import_sample(*, batch_id: int, size: int) -> list[StagedRow]:
    """``size`` staged rows chosen uniformly at random, in line order. Random ids between the
    batch's first and last are drawn and looked up (staging writes a batch's rows with nearly
    consecutive ids), which costs O(size), not a sort of the whole batch."""
    rows = import_staged_rows(batch_id=batch_id)
    bounds = rows.aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return []
    lo, hi = bounds["lo"], bounds["hi"]
    chosen: dict[int, StagedRow] = {}
    pick = secrets.SystemRandom()
    for _ in range(_SAMPLE_ROUNDS):
        want = size - len(chosen)
        if want <= 0:
            break
        ids = pick.sample(range(lo, hi + 1), min(hi - lo + 1, want * 2))
        for found in rows.filter(id__in=ids).exclude(id__in=list(chosen))[:want]:
            chosen[found.pk] = found
    if len(chosen) < size:  # sparse ids (a batch staged alongside others), or a tiny batch
        chosen.update(
            (r.pk, r) for r in rows.exclude(id__in=list(chosen)).order_by("?")[: size - len(chosen)]
        )
    return sorted(chosen.values(), key=lambda r: r.line)


# --- The review pages: a proposal, what it changes, and what changed since ----------------------


def proposal_get(*, proposal_id: int) -> Proposal | None:
    return proposal_list().select_related("entry").filter(pk=proposal_id).first()


def review_queue_next(*, reviewer_id: int, after_id: int) -> Proposal | None:
    """The proposal a reviewer works on after ``after_id``: the next in the queue's order (by
    id, as the queue pages), else the first — one skipped earlier comes round again."""
    queue = review_queue(reviewer_id=reviewer_id).order_by("id")
    return queue.filter(pk__gt=after_id).first() or queue.first()


def entry_changes(*, entry_id: int) -> QuerySet[Change]:
    """An entry's approved changes in the order they were applied. The n-th brought the entry
    to revision n: it is created at revision 1 and each approved change adds one, in the same
    transaction that writes its change row."""
    return (
        Change.objects.filter(entry_id=entry_id)
        .select_related("proposal__author", "proposal__reviewer")
        .order_by("id")
    )


def entry_pending_proposals(*, entry_id: int) -> QuerySet[Proposal]:
    return proposal_list(status=ProposalStatus.PENDING).filter(entry_id=entry_id).order_by("id")


def hash_owners(*, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Which of ``(algorithm, canonical text)`` pairs are on the list now, and on which entry."""
    parsed = [(name, get_algorithm(name).parse(text), text) for name, text in pairs]
    if not parsed:
        return {}
    condition = Q()
    for name, raw, _ in parsed:
        condition |= Q(algorithm=name, value=raw)
    found = {(h.algorithm, bytes(h.value)): h.entry_id for h in Hash.objects.filter(condition)}
    return {(name, text): found[(name, raw)] for name, raw, text in parsed if (name, raw) in found}
