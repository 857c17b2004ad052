"""Writes for members: organisations, licences, entitlements, sync clients, tokens (staff), and
acks and feedback (member clients). Each function is one transaction with its audit event."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from distribution.models import Feed, FeedVersion
from hashlist.grading import parse_hash
from hashlist.services import User, as_staff, require_permission
from hashsync.errors import Conflict, InvalidInput, NotFound
from members import selectors, tokens
from members.auth import MemberPrincipal
from members.models import (
    Ack,
    ApiToken,
    Contact,
    ContactRole,
    Entitlement,
    Feedback,
    FeedbackKind,
    FeedbackStatus,
    Holding,
    Licence,
    LicenceKind,
    Member,
    MemberStatus,
    SyncClient,
    TokenScope,
)

MANAGE = "members.manage_member"
RESOLVE = "members.resolve_feedback"
NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_TOKEN_DAYS = 730


def _name(value: Any, field: str) -> str:
    # fullmatch: with match, "$" also matches before a trailing newline.
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidInput(
            f"{field} must be 1–64 lowercase letters, digits and inner hyphens (e.g. acme-cloud)."
        )
    return value


def _text(value: Any, field: str, *, limit: int, required: bool = True, minimum: int = 1) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.")
    value = value.strip()
    if required and len(value) < minimum:
        raise InvalidInput(f"{field} must have at least {minimum} characters.")
    if len(value) > limit:
        raise InvalidInput(f"{field} is too long ({len(value)} characters; at most {limit}).")
    # PostgreSQL text cannot hold NUL: storing it was a 500 there (and accepted on SQLite).
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters.")
    return value


def _choice(value: Any, field: str, choices: Any) -> str:
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}.")
    return str(value)


def member_get(name: Any) -> Member:
    member = Member.objects.filter(name=name).first() if isinstance(name, str) else None
    if member is None:
        raise NotFound("No member has that name.")
    return member


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
    name = _name(name, "name")
    display_name = _text(display_name, "display_name", limit=200)
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
    reason = _text(reason, "reason", limit=2000)
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
    reason = _text(reason, "reason", limit=2000)
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
    name = _text(name, "name", limit=200)
    email = _text(email, "email", limit=254)
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("email must be an e-mail address.") from None
    role = _choice(role, "role", ContactRole)
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
    contact = Contact.objects.filter(member=member, pk=_int(contact_id, "contact")).first()
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


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{field} must be an integer id.")
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{field} must be an integer id.") from None
    if not 0 < number < 2**63:
        raise InvalidInput(f"{field} must be a positive integer id.")
    return number


def _future(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{field} must be a date-time with a time zone.")
    if timezone.is_naive(value):
        raise InvalidInput(f"{field} must include a time zone (e.g. 2027-01-01T00:00:00Z).")
    if value <= timezone.now():
        raise InvalidInput(f"{field} must be in the future.")
    return value


# --- Licences and entitlements --------------------------------------------------------------


@transaction.atomic
def licence_grant(
    *, actor: User, member_name: Any, kind: Any, reference: Any = "", valid_until: Any = None
) -> Licence:
    require_permission(actor, MANAGE, "grant licences")
    member = _locked_member(member_name)
    kind = _choice(kind, "kind", LicenceKind)
    reference = _text(reference, "reference", limit=200, required=False)
    valid_until = _future(valid_until, "valid_until")
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
    feed_obj = (
        Feed.objects.filter(name=feed, active=True).first()
        if isinstance(feed, str) and NAME.fullmatch(feed)
        else None
    )
    if feed_obj is None:
        raise NotFound("No active feed has that name.")
    if selectors.feed_can_carry_photodna(feed_obj) and not selectors.has_licence(
        member, LicenceKind.PHOTODNA
    ):
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
    name = _name(name, "name")
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
        .filter(client__member=member, pk=_int(token_id, "token"))
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


# --- What member clients report ------------------------------------------------------------


@transaction.atomic
def ack_record(*, principal: MemberPrincipal, feed: Feed, version: Any, state_digest: Any) -> Ack:
    """Record what a client says it holds. A digest that is not the server's flags the client
    for administrators; the client is told to take the snapshot."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput("version must be a positive integer.")
    if not isinstance(state_digest, str) or not DIGEST.fullmatch(state_digest):
        raise InvalidInput("state_digest must be 64 lowercase hexadecimal characters.")
    published = FeedVersion.objects.filter(feed=feed, version=version).first()
    if published is None:
        # invalid_input, as docs/sync-api.md promises: version_unknown is the plan's 409 ("you
        # hold something never published: start over"), not a refused ack.
        raise InvalidInput(f"Feed {feed.name} has no version {version}; sync again from the plan.")
    now = timezone.now()
    matches = published.state_digest == state_digest
    ack = Ack.objects.create(
        client=principal.client,
        feed=feed,
        version=version,
        state_digest=state_digest,
        digest_matches=matches,
        acked_at=now,
    )
    Holding.objects.update_or_create(
        client=principal.client,
        feed=feed,
        defaults={
            "version": version,
            "state_digest": state_digest,
            "digest_matches": matches,
            "acked_at": now,
        },
    )
    if not matches:
        SyncClient.objects.filter(pk=principal.client.pk).update(digest_mismatch_at=now)
    audit_record(
        actor=None,
        actor_label=principal.label,
        action="sync.ack",
        object_type="feed",
        object_id=feed.pk,
        after={
            "feed": feed.name,
            "version": version,
            "state_digest": state_digest,
            "digest_matches": matches,
            "token": principal.token.prefix,
        },
    )
    return ack


@transaction.atomic
def feedback_create(
    *, principal: MemberPrincipal, algorithm: Any, value: Any, kind: Any, reason: Any
) -> Feedback:
    name, raw = parse_hash(algorithm, value)
    kind = _choice(kind, "kind", FeedbackKind)
    reason = _text(reason, "reason", limit=2000, minimum=10)
    feeds = selectors.entitled_feeds(principal.member)
    rows = selectors.feed_entries_for([f.pk for f in feeds], [(name, raw)]).get((name, raw))
    if not rows:
        # The same answer whether the hash is unlisted or listed only in feeds this member
        # does not receive: nothing about other feeds leaks.
        raise NotFound("That hash is not in any feed you receive.")
    entry_id = rows[0].entry_id
    if Feedback.objects.filter(
        member=principal.member, entry_id=entry_id, status=FeedbackStatus.OPEN
    ).exists():
        raise Conflict(
            "Your organisation already has an open dispute of this entry; the analysts will "
            "answer it.",
            code="feedback_exists",
        )
    try:
        with transaction.atomic():  # the constraint decides a race between two reports
            feedback = Feedback.objects.create(
                member=principal.member,
                client=principal.client,
                entry_id=entry_id,
                algorithm=name,
                value=raw,
                kind=kind,
                reason=reason,
            )
    except IntegrityError:
        raise Conflict(
            "Your organisation already has an open dispute of this entry.", code="feedback_exists"
        ) from None
    audit_record(
        actor=None,
        actor_label=principal.label,
        action="feedback.create",
        object_type="feedback",
        object_id=feedback.pk,
        after={"entry": feedback.entry_id, "kind": kind, "algorithm": name},
        reason=reason,
    )
    return feedback


@transaction.atomic
def feedback_resolve(*, actor: User, feedback_id: Any, status: Any, resolution: Any) -> Feedback:
    """Close a dispute. Upholding it does not change the list by itself: the analyst proposes
    the correction (regrade, remove hash, retract), which goes through four-eyes review."""
    require_permission(actor, RESOLVE, "resolve member feedback")
    status = _choice(status, "status", [FeedbackStatus.UPHELD, FeedbackStatus.DISMISSED])
    resolution = _text(resolution, "resolution", limit=2000)
    feedback = Feedback.objects.select_for_update().filter(pk=_int(feedback_id, "feedback")).first()
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
