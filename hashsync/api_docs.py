"""Rendered API documentation: Swagger UI at ``/api/v1/docs/`` and Redoc at
``/api/v1/docs/redoc/``, both reading the served schema (``/api/v1/schema/``).

Every asset comes from the application itself (``drf-spectacular-sidecar``), so the pages work
offline and tell no third party who reads them. They are public, like the schema: they take no
credentials at all, so a stale session or a member token in the browser cannot turn a page
into an error.

The site's Content-Security-Policy allows scripts and styles from the application only, with
no inline code. drf-spectacular's stock pages carry an inline ``<style>`` (and Redoc's pulls
fonts from Google), so both pages use templates of their own (``templates/api_docs/``) with
that CSS in a static file. What Redoc still needs beyond the site policy is granted below, on
its view alone.
"""

from __future__ import annotations

from typing import Any

from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

# Redoc builds its whole look from <style> elements that its bundle adds at run time: without
# 'unsafe-inline' the page stays blank. (A nonce is not enough: Redoc passes one to the styles
# it adds once started, but the bundle adds others while it loads, before any option can reach
# it, and every load would report violations.) Its search runs in a Web Worker started from a
# blob: URL; without blob: the search box silently finds nothing. Neither lets anything new
# run: only a script already running in the page can start a worker, and script-src stays
# 'self'. The site's img-src still keeps Redoc's footer logo (cdn.redoc.ly) from being fetched.
# Swagger UI needs nothing beyond the site policy: it sets element styles through the DOM,
# which the policy does not govern, and the split view serves its start-up script as a file.
REDOC_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]}


class SwaggerDocsView(SpectacularSwaggerSplitView):
    """Swagger UI. The split view serves the page's start-up script as a second response
    (``?script``) instead of inline, so ``script-src 'self'`` holds."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    url_name = "schema"
    template_name = "api_docs/swagger_ui.html"


@method_decorator(csp_update(REDOC_CSP), name="dispatch")
class RedocDocsView(SpectacularRedocView):
    """Redoc. With no REDOC_UI_SETTINGS drf-spectacular's page has no inline script: the
    bundle finds the ``<redoc>`` element and starts itself."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    url_name = "schema"
    template_name = "api_docs/redoc.html"
