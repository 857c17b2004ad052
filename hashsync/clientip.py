"""The address a request came from, as failure counters and lockouts count it."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def client_ip(request: Any) -> str:
    """``HASHSYNC_CLIENT_IP_HEADER`` behind a proxy, else REMOTE_ADDR. An IPv6 address counts
    as its /64: one host usually holds a whole /64, and could otherwise rotate through it.
    Works for Django and DRF requests (both carry ``META``)."""
    header = settings.HASHSYNC_CLIENT_IP_HEADER
    value = request.META.get(header, "") if header else ""
    text = (value or request.META.get("REMOTE_ADDR", "") or "unknown").strip()[:64]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return text
