"""A worker killed (SIGKILL) in the middle of a release cut leaves the previous release fully
published; the redelivered task then publishes exactly one release for the changes, and every
object a release references is present (services pass: PostgreSQL, Redis, a real worker)."""

from __future__ import annotations

import base64
import json
import signal

import psycopg
import pytest
from django.db import connection, transaction

from distribution import keys, releases
from distribution.models import Feed, FeedVersion, Manifest, Release
from distribution.storage import bundle_storage
from distribution.tasks import release_cut_task
from hashlist import services
from hashlist.models import Change
from hashsync.roles import ANALYST, REVIEWER
from tests.factories import propose_entry
from tests.utils import wait_for
from tests.workers import celery_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _cuts_only_when_the_test_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("distribution.tasks.schedule_release_cut", lambda: None)


FAST_REDELIVERY = {
    "CELERY_VISIBILITY_TIMEOUT": "3",
    "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    "CELERY_UNACKED_RESTORE_THROTTLE": "1",
}


def _cutter_waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE %s AND pid <> pg_backend_pid()",
            ["%distribution_feed%"],
        )
        return cursor.fetchone()[0] > 0


def test_a_cut_killed_half_way_publishes_nothing_and_the_retry_publishes_once(make_user):
    analyst, reviewer = make_user(ANALYST), make_user(REVIEWER)
    first, second = Feed.objects.create(name="first"), Feed.objects.create(name="second")
    keys.ensure_development_keys()  # before the worker starts: one process makes the keys
    releases.release_cut()
    for _ in range(20):
        services.proposal_approve(actor=reviewer, proposal_id=propose_entry(analyst).pk)
    releases_before = Release.objects.count()

    # Hold the second feed's row: the cutter will publish the first feed, then block on it.
    db = connection.settings_dict
    blocker = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )
    blocker.execute("SELECT id FROM distribution_feed WHERE id = %s FOR UPDATE", [second.pk])

    try:
        with celery_worker(extra_env=FAST_REDELIVERY) as worker:
            release_cut_task.delay()
            wait_for(_cutter_waiting_on_a_lock, what="the cutter to block half-way")
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(timeout=30)
    finally:
        blocker.rollback()
        blocker.close()

    # Half a cut is invisible: no release, no change marked, no new feed version.
    assert Release.objects.count() == releases_before
    assert Change.objects.filter(release__isnull=True).count() == 20
    assert not FeedVersion.objects.filter(version__gt=releases_before).exists()

    # A new worker gets the unacknowledged task back (acks_late) and finishes the job.
    with celery_worker(extra_env=FAST_REDELIVERY, fresh_broker=False):
        wait_for(
            lambda: Release.objects.count() > releases_before,
            timeout=90,
            what="the redelivered cut",
        )

    release = Release.objects.get(version=releases_before + 1)
    assert release.change_count == 20
    assert Release.objects.count() == releases_before + 1
    assert set(Change.objects.values_list("release", flat=True)) == {release.version}
    for feed in (first, second):
        assert FeedVersion.objects.get(feed=feed, version=release.version).delta_sha256
    # Every object any manifest names is in storage, whole.
    for row in Manifest.objects.all():
        manifest = json.loads(base64.b64decode(json.loads(bytes(row.envelope))["payload"]))
        for part in (manifest["delta"], manifest["snapshot"]):
            if part:
                assert bundle_storage().is_intact(part["sha256"], part["size"]), part
    with transaction.atomic():
        assert releases.release_cut() is None
