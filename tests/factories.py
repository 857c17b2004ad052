"""Builders that go through the services, so test data obeys the same rules as real data."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.policy import SECOND_FACTOR_ROLES
from accounts.second_factor import TOTP_NAME
from hashlist import services
from hashlist.framework_store import ensure_frameworks
from hashlist.models import Entry, ImportBatch, ImportRowError, Proposal
from hashsync.roles import ensure_roles
from tests.conftest import synthetic

GRADING = {"category": "A", "age_group": "7-10", "content_type": "image"}


def propose_entry(
    author: Any, *, hashes: list[dict[str, str]] | None = None, **grading: Any
) -> Proposal:
    return services.proposal_create_entry(
        actor=author,
        grading={**GRADING, **grading},
        hashes=hashes or [{"algorithm": "md5", "value": synthetic("md5")}],
        source="synthetic-test",
    )


def approved_entry(author: Any, reviewer: Any, **kwargs: Any) -> Entry:
    proposal = propose_entry(author, **kwargs)
    services.proposal_approve(actor=reviewer, proposal_id=proposal.pk)
    proposal.refresh_from_db()
    assert proposal.entry is not None
    return proposal.entry


def invalid_import_batch(uploader: Any) -> ImportBatch:
    """An import that failed validation with one row error (no file is read)."""
    batch = ImportBatch.objects.create(
        uploaded_by=uploader,
        file="imports/synthetic.csv",
        original_name="synthetic.csv",
        format="csv",
        size=100,
        sha256="0" * 64,
        status="invalid",
        error_count=1,
    )
    ImportRowError.objects.create(batch=batch, line=2, message="category is required")
    return batch


def member_with_token(
    admin: Any,
    *,
    name: str = "acme",
    feeds: tuple[str, ...] = (),
    scopes: tuple[str, ...] = ("sync", "lookup", "feedback"),
    client: str = "edge-1",
    photodna: bool = False,
) -> tuple[Any, str]:
    """A member entitled to ``feeds`` with one sync client and a token: (member, token)."""
    from members import services as member_services

    member = member_services.member_create(actor=admin, name=name, display_name=name.title())
    if photodna:
        member_services.licence_grant(actor=admin, member_name=name, kind="photodna")
    for feed in feeds:
        member_services.entitlement_grant(actor=admin, member_name=name, feed=feed)
    member_services.client_create(actor=admin, member_name=name, name=client)
    _, token = member_services.token_create(
        actor=admin, member_name=name, client_name=client, scopes=list(scopes)
    )
    return member, token


_staff_numbers = itertools.count(1)


def staff_user(
    role: str | None, *, username: str | None = None, second_factor: bool | None = None
) -> Any:
    """A staff user in ``role`` (None: signed in, but no role) who can sign in through the pages:
    the password is in ``user.plain_password``. Reviewers, member administrators and auditors
    get a confirmed TOTP device, as their role requires; ``second_factor`` decides otherwise."""
    password = secrets.token_urlsafe(16)
    user: Any = get_user_model().objects.create_user(
        username=username or f"{role or 'no-role'}-{next(_staff_numbers)}", password=password
    )
    user.plain_password = password
    if role:
        if not Group.objects.filter(name=role).exists():
            ensure_roles()  # groups are flushed between transactional tests
            ensure_frameworks()  # and so are the frameworks the migration seeded
        user.groups.add(Group.objects.get(name=role))
    if second_factor is None:
        second_factor = role in SECOND_FACTOR_ROLES
    if second_factor:
        TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=True)
    return user
