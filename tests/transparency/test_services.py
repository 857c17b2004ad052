"""The log on the server: every manifest the server signs (cuts, snapshots, re-signings) is a
leaf, in the publishing transaction; the stored tree agrees with the independent RFC 9162
transcription; checkpoints are signed by the online key."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from distribution import keys, releases
from distribution.models import Feed, Manifest
from hashsync_client.tlog import (
    leaf_bytes,
    leaf_hash,
    parse_note,
    verify_consistency,
    verify_inclusion,
    verify_log_signature,
)
from tests import rfc9162
from tests.distribution.releases.conftest import make_feed
from tests.factories import approved_entry
from transparency import selectors, services
from transparency.models import Checkpoint, LogLeaf

pytestmark = pytest.mark.django_db


def _leaves() -> list[bytes]:
    return [
        leaf_bytes(
            feed=row.feed_name,
            version=row.version,
            manifest_sha256=row.manifest_sha256,
            previous_sha256=row.previous_sha256,
        )
        for row in LogLeaf.objects.order_by("index")
    ]


def test_every_manifest_is_a_leaf_in_publication_order(analyst, reviewer, settings):
    make_feed("all")
    make_feed("md5-only", algorithms=["md5"])
    approved_entry(analyst, reviewer)
    releases.release_cut()
    later = timezone.now() + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS - 1)
    assert releases.manifest_resign(now=later)
    manifests = list(Manifest.objects.order_by("id"))
    leaves = list(LogLeaf.objects.order_by("index"))
    assert [leaf.index for leaf in leaves] == list(range(len(manifests)))
    assert [(m.feed.name, m.version, m.sha256, m.previous_sha256) for m in manifests] == [
        (leaf.feed_name, leaf.version, leaf.manifest_sha256, leaf.previous_sha256)
        for leaf in leaves
    ]


def test_the_signed_checkpoint_is_the_rfc_root_of_the_leaves(analyst, reviewer, settings):
    make_feed("all")
    for _ in range(3):
        approved_entry(analyst, reviewer)
        releases.release_cut()
    checkpoint = selectors.checkpoint_latest()
    assert checkpoint is not None
    leaves = _leaves()
    assert checkpoint.size == len(leaves) == Manifest.objects.count()
    assert bytes(checkpoint.root_hash) == rfc9162.mth(leaves)
    note = parse_note(checkpoint.note)
    assert note.checkpoint.origin == settings.HASHSYNC_TLOG_ORIGIN
    assert note.checkpoint.size == checkpoint.size
    signer = keys.online_signing_key()
    assert verify_log_signature(note, [signer.public_key]) == signer.public_key


def test_stored_proofs_match_the_rfc(analyst, reviewer):
    make_feed("all")
    for _ in range(6):
        approved_entry(analyst, reviewer)
        releases.release_cut()
    leaves = _leaves()
    size = len(leaves)
    root = rfc9162.mth(leaves)
    inclusion, consistency = selectors.proofs(
        inclusions=list(range(size)), size=size, consistency_from=3
    )
    for index, proof in inclusion.items():
        assert proof == rfc9162.path(index, leaves)
        verify_inclusion(leaf_hash(leaves[index]), index, size, proof, root)
    assert consistency == rfc9162.proof(3, leaves)
    verify_consistency(3, size, consistency, rfc9162.mth(leaves[:3]), root)


def test_a_publication_that_rolls_back_leaves_no_leaf(analyst, reviewer):
    make_feed("all")
    before = (LogLeaf.objects.count(), Checkpoint.objects.count())
    approved_entry(analyst, reviewer)
    with pytest.raises(RuntimeError), transaction.atomic():
        releases.release_cut()
        assert LogLeaf.objects.count() == before[0] + 1
        raise RuntimeError("the worker dies before commit")
    assert (LogLeaf.objects.count(), Checkpoint.objects.count()) == before


def test_appends_continue_the_tree_after_many_leaves():
    """Hundreds of appends straight through the service: the stored root is the RFC's at every
    size that crosses a power of two."""
    signer = keys.online_signing_key()
    leaves = []
    for i in range(70):
        sha = f"{i:064x}"
        leaves.append(leaf_bytes(feed="f", version=i, manifest_sha256=sha, previous_sha256=""))
        _, checkpoint = services.log_append(
            feed="f", version=i, manifest_sha256=sha, previous_sha256="", signer=signer
        )
        if i + 1 in (1, 2, 3, 4, 5, 8, 9, 16, 17, 33, 64, 70):
            assert bytes(checkpoint.root_hash) == rfc9162.mth(leaves), i


def _feeds(n: int) -> None:
    for i in range(n):
        Feed.objects.create(name=f"feed-{i}", algorithms=["md5"])


def test_a_release_of_many_feeds_signs_one_checkpoint(analyst, reviewer):
    """Four feeds, one release: four leaves, one new checkpoint (over all four), and the
    witnesses are asked once."""
    _feeds(4)
    releases.release_cut()  # the feeds' first publication: one release, four manifests
    assert (LogLeaf.objects.count(), Checkpoint.objects.count()) == (4, 1)
    approved_entry(analyst, reviewer)
    before = Checkpoint.objects.count()
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        releases.release_cut()
    assert LogLeaf.objects.count() == 8
    assert Checkpoint.objects.count() == before + 1
    assert selectors.checkpoint_latest().size == 8
    assert bytes(selectors.checkpoint_latest().root_hash) == rfc9162.mth(_leaves())
    assert len(callbacks) <= 1  # at most one cosigning task (none without witnesses)


def test_the_witnesses_are_asked_once_per_release(analyst, reviewer, settings):
    settings.HASHSYNC_TLOG_WITNESSES = ["http://127.0.0.1:9/add-checkpoint w+00000000+AA=="]
    _feeds(3)
    with TestCase.captureOnCommitCallbacks(execute=False) as callbacks:
        releases.release_cut()
    from transparency.tasks import _enqueue

    assert [c for c in callbacks if c is _enqueue] == [_enqueue]


def test_a_resigning_of_many_feeds_signs_one_checkpoint(settings):
    _feeds(3)
    releases.release_cut()
    later = timezone.now() + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_TTL_HOURS - 1)
    assert len(releases.manifest_resign(now=later)) == 3
    assert list(Checkpoint.objects.values_list("size", flat=True)) == [3, 6]


def test_a_release_with_nothing_to_publish_signs_nothing():
    _feeds(2)
    releases.release_cut()
    assert releases.release_cut() is None
    assert Checkpoint.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_checkpoint_outside_a_transaction_is_refused():
    # Outside the publishing transaction the checkpoint could commit apart from its leaves.
    with (
        pytest.raises(RuntimeError, match="inside the publishing transaction"),
        services.one_checkpoint(),
    ):
        pass  # pragma: no cover


def test_appends_rolled_back_inside_the_release_leave_no_checkpoint_for_them():
    """A savepoint that rolls back its append inside one_checkpoint(): the checkpoint signed at
    the end is of the log as it is, never of a leaf that is gone."""
    signer = keys.online_signing_key()
    with transaction.atomic(), services.one_checkpoint():
        services.log_append(
            feed="f", version=1, manifest_sha256="a" * 64, previous_sha256="", signer=signer
        )
        with pytest.raises(RuntimeError), transaction.atomic():
            services.log_append(
                feed="f", version=2, manifest_sha256="b" * 64, previous_sha256="", signer=signer
            )
            raise RuntimeError("the second feed failed")
    assert list(Checkpoint.objects.values_list("size", flat=True)) == [1]
    with (
        transaction.atomic(),
        services.one_checkpoint(),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.log_append(
            feed="f", version=2, manifest_sha256="c" * 64, previous_sha256="", signer=signer
        )
        raise RuntimeError("the only feed failed")
    assert list(Checkpoint.objects.values_list("size", flat=True)) == [1]
