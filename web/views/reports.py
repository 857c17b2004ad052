"""The Reports pages: charts of the list, the reviews, the fleet and the releases, each with
its table and CSV. A page shows only the figures the reader's role may see
(``web.reports.REPORTS``, one permission each)."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from web.forms.reports import RangeForm
from web.pages import staff_page
from web.reports import (
    REPORT_PERMISSIONS,
    REPORTS,
    VIEW_ENTRY,
    VIEW_FEED,
    VIEW_MEMBER,
    VIEW_PROPOSAL,
    VIEW_RELEASE,
    Report,
    Span,
    reports_for,
)
from web.views.imports import csv_cell


def _context(request: HttpRequest, reports: list[Report]) -> tuple[dict[str, Any], int]:
    form = RangeForm(request.GET)
    weeks = form.weeks_or_default()
    span = Span(weeks=weeks, now=timezone.now())
    figures = [
        {
            "report": report,
            "figure": report.build(span),
            "page_url": reverse(report.page),
            "csv_url": _csv_url(report, weeks),
        }
        for report in reports
    ]
    context = {"form": form, "weeks": weeks, "figures": figures, "now": span.now}
    return context, 200 if form.is_valid() else 400


def _csv_url(report: Report, weeks: int) -> str:
    url = reverse("web-report-csv", args=[report.slug])
    return f"{url}?weeks={weeks}" if report.ranged else url


def _page(request: HttpRequest, title: str, slugs: list[str], intro: str) -> HttpResponse:
    reports = [REPORTS[slug] for slug in slugs]
    context, status = _context(request, reports)
    context.update(
        title=title,
        intro=intro,
        ranged=any(r.ranged for r in reports),
        action=request.path,
        detail=True,
    )
    return render(request, "web/reports/report.html", context, status=status)


@staff_page(*REPORT_PERMISSIONS, any_of=True)
@require_safe
def report_index(request: HttpRequest) -> HttpResponse:
    """Every chart the reader's role may see, smaller, each linking to its page."""
    context, status = _context(request, reports_for(request.user))
    context["action"] = request.path
    return render(request, "web/reports/index.html", context, status=status)


@staff_page(VIEW_FEED)
@require_safe
def feed_sizes(request: HttpRequest) -> HttpResponse:
    return _page(request, "Feed sizes", ["feed-sizes"], REPORTS["feed-sizes"].summary)


@staff_page(VIEW_ENTRY)
@require_safe
def changes(request: HttpRequest) -> HttpResponse:
    return _page(request, "Changes per week", ["changes"], REPORTS["changes"].summary)


@staff_page(VIEW_PROPOSAL)
@require_safe
def review_turnaround(request: HttpRequest) -> HttpResponse:
    return _page(
        request, "Review turnaround", ["review-turnaround"], REPORTS["review-turnaround"].summary
    )


@staff_page(VIEW_MEMBER)
@require_safe
def member_lag(request: HttpRequest) -> HttpResponse:
    return _page(request, "Member lag", ["member-lag"], REPORTS["member-lag"].summary)


@staff_page(VIEW_RELEASE)
@require_safe
def releases(request: HttpRequest) -> HttpResponse:
    return _page(
        request,
        "Releases",
        ["release-cuts", "bundle-bytes"],
        "How long release cuts take and how many bundle bytes they write, per week.",
    )


@staff_page()
@require_safe
def report_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """One figure's numbers as CSV, for the range asked (the default when it is not one
    offered). Refused like its page to a role without the figure's permission."""
    report = REPORTS.get(slug)
    if report is None:
        raise Http404("No report has that name.")
    if not request.user.has_perm(report.permission):
        return render(request, "web/denied.html", status=403)
    form = RangeForm(request.GET)
    weeks = form.weeks_or_default()
    figure = report.build(Span(weeks=weeks, now=timezone.now()))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(c) for c in figure.columns])  # feed names are in the header
    writer.writerows([[csv_cell(v) for v in row] for row in figure.rows])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    period = f"-{weeks}w" if report.ranged else ""
    stamp = timezone.now().date().isoformat()
    response["Content-Disposition"] = f'attachment; filename="hashsync-{slug}{period}-{stamp}.csv"'
    return response
