"""The member administrators' pages: the list of member organisations (with a "new member"
form), and one member's page — status with suspend and reinstate, contacts, licences,
entitlements, sync clients and their tokens, and the member's history.

Every action calls the service the API calls (``members.services``), so its rules and audit
events hold here exactly as there, and redirects after success. A refusal is shown next to the
field it is about. A new token is shown only in the answer to the POST that created it (never
stored, never in a URL or a log line, ``Cache-Control: no-store``); the token form carries a
single-use value so that sending it again (a reload, the back button) issues nothing.
Creating a token, changing entitlements, suspending and reinstating ask for the password again
when the last check is old (UI.md, ``accounts.policy``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from accounts.policy import password_checked_recently
from distribution.selectors import feed_list
from hashsync.errors import DomainError, NotFound
from hashsync.validation import is_name
from members import fleet, selectors, services
from members.models import ContactRole, LicenceKind, Member, MemberStatus
from web.forms.members import (
    ClientForm,
    ContactForm,
    EntitlementForm,
    LicenceForm,
    MemberCreateForm,
    MemberFilterForm,
    ReinstateForm,
    SuspendForm,
    TokenForm,
)
from web.pages import show_error, staff_page

VIEW = "members.view_member"
MANAGE = "members.manage_member"

LIST_PAGE = 50
# The single-use values of the token forms this session was shown (the newest few).
FORMS_SHOWN = "web_member_token_forms"
FORMS_KEPT = 20

HISTORY = 30

View = Callable[..., HttpResponse]


def _member(name: str) -> Member:
    try:
        return selectors.member_get(name)
    except NotFound:
        raise Http404("No member has that name.") from None


def _page_url(name: str) -> str:
    return reverse("web-member", args=[name])


def _show(form: forms.Form, error: DomainError, default: str | None = None) -> None:
    """The service's refusal next to its field: the one its details name, else the field its
    message starts with ("name must be …", "scopes: …"), else ``default``, else the top."""
    details = error.details if isinstance(error.details, dict) else {}
    field = details.get("field")
    if field not in form.fields:
        first = error.message.split(" ", 1)[0].rstrip(":.")
        field = first if first in form.fields else default
    show_error(form, error, field)


def _ask_password_again(view: View) -> View:
    """Sensitive actions need a password check younger than HASHSYNC_REAUTH_MINUTES. The POST
    is not replayed: the person confirms the password and is brought back to the member's
    page to send the form again."""

    @wraps(view)
    def wrapper(request: HttpRequest, name: str, *args: Any, **kwargs: Any) -> HttpResponse:
        if password_checked_recently(request.session):
            return view(request, name, *args, **kwargs)
        back = _page_url(name) if is_name(name) else reverse("web-members")
        messages.info(request, "Confirm your password, then send the form again.")
        return HttpResponseRedirect(reverse("reauthenticate") + "?" + urlencode({"next": back}))

    return wrapper


def _feeds_available() -> list[Any]:
    """The feeds an entitlement can name: the active ones, by name."""
    return list(feed_list().filter(active=True).order_by("name"))


# --- The list ---------------------------------------------------------------------------------


def _licence_rows(licences: Any) -> list[dict[str, Any]]:
    now = timezone.now()
    return [
        {
            "kind": lic.kind,
            "label": LicenceKind(lic.kind).label if lic.kind in LicenceKind.values else lic.kind,
            "reference": lic.reference,
            "valid_until": lic.valid_until,
            "granted_at": lic.granted_at,
            "expired": lic.valid_until is not None and lic.valid_until <= now,
        }
        for lic in licences
    ]


def _render_list(
    request: HttpRequest, *, create_form: MemberCreateForm | None = None, status: int = 200
) -> HttpResponse:
    filters = MemberFilterForm(request.GET)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    if not filters.is_valid():
        status = 400
    rows = selectors.member_overview(
        status=chosen.get("status") or None, text=chosen.get("text") or None
    )
    after = request.GET.get("after", "")
    if after and not is_name(after):
        filters.add_error(None, "That page link is broken: showing the first page.")
        after, status = "", 400
    if after:
        rows = rows.filter(name__gt=after)
    page = list(rows[: LIST_PAGE + 1])
    more = len(page) > LIST_PAGE
    page = page[:LIST_PAGE]
    keep = {k: chosen.get(k) for k in ("status", "text") if chosen.get(k)}
    may_manage = request.user.has_perm(MANAGE)
    return render(
        request,
        "web/members/list.html",
        {
            "filters": filters,
            "filtered": bool(keep),
            "rows": [{"member": m, "licences": _licence_rows(m.licences.all())} for m in page],
            "counts": selectors.member_counts(),
            "paged": bool(after),
            "first_url": "?" + urlencode(keep),
            "next_url": "?" + urlencode({**keep, "after": page[-1].name}) if more else None,
            "may_manage": may_manage,
            "create_form": (create_form or MemberCreateForm()) if may_manage else None,
        },
        status=status,
    )


@staff_page(VIEW)
@require_safe
def member_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request)


@staff_page(MANAGE)
@require_POST
def member_create(request: HttpRequest) -> HttpResponse:
    form = MemberCreateForm(request.POST)
    if form.is_valid():
        try:
            member = services.member_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                display_name=form.cleaned_data["display_name"],
            )
        except DomainError as error:
            _show(form, error, "name")
        else:
            messages.success(
                request,
                f"Member {member.display_name} created. Next: its contacts, licences, "
                "entitlements and a sync client with a token.",
            )
            return HttpResponseRedirect(_page_url(member.name))
    return _render_list(request, create_form=form, status=400)


# --- One member's page ------------------------------------------------------------------------


def _token_form(request: HttpRequest, clients: list[str], data: Any = None) -> TokenForm:
    """A token form with a fresh single-use value remembered in the session (a form sent
    back with errors keeps the value it had)."""
    if data is not None:
        return TokenForm(data, clients=clients)
    once = secrets.token_urlsafe(16)
    kept = [v for v in request.session.get(FORMS_SHOWN, []) if isinstance(v, str)]
    request.session[FORMS_SHOWN] = [*kept, once][-FORMS_KEPT:]
    return TokenForm(clients=clients, initial={"once": once})


_EVENT_LABELS = {
    "member.create": "Created",
    "member.suspend": "Suspended",
    "member.reinstate": "Reinstated",
    "member.contact_add": "Contact added",
    "member.contact_remove": "Contact removed",
    "member.licence_grant": "Licence granted",
    "member.licence_revoke": "Licence revoked",
    "member.entitlement_grant": "Entitlement granted",
    "member.entitlement_revoke": "Entitlement revoked",
    "member.client_create": "Sync client created",
    "member.token_create": "Token created",
    "member.token_revoke": "Token revoked",
}


def _event_detail(event: Any) -> str:
    """A few words from the event's before/after: which feed, licence or contact role."""
    data = {**(event.before or {}), **(event.after or {})}
    if "prefix" in data:
        scopes = data.get("scopes")
        return f"{data['prefix']}…" + (f" ({', '.join(scopes)})" if scopes else "")
    if event.action == "member.client_create":
        return str(data.get("name", ""))
    if "feed" in data:
        return f"feed {data['feed']}"
    if "kind" in data:
        kind = str(data["kind"])
        label = LicenceKind(kind).label if kind in LicenceKind.values else kind
        until = data.get("valid_until")
        renewed = " (renewed)" if data.get("renewed") else ""
        return f"{label}{renewed}" + (f", valid until {until[:10]}" if until else "")
    if "role" in data:
        role = str(data["role"])
        return ContactRole(role).label.lower() if role in ContactRole.values else role
    return ""


def _history_rows(events: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "label": _EVENT_LABELS.get(e.action, e.action),
            "detail": _event_detail(e),
            "actor": e.actor,
            "at": e.at,
            "reason": e.reason,
        }
        for e in events
    ]


def _render_member(
    request: HttpRequest,
    member: Member,
    *,
    bound: dict[str, forms.Form] | None = None,
    problem: str | None = None,
    secret: str | None = None,
    new_token: Any = None,
    status: int = 200,
) -> HttpResponse:
    """The member's page; ``bound`` holds the form that was sent (with its errors), by the
    name the template uses; ``problem`` is a refusal that has no field (a revoke)."""
    bound = bound or {}
    may_manage = request.user.has_perm(MANAGE)
    clients = selectors.member_clients(member)
    tokens = list(selectors.member_tokens(member))
    for client in clients:
        client["tokens"] = [t for t in tokens if t.client.name == client["name"]]
    entitlements = selectors.member_entitlements(member)
    entitled = {e["feed"] for e in entitlements}
    context: dict[str, Any] = {
        "member": member,
        "suspended": member.status == MemberStatus.SUSPENDED,
        "may_manage": may_manage,
        "contacts": [
            {
                **c,
                "role_label": ContactRole(c["role"]).label
                if c["role"] in ContactRole.values
                else c["role"],
            }
            for c in selectors.member_contacts(member)
        ],
        "licences": _licence_rows(member.licences.order_by("kind")),
        "has_photodna": selectors.has_licence(member, LicenceKind.PHOTODNA),
        "entitlements": entitlements,
        "clients": clients,
        # Each client's place in the fleet: version acknowledged, how far behind, last seen.
        "fleet_rows": fleet.member_fleet(member.name),
        "token_count": len(tokens),
        "history": _history_rows(selectors.member_history(member, limit=HISTORY)),
        "history_limit": HISTORY,
        "problem": problem,
        "secret": secret,
        "new_token": new_token,
    }
    if may_manage:
        feeds = [f for f in _feeds_available() if f.name not in entitled]
        names = [c["name"] for c in clients]
        context.update(
            {
                "suspend_form": bound.get("suspend") or SuspendForm(),
                "reinstate_form": bound.get("reinstate") or ReinstateForm(),
                "contact_form": bound.get("contact") or ContactForm(),
                "licence_form": bound.get("licence") or LicenceForm(),
                "entitlement_form": bound.get("entitlement") or EntitlementForm(feeds=feeds),
                "feeds_left": bool(feeds) or "entitlement" in bound,
                "client_form": bound.get("client") or ClientForm(),
                "token_form": bound.get("token") or _token_form(request, names),
            }
        )
    context["bound_forms"] = list(bound.values())
    response = render(request, "web/members/member.html", context, status=status)
    if secret is not None:
        response["Cache-Control"] = "no-store"
    return response


@staff_page(VIEW)
@require_safe
def member_page(request: HttpRequest, name: str) -> HttpResponse:
    return _render_member(request, _member(name))


def _done(request: HttpRequest, member: Member, message: str) -> HttpResponse:
    messages.success(request, message)
    return HttpResponseRedirect(_page_url(member.name))


def _refused(request: HttpRequest, member: Member, error: DomainError) -> HttpResponse:
    """A refusal of an action that has no field (revoke, remove): at the top of the page."""
    return _render_member(request, member, problem=error.message, status=error.http_status)


# --- Status -----------------------------------------------------------------------------------


@staff_page(MANAGE)
@require_POST
@_ask_password_again
def member_suspend(request: HttpRequest, name: str) -> HttpResponse:
    member = _member(name)
    form = SuspendForm(request.POST)
    if form.is_valid():
        try:
            services.member_suspend(
                actor=request.user, name=member.name, reason=form.cleaned_data["reason"]
            )
        except DomainError as error:
            _show(form, error)
        else:
            return _done(
                request,
                member,
                f"{member.display_name} is suspended: its tokens stop working "
                "on their next request.",
            )
    return _render_member(request, _member(name), bound={"suspend": form}, status=400)


@staff_page(MANAGE)
@require_POST
@_ask_password_again
def member_reinstate(request: HttpRequest, name: str) -> HttpResponse:
    member = _member(name)
    form = ReinstateForm(request.POST)
    if form.is_valid():
        try:
            services.member_reinstate(
                actor=request.user, name=member.name, reason=form.cleaned_data["reason"]
            )
        except DomainError as error:
            _show(form, error)
        else:
            return _done(
                request, member, f"{member.display_name} is reinstated: its tokens work again."
            )
    return _render_member(request, _member(name), bound={"reinstate": form}, status=400)


# --- Contacts ---------------------------------------------------------------------------------


@staff_page(MANAGE)
@require_POST
def contact_add(request: HttpRequest, name: str) -> HttpResponse:
    member = _member(name)
    form = ContactForm(request.POST)
    if form.is_valid():
        try:
            contact = services.contact_add(
                actor=request.user, member_name=member.name, **form.cleaned_data
            )
        except DomainError as error:
            _show(form, error)
        else:
            return _done(request, member, f"Contact {contact.name} added.")
    return _render_member(request, member, bound={"contact": form}, status=400)


@staff_page(MANAGE)
@require_POST
def contact_remove(request: HttpRequest, name: str, contact_id: int) -> HttpResponse:
    member = _member(name)
    try:
        services.contact_remove(actor=request.user, member_name=member.name, contact_id=contact_id)
    except DomainError as error:
        return _refused(request, member, error)
    return _done(request, member, "Contact removed.")


# --- Licences and entitlements ----------------------------------------------------------------


@staff_page(MANAGE)
@require_POST
def licence_grant(request: HttpRequest, name: str) -> HttpResponse:
    member = _member(name)
    form = LicenceForm(request.POST)
    if form.is_valid():
        try:
            services.licence_grant(
                actor=request.user,
                member_name=member.name,
                kind=LicenceKind.PHOTODNA,
                reference=form.cleaned_data["reference"],
                valid_until=form.valid_until_moment(),
            )
        except DomainError as error:
            _show(form, error)
        else:
            return _done(request, member, "PhotoDNA licence recorded.")
    return _render_member(request, member, bound={"licence": form}, status=400)


@staff_page(MANAGE)
@require_POST
def licence_revoke(request: HttpRequest, name: str, kind: str) -> HttpResponse:
    member = _member(name)
    try:
        services.licence_revoke(actor=request.user, member_name=member.name, kind=kind)
    except DomainError as error:
        return _refused(request, member, error)
    return _done(
        request, member, "Licence revoked: feeds that need it stop on the member's next request."
    )


def _feeds(member: Member) -> list[Any]:
    entitled = {e["feed"] for e in selectors.member_entitlements(member)}
    return [f for f in _feeds_available() if f.name not in entitled]


@staff_page(MANAGE)
@require_POST
@_ask_password_again
def entitlement_grant(request: HttpRequest, name: str) -> HttpResponse:
    member = _member(name)
    form = EntitlementForm(request.POST, feeds=_feeds(member))
    if form.is_valid():
        try:
            services.entitlement_grant(
                actor=request.user, member_name=member.name, feed=form.cleaned_data["feed"]
            )
        except DomainError as error:
            _show(form, error, "feed")
        else:
            return _done(request, member, f"Entitled to feed {form.cleaned_data['feed']}.")
    return _render_member(request, member, bound={"entitlement": form}, status=400)


@staff_page(MANAGE)
@require_POST
@_ask_password_again
def entitlement_revoke(request: HttpRequest, name: str, feed: str) -> HttpResponse:
    member = _member(name)
    try:
        services.entitlement_revoke(actor=request.user, member_name=member.name, feed=feed)
    except DomainError as error:
        return _refused(request, member, error)
    return _done(request, member, f"Entitlement to feed {feed} revoked.")


# --- Sync clients and tokens ------------------------------------------------------------------


@staff_page(MANAGE)
@require_POST
def client_create(request: HttpRequest, name: str) -> HttpResponse:
    member = _member(name)
    form = ClientForm(request.POST)
    if form.is_valid():
        try:
            client = services.client_create(
                actor=request.user, member_name=member.name, name=form.cleaned_data["name"]
            )
        except DomainError as error:
            _show(form, error, "name")
        else:
            return _done(request, member, f"Client {client.name} created. Next: a token for it.")
    return _render_member(request, member, bound={"client": form}, status=400)


@staff_page(MANAGE)
@require_POST
@_ask_password_again
def token_create(request: HttpRequest, name: str) -> HttpResponse:
    member = _member(name)
    clients = [c.name for c in member.clients.order_by("name")]
    form = _token_form(request, clients, data=request.POST)
    once = request.POST.get("token-once", "")
    shown = request.session.get(FORMS_SHOWN, [])
    if not once or once not in shown:
        messages.warning(
            request,
            "That token form was already sent (or is from an old page), so no token was "
            "created. A token is shown only once: if one was not copied, revoke it and create "
            "another.",
        )
        return HttpResponseRedirect(_page_url(member.name))
    if form.is_valid():
        data = form.cleaned_data
        try:
            token, secret = services.token_create(
                actor=request.user,
                member_name=member.name,
                client_name=data["client"],
                scopes=list(data["scopes"]),
                expires_in_days=data["expires_in_days"],
            )
        except DomainError as error:
            _show(form, error, "client")
        else:
            request.session[FORMS_SHOWN] = [v for v in shown if v != once]
            # Rendered in the answer to this POST only: never stored, redirected or logged.
            return _render_member(request, member, secret=secret, new_token=token)
    return _render_member(request, member, bound={"token": form}, status=400)


@staff_page(MANAGE)
@require_POST
def token_revoke(request: HttpRequest, name: str, token_id: int) -> HttpResponse:
    member = _member(name)
    try:
        token = services.token_revoke(
            actor=request.user, member_name=member.name, token_id=token_id
        )
    except DomainError as error:
        return _refused(request, member, error)
    return _done(
        request,
        member,
        f"Token {token.prefix}… of client {token.client.name} revoked: it "
        "stops working on its next request.",
    )
