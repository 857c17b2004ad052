"""Log lines as JSON (``HASHSYNC_LOG_FORMAT=json``): one object per line, for a log shipper.

Each line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``
and ``request_id``; during a request also who made it, when that is already known: ``actor``
(a staff username, or a sync client's audit label ``member:<member>/<client>``), ``actor_id``
(the staff user's id) and ``client_id`` (the sync client's id). The actor is taken only once
authentication has run: formatting a line never queries the database.

What goes in is what the code logs, no more: request bodies, query strings, headers and
tokens are never added, and the code never logs hash values (tests/hashsync/test_logs.py
sends a token and a hash through the API and looks for both in the output).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from typing import Any

from django.utils.functional import empty

from hashsync.middleware import current_request, current_request_id


def _actor_fields(request: Any) -> dict[str, Any]:
    # ``request.user`` is lazy until something asks for it (a session load is a query): only
    # an actor someone already resolved is named. DRF sets it on the Django request too.
    user = request.__dict__.get("user")
    if user is None or getattr(user, "_wrapped", None) is empty:
        return {}
    user = getattr(user, "_wrapped", user)
    if not getattr(user, "is_authenticated", False):
        return {}
    client = getattr(user, "client", None)
    if client is not None:  # a member's sync client (sync.auth.MemberPrincipal)
        return {"actor": user.get_username(), "client_id": client.pk}
    return {"actor": user.get_username(), "actor_id": user.pk}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
        }
        request = current_request()
        if request is not None:
            # A half-built request must never cost the log line.
            with contextlib.suppress(Exception):
                entry.update(_actor_fields(request))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
