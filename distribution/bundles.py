"""The HTTP answer for a bundle, shared by the staff API and the member sync API."""

from __future__ import annotations

from django.http import FileResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase

from distribution.storage import bundle_storage


def bundle_response(sha256: str) -> HttpResponseBase:
    """A redirect to a short-lived presigned URL when bundles live on S3; otherwise the bytes,
    streamed, with a strong ETag and a year of private caching (a bundle's name is its digest,
    so its bytes never change).

    The caller has already decided that ``sha256`` names a stored bundle the requester may
    have: this answers the same for every caller."""
    storage = bundle_storage()
    url = storage.url_for(sha256)
    if url is not None:
        return HttpResponseRedirect(url)
    response = FileResponse(storage.open(sha256), content_type="application/octet-stream")
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    response["ETag"] = f'"{sha256}"'
    return response
