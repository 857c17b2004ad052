"""The WSGI application: Django's, with the up-to-date poll answered in front of it.

``PollFront`` hands every request to Django's ``WSGIHandler`` except one that could be an
up-to-date poll (``GET`` of a plan URL with ``If-None-Match``): that one it offers first to
``sync.poll.up_to_date_poll`` — the same function, with the same checks, that
``sync.poll.UpToDatePollMiddleware`` calls inside Django — wrapped only in the middleware
listed before ``UpToDatePollMiddleware`` in ``settings.MIDDLEWARE`` (request id, metrics,
security headers), so the 304 it sends is the middleware's 304 header for header. When the
poll function declines (a refusal, an early poll, a changed plan, bad input, an outage), the
request goes to Django from the start, marked so the middleware does not check it again.

What this skips for a 304, per poll (P4, docs/benchmarks.md): Django's handler (the
``request_started``/``request_finished`` signals, the middleware chain's wrappers, the
response's close), about 0.1 ms of CPU. The database connection is looked after as the
signals' receivers do (``close_old_connections`` before and after).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hashsync.settings")
django_application = get_wsgi_application()

# (Imported after Django is set up: it reads settings and models.)
from sync.poll import PollFront  # noqa: E402

application: Callable[[dict[str, Any], Any], Iterable[bytes]] = PollFront(django_application)
