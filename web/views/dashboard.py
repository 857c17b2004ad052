"""The dashboard: what needs me today. Each section shows only to roles that may read it, and
each is a few counts or a short list (never a pass over the list of entries)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from audit import selectors as audit_selectors
from distribution import selectors as distribution_selectors
from distribution.feeds import FeedFilter
from hashlist import selectors
from hashlist.models import ImportBatch, ImportStatus
from members import selectors as members_selectors
from web.pages import staff_page

MY_PROPOSALS_SHOWN = 10
FAILED_IMPORTS_SHOWN = 5
FAILED_IMPORTS_DAYS = 7
IMPORTS = "hashlist.view_importbatch"


@staff_page()
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    now = timezone.now()
    context: dict[str, Any] = {"now": now}
    if user.has_perm("hashlist.propose_change"):
        mine = selectors.proposals_pending_by(author_id=int(user.pk or 0))
        shown = list(mine[: MY_PROPOSALS_SHOWN + 1])
        count = mine.count() if len(shown) > MY_PROPOSALS_SHOWN else len(shown)
        context["mine"] = {"rows": shown[:MY_PROPOSALS_SHOWN], "count": count}
    if user.has_perm("hashlist.review_proposal"):
        context["queue"] = selectors.review_queue_summary(reviewer_id=int(user.pk or 0))
        context["queue_mine"] = True
    elif user.has_perm("hashlist.view_proposal"):
        context["queue"] = selectors.review_queue_summary()
    if user.has_perm("distribution.view_release"):
        context["releases"] = {
            "latest": distribution_selectors.release_latest(),
            "changes_waiting": distribution_selectors.changes_unreleased_exist(),
        }
    if user.has_perm("distribution.view_feed"):
        context["feeds"] = [
            {"feed": feed, "filter": FeedFilter.of(feed).describe()}
            for feed in distribution_selectors.feed_list().order_by("-active", "name")
        ]
    if user.has_perm(IMPORTS):
        context["imports"] = imports_context(now)
    if user.has_perm("members.view_feedback"):
        context["disputes_open"] = members_selectors.disputes_open_count()
    if user.has_perm("members.view_member"):
        context["members"] = members_selectors.member_counts()
    if user.has_perm("audit.view_auditevent"):
        context["trail"] = audit_selectors.audit_summary(since=now - dt.timedelta(days=1))
    context["nothing"] = not any(
        key in context for key in ("mine", "queue", "releases", "feeds", "trail")
    )
    return render(request, "web/dashboard.html", context)


@staff_page(IMPORTS)
@require_safe
def dashboard_imports(request: HttpRequest) -> HttpResponse:
    """The imports section alone: what the dashboard polls (htmx) while an import runs."""
    context = {"imports": imports_context(timezone.now())}
    return render(request, "web/dashboard_imports.html", context)


def imports_context(now: dt.datetime) -> dict[str, Any]:
    running = [_progress(batch) for batch in selectors.imports_running()]
    since = now - dt.timedelta(days=FAILED_IMPORTS_DAYS)
    failed = list(selectors.imports_failed_since(since=since)[:FAILED_IMPORTS_SHOWN])
    return {"running": running, "failed": failed, "failed_days": FAILED_IMPORTS_DAYS}


def _progress(batch: ImportBatch) -> dict[str, Any]:
    """How far a running import has got: validation reads the file, approval applies rows."""
    if batch.status == ImportStatus.VALIDATING:
        done, total, unit = batch.bytes_processed, batch.size, "of the file read"
    elif batch.status == ImportStatus.APPLYING:
        done, total, unit = batch.rows_applied, batch.rows_valid, "of the rows applied"
    else:
        return {"batch": batch, "percent": None, "unit": "waiting to be validated"}
    percent = min(100, int(100 * done / total)) if total else 0
    return {"batch": batch, "percent": percent, "unit": unit}
