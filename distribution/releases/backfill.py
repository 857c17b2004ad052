"""Entering manifests signed before the transparency log existed (``manage.py tlog_backfill``)."""

from __future__ import annotations

from django.db import transaction

from audit.services import audit_record
from distribution import keys
from distribution.models import Manifest
from distribution.releases.lock import lock_release_state
from transparency.models import LogLeaf, LogState
from transparency.services import log_append, one_checkpoint


def log_backfill() -> int:
    """Append every manifest not yet in the log, oldest first (by id, the order they were
    signed in), under the release lock. Returns how many were appended; 0 when all are in."""
    with transaction.atomic(), one_checkpoint():  # one checkpoint for all of them
        lock_release_state()
        logged = set(LogLeaf.objects.values_list("manifest_sha256", flat=True))
        missing = [
            m
            for m in Manifest.objects.select_related("feed").order_by("id")
            if m.sha256 not in logged
        ]
        if not missing:
            return 0
        signer = keys.online_signing_key()
        for manifest in missing:
            log_append(
                feed=manifest.feed.name,
                version=manifest.version,
                manifest_sha256=manifest.sha256,
                previous_sha256=manifest.previous_sha256,
                signer=signer,
            )
        size = LogState.objects.get(pk=1).size
        audit_record(
            actor=None,
            action="tlog.backfilled",
            object_type="tlog",
            object_id=size,
            after={"appended": len(missing), "size": size},
            reason="manifests signed before the transparency log existed",
        )
    return len(missing)
