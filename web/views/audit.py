"""The auditors' pages (read-only): the trail with its filters, one event's before and after,
the filtered range as CSV, chain verification in the background, and "who held hash X".

The trail pages by ``seq`` (the event's number) with keyset links — ``?before=`` for older,
``?after=`` for newer — and never counts the table, so a page costs the same at millions of
events (``audit.selectors.audit_trail`` says which index serves each filter). Filters are GET
parameters and never a hash value; hash-holders takes the hash in a POST form and its answer
is never cached (``staff_page``)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from audit import checks
from audit import selectors as audit_selectors
from audit.models import AuditEvent, ChainCheck
from audit.selectors import TrailFilter, TrailScope
from hashlist import selectors as hashlist_selectors
from hashsync.errors import DomainError, InvalidInput
from hashsync.validation import MAX_BIGINT, query_int
from members import selectors as member_selectors
from members.models import Member
from web.forms.audit import HashHoldersForm, TrailFilterForm
from web.pages import show_error, staff_page
from web.views.imports import CSV_CHUNK, _Echo, csv_cell

VIEW = "audit.view_auditevent"
HOLDERS = ("audit.view_auditevent", "members.view_ack")

PAGE = 50
FILTERS = ("actor", "action", "entry", "member", "date_from", "date_to")


# --- Filters -----------------------------------------------------------------------------------


def _trail_filter(data: Mapping[str, Any]) -> TrailFilter:
    """What the cleaned filter form asks for, with an entry and a member resolved to the
    objects and actors their events name."""
    scopes = []
    if data.get("entry"):
        entry_id = data["entry"]
        proposals = hashlist_selectors.proposal_list().filter(entry_id=entry_id)
        changes = hashlist_selectors.entry_changes(entry_id=entry_id)
        scopes.append(
            TrailScope(
                about=(
                    ("proposal", tuple(str(pk) for pk in proposals.values_list("pk", flat=True))),
                    ("change", tuple(str(pk) for pk in changes.values_list("pk", flat=True))),
                )
            )
        )
    if data.get("member"):
        member = _member(data["member"])
        if member is None:
            scopes.append(TrailScope())  # no such member: no event
        else:
            clients = list(member.clients.select_related("member"))
            scopes.append(
                TrailScope(
                    about=(
                        ("member", (str(member.pk),)),
                        ("sync_client", tuple(str(c.pk) for c in clients)),
                    ),
                    actors=tuple(c.audit_label for c in clients),
                )
            )
    since = until = None
    if data.get("date_from"):
        since = dt.datetime.combine(data["date_from"], dt.time.min, tzinfo=dt.UTC)
    if data.get("date_to"):
        until = dt.datetime.combine(data["date_to"], dt.time.min, tzinfo=dt.UTC) + dt.timedelta(
            days=1
        )
    return TrailFilter(
        actor=data.get("actor") or "",
        action=data.get("action") or "",
        scopes=tuple(scopes),
        since=since,
        until=until,
    )


def _member(name: str) -> Member | None:
    try:
        return member_selectors.member_get(name)
    except DomainError:
        return None


def _kept(data: Mapping[str, Any]) -> dict[str, str]:
    """The chosen filters as query parameters, for the paging and export links."""
    kept = {}
    for name in FILTERS:
        value = data.get(name)
        if value not in (None, ""):
            kept[name] = value.isoformat() if isinstance(value, dt.date) else str(value)
    return kept


def _query(params: Mapping[str, Any]) -> str:
    return "?" + urlencode(params) if params else "?"


# --- The trail ---------------------------------------------------------------------------------


def _page(
    events: Any, params: Mapping[str, str]
) -> tuple[list[AuditEvent], int | None, int | None]:
    """One page of events newest first, keyset by ``seq``: ``before`` (older than) or
    ``after`` (newer than); with the ``before`` of the next older page and the ``after`` of
    the next newer one (None where there is none). Raises InvalidInput for a bad parameter."""
    before = query_int(params, "before", default=0, minimum=0, maximum=MAX_BIGINT)
    after = query_int(params, "after", default=0, minimum=0, maximum=MAX_BIGINT)
    if before and after:
        raise InvalidInput("Use either the newer or the older link, not both.")
    if after:
        rows = list(events.filter(seq__gt=after).order_by("seq")[: PAGE + 1])
        newer_exists = len(rows) > PAGE
        rows = list(reversed(rows[:PAGE]))
        older_exists = True
    else:
        if before:
            events = events.filter(seq__lt=before)
        rows = list(events.order_by("-seq")[: PAGE + 1])
        older_exists = len(rows) > PAGE
        rows = rows[:PAGE]
        newer_exists = bool(before)
    if not rows:
        return [], None, None
    older = rows[-1].seq if older_exists else None
    newer = rows[0].seq if newer_exists else None
    return rows, older, newer


def _summary(value: Any) -> str:
    """Before or after in one short line for the list (the event page shows it whole)."""
    if value is None:
        return ""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 120 else text[:119] + "…"


@staff_page(VIEW)
@require_safe
def audit_trail(request: HttpRequest) -> HttpResponse:
    form = TrailFilterForm(request.GET)
    status = 200
    if form.is_valid():
        data = form.cleaned_data
    else:
        data, status = {}, 400
    kept = _kept(data)
    events = audit_selectors.audit_trail(_trail_filter(data))
    paged = bool(request.GET.get("before") or request.GET.get("after"))
    try:
        rows, older, newer = _page(events, request.GET)
    except InvalidInput as error:
        form.add_error(None, error.message)
        rows, older, newer = _page(events, {})
        status, paged = 400, False
    return render(
        request,
        "web/audit/trail.html",
        {
            "form": form,
            "filtered": bool(kept),
            "member_unknown": bool(data.get("member")) and _member(data["member"]) is None,
            "rows": [
                {"event": e, "before": _summary(e.before), "after": _summary(e.after)} for e in rows
            ],
            "paged": paged,
            "first_url": _query(kept),
            "older_url": _query({**kept, "before": older}) if older else None,
            "newer_url": _query({**kept, "after": newer}) if newer else None,
            "export_url": reverse("web-audit-export") + _query(kept),
            "latest_check": next(iter(audit_selectors.chain_checks_latest(limit=1)), None),
        },
        status=status,
    )


def _flat(value: Any) -> dict[str, Any]:
    """A before/after value as rows: a dict's keys, or the whole value under "value"."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return {"value": value}


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1)


@staff_page(VIEW)
@require_safe
def audit_event(request: HttpRequest, seq: int) -> HttpResponse:
    event = audit_selectors.audit_event_get(seq=seq)
    if event is None:
        raise Http404(f"Event {seq} does not exist.")
    before, after = _flat(event.before), _flat(event.after)
    fields = []
    for key in sorted(set(before) | set(after)):
        state = (
            "added"
            if key not in before
            else "removed"
            if key not in after
            else "same"
            if before[key] == after[key]
            else "changed"
        )
        fields.append(
            {
                "key": key,
                "before": _shown(before[key]) if key in before else None,
                "after": _shown(after[key]) if key in after else None,
                "state": state,
            }
        )
    return render(
        request,
        "web/audit/event.html",
        {
            "event": event,
            "fields": fields,
            "has_before": event.before is not None,
            "has_after": event.after is not None,
            # ``seq`` may skip numbers (docs/audit.md): the neighbours are the events present.
            "older": audit_selectors.audit_event_neighbour(seq=seq, newer=False),
            "newer": audit_selectors.audit_event_neighbour(seq=seq, newer=True),
        },
    )


# --- CSV export ---------------------------------------------------------------------------------

# lane and lane_seq come last, so the columns of exports made before lanes keep their places.
CSV_HEADER = [
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "reason",
    "before",
    "after",
    "request_id",
    "digest",
    "lane",
    "lane_seq",
]


def _csv_rows(trail: TrailFilter) -> Iterator[list[Any]]:
    yield CSV_HEADER
    events = audit_selectors.audit_trail(trail).order_by("seq")
    last = 0
    while True:
        # Keyset chunks, oldest first: no cursor is held open while the client reads slowly.
        chunk = list(events.filter(seq__gt=last)[:CSV_CHUNK])
        if not chunk:
            return
        for e in chunk:
            yield [
                e.seq,
                e.at.astimezone(dt.UTC).isoformat(),
                csv_cell(e.actor),
                csv_cell(e.action),
                csv_cell(e.object_type),
                csv_cell(e.object_id),
                csv_cell(e.reason),
                csv_cell("" if e.before is None else json.dumps(e.before, sort_keys=True)),
                csv_cell("" if e.after is None else json.dumps(e.after, sort_keys=True)),
                csv_cell(e.request_id),
                e.digest,
                e.lane,
                e.lane_seq,
            ]
        last = chunk[-1].seq


def _export_name(data: Mapping[str, Any]) -> str:
    start, end = data.get("date_from"), data.get("date_to")
    first = start.isoformat() if start else "start"
    last = end.isoformat() if end else dt.datetime.now(dt.UTC).date().isoformat()
    return f"audit-trail-{first}-to-{last}.csv"


@staff_page(VIEW)
@require_safe
def audit_export(request: HttpRequest) -> HttpResponse:
    form = TrailFilterForm(request.GET)
    if not form.is_valid():
        # The trail page shows the same errors next to the filters.
        return audit_trail(request)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _csv_rows(_trail_filter(form.cleaned_data))),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{_export_name(form.cleaned_data)}"'
    return cast(HttpResponse, response)


# --- Chain verification ------------------------------------------------------------------------


def _check_context(check: ChainCheck) -> dict[str, Any]:
    stale = check.running and check.started_at < checks.stale_before()
    return {"check": check, "abandoned": stale}


@staff_page(VIEW)
@require_safe
def audit_checks(request: HttpRequest) -> HttpResponse:
    latest = audit_selectors.chain_checks_latest(limit=10)
    return render(
        request,
        "web/audit/checks.html",
        {
            "checks": [_check_context(c) for c in latest],
            "current": _check_context(latest[0]) if latest else None,
        },
    )


@staff_page(VIEW)
@require_safe
def audit_check(request: HttpRequest, check_id: int) -> HttpResponse:
    """One check's card alone, for htmx to poll every two seconds while it runs; once
    finished it answers without the trigger, so polling stops."""
    check = audit_selectors.chain_check_get(check_id=check_id)
    if check is None:
        raise Http404(f"Check {check_id} does not exist.")
    return render(request, "web/audit/_check.html", {"current": _check_context(check)})


@staff_page(VIEW)
@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    try:
        check, new = checks.chain_check_start(actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        check.refresh_from_db()  # in the embedded mode the task has already run
        if new and not check.running:
            messages.success(request, f"Chain check {check.pk} is done: its result is below.")
        elif new:
            messages.success(
                request,
                f"Chain check {check.pk} started. It reads every event in order; this page "
                "shows the result when it is done.",
            )
        else:
            messages.info(
                request,
                f"Chain check {check.pk}, started by {check.started_by_name}, is still running: "
                "its result is shown here when it is done.",
            )
    return HttpResponseRedirect(reverse("web-audit-checks"))


# --- Who held hash X ---------------------------------------------------------------------------


def _timeline(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The holders grouped per client, each feed with its moments in time order."""
    clients: dict[tuple[str, str], dict[str, Any]] = {}
    for holder in answer["holders"]:
        client = clients.setdefault(
            (holder["member"], holder["client"]),
            {"member": holder["member"], "client": holder["client"], "feeds": [], "open": False},
        )
        never_acked_removal = (
            holder["removed_in_version"] is not None and holder["removal_acked_at"] is None
        )
        client["open"] = client["open"] or never_acked_removal
        moments = []
        if holder["received_at"]:
            moments.append(
                {"at": holder["received_at"], "what": "Acknowledged a version listing it"}
            )
        if holder["removed_in_version"] is not None:
            moments.append(
                {
                    "at": holder["removal_published_at"],
                    "what": f"Removal published in version {holder['removed_in_version']}",
                }
            )
            if holder["removal_acked_at"]:
                moments.append(
                    {
                        "at": holder["removal_acked_at"],
                        "what": "Acknowledged a version without it",
                        "evidence": holder["removal_evidence"],
                    }
                )
        moments.sort(key=lambda m: m["at"] or dt.datetime.max.replace(tzinfo=dt.UTC))
        client["feeds"].append(
            {
                **holder,
                "moments": moments,
                "never_acked_removal": never_acked_removal,
                "listed": ", ".join(_versions(s, e) for s, e in _pairs(holder)),
            }
        )
    return sorted(clients.values(), key=lambda c: (not c["open"], c["member"], c["client"]))


def _pairs(holder: dict[str, Any]) -> list[tuple[int, int | None]]:
    return [(v["from_version"], v["until_version"]) for v in holder["listed_versions"]]


def _versions(start: int, end: int | None) -> str:
    """A listing interval [start, end) as people say it: "version 3", "versions 3 to 5"
    (written with a dash), "version 3 onwards"."""
    if end is None:
        return f"version {start} onwards"
    if end - 1 <= start:
        return f"version {start}"
    return f"versions {start}–{end - 1}"


@staff_page(*HOLDERS)
@require_http_methods(["GET", "HEAD", "POST"])
def hash_holders(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "web/audit/holders.html", {"form": HashHoldersForm()})
    form = HashHoldersForm(request.POST)
    context: dict[str, Any] = {"form": form}
    status = 200
    if form.is_valid():
        algorithm, value = form.cleaned_data["parsed"]
        try:
            answer = member_selectors.hash_holders(
                algorithm=algorithm, value=value, at=dt.datetime.now(dt.UTC)
            )
        except DomainError as error:
            show_error(form, error, field="value")
            status = 400
        else:
            timeline = _timeline(answer)
            context.update(
                answer=answer,
                clients=timeline,
                open_clients=[f"{c['member']}/{c['client']}" for c in timeline if c["open"]],
                algorithm=algorithm,
                canonical=hashlist_selectors.hash_canonical(algorithm, value),
            )
    else:
        status = 400
    return render(request, "web/audit/holders.html", context, status=status)
