"""The grading frameworks' pages: every framework with its current rules and its versions (who
proposed and who approved each), the form where an analyst proposes a framework's next rules
(checked and previewed — rule diff and "regrades N entries" — before it is sent), and the
analysts' list of entries a framework leaves unassessed (docs/grading.md).

Rule changes go through ``services.proposal_framework`` and the ordinary four-eyes review
(web/views/review.py shows a framework proposal's rule diff and impact). No hash value appears
on these pages or in their URLs: entries are named by id."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from distribution.regrade import regrade_impact
from hashlist import framework_store, services
from hashlist.framework_store import Current
from hashlist.frameworks.facts import FACT_NAMES, FACTS, LABELS, UNKNOWN
from hashlist.frameworks.impact import CHANGED, RuleDiff, rule_diff
from hashlist.frameworks.rules import Definition
from hashlist.models import Proposal, ProposalKind, ProposalStatus
from hashsync.errors import DomainError
from hashsync.validation import query_int
from web.forms.frameworks import FrameworkRulesForm, pretty
from web.pages import show_error, staff_page
from web.views.propose import optional_url

VIEW = "hashlist.view_entry"
VIEW_VERSIONS = "hashlist.view_proposal"
PROPOSE = "hashlist.propose_change"
PAGE_SIZE = 50


def _current(slug: str) -> Current:
    found = next((c for c in framework_store.frameworks_current() if c.slug == slug), None)
    if found is None:
        raise Http404(f"No framework {slug!r}.")
    return found


def condition_text(name: str, values: list[str]) -> str:
    """One condition of a rule in words: "Most serious activity: Sadism or Other"."""
    shown = [LABELS.get(v, v) for v in values]
    listed = ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else shown[0]
    return f"{LABELS.get(name, name)}: {listed}"


def rules_table(definition: Definition) -> list[dict[str, Any]]:
    return [
        {
            "position": i,
            "conditions": [condition_text(n, v) for n, v in rule["when"].items()],
            "class": rule["class"],
            "source": rule["source"],
        }
        for i, rule in enumerate(definition.to_json()["rules"], start=1)
    ]


def diff_rows(found: RuleDiff) -> list[dict[str, Any]]:
    """The rule diff for the page: each rule's conditions in words, old and new side by side."""
    rows = []
    for row in found.rows:
        rows.append(
            {
                "state": row.state,
                "old_position": row.old_position,
                "new_position": row.new_position,
                "old": _rule_view(row.old),
                "new": _rule_view(row.new),
                "what": _what_changed(row.old, row.new) if row.state == CHANGED else [],
            }
        )
    return rows


def _what_changed(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """A changed rule's differences in words: values a condition gains or loses, a condition
    added or dropped, the class, the source."""
    assert old is not None and new is not None
    said = []
    for name in FACT_NAMES:
        before, after = old["when"].get(name), new["when"].get(name)
        label = LABELS[name]
        if before == after:
            continue
        if before is None:
            said.append(f"New condition: {condition_text(name, after or [])}")
        elif after is None:
            said.append(f"Condition dropped: {label}")
        else:
            gained = [LABELS.get(v, v) for v in after if v not in before]
            lost = [LABELS.get(v, v) for v in before if v not in after]
            if gained:
                said.append(f"{label} adds {', '.join(gained)}")
            if lost:
                said.append(f"{label} drops {', '.join(lost)}")
    if old["class"] != new["class"]:
        said.append(f"Class {old['class']} → {new['class']}")
    if old["source"] != new["source"]:
        said.append("Source reworded")
    return said


def _rule_view(rule: dict[str, Any] | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {
        "conditions": [condition_text(n, v) for n, v in rule["when"].items()],
        "class": rule["class"],
        "source": rule["source"],
    }


# --- Frameworks and their versions -----------------------------------------------------------


@staff_page(VIEW)
@require_safe
def framework_list(request: HttpRequest) -> HttpResponse:
    counts = framework_store.unassessed_counts()
    rows = [
        {
            "framework": current,
            "classes": current.definition.classes,
            "rules": len(current.definition.rules),
            "looks_at": [LABELS[n] for n in current.definition.used_facts],
            "unassessed": counts.get(current.slug, 0),
        }
        for current in framework_store.frameworks_current()
    ]
    return render(request, "web/frameworks/list.html", {"rows": rows})


@staff_page(VIEW)
@require_safe
def framework_page(request: HttpRequest, slug: str) -> HttpResponse:
    current = _current(slug)
    versions = None
    if request.user.has_perm(VIEW_VERSIONS):
        versions = list(framework_store.framework_versions(slug=slug))
    pending = None
    if request.user.has_perm(VIEW_VERSIONS):
        pending = list(
            Proposal.objects.filter(
                kind=ProposalKind.FRAMEWORK,
                status=ProposalStatus.PENDING,
                payload__framework=slug,
            )
            .select_related("author")
            .order_by("pk")
        )
    return render(
        request,
        "web/frameworks/detail.html",
        {
            "framework": current,
            "rules": rules_table(current.definition),
            "versions": versions,
            "pending": pending,
            "may_propose": request.user.has_perm(PROPOSE),
            "unassessed": framework_store.unassessed_counts().get(slug, 0),
        },
    )


# --- Proposing a rule change -----------------------------------------------------------------


@staff_page(PROPOSE)
@require_http_methods(["GET", "HEAD", "POST"])
def framework_propose(request: HttpRequest, slug: str) -> HttpResponse:
    current = _current(slug)
    preview: dict[str, Any] | None = None
    status = 200
    if request.method == "POST":
        form = FrameworkRulesForm(request.POST)
        previewing = "preview" in request.POST
        valid = form.is_valid()
        if previewing and "comment" in form.errors:
            # A check needs only the rules: the reason is asked for when it is sent.
            del form.errors["comment"]
            valid = not form.errors
        if valid:
            proposed: Definition = form.cleaned_data["definition"]
            if previewing:
                preview = _preview(current, proposed)
            else:
                try:
                    proposal = services.proposal_framework(
                        actor=request.user,
                        framework=slug,
                        definition=proposed.to_json(),
                        comment=form.cleaned_data["comment"],
                    )
                except DomainError as error:
                    show_error(form, error, "definition")
                    status = 400
                else:
                    messages.success(
                        request,
                        f"Proposal {proposal.pk} made: {current.name} version "
                        f"{current.version + 1} once another person approves it.",
                    )
                    return HttpResponseRedirect(reverse("web-proposal", args=[proposal.pk]))
        else:
            status = 400
    else:
        form = FrameworkRulesForm(initial={"definition": pretty(current.definition)})
    return render(
        request,
        "web/frameworks/propose.html",
        {
            "framework": current,
            "form": form,
            "preview": preview,
            "facts": [(name, LABELS[name], FACTS[name]) for name in FACT_NAMES],
        },
        status=status,
    )


def _preview(current: Current, proposed: Definition) -> dict[str, Any]:
    found = rule_diff(current.definition, proposed)
    return {
        "unchanged": proposed == current.definition,
        "diff": diff_rows(found),
        "classes_added": found.classes_added,
        "classes_removed": found.classes_removed,
        "impact": framework_store.rule_change_impact(old=current.definition, new=proposed),
        "impact_feeds": regrade_impact(current.slug, proposed.to_json()),
    }


# --- Unassessed entries, for analysts ---------------------------------------------------------


@staff_page(VIEW)
@require_safe
def unassessed_index(request: HttpRequest) -> HttpResponse:
    counts = framework_store.unassessed_counts()
    rows = [
        {
            "framework": current,
            "count": counts.get(current.slug, 0),
            "looks_at": [LABELS[n] for n in current.definition.used_facts],
        }
        for current in framework_store.frameworks_current()
    ]
    return render(request, "web/frameworks/unassessed_index.html", {"rows": rows})


@staff_page(VIEW)
@require_safe
def unassessed_list(request: HttpRequest, slug: str) -> HttpResponse:
    current = _current(slug)
    status = 200
    error = None
    try:
        after = query_int(request.GET, "after", default=0, minimum=0, maximum=2**63 - 1)
    except DomainError as exc:
        after, status, error = 0, 400, exc.message
    found = framework_store.unassessed_page(slug=slug, after=after, limit=PAGE_SIZE)
    assert found is not None  # the framework exists
    rows, next_after = found
    may_regrade = request.user.has_perm(PROPOSE)
    shown = [
        {
            "entry_id": row.entry_id,
            "entry_url": optional_url("web-entry", row.entry_id),
            "regrade_url": optional_url("web-propose-regrade", row.entry_id)
            if may_regrade
            else None,
            "unknown": [LABELS[n] for n in row.unknown],
            "known": [
                f"{LABELS[n]}: {LABELS.get(row.facts[n], row.facts[n])}"
                for n in current.definition.used_facts
                if row.facts[n] != UNKNOWN
            ],
        }
        for row in rows
    ]
    return render(
        request,
        "web/frameworks/unassessed.html",
        {
            "framework": current,
            "rows": shown,
            "count": framework_store.unassessed_counts().get(slug, 0),
            "paged": after > 0,
            "next_url": f"?after={next_after}" if next_after else None,
            "error": error,
            "looks_at": [LABELS[n] for n in current.definition.used_facts],
        },
        status=status,
    )
