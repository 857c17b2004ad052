"""Reading and verifying what the server says: the feed list and a feed's sync plan.

Two stages, kept apart on purpose, one module each:

1. ``parse``: ``parse_*`` check that the JSON has the shape ``docs/sync-api.md`` gives it
   (types, ranges), or raise ``BadResponse``. Nothing there is trusted yet.
2. ``verify``: ``verify_plan`` runs the checks of "What the client checks" in
   ``docs/sync-api.md``, in its order — keyring chain from the pinned root, the newest manifest
   (signature, expiry, feed, no replay), each step's manifest and how it names the step's
   bundle — or raises ``VerificationError``. The result says exactly which bytes to download
   and which state digest each step must end in.

The feed list is never trusted: it only lets a sync skip asking for a plan.
"""

from __future__ import annotations

from hashsync_client.plan.parse import (
    MAX_POLL_INTERVAL,
    MAX_VERSION,
    STATUSES,
    FeedInfo,
    FeedList,
    RawPlan,
    RawStep,
    parse_feed_list,
    parse_plan,
)
from hashsync_client.plan.verify import (
    TrustedKeyring,
    VerifiedPlan,
    VerifiedStep,
    verify_keyrings,
    verify_plan,
)

__all__ = [
    "MAX_POLL_INTERVAL",
    "MAX_VERSION",
    "STATUSES",
    "FeedInfo",
    "FeedList",
    "RawPlan",
    "RawStep",
    "TrustedKeyring",
    "VerifiedPlan",
    "VerifiedStep",
    "parse_feed_list",
    "parse_plan",
    "verify_keyrings",
    "verify_plan",
]
