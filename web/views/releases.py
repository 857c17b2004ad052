"""Releases, a release's manifests and bundles per feed, and the keyring chain. Read-only.

Everything shown is read by ``distribution.overview``, which checks each manifest's signature
and the keyring chain with the protocol core, as a member's client would. Release versions are
public numbers; bundle and manifest digests appear only in the page body.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from distribution import overview
from hashsync.errors import InvalidInput
from hashsync.validation import MAX_BIGINT, query_int
from web.pages import staff_page

VIEW_RELEASE = "distribution.view_release"
VIEW_FEED = "distribution.view_feed"
LIST_PAGE = 50


@staff_page(VIEW_RELEASE)
@require_safe
def release_list(request: HttpRequest) -> HttpResponse:
    try:
        before = query_int(request.GET, "before", default=0, minimum=0, maximum=MAX_BIGINT)
    except InvalidInput:
        before = 0  # a mangled link: show the newest releases rather than an error
    rows, next_before = overview.release_page(before=before or None, size=LIST_PAGE)
    return render(
        request,
        "web/releases/list.html",
        {
            "rows": rows,
            "paged": bool(before),
            "next_url": "?" + urlencode({"before": next_before}) if next_before else None,
        },
    )


@staff_page(VIEW_RELEASE)
@require_safe
def release_page(request: HttpRequest, version: int) -> HttpResponse:
    detail = overview.release_get(version=version) if version <= MAX_BIGINT else None
    if detail is None:
        raise Http404(f"There is no release {version}.")
    return render(
        request,
        "web/releases/release.html",
        {
            "detail": detail,
            "release": detail.release,
            "now": timezone.now(),
            "resign_hours": settings.HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS,
        },
    )


@staff_page(VIEW_RELEASE)
@require_safe
def keyring_page(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    chain = overview.keyring_chain(now=now)
    keys = sorted(chain.keys.values(), key=lambda k: k.valid_from, reverse=True)
    return render(
        request,
        "web/releases/keyring.html",
        {
            "chain": chain,
            "versions": list(reversed(chain.versions)),
            "keys": [{"key": k, "state": k.state(now)} for k in keys],
            "now": now,
        },
    )
