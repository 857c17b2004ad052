"""The demo's history (``seed_demo`` on an empty database): weeks of it, dated in the past
through the services themselves, with the audit chain intact and in time order — on SQLite and
on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import statistics

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from audit.verify import verify_chain
from distribution.models import Feed, Manifest, Release
from hashlist import services
from hashlist.models import Change, ChangeKind, Entry, Proposal, ProposalStatus
from hashsync.management.commands._demo_clock import demo_clock
from hashsync.management.commands._demo_history import last_tuesday
from members.holders import hash_holders
from members.models import Ack, ApiToken, Feedback, Holding, Licence, Member, SyncClient

pytestmark = pytest.mark.django_db

ENTRIES = 40  # a small history: quick to seed, and every part of the story still happens


def test_last_tuesday_is_one_to_seven_days_back_whatever_today_is():
    monday = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    for offset in range(7):
        today = monday + dt.timedelta(days=offset)
        tuesday = last_tuesday(today)
        assert tuesday.weekday() == 1
        assert 1 <= (today.date() - tuesday).days <= 7


def test_demo_clock_moves_timezone_now_only_forward_and_puts_it_back():
    real = timezone.now
    start = timezone.now() - dt.timedelta(days=30)
    with demo_clock(start) as clock:
        assert abs(timezone.now() - start) < dt.timedelta(seconds=5)
        later = start + dt.timedelta(days=2)
        assert clock.at(later) >= later
        # Never backwards: the audit trail's times must not decrease.
        assert clock.at(start) >= later
        with transaction.atomic():
            event = audit_record(actor=None, action="demo.test", object_type="test")
        assert later <= event.at < later + dt.timedelta(seconds=5)
    assert timezone.now is real


def test_demo_clock_gives_the_real_clock_back_after_an_error():
    real = timezone.now
    with pytest.raises(RuntimeError), demo_clock(timezone.now() - dt.timedelta(days=1)):
        raise RuntimeError("boom")
    assert timezone.now is real


def test_demo_clock_refuses_to_start_in_the_future():
    with (
        pytest.raises(ValueError, match="future"),
        demo_clock(timezone.now() + dt.timedelta(days=1)),
    ):
        pass


def _seed(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", entries=ENTRIES, pending=3)


def _assert_the_story(capsys):
    now = timezone.now()
    # The chain is intact, written in time order, all of it in the past.
    call_command("audit_verify")
    assert "Audit chain intact" in capsys.readouterr().out
    assert verify_chain().ok
    times = list(AuditEvent.objects.order_by("seq").values_list("at", flat=True))
    assert times == sorted(times)
    assert times[0] < now - dt.timedelta(weeks=7) and times[-1] <= now

    # Releases cut along the way over at least six weeks, each with its audit event at its time.
    cut = list(Release.objects.order_by("version").values_list("created_at", flat=True))
    assert len(cut) >= 15
    assert cut[-1] - cut[0] >= dt.timedelta(weeks=6)
    weeks = {(t.isocalendar().year, t.isocalendar().week) for t in cut}
    assert len(weeks) >= 6
    first = AuditEvent.objects.filter(action="release.cut").order_by("seq").first()
    assert first is not None and abs(first.at - cut[0]) < dt.timedelta(seconds=5)
    # Every feed ends with a signed manifest that has not expired.
    for feed in Feed.objects.all():
        latest = Manifest.objects.filter(feed=feed).order_by("-id").first()
        assert latest is not None and latest.expires_at > now + dt.timedelta(hours=24)
        assert latest.issued_at <= now

    # Curation: two analysts and two reviewers, hours-to-days turnaround, never four-eyes broken.
    decided = Proposal.objects.exclude(status=ProposalStatus.PENDING)
    assert all(p.author_id != p.reviewer_id for p in decided)
    assert len({p.author_id for p in decided}) >= 2 and len({p.reviewer_id for p in decided}) >= 2
    waits = [(p.reviewed_at - p.created_at).total_seconds() / 3600 for p in decided]
    assert min(waits) > 0.5 and max(waits) > 24 and 1 < statistics.median(waits) < 72
    assert Proposal.objects.filter(status=ProposalStatus.REJECTED).exists()
    assert Proposal.objects.filter(status=ProposalStatus.PENDING).count() == 3
    assert Entry.objects.filter(source="synthetic-demo").count() == ENTRIES
    kinds = set(Change.objects.values_list("kind", flat=True))
    assert {ChangeKind.CREATE, ChangeKind.REGRADE, ChangeKind.RETRACT} <= kinds

    # Last Tuesday's retraction (of the entry a member's upheld dispute named), released then.
    tuesday = last_tuesday(now)
    upheld = Feedback.objects.get(status="upheld")
    retraction = Change.objects.get(kind=ChangeKind.RETRACT, entry=upheld.entry)
    assert retraction.proposal.reviewed_at.date() == tuesday
    assert retraction.release is not None
    released_at = Release.objects.get(version=retraction.release).created_at
    assert released_at.date() == tuesday

    # The fleet: current, one release behind, a day behind, stuck before the retraction,
    # a digest mismatch, never acknowledged; all from acks the sync services recorded.
    everything = Feed.objects.get(name="all")
    category_a = Feed.objects.get(name="md5-sha1-category-a")
    current = Holding.objects.filter(feed=everything, version=everything.version)
    assert current.filter(digest_matches=True).exists()
    behind = Holding.objects.get(client__name="edge-b", feed=category_a)
    assert behind.version < category_a.version
    day_behind = Holding.objects.get(client__name="sync-eu", feed=category_a)
    assert day_behind.version < category_a.version
    assert now - day_behind.acked_at > dt.timedelta(hours=24)
    stuck = SyncClient.objects.get(name="indexer")
    latest_ack = Ack.objects.filter(client=stuck, feed=everything).order_by("-acked_at").first()
    assert latest_ack is not None and latest_ack.version < retraction.release
    assert now - latest_ack.acked_at < dt.timedelta(hours=12)  # seen lately, still behind
    assert SyncClient.objects.filter(
        digest_mismatch_at__isnull=False, holdings__digest_matches=False
    ).exists()
    assert SyncClient.objects.filter(acks__isnull=True, member__name="lumen-social").exists()
    # Hash-holders names the stuck client as still holding the retracted hash, on evidence.
    md5 = retraction.entry.hashes.get(algorithm="md5")
    holders = hash_holders(algorithm="md5", value=bytes(md5.value), at=now)["holders"]
    still = [h for h in holders if h["client"] == "indexer" and h["feed"] == "all"]
    assert still and still[0]["state_at_time"] == "held"
    assert still[0]["evidence"] == "bundles_served"

    # Members: a suspended one (whose client stopped then), an expired PhotoDNA licence,
    # an open dispute and a resolved one.
    suspended = Member.objects.get(status="suspended")
    assert suspended.suspended_at is not None
    assert not Ack.objects.filter(
        client__member=suspended, acked_at__gt=suspended.suspended_at
    ).exists()
    reinstated = AuditEvent.objects.get(action="member.reinstate")
    assert AuditEvent.objects.filter(
        action="member.suspend", object_id=reinstated.object_id, seq__lt=reinstated.seq
    ).exists()
    assert Licence.objects.filter(valid_until__lt=now).exists()
    assert Licence.objects.filter(valid_until__gt=now).exists()
    assert Feedback.objects.filter(status="open").count() == 1
    assert 5 <= Member.objects.count() <= 7
    # A replaced token: revoked, last used before it was, its successor used since.
    revoked = ApiToken.objects.get(revoked_at__isnull=False)
    assert revoked.last_used_at is not None and revoked.last_used_at <= revoked.revoked_at
    successor = ApiToken.objects.get(client=revoked.client, revoked_at__isnull=True)
    assert successor.expires_at is not None and successor.last_used_at > revoked.revoked_at


def _counts():
    return {
        model.__name__: model.objects.count()
        for model in (AuditEvent, Release, Manifest, Ack, Member, Entry, Proposal, Feedback)
    }


def test_seed_demo_writes_weeks_of_history_with_an_intact_chain(settings, tmp_path, capsys):
    _seed(settings, tmp_path)
    _assert_the_story(capsys)


def test_seeding_twice_changes_nothing(settings, tmp_path):
    _seed(settings, tmp_path)
    before, logins = _counts(), (tmp_path / "demo-logins.json").read_text()
    call_command("seed_demo", entries=ENTRIES, pending=3)
    assert _counts() == before
    assert (tmp_path / "demo-logins.json").read_text() == logins


def test_seed_demo_refuses_to_write_history_behind_existing_audit_events(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    with transaction.atomic():
        audit_record(actor=None, action="demo.test", object_type="test")
    with pytest.raises(CommandError, match="must come before them"):
        call_command("seed_demo", entries=ENTRIES)
    assert not Entry.objects.exists()
    assert AuditEvent.objects.count() == 1


def test_seed_demo_refuses_too_small_a_history(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match="at least"):
        call_command("seed_demo", entries=3)


@pytest.mark.postgres
def test_seed_demo_history_on_postgresql(settings, tmp_path, capsys):
    _seed(settings, tmp_path)
    _assert_the_story(capsys)
    # Written in order, never rewritten: the append-only trigger still refuses an update.
    event = AuditEvent.objects.order_by("seq").first()
    assert event is not None
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")


def test_after_seeding_an_approval_is_released_again_by_itself(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    # The seeder cuts the history's releases itself; afterwards the approvals' own release
    # request is connected again, so the README's "approve, see the release" still works.
    _seed(settings, tmp_path)
    waiting = Proposal.objects.filter(status=ProposalStatus.PENDING, kind="create").first()
    assert waiting is not None
    reviewer = get_user_model().objects.get(username="reviewer")
    before = Release.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        services.proposal_approve(actor=reviewer, proposal_id=waiting.pk)
    assert Release.objects.count() == before + 1
