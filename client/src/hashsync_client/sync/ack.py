"""Acknowledging the version held (``docs/sync-api.md``, ``POST sync/feeds/{name}/ack/``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from hashsync_client.errors import BadResponse, ClientError, Interrupted, VerificationError
from hashsync_client.http import JsonResponse, SyncApi
from hashsync_client.store import Store, timestamp

logger = logging.getLogger(__name__)


class AckMismatch(VerificationError):
    code = "ack_mismatch"


def ack_feed(
    store: Store,
    api: SyncApi,
    call: Callable[[str, Callable[[], JsonResponse]], JsonResponse],
    name: str,
    now: datetime,
) -> None:
    """Tell the server the version and digest now held (once per version and digest). An ack
    not delivered is retried at the next sync; a ``mismatch`` answer raises ``AckMismatch``
    (the caller takes the snapshot)."""
    state = store.feed(name)
    assert state is not None
    if state.version == 0:
        return
    if state.acked_version == state.version and state.acked_digest == state.state_digest:
        return
    try:
        response = call(
            f"ack for {name}",
            lambda: api.ack(name, state.version, state.state_digest),
        )
    except ClientError as exc:
        if isinstance(exc, Interrupted):
            raise
        # The list is applied and verified; the ack is retried at the next sync.
        logger.warning("%s: ack not delivered (%s); will retry next sync", name, exc)
        store.update_feed(name, ack_status="failed")
        return
    data = response.data if isinstance(response.data, dict) else {}
    status = data.get("status")
    when = timestamp(now)
    if status == "ok":
        store.update_feed(
            name,
            acked_version=state.version,
            acked_digest=state.state_digest,
            acked_at=when,
            ack_status="ok",
        )
    elif status == "mismatch":
        store.update_feed(name, ack_status="mismatch", acked_at=when)
        raise AckMismatch(
            f"{name}: the server says digest {state.state_digest[:16]}… is not its "
            f"version {state.version}"
        )
    else:
        logger.warning("%s: %s", name, BadResponse("ack: unexpected answer"))
        store.update_feed(name, ack_status="failed")
