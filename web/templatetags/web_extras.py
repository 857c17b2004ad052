"""Template helpers of the staff pages: links to pages other areas may not have built yet, and
ages as people say them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

register = template.Library()


@register.simple_tag
def optional_url(name: str, *args: Any) -> str:
    """The URL named ``name`` with ``args``, or "" while no such route exists, so a template
    can offer the link only once the page is there:
    ``{% optional_url "web-proposal" proposal.pk as url %}{% if url %}…{% endif %}``."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.filter
def age(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago ``value`` was, in words ("3 hours, 5 minutes"; "under a minute" rather
    than Django's "0 minutes")."""
    if value is None:
        return ""
    now = now or timezone.now()
    if (now - value).total_seconds() < 60:
        return "under a minute"
    return timesince(value, now)


@register.filter
def until(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long until ``value``, in words ("2 days, 3 hours"; "under a minute"), for expiries;
    "" once it has passed (say "expired … ago" with ``age`` then)."""
    if value is None:
        return ""
    now = now or timezone.now()
    seconds = (value - now).total_seconds()
    if seconds <= 0:
        return ""
    if seconds < 60:
        return "under a minute"
    return timeuntil(value, now)


@register.filter
def size(value: int | None) -> str:
    """A byte count as people read it, with the exact count once they differ:
    "1.2 MB (1,234,567 bytes)"; "840 bytes"."""
    if value is None:
        return ""
    human = filesizeformat(value)
    return human if value < 1024 else f"{human} ({value:,} bytes)"
