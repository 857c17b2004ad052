"""``manage.py audit_verify``: prints the intact chain's head, or exits 1 naming the first bad
event."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tests.audit.tampering import append_only_triggers_off, change_reason
from tests.hashlist.change_tampering import release_a_forged_change

pytestmark = pytest.mark.django_db


# --- The audit_verify command -----------------------------------------------------------------


def test_audit_verify_command_reports_an_intact_chain(history):
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue()
    assert f"{len(history)} events" in out.getvalue()


def test_audit_verify_command_fails_with_status_1_naming_the_altered_event(history):
    with append_only_triggers_off():
        bad = change_reason(history)

    with pytest.raises(CommandError) as failure:
        call_command("audit_verify", stdout=io.StringIO())

    assert failure.value.returncode == 1
    assert f"BROKEN at event #{bad}" in str(failure.value)


def test_audit_verify_command_exits_1_naming_a_released_change_without_its_approval(
    analyst, reviewer
):
    forged = release_a_forged_change(analyst, reviewer)

    with pytest.raises(CommandError) as failure:
        call_command("audit_verify", stdout=io.StringIO())

    assert failure.value.returncode == 1
    message = str(failure.value)
    assert "Audit chain intact" in message and "1 cross-check problem" in message
    named = f"change {forged.change_id} of proposal {forged.proposal.pk}"
    assert f"{named} released in release {forged.release}" in message
