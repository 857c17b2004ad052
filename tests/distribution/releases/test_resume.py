"""After a database restore: every active feed published afresh, as a snapshot, above the
versions members hold — and a client holding a version the restored database never saw
accepts it."""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from distribution import plans, releases, selectors
from distribution.models import Feed, FeedEntry, FeedVersion, Manifest, ReleaseState
from hashsync.errors import Conflict
from hashsync_client.plan.chain import check_chain
from hashsync_client.signing import manifest_sha256
from tests.distribution.releases.conftest import (
    bundle_records,
    latest_manifest,
    make_feed,
    member_digest,
)
from tests.factories import approved_entry, propose_entry

pytestmark = pytest.mark.django_db


def _payload(manifest: Manifest) -> dict:
    return json.loads(base64.b64decode(json.loads(bytes(manifest.envelope))["payload"]))


def _published(analyst, reviewer) -> Feed:
    feed = make_feed()
    for _ in range(2):
        approved_entry(analyst, reviewer)
        releases.release_cut()
    feed.refresh_from_db()
    return feed


def test_every_active_feed_is_published_afresh_above_the_given_version(analyst, reviewer):
    feed = _published(analyst, reviewer)
    idle = Feed.objects.create(name="retired", active=False)
    members_before = set(FeedEntry.objects.filter(feed=feed).values_list("value", "grading"))
    digest_before = member_digest(feed)
    newest_before = selectors.manifest_latest(feed.pk)
    assert newest_before is not None
    pending = approved_entry(analyst, reviewer)  # approved, not yet released

    release = releases.release_resume(above=40)

    assert release.version == 41
    assert ReleaseState.objects.get().last_version == 41
    version = FeedVersion.objects.get(feed=feed, version=41)
    # A snapshot with no delta: a client at any version takes it.
    assert version.snapshot_sha256 and not version.delta_sha256
    manifest = latest_manifest(feed)
    assert manifest["version"] == 41 and manifest["delta"] is None
    assert manifest["snapshot"]["version"] == 41
    # Its manifest goes on from the feed's newest one here.
    assert manifest["previous_manifest_sha256"] == newest_before.sha256
    # The same list, plus the change that was waiting.
    values = {bytes(v) for v, _ in members_before} | {bytes(h.value) for h in pending.hashes.all()}
    rebuilt = {
        bytes(v) for v in FeedEntry.objects.filter(feed=feed).values_list("value", flat=True)
    }
    assert rebuilt == values
    assert len(bundle_records(version.snapshot_sha256)) == len(values)
    assert version.state_digest == member_digest(feed) != digest_before
    assert release.change_count == 1
    assert not FeedVersion.objects.filter(feed=idle).exists()
    event = AuditEvent.objects.get(action="release.resumed")
    assert event.object_id == "41" and event.after == {"above": 40, "feeds": ["all"]}


def test_a_client_holding_a_version_the_restored_database_never_saw_takes_the_snapshot(
    analyst, reviewer
):
    feed = _published(analyst, reviewer)
    restored_newest = selectors.manifest_latest(feed.pk)
    assert restored_newest is not None
    # What a member held before the restore: version 7, whose manifests the backup lacks.
    held = {
        **_payload(restored_newest),
        "version": 7,
        "previous_manifest_sha256": "ab" * 32,
    }
    assert manifest_sha256(held) != restored_newest.sha256
    # Before the resume the server is behind the client: the plan says so (the client keeps its
    # copy and refuses the rollback).
    with pytest.raises(Conflict, match="newest version is"):
        plans.plan_build(feed, 7)

    releases.release_resume(above=7)

    for held_version in (7, 5, restored_newest.version, 0):
        plan = plans.plan_build(feed, held_version)
        assert (plan.version, plan.status) == (8, "snapshot")
        assert [(s.kind, s.to_version) for s in plan.steps] == [("snapshot", 8)], held_version
    newest = _payload(selectors.manifest_latest(feed.pk))
    assert check_chain(feed.name, held, [newest, newest]) == 0
    # A client that held exactly the restored newest version sees a verified link.
    assert check_chain(feed.name, _payload(restored_newest), [newest]) == 1


def test_a_version_below_what_this_database_released_is_refused(analyst, reviewer):
    feed = _published(analyst, reviewer)
    last = ReleaseState.objects.get().last_version
    with pytest.raises(releases.ResumeRefused, match=f"at least {last}"):
        releases.release_resume(above=last - 1)
    assert ReleaseState.objects.get().last_version == last
    assert FeedEntry.objects.filter(feed=feed).exists()  # nothing was undone


def test_the_command_names_its_errors_and_its_release(analyst, reviewer):
    _published(analyst, reviewer)
    with pytest.raises(CommandError, match="0 or more"):
        call_command("release_resume", "--above", "-1")
    with pytest.raises(CommandError, match="below version"):
        call_command("release_resume", "--above", "1")
    out = io.StringIO()
    call_command("release_resume", "--above", "100", stdout=out)
    assert "Release 101" in out.getvalue()


def test_with_no_active_feed_there_is_nothing_to_resume(analyst):
    propose_entry(analyst)
    with pytest.raises(releases.ResumeRefused, match="No active feed"):
        releases.release_resume(above=3)
    assert ReleaseState.objects.filter(last_version=3).count() == 0
