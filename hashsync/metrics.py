"""Prometheus metrics: the counters the request path increments, the collectors that read the
database at scrape time, and ``/metrics`` itself (prometheus-client).

Two kinds of metric, kept apart on purpose:

* **Events counted where they happen** (requests and their latency, 429s, bad tokens, bundle
  bytes served): module-level ``Counter``/``Histogram`` objects below, incremented by the code
  that sees the event. Under gunicorn each worker process has its own values; with
  ``PROMETHEUS_MULTIPROC_DIR`` set (deploy/) prometheus-client keeps them in files there and
  ``/metrics`` sums every worker's (a dead worker's files are marked by the ``child_exit`` hook
  in deploy/gunicorn.conf.py).
* **State read at scrape time** (member lag, review queue, import backlog, releases, the audit
  chain and its last verification): the database is the truth, shared by every node and every
  worker, so these are computed when Prometheus asks, by collectors the apps register with
  ``register_collector`` from their ``AppConfig.ready`` (this module imports no app). Each one
  costs a few aggregate queries per scrape (docs/operations.md, Monitoring), not per request.

Labels never carry a hash value, a token, a path or anything a member sent: requests are
labelled by the URL pattern's name, never the raw path.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from hashsync.api import error_body

log = logging.getLogger(__name__)

# --- Counted where they happen ---------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "hashsync_http_requests",
    "HTTP requests answered, by URL pattern name and status class (2xx, 4xx, ...).",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "hashsync_http_request_duration_seconds",
    "Time from the request entering the application to its response leaving it, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RATE_LIMITED = Counter(
    "hashsync_rate_limited",
    "Requests refused with 429, by reason (poll_too_soon, rate_limited, too_many_failures).",
    ["reason"],
)
BAD_TOKENS = Counter(
    "hashsync_bad_tokens",
    "API tokens refused as malformed or unknown (member and staff tokens), counted against "
    "the client address's bad-token budget.",
)
BUNDLE_BYTES_SERVED = Counter(
    "hashsync_bundle_bytes_served",
    "Bytes of bundles handed to members: streamed by the app, or redirected to object storage.",
    ["via"],
)
BUNDLES_SERVED = Counter(
    "hashsync_bundles_served", "Bundle downloads answered to members.", ["via"]
)

# What /metrics reports as the route of a request no URL pattern matched (probes of random
# paths must not create a label per path).
UNMATCHED = "unmatched"
# Django accepts any method name; anything else is "other", so a client cannot create series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request: HttpRequest) -> str:
    """The URL pattern's name (or its route when it has none); never the path itself."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.view_name or match.route or UNMATCHED


class MetricsMiddleware:
    """Counts every response by route and status class and observes its latency. Outermost
    but for the request id, so time spent in the other middleware counts too. Costs a few
    microseconds a request (bench/metrics_middleware.py, docs/operations.md)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        route = route_of(request)
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)
        method = request.method if request.method in METHODS else "other"
        HTTP_REQUESTS.labels(route, method, f"{response.status_code // 100}xx").inc()
        return response


# --- Read at scrape time ---------------------------------------------------------------------

_collectors: list[Collector] = []


def register_collector(collector: Collector) -> None:
    """Add a collector that reads its values at scrape time (an app's ``metrics`` module,
    from its ``AppConfig.ready``). Registering the same class again replaces it."""
    _collectors[:] = [c for c in _collectors if type(c) is not type(collector)]
    _collectors.append(collector)


class _ScrapeTime:
    """Every registered scrape-time collector; one that fails (a database outage) is left
    out, so the request counters are still served, and ``hashsync_metrics_collector_ok``
    says which failed. Logged by exception class only: driver messages may name hosts."""

    def collect(self) -> Iterator[Metric]:
        ok = gauge_family(
            "hashsync_metrics_collector_ok",
            "1 when the scrape-time collector read its figures, 0 when it failed this scrape.",
            ["collector"],
        )
        for collector in list(_collectors):
            name = type(collector).__name__
            try:
                families = list(collector.collect())
            except Exception as exc:
                log.warning("metrics collector %s failed: %s", name, type(exc).__name__)
                ok.add_metric([name], 0.0)
                continue
            ok.add_metric([name], 1.0)
            yield from families
        yield ok


def _event_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def exposition() -> bytes:
    """The text exposition of every metric: the counters (of every worker, in multiprocess
    mode) followed by the scrape-time collectors."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_ScrapeTime())
    return generate_latest(_event_registry()) + generate_latest(scrape)


def _authorized(request: HttpRequest, token: str) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, presented = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )


@require_safe
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``/metrics``. With ``HASHSYNC_METRICS_TOKEN`` set it needs ``Authorization: Bearer
    <token>`` (compared in constant time; 401 otherwise). In production without the setting
    there are no metrics at all (404): member names and queue sizes are not public."""
    token = settings.HASHSYNC_METRICS_TOKEN
    if token is None:
        if settings.PRODUCTION:
            raise Http404
    elif not _authorized(request, token):
        return JsonResponse(
            error_body(
                "authentication_failed",
                "The metrics need Authorization: Bearer with the configured metrics token.",
            ),
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="hashsync-metrics"'},
        )
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def gauge_family(
    name: str, documentation: str, labels: Iterable[str] = ()
) -> Any:  # GaugeMetricFamily, typed loosely: prometheus-client's stubs are partial
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, documentation, labels=list(labels))
