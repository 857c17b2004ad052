"""Writes for members: organisations, licences, entitlements, sync clients, tokens and dispute
resolution (staff). Each function is one transaction with its audit event. What member clients
write (acks, feedback) is in ``sync.services``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from distribution.models import Feed
from hashlist.services import User, as_staff, require_permission
from hashsync.errors import Conflict, InvalidInput, NotFound
from hashsync.validation import (
    MAX_LABEL,
    clean_choice,
    clean_future,
    clean_id,
    clean_name,
    clean_text,
    is_name,
)
from members import selectors, tokens
from members.models import (
    ApiToken,
    Contact,
    ContactRole,
    Entitlement,
    Feedback,
    FeedbackStatus,
    Licence,
    LicenceKind,
    Member,
    MemberStatus,
    SyncClient,
    TokenScope,
)

MANAGE = "members.manage_member"
RESOLVE = "members.resolve_feedback"
MAX_TOKEN_DAYS = 730


def _locked_member(name: Any) -> Member:
    member = Member.objects.select_for_update().filter(name=name).first()
    if member is None or not isinstance(name, str):
        raise NotFound("No member has that name.")
    return member


def _member_summary(member: Member) -> dict[str, Any]:
    return {"name": member.name, "display_name": member.display_name, "status": member.status}


# --- Organisations ----------------------------------------------------------------------------


@transaction.atomic
def member_create(*, actor: User, name: Any, display_name: Any) -> Member:
    require_permission(actor, MANAGE, "create members")
    name = clean_name(name, "name")
    display_name = clean_text(display_name, "display_name", limit=MAX_LABEL, required=True)
    if Member.objects.filter(name=name).exists():
        raise Conflict(f"A member named {name} already exists.", code="member_exists")
    member = Member.objects.create(name=name, display_name=display_name)
    audit_record(
        actor=actor,
        action="member.create",
        object_type="member",
        object_id=member.pk,
        after=_member_summary(member),
    )
    return member


@transaction.atomic
def member_suspend(*, actor: User, name: Any, reason: Any) -> Member:
    """Suspend at once: every token of the member stops working on its next request."""
    require_permission(actor, MANAGE, "suspend members")
    reason = clean_text(reason, "reason", required=True)
    member = _locked_member(name)
    if member.status == MemberStatus.SUSPENDED:
        raise Conflict("The member is already suspended.", code="member_suspended")
    before = _member_summary(member)
    member.status = MemberStatus.SUSPENDED
    member.suspended_at = timezone.now()
    member.suspension_reason = reason
    member.save(update_fields=["status", "suspended_at", "suspension_reason"])
    audit_record(
        actor=actor,
        action="member.suspend",
        object_type="member",
        object_id=member.pk,
        before=before,
        after=_member_summary(member),
        reason=reason,
    )
    return member


@transaction.atomic
def member_reinstate(*, actor: User, name: Any, reason: Any) -> Member:
    require_permission(actor, MANAGE, "reinstate members")
    reason = clean_text(reason, "reason", required=True)
    member = _locked_member(name)
    if member.status == MemberStatus.ACTIVE:
        raise Conflict("The member is not suspended.", code="member_active")
    before = _member_summary(member)
    member.status = MemberStatus.ACTIVE
    member.suspended_at = None
    member.suspension_reason = ""
    member.save(update_fields=["status", "suspended_at", "suspension_reason"])
    audit_record(
        actor=actor,
        action="member.reinstate",
        object_type="member",
        object_id=member.pk,
        before=before,
        after=_member_summary(member),
        reason=reason,
    )
    return member


@transaction.atomic
def contact_add(*, actor: User, member_name: Any, name: Any, email: Any, role: Any) -> Contact:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    require_permission(actor, MANAGE, "edit member contacts")
    member = _locked_member(member_name)
    name = clean_text(name, "name", limit=MAX_LABEL, required=True)
    email = clean_text(email, "email", limit=254, required=True)  # RFC 5321
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("email must be an e-mail address.") from None
    role = clean_choice(role, "role", ContactRole)
    if Contact.objects.filter(member=member, email=email, role=role).exists():
        raise Conflict("That contact is already recorded for this role.", code="contact_exists")
    contact = Contact.objects.create(member=member, name=name, email=email, role=role)
    audit_record(
        actor=actor,
        action="member.contact_add",
        object_type="member",
        object_id=member.pk,
        after={"contact": contact.pk, "role": role},
    )
    return contact


@transaction.atomic
def contact_remove(*, actor: User, member_name: Any, contact_id: Any) -> None:
    require_permission(actor, MANAGE, "edit member contacts")
    member = _locked_member(member_name)
    contact = Contact.objects.filter(member=member, pk=clean_id(contact_id, "contact")).first()
    if contact is None:
        raise NotFound("This member has no such contact.")
    audit_record(
        actor=actor,
        action="member.contact_remove",
        object_type="member",
        object_id=member.pk,
        before={"contact": contact.pk, "role": contact.role},
    )
    contact.delete()


# --- Licences and entitlements --------------------------------------------------------------


@transaction.atomic
def licence_grant(
    *, actor: User, member_name: Any, kind: Any, reference: Any = "", valid_until: Any = None
) -> Licence:
    require_permission(actor, MANAGE, "grant licences")
    member = _locked_member(member_name)
    kind = clean_choice(kind, "kind", LicenceKind)
    reference = clean_text(reference, "reference", limit=MAX_LABEL)
    valid_until = clean_future(valid_until, "valid_until")
    licence, created = Licence.objects.update_or_create(
        member=member, kind=kind, defaults={"reference": reference, "valid_until": valid_until}
    )
    audit_record(
        actor=actor,
        action="member.licence_grant",
        object_type="member",
        object_id=member.pk,
        after={
            "kind": kind,
            "valid_until": valid_until.isoformat() if valid_until else None,
            "renewed": not created,
        },
    )
    return licence


@transaction.atomic
def licence_revoke(*, actor: User, member_name: Any, kind: Any) -> None:
    """Takes effect on the member's next request: feeds that need the licence disappear."""
    require_permission(actor, MANAGE, "revoke licences")
    member = _locked_member(member_name)
    deleted, _ = Licence.objects.filter(member=member, kind=kind).delete()
    if not deleted:
        raise NotFound("This member has no such licence.")
    audit_record(
        actor=actor,
        action="member.licence_revoke",
        object_type="member",
        object_id=member.pk,
        before={"kind": kind},
    )


@transaction.atomic
def entitlement_grant(*, actor: User, member_name: Any, feed: Any) -> Entitlement:
    require_permission(actor, MANAGE, "grant entitlements")
    member = _locked_member(member_name)
    # Only a name that could be a feed's is looked up: PostgreSQL refuses a query holding NUL.
    feed_obj = Feed.objects.filter(name=feed, active=True).first() if is_name(feed) else None
    if feed_obj is None:
        raise NotFound("No active feed has that name.")
    if feed_obj.carries_photodna and not selectors.has_licence(member, LicenceKind.PHOTODNA):
        raise Conflict(
            f"Feed {feed_obj.name} can carry PhotoDNA hashes; grant the member a PhotoDNA "
            "licence first.",
            code="licence_required",
        )
    try:
        with transaction.atomic():
            entitlement = Entitlement.objects.create(member=member, feed=feed_obj)
    except IntegrityError:
        raise Conflict("The member is already entitled to that feed.", code="entitled") from None
    audit_record(
        actor=actor,
        action="member.entitlement_grant",
        object_type="member",
        object_id=member.pk,
        after={"feed": feed_obj.name},
    )
    return entitlement


@transaction.atomic
def entitlement_revoke(*, actor: User, member_name: Any, feed: Any) -> None:
    require_permission(actor, MANAGE, "revoke entitlements")
    member = _locked_member(member_name)
    deleted, _ = Entitlement.objects.filter(member=member, feed__name=feed).delete()
    if not deleted:
        raise NotFound("The member is not entitled to that feed.")
    audit_record(
        actor=actor,
        action="member.entitlement_revoke",
        object_type="member",
        object_id=member.pk,
        before={"feed": feed},
    )


# --- Sync clients and tokens ----------------------------------------------------------------


@transaction.atomic
def client_create(*, actor: User, member_name: Any, name: Any) -> SyncClient:
    require_permission(actor, MANAGE, "create sync clients")
    member = _locked_member(member_name)
    name = clean_name(name, "name")
    if SyncClient.objects.filter(member=member, name=name).exists():
        raise Conflict("The member already has a client with that name.", code="client_exists")
    client = SyncClient.objects.create(member=member, name=name)
    audit_record(
        actor=actor,
        action="member.client_create",
        object_type="sync_client",
        object_id=client.pk,
        after={"member": member.name, "name": name},
    )
    return client


def _scopes(value: Any) -> list[str]:
    allowed = [s.value for s in TokenScope]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"scopes must be a non-empty list drawn from {', '.join(allowed)}.")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise InvalidInput(f"scopes: unknown scope; expected any of {', '.join(allowed)}.")
    return [s for s in allowed if s in value]


@transaction.atomic
def token_create(
    *, actor: User, member_name: Any, client_name: Any, scopes: Any, expires_in_days: Any = None
) -> tuple[ApiToken, str]:
    """Issue a token; returns the row and the token itself, which is never stored or shown
    again."""
    require_permission(actor, MANAGE, "issue tokens")
    member = _locked_member(member_name)
    client = SyncClient.objects.filter(member=member, name=client_name).first()
    if client is None or not isinstance(client_name, str):
        raise NotFound("The member has no sync client with that name.")
    scope_list = _scopes(scopes)
    expires_at = None
    if expires_in_days is not None:
        if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int):
            raise InvalidInput("expires_in_days must be a whole number of days.")
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise InvalidInput(f"expires_in_days must be between 1 and {MAX_TOKEN_DAYS}.")
        expires_at = timezone.now() + dt.timedelta(days=expires_in_days)
    secret = tokens.generate()
    token = ApiToken.objects.create(
        client=client,
        prefix=tokens.display_prefix(secret),
        digest=tokens.digest(secret),
        scopes=scope_list,
        created_by=as_staff(actor),
        expires_at=expires_at,
    )
    audit_record(
        actor=actor,
        action="member.token_create",
        object_type="api_token",
        object_id=token.pk,
        after={
            "member": member.name,
            "client": client.name,
            "prefix": token.prefix,
            "scopes": scope_list,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, secret


@transaction.atomic
def token_revoke(*, actor: User, member_name: Any, token_id: Any) -> ApiToken:
    require_permission(actor, MANAGE, "revoke tokens")
    member = _locked_member(member_name)
    token = (
        ApiToken.objects.select_for_update()
        .filter(client__member=member, pk=clean_id(token_id, "token"))
        .first()
    )
    if token is None:
        raise NotFound("The member has no token with that id.")
    if token.revoked_at is not None:
        raise Conflict("The token is already revoked.", code="token_revoked")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="member.token_revoke",
        object_type="api_token",
        object_id=token.pk,
        after={"member": member.name, "prefix": token.prefix},
    )
    return token


@transaction.atomic
def feedback_resolve(*, actor: User, feedback_id: Any, status: Any, resolution: Any) -> Feedback:
    """Close a dispute. Upholding it does not change the list by itself: the analyst proposes
    the correction (regrade, remove hash, retract), which goes through four-eyes review."""
    require_permission(actor, RESOLVE, "resolve member feedback")
    status = clean_choice(status, "status", [FeedbackStatus.UPHELD, FeedbackStatus.DISMISSED])
    resolution = clean_text(resolution, "resolution", required=True)
    feedback = (
        Feedback.objects.select_for_update().filter(pk=clean_id(feedback_id, "feedback")).first()
    )
    if feedback is None:
        raise NotFound("No feedback has that id.")
    if feedback.status != FeedbackStatus.OPEN:
        raise Conflict("This feedback is already resolved.", code="feedback_resolved")
    feedback.status = status
    feedback.resolution = resolution
    feedback.resolved_at = timezone.now()
    feedback.resolved_by = as_staff(actor)
    feedback.save(update_fields=["status", "resolution", "resolved_at", "resolved_by"])
    audit_record(
        actor=actor,
        action="feedback.resolve",
        object_type="feedback",
        object_id=feedback.pk,
        before={"status": FeedbackStatus.OPEN},
        after={"status": status},
        reason=resolution,
    )
    return feedback
