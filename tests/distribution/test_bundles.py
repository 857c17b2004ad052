"""The one HTTP answer for a bundle (staff API and member sync API): streamed with immutable
caching from a local directory, a redirect to a presigned URL from S3."""

from __future__ import annotations

import hashlib
import io
import urllib.request

import pytest

from distribution.bundles import bundle_response
from distribution.storage import bundle_storage
from tests.distribution.conftest import URL_EXPIRY

pytestmark = pytest.mark.django_db

DATA = b"synthetic bundle for the response"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def stored() -> str:
    bundle_storage().put(io.BytesIO(DATA), sha256=SHA, size=len(DATA))
    return SHA


def test_a_local_bundle_is_streamed_with_immutable_caching(stored):
    response = bundle_response(stored)
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == DATA
    response.close()
    assert dict(response.headers) == {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(len(DATA)),
        "Content-Disposition": f'inline; filename="{SHA}"',
        "Cache-Control": "private, max-age=31536000, immutable",
        "ETag": f'"{SHA}"',
    }


def test_a_bundle_on_s3_is_a_redirect_to_a_short_lived_presigned_url(s3_storage, stored):
    response = bundle_response(stored)
    assert response.status_code == 302
    url = response["Location"]
    assert f"X-Amz-Expires={URL_EXPIRY}" in url and "X-Amz-Signature" in url
    assert "ETag" not in response and "Cache-Control" not in response
    with urllib.request.urlopen(url, timeout=5) as download:  # noqa: S310 - localhost moto
        assert download.read() == DATA
