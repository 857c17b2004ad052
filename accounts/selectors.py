"""Reads for staff accounts: personal API tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Case, CharField, QuerySet, Value, When
from django.utils import timezone

from accounts.models import StaffToken, StaffTokenStatus


def staff_tokens_for(user: Any, *, now: dt.datetime | None = None) -> QuerySet[StaffToken]:
    """``user``'s tokens, newest first, each with ``status`` (a ``StaffTokenStatus``): revoked
    wins over expired, so a token revoked before it expired says so for ever."""
    now = now or timezone.now()
    return (
        StaffToken.objects.filter(user=user)
        .annotate(
            status=Case(
                When(revoked_at__isnull=False, then=Value(StaffTokenStatus.REVOKED)),
                When(expires_at__lte=now, then=Value(StaffTokenStatus.EXPIRED)),
                default=Value(StaffTokenStatus.ACTIVE),
                output_field=CharField(),
            )
        )
        .order_by("-created_at", "-pk")
    )
