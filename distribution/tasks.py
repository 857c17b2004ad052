"""Celery tasks of distribution: thin wrappers over ``distribution.releases``.

All are safe to run twice or concurrently: the release lock serialises them, and each returns
early when its work is already done (nothing unreleased, snapshot already built, manifest not
yet due for re-signing).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from distribution import releases, selectors
from hashsync.outages import outage_of

logger = logging.getLogger(__name__)


@shared_task(name="distribution.release_cut", acks_late=True, ignore_result=True)
def release_cut_task() -> None:
    release = releases.release_cut()
    if release is not None:
        # A backlog larger than one cut continues at once rather than at the next beat.
        if selectors.changes_unreleased_exist():
            release_cut_task.delay()
        _snapshots_if_due()


@shared_task(name="distribution.snapshot_build", acks_late=True, ignore_result=True)
def snapshot_build_task(feed_id: int) -> None:
    releases.snapshot_build(feed_id=feed_id)


@shared_task(name="distribution.snapshot_refresh", acks_late=True, ignore_result=True)
def snapshot_refresh_task() -> None:
    _snapshots_if_due(force=True)


@shared_task(name="distribution.manifest_resign", acks_late=True, ignore_result=True)
def manifest_resign_task() -> None:
    releases.manifest_resign()


def _snapshots_if_due(*, force: bool = False) -> None:
    """Queue a snapshot for each feed whose deltas since its last snapshot outweigh a fraction
    of that snapshot (or, with ``force``, any feed whose current version has none)."""
    for feed in selectors.feed_list_published():
        if releases.snapshot_due(feed, force=force):
            snapshot_build_task.delay(feed.pk)


def schedule_release_cut() -> None:
    """After an approval commits: cut a release shortly (approvals within the debounce window
    share one). Enqueued on commit so the worker sees the approved change.

    A broker that is down by then must not fail the approval: it has committed, and an error
    would make the reviewer repeat a change that already happened. The change waits in the
    database (unreleased), and beat's periodic ``release-cut`` (every
    ``HASHSYNC_RELEASE_SWEEP_SECONDS``) cuts it once the broker is back."""

    def send() -> None:
        try:
            release_cut_task.apply_async(countdown=settings.HASHSYNC_RELEASE_DEBOUNCE_SECONDS)
        except Exception as exc:
            if release_cut_task.app.conf.task_always_eager or outage_of(exc) is None:
                raise  # in-process, this is the cut itself failing, not the broker
            logger.warning(
                "Could not send the release cut (%s unavailable: %s); beat's periodic cut "
                "will release the approved changes.",
                outage_of(exc),
                type(exc).__name__,
            )

    transaction.on_commit(send)


def on_changes_waiting(**_: object) -> None:
    """Curation's ``changes_waiting`` hook (connected in ``DistributionConfig.ready``)."""
    schedule_release_cut()
