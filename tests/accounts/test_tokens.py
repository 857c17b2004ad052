"""Staff personal API tokens: creating, revoking and listing them (``accounts.services`` and
``accounts.selectors``). How they authenticate is in ``test_authentication.py``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import selectors, services
from accounts.models import StaffToken, StaffTokenStatus
from hashsync import tokens
from hashsync.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tests.utils import audit_events_since, last_audit_seq

pytestmark = pytest.mark.django_db

ROLES_WITH_ACCOUNTS = ("analyst", "reviewer", "member_admin", "auditor", "outsider")


def with_second_factor(user: Any) -> Any:
    TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True)
    return user


def issue(user: Any, name: str = "import script", **kwargs: Any) -> tuple[StaffToken, str]:
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        with_second_factor(user)
    return services.staff_token_create(actor=user, name=name, **kwargs)


# --- Creating -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES_WITH_ACCOUNTS)
def test_every_staff_user_with_a_second_factor_may_create_a_token(make_user, role):
    user = with_second_factor(make_user(None if role == "outsider" else role))

    token, secret = services.staff_token_create(actor=user, name="laptop")

    assert token.user == user and token.name == "laptop"
    assert secret.startswith("hsp_") and tokens.STAFF.is_well_formed(secret)
    assert not tokens.MEMBER.is_well_formed(secret)


@pytest.mark.parametrize("role", ROLES_WITH_ACCOUNTS)
def test_a_user_without_a_second_factor_cannot_create_a_token(make_user, role):
    user = make_user(None if role == "outsider" else role)

    with pytest.raises(PermissionDenied) as refused:
        services.staff_token_create(actor=user, name="laptop")

    assert refused.value.code == "second_factor_required"
    assert "Second factor" in refused.value.message
    assert not StaffToken.objects.exists()


def test_a_device_still_being_set_up_is_not_a_second_factor(analyst):
    TOTPDevice.objects.create(user=analyst, name="authenticator app", confirmed=False)

    with pytest.raises(PermissionDenied, match="second factor"):
        services.staff_token_create(actor=analyst, name="laptop")


def test_anonymous_and_deactivated_users_cannot_create_tokens(analyst):
    with_second_factor(analyst)
    analyst.is_active = False
    analyst.save()

    for actor in (AnonymousUser(), analyst):
        with pytest.raises(PermissionDenied, match="signed in"):
            services.staff_token_create(actor=actor, name="laptop")
    assert not StaffToken.objects.exists()


def test_only_the_digest_of_the_secret_is_stored(analyst):
    token, secret = issue(analyst)

    assert token.digest == tokens.digest(secret)
    assert token.prefix == secret[:12] == tokens.STAFF.display_prefix(secret)
    row = StaffToken.objects.filter(pk=token.pk).values().get()
    stored = json.dumps(row, default=str)
    assert secret not in stored and secret[12:] not in stored


def test_each_token_is_new(analyst):
    secrets = {issue(analyst)[1] for _ in range(20)}
    assert len(secrets) == 20


def test_a_token_expires_in_90_days_unless_its_owner_chooses(analyst):
    before = timezone.now()
    default, _ = issue(analyst)
    chosen, _ = issue(analyst, expires_in_days=7)

    assert default.expires_at - default.created_at == dt.timedelta(days=90)
    assert chosen.expires_at - chosen.created_at == dt.timedelta(days=7)
    assert before <= default.created_at <= timezone.now()


def test_no_token_lives_longer_than_the_configured_maximum(analyst, settings):
    settings.HASHSYNC_STAFF_TOKEN_MAX_DAYS = 30
    capped, _ = issue(analyst)
    longest, _ = issue(analyst, expires_in_days=30)

    assert capped.expires_at - capped.created_at == dt.timedelta(days=30)
    assert longest.expires_at - longest.created_at == dt.timedelta(days=30)
    with pytest.raises(InvalidInput, match="from 1 to 30"):
        issue(analyst, expires_in_days=31)


@pytest.mark.parametrize("days", [0, -1, 366, True, "7", 7.0, [7]])
def test_an_expiry_that_is_not_a_whole_number_of_allowed_days_is_refused(analyst, days):
    with pytest.raises(InvalidInput, match="expires_in_days"):
        issue(analyst, expires_in_days=days)
    assert not StaffToken.objects.exists()


@pytest.mark.parametrize("name", ["", "   ", None, 7, "x" * 101, "bad\x00name"])
def test_a_token_needs_a_short_plain_name(analyst, name):
    with pytest.raises(InvalidInput, match="name"):
        issue(analyst, name=name)


def test_the_name_is_stored_without_surrounding_space(analyst):
    token, _ = issue(analyst, name="  build server  ")
    assert token.name == "build server"


def test_creating_a_token_is_on_the_audit_trail_without_its_secret(analyst):
    seq = last_audit_seq()
    token, secret = issue(analyst, name="nightly export")

    [event] = audit_events_since(seq)
    assert (event.action, event.object_type, event.object_id) == (
        "staff_token.create",
        "staff_token",
        str(token.pk),
    )
    assert event.actor == analyst.username
    assert event.after == {
        "prefix": token.prefix,
        "name": "nightly export",
        "expires_at": token.expires_at.isoformat(),
    }
    recorded = json.dumps([event.before, event.after, event.reason])
    assert secret not in recorded and token.digest not in recorded


def test_a_refused_creation_records_nothing(analyst):
    seq = last_audit_seq()
    with pytest.raises(PermissionDenied):
        services.staff_token_create(actor=analyst, name="laptop")
    assert audit_events_since(seq) == []


# --- Revoking -------------------------------------------------------------------------------


def test_its_owner_revokes_a_token_on_the_audit_trail(analyst):
    token, secret = issue(analyst, name="old laptop")
    seq = last_audit_seq()

    revoked = services.staff_token_revoke(actor=analyst, token_id=token.pk)

    assert revoked.revoked_at is not None
    assert StaffToken.objects.get(pk=token.pk).revoked_at == revoked.revoked_at
    [event] = audit_events_since(seq)
    assert (event.action, event.object_id, event.actor) == (
        "staff_token.revoke",
        str(token.pk),
        analyst.username,
    )
    assert event.after == {
        "prefix": token.prefix,
        "name": "old laptop",
        "expires_at": token.expires_at.isoformat(),
    }
    assert secret not in json.dumps(event.after) and token.digest not in json.dumps(event.after)


def test_revoking_a_revoked_token_is_a_conflict(analyst):
    token, _ = issue(analyst)
    services.staff_token_revoke(actor=analyst, token_id=token.pk)
    seq = last_audit_seq()

    with pytest.raises(Conflict) as refused:
        services.staff_token_revoke(actor=analyst, token_id=str(token.pk))
    assert refused.value.code == "token_revoked"
    assert audit_events_since(seq) == []


@pytest.mark.parametrize("role", ["analyst", "reviewer", "member_admin", "auditor"])
def test_someone_elses_token_is_not_found_not_forbidden(make_user, role):
    owner = make_user("analyst", "owner")
    token, _ = issue(owner)
    other = make_user(role)
    seq = last_audit_seq()

    with pytest.raises(NotFound) as refused:
        services.staff_token_revoke(actor=other, token_id=token.pk)

    # The same answer as for an id that does not exist: nothing says the token is there.
    with pytest.raises(NotFound) as missing:
        services.staff_token_revoke(actor=other, token_id=token.pk + 1000)
    assert refused.value.message == missing.value.message
    assert StaffToken.objects.get(pk=token.pk).revoked_at is None
    assert audit_events_since(seq) == []


@pytest.mark.parametrize("token_id", [0, -3, "abc", None, True, 2**64])
def test_a_token_id_must_be_a_positive_integer(analyst, token_id):
    with pytest.raises(InvalidInput):
        services.staff_token_revoke(actor=analyst, token_id=token_id)


def test_anonymous_and_deactivated_users_cannot_revoke(analyst):
    token, _ = issue(analyst)
    analyst.is_active = False
    analyst.save()

    for actor in (AnonymousUser(), analyst):
        with pytest.raises(PermissionDenied):
            services.staff_token_revoke(actor=actor, token_id=token.pk)
    assert StaffToken.objects.get(pk=token.pk).revoked_at is None


# --- Listing --------------------------------------------------------------------------------


def test_a_users_tokens_are_listed_newest_first_with_their_status(analyst, reviewer):
    expired, _ = issue(analyst, name="expired")
    revoked, _ = issue(analyst, name="revoked")
    revoked_after_expiry, _ = issue(analyst, name="revoked after expiry")
    issue(analyst, name="active")
    issue(reviewer, name="someone else's")
    past = timezone.now() - dt.timedelta(days=1)
    StaffToken.objects.filter(pk__in=[expired.pk, revoked_after_expiry.pk]).update(
        created_at=past - dt.timedelta(days=1), expires_at=past
    )
    for token in (revoked, revoked_after_expiry):
        services.staff_token_revoke(actor=analyst, token_id=token.pk)

    listed = list(selectors.staff_tokens_for(analyst))

    assert [(t.name, t.status) for t in listed] == [
        ("active", StaffTokenStatus.ACTIVE),
        ("revoked", StaffTokenStatus.REVOKED),
        ("revoked after expiry", StaffTokenStatus.REVOKED),
        ("expired", StaffTokenStatus.EXPIRED),
    ]
    assert listed[0].last_used_at is None


def test_a_token_is_expired_from_the_moment_its_expiry_passes(analyst):
    token, _ = issue(analyst, expires_in_days=1)

    [before] = selectors.staff_tokens_for(analyst, now=token.expires_at - dt.timedelta(seconds=1))
    [at] = selectors.staff_tokens_for(analyst, now=token.expires_at)

    assert (before.status, at.status) == (StaffTokenStatus.ACTIVE, StaffTokenStatus.EXPIRED)


def test_a_user_without_tokens_has_an_empty_list(analyst):
    assert list(selectors.staff_tokens_for(analyst)) == []
