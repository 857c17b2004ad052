"""The release lock: one row every publishing transaction locks first."""

from __future__ import annotations

from distribution.models import ReleaseState


def lock_release_state() -> ReleaseState:
    """Take the cutter lock for the rest of the current transaction."""
    state = ReleaseState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        ReleaseState.objects.get_or_create(pk=1)
        state = ReleaseState.objects.select_for_update().get(pk=1)
    return state
