"""Writes to the transparency log: appending a manifest's leaf and signing the checkpoint.

``log_append`` runs inside the transaction that publishes the manifest (distribution's
``manifest_publish``), so a manifest is never served without its leaf, nor a leaf left behind by
a publication that rolled back.

A release publishes one manifest per feed; its transaction runs inside ``one_checkpoint()``, so
the F appends of an F-feed release are covered by one checkpoint, signed after the last of them
and before the transaction commits (a plan never sees a leaf without a signed checkpoint that
covers it), and the witnesses are asked once, after commit. An append outside
``one_checkpoint()`` signs its own checkpoint at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction

from hashsync_client.signing import SigningKey
from hashsync_client.tlog import (
    Checkpoint as CheckpointBody,
)
from hashsync_client.tlog import (
    append_nodes,
    leaf_bytes,
    leaf_hash,
    root_hash,
    sign_checkpoint,
)
from transparency.models import Checkpoint, LogLeaf, LogNode, LogState
from transparency.selectors import DatabaseNodes, node_key
from transparency.tasks import schedule_cosign


def _lock_log() -> LogState:
    state = LogState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        LogState.objects.get_or_create(pk=1)
        state = LogState.objects.select_for_update().get(pk=1)
    return state


class _Pending(threading.local):
    """Per thread (so per database connection): how deep in ``one_checkpoint()`` we are, and
    the key the appends since its start were signed for (None: nothing appended)."""

    depth = 0
    signer: SigningKey | None = None


_pending = _Pending()


@contextmanager
def one_checkpoint() -> Iterator[None]:
    """Within it, ``log_append`` defers the checkpoint; on leaving the outermost one without an
    exception, one checkpoint is signed for the log as it is then (if it grew) and the
    witnesses are asked once after commit. Use it inside the publishing transaction, wrapping
    every append of the release, so the checkpoint commits with the leaves."""
    if _pending.depth == 0 and not transaction.get_connection().in_atomic_block:
        raise RuntimeError("one_checkpoint() must run inside the publishing transaction")
    _pending.depth += 1
    try:
        yield
    except BaseException:
        if _pending.depth == 1:
            _pending.signer = None  # the transaction rolls the leaves back
        raise
    else:
        if _pending.depth == 1 and _pending.signer is not None:
            signer, _pending.signer = _pending.signer, None
            _sign_if_grown(signer)
    finally:
        _pending.depth -= 1


def _sign_if_grown(signer: SigningKey) -> Checkpoint | None:
    # Leaves appended in a savepoint that rolled back are gone, and the size with them.
    state = _lock_log()
    latest = Checkpoint.objects.order_by("-size").values_list("size", flat=True).first()
    if state.size == 0 or state.size == latest:
        return None
    checkpoint = checkpoint_sign(size=state.size, signer=signer)
    schedule_cosign()
    return checkpoint


@transaction.atomic
def log_append(
    *, feed: str, version: int, manifest_sha256: str, previous_sha256: str, signer: SigningKey
) -> tuple[LogLeaf, Checkpoint | None]:
    """Enter one manifest as the log's next leaf and, outside ``one_checkpoint()``, sign the
    checkpoint of the grown log (inside it: None, the checkpoint comes at its end).

    The ``LogState`` row lock serialises appends (callers already hold the release lock; this
    one keeps the log linear whoever calls). Costs O(log n): the completed subtrees' left
    siblings are read with one query, then the new nodes and the root's subtrees."""
    state = _lock_log()
    index = state.size
    data = leaf_bytes(
        feed=feed,
        version=version,
        manifest_sha256=manifest_sha256,
        previous_sha256=previous_sha256,
    )
    reader = DatabaseNodes()
    created = append_nodes(index, leaf_hash(data), reader)
    LogNode.objects.bulk_create([LogNode(key=node_key(n), hash=h) for n, h in created])
    reader.cache.update(created)
    leaf = LogLeaf.objects.create(
        index=index,
        feed_name=feed,
        version=version,
        manifest_sha256=manifest_sha256,
        previous_sha256=previous_sha256,
    )
    state.size = index + 1
    state.save(update_fields=["size"])
    if _pending.depth:
        _pending.signer = signer
        return leaf, None
    checkpoint = checkpoint_sign(size=state.size, signer=signer, reader=reader)
    schedule_cosign()  # witnesses are asked after commit, for the newest checkpoint then
    return leaf, checkpoint


def checkpoint_sign(
    *, size: int, signer: SigningKey, reader: DatabaseNodes | None = None
) -> Checkpoint:
    root = root_hash(size, reader or DatabaseNodes())
    body = CheckpointBody(settings.HASHSYNC_TLOG_ORIGIN, size, root)
    note = sign_checkpoint(body, signer)
    return Checkpoint.objects.create(size=size, root_hash=root, note=note)
