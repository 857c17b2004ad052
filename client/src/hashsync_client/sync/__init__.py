"""One sync of every entitled feed, and the ``watch`` loop around it.

Per feed (``docs/sync-api.md``): ask for a plan from the version held (with the ETag of the
last up-to-date answer, so an unchanged feed costs a 304), verify it (``plan``), download
each bundle with its hard size cap and SHA-256 check, apply it in one transaction that only
commits if the resulting state digest is the signed one (``apply``), then ack the version
and digest. A digest mismatch after a delta, or a ``mismatch`` ack, discards the feed's
deltas path and takes the snapshot (once per sync); anything else leaves the feed at the
version it held and is reported, and the next sync starts afresh.

Pacing: the server's ``poll_interval_seconds`` is a floor for ``watch``; 429/503 are retried
after ``Retry-After``; other transient failures back off exponentially with jitter.
"""

from __future__ import annotations

from hashsync_client.sync.backoff import Backoff
from hashsync_client.sync.report import FeedResult, SyncReport
from hashsync_client.sync.syncer import Syncer
from hashsync_client.sync.watch import watch

__all__ = ["Backoff", "FeedResult", "SyncReport", "Syncer", "watch"]
