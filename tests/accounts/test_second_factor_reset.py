"""``manage.py second_factor_reset``: an administrator's audited reset for a lost phone and lost
recovery codes."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.policy import has_second_factor
from tests.factories import staff_user
from tests.utils import audit_events_since, last_audit_seq


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_superuser("admin-1", password="synthetic-1-Aa")


def _reset(*args: str) -> str:
    out = StringIO()
    call_command("second_factor_reset", *args, stdout=out)
    return out.getvalue()


def test_the_reset_deletes_the_devices_revokes_tokens_and_is_audited(admin):
    reviewer = staff_user("reviewer")
    StaticDevice.objects.create(user=reviewer, name="backup", confirmed=True)
    token, _ = services.staff_token_create(actor=reviewer, name="laptop")
    since = last_audit_seq()

    out = _reset(reviewer.username, "--by", admin.username, "--reason", "ticket 4711")

    assert "1 API token revoked" in out
    assert not TOTPDevice.objects.filter(user=reviewer).exists()
    assert not StaticDevice.objects.filter(user=reviewer).exists()
    assert not has_second_factor(reviewer)
    token.refresh_from_db()
    assert token.revoked_at is not None
    events = audit_events_since(since)
    assert [e.action for e in events] == ["staff_token.revoke", "staff.second_factor_reset"]
    assert all(e.actor == admin.username for e in events)
    assert events[0].after["reason"] == "second_factor_reset"
    assert events[1].object_id == reviewer.username
    assert events[1].after == {"reason": "ticket 4711", "devices_deleted": 2, "tokens_revoked": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "--by", "admin-1", "--reason", "x"], "There is no user named 'nobody'"),
        (["{reviewer}", "--by", "nobody", "--reason", "x"], "--by: there is no user named"),
        (["{reviewer}", "--by", "{analyst}", "--reason", "x"], "Only an active superuser"),
        (["{reviewer}", "--by", "admin-1", "--reason", "  "], "reason is required"),
        (["admin-1", "--by", "admin-1", "--reason", "x"], "cannot reset your own"),
    ],
)
def test_refusals_change_nothing(admin, args, message):
    reviewer, analyst = staff_user("reviewer"), staff_user("analyst")
    names = {"reviewer": reviewer.username, "analyst": analyst.username}
    since = last_audit_seq()

    with pytest.raises(CommandError, match=message):
        _reset(*[arg.format(**names) for arg in args])

    assert TOTPDevice.objects.filter(user=reviewer).exists()
    assert not audit_events_since(since)
