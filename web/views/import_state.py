"""What the import pages show of a batch in each state: a short status for the list, the steps
it has been through, its progress while a task works on it, and, on its own page, the error
report, the summary and sample a reviewer reads, and who may decide it.

Every state has its own words: a person reading "invalid" must learn what to do next (fix
these lines and upload again, choose the other format, split the file), not just that it
failed."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from hashlist import selectors
from hashlist.frameworks.facts import FACTS, LABELS, NEW_FACTS, UNKNOWN
from hashlist.models import (
    AGE_GROUP_CHOICES,
    CATEGORY_CHOICES,
    CONTENT_TYPE_CHOICES,
    INDUSTRY_CLASS_CHOICES,
    ImportBatch,
    ImportFormat,
    ImportStatus,
    ProposalStatus,
)
from hashsync.errors import InvalidInput
from hashsync.validation import MAX_BIGINT, query_int
from hashsync_client.algorithms import ALGORITHMS
from web.forms.imports import STATUS_WORDS

REVIEW = "hashlist.review_proposal"
PROPOSE = "hashlist.propose_change"

RUNNING = frozenset((ImportStatus.UPLOADED, ImportStatus.VALIDATING, ImportStatus.APPLYING))
ERRORS_PAGE = 100
SAMPLE_SIZE = 20

# The badge's colour only repeats what its words say.
_BADGE = {
    ImportStatus.UPLOADED: "info",
    ImportStatus.VALIDATING: "info",
    ImportStatus.INVALID: "bad",
    ImportStatus.FAILED: "bad",
    ImportStatus.STAGED: "warn",
    ImportStatus.APPLYING: "info",
    ImportStatus.APPROVED: "ok",
    ImportStatus.REJECTED: "",
}


def _withdrawn(batch: ImportBatch) -> bool:
    return batch.proposal is not None and batch.proposal.status == ProposalStatus.WITHDRAWN


def status_badge(batch: ImportBatch) -> tuple[str, str]:
    if batch.status == ImportStatus.REJECTED and _withdrawn(batch):
        return "Withdrawn", ""
    status = ImportStatus(batch.status)
    return STATUS_WORDS[status], _BADGE[status]


def import_context(
    batch: ImportBatch,
    *,
    request: HttpRequest | None = None,
    short: bool = False,
    with_details: bool = True,
) -> dict[str, Any]:
    label, badge = status_badge(batch)
    context: dict[str, Any] = {
        "batch": batch,
        "label": label,
        "badge": badge,
        "running": batch.status in RUNNING,
    }
    if short:
        return context
    context["progress"] = progress_of(batch)
    context["steps"] = steps_of(batch, label)
    if not with_details or request is None:
        return context
    context.update(_details(batch, request))
    return context


def _percent(done: int, total: int) -> float:
    return min(100.0, round(100.0 * done / total, 1)) if total else 0.0


def progress_of(batch: ImportBatch) -> dict[str, Any] | None:
    """The progress bar of a batch a task works on (None once it rests): a percentage, or None
    for "waiting" (an indeterminate bar), and what is being done in words."""
    status = batch.status
    if status == ImportStatus.UPLOADED:
        waited = timezone.now() - batch.created_at
        late = waited.total_seconds() > 5 * 60
        return {
            "percent": None,
            "what": "Waiting for a worker to start checking the file.",
            "detail": "No worker has picked it up yet; it is sent again automatically every "
            "few minutes. If it stays here, tell an operator."
            if late
            else "",
        }
    if status == ImportStatus.VALIDATING:
        return {
            "percent": _percent(batch.bytes_processed, batch.size),
            "what": "Checking every row.",
            "detail": f"{batch.rows_processed:,} rows read, {batch.error_count:,} with an "
            "error so far.",
        }
    if status == ImportStatus.APPLYING:
        if batch.apply_started_at is None:
            return {
                "percent": None,
                "what": "Approved; waiting for a worker to apply the rows.",
                "detail": "",
            }
        return {
            "percent": _percent(batch.rows_applied, batch.rows_valid),
            "what": "Applying the rows as one unit: none of them is on the list until all are.",
            "detail": f"{batch.rows_applied:,} of {batch.rows_valid:,} rows applied.",
        }
    return None


def steps_of(batch: ImportBatch, label: str) -> list[dict[str, str]]:
    """Upload → check → review → apply, each done, current, failed or to come."""
    status = batch.status
    order = ["upload", "check", "review", "apply"]
    names = {"upload": "Uploaded", "check": "Checked", "review": "Reviewed", "apply": "Applied"}
    at, failed = "check", False
    if status in (ImportStatus.UPLOADED, ImportStatus.VALIDATING):
        at = "check"
    elif status == ImportStatus.INVALID or (
        status == ImportStatus.FAILED and batch.proposal_id is None
    ):
        at, failed = "check", True
        names["check"] = "Invalid" if status == ImportStatus.INVALID else "Checking failed"
    elif status == ImportStatus.STAGED:
        at = "review"
    elif status == ImportStatus.REJECTED:
        at, failed = "review", True
        names["review"] = label
    elif status == ImportStatus.APPLYING:
        at = "apply"
    elif status == ImportStatus.FAILED:
        at, failed = "apply", True
        names["apply"] = "Applying failed"
    elif status == ImportStatus.APPROVED:
        at = ""
    # Done steps in the past tense, the current one as it happens, the rest as what comes.
    doing = {"check": "Checking", "review": "Waiting for review", "apply": "Applying"}
    coming = {"check": "Check", "review": "Review", "apply": "Apply"}
    steps = []
    for step in order:
        if not at or order.index(step) < order.index(at):
            state, name = "done", names[step]
        elif step == at:
            state = "failed" if failed else "current"
            name = names[step] if failed else doing[step]
        else:
            state, name = "todo", coming[step]
        steps.append({"name": name, "state": state})
    return steps


# --- The details on an import's own page -------------------------------------------------------


def _details(batch: ImportBatch, request: HttpRequest) -> dict[str, Any]:
    user = request.user
    is_uploader = batch.uploaded_by_id == user.pk
    staged = batch.status == ImportStatus.STAGED
    pending = staged and batch.proposal is not None and batch.proposal.status == "pending"
    reviewer = user.has_perm(REVIEW)
    context: dict[str, Any] = {
        "is_uploader": is_uploader,
        "may_review": pending and reviewer and not is_uploader,
        "four_eyes": pending and reviewer and is_uploader,
        "awaits_reviewer": pending and not reviewer,
        "may_withdraw": pending and is_uploader and user.has_perm(PROPOSE),
        "max_rows": settings.HASHSYNC_IMPORT_MAX_ROWS,
    }
    context.update(_errors(batch, request))
    context["problem"] = _problem(batch, context.get("first_error"))
    if staged:
        summary = selectors.import_summary(batch=batch)
        context["summary"] = summary
        context["summary_tables"] = _summary_tables(summary)
        context["sample"] = _sample(batch)
    if batch.status == ImportStatus.APPROVED:
        context["release"] = selectors.import_release(batch=batch)
    return context


def _errors(batch: ImportBatch, request: HttpRequest) -> dict[str, Any]:
    if not batch.error_count:
        return {}
    errors = selectors.import_errors(batch_id=batch.pk).order_by("pk")
    invalid = False
    try:
        after = query_int(request.GET, "errors_after", default=0, minimum=0, maximum=MAX_BIGINT)
    except InvalidInput:
        after, invalid = 0, True
    rows = list(errors.filter(pk__gt=after)[: ERRORS_PAGE + 1])
    more = len(rows) > ERRORS_PAGE
    rows = rows[:ERRORS_PAGE]
    first = rows[0] if rows and not after else errors.first()
    return {
        "errors": [
            {"line": e.line, "field": selectors.import_error_field(e.message), "message": e.message}
            for e in rows
        ],
        "errors_paged": bool(after),
        "errors_next": rows[-1].pk if more and rows else None,
        "errors_page_invalid": invalid,
        "first_error": first.message if first else None,
        "errors_stored": errors.count() if more or after else len(rows),
    }


def _problem(batch: ImportBatch, first_error: str | None) -> dict[str, str] | None:
    """What went wrong with an invalid or failed batch, and what the person can do about it."""
    status = batch.status
    if status == ImportStatus.FAILED:
        if batch.proposal_id is None:
            return {
                "title": "Checking the file stopped on a server fault",
                "text": batch.failure_message
                or "Nothing was staged. Upload the file again or contact an operator.",
            }
        return {
            "title": "Approved, but applying it failed: nothing was applied",
            "text": batch.failure_message or "Upload the file again.",
        }
    if status != ImportStatus.INVALID:
        return None
    first = first_error or ""
    other = ImportFormat.JSONL if batch.format == ImportFormat.CSV else ImportFormat.CSV
    if first.startswith("the file has no data rows"):
        return {
            "title": "The file has no data rows",
            "text": "It is blank or holds only a header. Check that the export finished, then "
            "upload the file with its rows.",
        }
    if first.startswith("header:"):
        text = (
            "A CSV import starts with a header row naming its columns: category, age_group and "
            "at least one hash column (md5, sha1, sha256, pdq, photodna). Add or correct the "
            "header and upload the file again."
        )
        if batch.format == ImportFormat.CSV:
            text += " If the file is JSON Lines, upload it again choosing JSON Lines as its format."
        return {"title": "The first line is not a header this import knows", "text": text}
    if "rows; split it" in first or _too_many_rows(batch):
        return {
            "title": "The file has more rows than one import takes",
            "text": f"One import holds at most {settings.HASHSYNC_IMPORT_MAX_ROWS:,} rows. "
            "Split the file and upload each part; each part is reviewed on its own.",
        }
    if batch.rows_processed and batch.error_count >= batch.rows_processed:
        text = (
            "No row could be read as an import row, so the file is probably not what it "
            "should be: the wrong export, or the wrong format."
        )
        if first.startswith("not valid JSON") or first.startswith("expected a JSON object"):
            text += (
                f" The rows are not JSON objects: if the file is {other.label}, upload it again "
                f"choosing {other.label} as its format."
            )
        return {"title": "Every row has an error", "text": text}
    return {
        "title": f"{batch.error_count:,} error{'s' if batch.error_count != 1 else ''} in "
        f"{batch.rows_processed:,} rows: nothing was staged",
        "text": "A file is imported whole or not at all. Correct the lines below (the CSV "
        "report lists every one), then upload the whole file again.",
    }


def _too_many_rows(batch: ImportBatch) -> bool:
    return batch.rows_processed > settings.HASHSYNC_IMPORT_MAX_ROWS


def _labelled(counts: dict[str, int], choices: list[tuple[str, str]] | None) -> list[Any]:
    """Counts in the order of the choices (0-2 before 11-13), with their labels."""
    names = dict(choices or [])
    order = {key: i for i, key in enumerate(names)}
    keys = sorted(counts, key=lambda key: (order.get(key, len(order)), key))
    return [(names.get(key, key or "Not given"), counts[key]) for key in keys]


_ALGORITHM_NAMES = [(name, name) for name in ALGORITHMS]


def _summary_tables(summary: dict[str, Any]) -> list[dict[str, Any]]:
    baseline = [("yes", "Baseline"), ("no", "Not baseline"), ("unknown", "Not assessed")]
    return [
        {"title": "Category", "rows": _labelled(summary["by_category"], CATEGORY_CHOICES)},
        {"title": "Age group", "rows": _labelled(summary["by_age_group"], AGE_GROUP_CHOICES)},
        {"title": "Content", "rows": _labelled(summary["by_content_type"], CONTENT_TYPE_CHOICES)},
        {"title": "Interpol baseline", "rows": _labelled(summary["by_baseline"], baseline)},
        {
            "title": "Industry class",
            "rows": _labelled(summary["by_industry_class"], INDUSTRY_CLASS_CHOICES),
        },
        *(
            {
                "title": LABELS[name],
                "rows": _labelled(
                    summary[f"by_{name}"], [(v, LABELS[v]) for v in (*FACTS[name], UNKNOWN)]
                ),
            }
            for name in NEW_FACTS
        ),
        {"title": "Hashes", "rows": _labelled(summary["by_algorithm"], _ALGORITHM_NAMES)},
    ]


def _sample(batch: ImportBatch) -> list[dict[str, Any]]:
    rows = selectors.import_sample(batch_id=batch.pk, size=SAMPLE_SIZE)
    return [{"row": r, "hashes": json.loads(r.hashes)} for r in rows]
