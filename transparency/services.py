"""Writes to the transparency log: appending a manifest's leaf and signing the checkpoint.

``log_append`` runs inside the transaction that publishes the manifest (distribution's
``manifest_publish``), so a manifest is never served without its leaf, nor a leaf left behind by
a publication that rolled back.
"""

from __future__ import annotations

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


@transaction.atomic
def log_append(
    *, feed: str, version: int, manifest_sha256: str, previous_sha256: str, signer: SigningKey
) -> tuple[LogLeaf, Checkpoint]:
    """Enter one manifest as the log's next leaf and sign the checkpoint of the grown log.

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
