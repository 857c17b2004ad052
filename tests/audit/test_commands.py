"""``manage.py audit_verify``: prints the intact chain's head, or exits 1 naming the first bad
event."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from distribution import releases
from tests.audit.tampering import append_only_triggers_off, change_reason
from tests.hashlist.change_tampering import (
    approval_triggers_dropped,
    forged_after,
    insert_change_sql,
    pending_hash_addition,
)

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
    entry, pending, md5 = pending_hash_addition(analyst, reviewer)
    release = releases.release_cut()
    assert release is not None
    with approval_triggers_dropped():
        forged = insert_change_sql(
            entry_id=entry.pk,
            proposal_id=pending.pk,
            after=forged_after(entry, md5),
            release=release.version,
        )

    with pytest.raises(CommandError) as failure:
        call_command("audit_verify", stdout=io.StringIO())

    assert failure.value.returncode == 1
    message = str(failure.value)
    assert "Audit chain intact" in message and "1 cross-check problem" in message
    assert f"change {forged} of proposal {pending.pk} released in release {release.version}" in (
        message
    )
