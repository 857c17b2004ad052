"""The Django admin: what a superuser changes there about people, roles and lockouts is on
the audit trail (field names, never values), and second-factor devices cannot be edited
there at all (that is ``second_factor_reset``'s job, which also revokes tokens)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.admin import changed_fields
from audit.models import AuditEvent
from hashsync.roles import AUDITOR, REVIEWER, ensure_roles
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db

PASSWORD_HASH_PREFIXES = ("pbkdf2_", "argon2", "bcrypt", "scrypt")


@pytest.fixture
def superuser_client(client: Client) -> tuple[Client, Any]:
    root = get_user_model().objects.create_superuser("admin-1", password="synthetic-1-Aa")
    return signed_in(client, root), root


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_changing_a_persons_role_and_activity_is_on_the_trail_by_field_name(
    superuser_client: tuple[Client, Any], make_user: Any
) -> None:
    client, root = superuser_client
    person = make_user(AUDITOR, "auditor-7")
    ensure_roles()
    reviewer_group = Group.objects.get(name=REVIEWER)
    page = client.get(f"/admin/auth/user/{person.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list)}
    data.update(
        username=person.username,
        is_active="",  # a leaver
        groups=[str(reviewer_group.pk)],
        last_login_0="",
        last_login_1="",
        date_joined_0="2026-12-01",
        date_joined_1="10:00:00",
    )
    data.pop("password", None)
    data.pop("user_permissions", None)
    posted = client.post(f"/admin/auth/user/{person.pk}/change/", data)
    assert posted.status_code == 302, posted.content[:2000]

    person.refresh_from_db()
    assert not person.is_active and list(person.groups.values_list("name", flat=True)) == [REVIEWER]
    (event,) = _events("admin.change")
    assert event.actor == root.username and event.object_type == "auth.user"
    assert event.object_id == str(person.pk)
    after = event.after
    assert after is not None
    # The admin names fields by their labels.
    assert {"Active", "Groups"} <= set(after["fields"])
    assert after["via"] == "django_admin"
    assert not any(p in str(after) for p in PASSWORD_HASH_PREFIXES)


def test_adding_and_deleting_a_group_are_on_the_trail(
    superuser_client: tuple[Client, Any],
) -> None:
    client, _ = superuser_client
    added = client.post("/admin/auth/group/add/", {"name": "night-shift"})
    assert added.status_code == 302
    group = Group.objects.get(name="night-shift")
    (add,) = _events("admin.add")
    assert (add.object_type, add.object_id) == ("auth.group", str(group.pk))

    deleted = client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    (delete,) = _events("admin.delete")
    assert (delete.object_type, delete.object_id) == ("auth.group", str(group.pk))
    assert not Group.objects.filter(name="night-shift").exists()


def test_bulk_deletion_records_each_object(superuser_client: tuple[Client, Any]) -> None:
    client, _ = superuser_client
    groups = [Group.objects.create(name=f"temporary-{i}") for i in range(3)]
    posted = client.post(
        "/admin/auth/group/",
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )
    assert posted.status_code == 302
    assert sorted(e.object_id for e in _events("admin.delete")) == sorted(str(g.pk) for g in groups)


def test_second_factor_devices_are_listed_but_cannot_be_edited_or_deleted(
    superuser_client: tuple[Client, Any], make_user: Any
) -> None:
    client, _ = superuser_client
    person = make_user(REVIEWER, "reviewer-9")
    device = TOTPDevice.objects.create(user=person, name="phone", confirmed=True)
    codes = StaticDevice.objects.create(user=person, name="backup", confirmed=True)

    assert client.get("/admin/otp_totp/totpdevice/").status_code == 200
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    assert (
        client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert (
        client.post(
            f"/admin/otp_static/staticdevice/{codes.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    bulk = client.post(
        "/admin/otp_totp/totpdevice/",
        {"action": "delete_selected", "_selected_action": [device.pk], "post": "yes"},
    )
    assert bulk.status_code == 200  # the action is not offered: the list comes back unchanged
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert StaticDevice.objects.filter(pk=codes.pk).exists()
    assert not _events("admin.delete")


def test_staff_who_are_not_superusers_do_not_reach_the_admin(
    client: Client, make_user: Any
) -> None:
    auditor = make_user(AUDITOR, "auditor-8")
    answered = signed_in(client, auditor).get("/admin/auth/user/")
    assert answered.status_code == 302 and "/admin/login/" in answered["Location"]


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        ([{"changed": {"fields": ["is_active", "Groups"]}}], ["Groups", "is_active"]),
        ([{"added": {}}], []),
        ([{"added": {"name": "membership", "object": "x"}}], ["membership"]),
        ("Changed nothing.", []),
        ([], []),
    ],
)
def test_changed_fields_names_fields_only(message: Any, fields: list[str]) -> None:
    assert changed_fields(message) == fields
