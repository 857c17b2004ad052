"""The fleet view: every member's sync clients, per entitled feed, with the version each last
acknowledged, how far behind the feed it is (versions and time), when it was last seen, digest
mismatches, and whether it missed the feed's newest retraction — filtered, sorted and paged by
the database (``members.fleet``), from GET parameters only (no hash is ever involved).

"Which members still do not hold last Tuesday's retraction?" is the ``release`` filter (the
releases are listed with their date and retraction count) or the "missed the newest
retraction" status."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from members import fleet, selectors
from web.forms.fleet import SORT_CHOICES, FleetFilterForm
from web.pages import staff_page

VIEW = "members.view_member"
PAGE_SIZE = 50


def _filters(
    request: HttpRequest,
) -> tuple[FleetFilterForm, list[tuple[str, str]], list[dict[str, Any]]]:
    members = list(selectors.member_list().order_by("name").values_list("name", "display_name"))
    releases = fleet.recent_releases()
    filters = FleetFilterForm(
        request.GET,
        members=[(name, f"{display} ({name})") for name, display in members],
        releases=releases,
    )
    filters.is_valid()  # a bad value is named next to its field; the others still apply
    return filters, members, releases


@staff_page(VIEW)
@require_safe
def fleet_view(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    filters, members, releases = _filters(request)
    valid = filters.is_valid()
    wanted = filters.cleaned_data
    member = wanted.get("member") or None
    status = wanted.get("status") or None
    release = wanted.get("release")
    sort = wanted.get("sort") or "member"

    retractions = fleet.retraction_versions()
    rows = fleet.fleet_rows(
        member=member,
        status=status,
        missing_release=release,
        sort=sort,
        now=now,
        retractions=retractions,
    )
    # The counts ignore the status filter, so each status link says what it would show.
    counts = fleet.fleet_counts(
        fleet.fleet_rows(member=member, missing_release=release, now=now, retractions=retractions)
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    keep = {
        k: v
        for k, v in {"member": member, "status": status, "release": release, "sort": sort}.items()
        if v not in (None, "") and not (k == "sort" and v == "member")
    }
    newest = fleet.newest_retraction_release()
    context: dict[str, Any] = {
        "filters": filters,
        "page": page,
        "fleet_rows": page.object_list,
        "fleet_show_member": member is None,
        "member_caption": next(
            (f"Clients of {display} ({name})" for name, display in members if name == member), ""
        ),
        "fleet_sort": sort,
        "fleet_sort_links": _sort_links(keep, sort),
        "counts": counts,
        "status_links": _status_links(keep, status, counts),
        "status": status,
        "missed_url": _query({**keep, "status": fleet.MISSED_RETRACTION, "page": None}),
        "newest_retraction": newest,
        "filtered": bool(member or status or release),
        "chosen_release": next((r for r in releases if r["version"] == release), None),
        "page_links": _page_links(keep, page),
        "stale_after_hours": int(fleet.STALE_AFTER.total_seconds() // 3600),
        "now": now,
        "has_members": bool(members),
        "csv_url": reverse("web-fleet-csv") + (_query(keep) if keep else ""),
    }
    return render(request, "web/fleet/fleet.html", context, status=200 if valid else 400)


def _query(params: dict[str, Any]) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _sort_links(keep: dict[str, Any], sort: str) -> dict[str, dict[str, str]]:
    """Each sortable column's link: its first click sorts the useful way round (most behind,
    longest unseen first), a second click reverses it."""
    labels = dict(SORT_CHOICES)
    links = {}
    for key in fleet.SORTS:
        current = sort.removeprefix("-") == key
        target = f"-{key}" if current and not sort.startswith("-") else key
        links[key] = {
            "url": _query({**keep, "sort": target}),
            "next_label": labels[target],
            "current": labels[sort] if current else "",
        }
    return links


def _status_links(
    keep: dict[str, Any], status: str | None, counts: dict[str, int]
) -> list[dict[str, Any]]:
    rows = [("", "All", counts["total"])]
    rows += [(name, label, counts[name]) for name, label in fleet.STATUS_LABELS.items()]
    rows.append(
        (fleet.MISSED_RETRACTION, "Missed the newest retraction", counts["missed_retraction"])
    )
    return [
        {
            "status": name,
            "label": label,
            "count": n,
            "url": _query({**keep, "status": name, "page": None}),
            "current": (status or "") == name,
        }
        for name, label, n in rows
    ]


def _page_links(keep: dict[str, Any], page: Any) -> dict[str, str | None]:
    def at(number: int) -> str:
        return _query({**keep, "page": number})

    return {
        "first": at(1) if page.number > 1 else None,
        "previous": at(page.previous_page_number()) if page.has_previous() else None,
        "next": at(page.next_page_number()) if page.has_next() else None,
        "last": at(page.paginator.num_pages) if page.number < page.paginator.num_pages else None,
    }


CSV_COLUMNS = (
    "member",
    "member_status",
    "client",
    "feed",
    "held_version",
    "current_version",
    "behind_versions",
    "behind_since",
    "last_seen",
    "acked_at",
    "status",
    "missed_retraction_version",
    "digest_mismatch_reported_at",
)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Any) -> Iterator[list[Any]]:
    def when(value: Any) -> str:
        return value.isoformat() if value else ""

    yield list(CSV_COLUMNS)
    for row in rows.iterator(chunk_size=2000):
        yield [
            row["member_name"],
            row["member_status"],
            row["client_name"],
            row["feed_name"],
            "" if row["held_version"] is None else row["held_version"],
            row["current_version"],
            row["behind_versions"],
            when(row["behind_since"]) if row["behind_versions"] else "",
            when(row["last_seen"]),
            when(row["acked_at"]),
            row["status"],
            row["retraction_version"] if row["missed_retraction"] else "",
            when(row["client_mismatch_at"]),
        ]


@staff_page(VIEW)
@require_safe
def fleet_csv(request: HttpRequest) -> HttpResponse:
    """The filtered fleet as CSV, every row (not one page), in the page's order. A bad filter
    is left out, as on the page."""
    filters, _, _ = _filters(request)
    wanted = filters.cleaned_data
    rows = fleet.fleet_rows(
        member=wanted.get("member") or None,
        status=wanted.get("status") or None,
        missing_release=wanted.get("release"),
        sort=wanted.get("sort") or "member",
    )
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(line) for line in _csv_lines(rows)),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%MZ")
    response["Content-Disposition"] = f'attachment; filename="fleet-{stamp}.csv"'
    return cast(HttpResponse, response)
