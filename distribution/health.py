"""Publication's readiness checks (``hashsync.health``), registered by ``DistributionConfig``:
bundle storage takes a write, the online signing key is loadable and valid in the keyring, and
no published feed's newest manifest is near expiry (members refuse an expired one)."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone

from distribution import keys, selectors
from hashsync.errors import DomainError
from hashsync.health import CheckFailed, register


@register("bundle_storage")
def check_bundle_storage() -> str:
    """Write, read back and delete a probe object: a full disk or a read-only mount fails the
    write, a bucket without the right permissions fails one of the three."""
    storage = storages["bundles"]
    probe = b"hashsync readiness probe\n"
    name = storage.save(f"readyz/probe-{uuid.uuid4().hex}", ContentFile(probe))
    try:
        with storage.open(name, "rb") as handle:
            if handle.read() != probe:
                raise CheckFailed("the probe object read back differs from what was written")
    finally:
        storage.delete(name)
    return "ok"


@register("signing_key")
def check_signing_key() -> str:
    try:
        key = keys.online_signing_key()
    except DomainError as exc:
        # SigningUnavailable's messages name the key's state and the command that fixes it,
        # never key material; the configured path is the operator's own, not a secret.
        raise CheckFailed(exc.message) from None
    return f"key {key.keyid[:16]} valid in the current keyring"


@register("manifests")
def check_manifests() -> str:
    """Fails while any published feed's newest manifest expires within
    ``HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS``: beat's re-signing (which starts
    ``HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS`` before expiry) has not been running."""
    horizon = timezone.now() + dt.timedelta(hours=settings.HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS)
    expiring = selectors.feeds_with_manifest_expiring_before(horizon)
    if expiring:
        shown = ", ".join(expiring[:10]) + (" …" if len(expiring) > 10 else "")
        raise CheckFailed(
            f"{len(expiring)} feed(s) with a manifest expiring within "
            f"{settings.HASHSYNC_MANIFEST_EXPIRY_ALERT_HOURS} h: {shown}; is beat running "
            "distribution.manifest_resign?"
        )
    return "ok"
