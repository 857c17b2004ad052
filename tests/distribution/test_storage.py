"""Bundle storage: content-addressed, idempotent, self-healing; on the local filesystem and on
S3 through django-storages + boto3 (against moto_server started on localhost by the test)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from distribution import releases
from distribution.models import Feed, FeedVersion
from distribution.storage import (
    bundle_storage,
    object_is_intact,
    object_name,
    object_url,
    open_object,
    put_object,
)
from tests.factories import approved_entry
from tests.utils import wait_for

pytestmark = pytest.mark.django_db


def _put(data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    put_object(io.BytesIO(data), sha256=sha, size=len(data))
    return sha


def test_objects_are_stored_under_their_digest_and_read_back():
    sha = _put(b"synthetic bundle bytes")
    assert bundle_storage().exists(f"sha256/{sha[:2]}/{sha}")
    with open_object(sha) as handle:
        assert handle.read() == b"synthetic bundle bytes"
    assert object_url(sha) is None  # local storage: the app serves the bytes itself


def test_storing_twice_is_harmless():
    sha = _put(b"same bytes")
    assert _put(b"same bytes") == sha
    assert object_is_intact(sha, len(b"same bytes"))


def test_a_partial_object_left_by_a_crash_is_replaced(settings):
    data = b"0123456789" * 100
    sha = hashlib.sha256(data).hexdigest()
    path = Path(settings.STORAGES["bundles"]["OPTIONS"]["location"]) / object_name(sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(data[:300])  # what a killed writer leaves behind
    assert not object_is_intact(sha, len(data))
    _put(data)
    assert path.read_bytes() == data


def test_bytes_that_do_not_match_their_digest_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        put_object(io.BytesIO(b"abc"), sha256="0" * 64, size=3)


@pytest.mark.parametrize("bad", ["", "ABC", "0" * 63, "g" * 64, "../" + "0" * 61])
def test_object_names_must_be_sha256_hex(bad):
    with pytest.raises(ValueError):
        object_name(bad)


# --- S3 -------------------------------------------------------------------------------------

BUCKET = "hashsync-test-bundles"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - localhost test server
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=30, what="moto_server to start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_storage(settings: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "synthetic-test-key",
        "AWS_SECRET_ACCESS_KEY": "synthetic-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    existing = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "bundles": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "location": f"test-{os.getpid()}",
                "default_acl": None,
                "file_overwrite": True,
                "querystring_auth": True,
                "querystring_expire": 120,
                "addressing_style": "path",
                "signature_version": "s3v4",
            },
        },
    }
    return client


def test_a_release_on_s3_writes_every_bundle_and_serves_presigned_urls(
    s3_storage, analyst, reviewer
):
    feed = Feed.objects.create(name="all")
    releases.release_cut()
    approved_entry(analyst, reviewer)
    releases.release_cut()
    releases.snapshot_build(feed_id=feed.pk)

    for fv in FeedVersion.objects.filter(feed=feed):
        for sha, size in ((fv.delta_sha256, fv.delta_size), (fv.snapshot_sha256, fv.snapshot_size)):
            if not sha:
                continue
            assert object_is_intact(sha, size)
            url = object_url(sha)
            assert url is not None and "X-Amz-Expires=120" in url and "X-Amz-Signature" in url
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - localhost
                assert hashlib.sha256(response.read()).hexdigest() == sha


def test_storing_twice_on_s3_is_harmless(s3_storage):
    sha = _put(b"synthetic s3 bytes")
    assert _put(b"synthetic s3 bytes") == sha
    with open_object(sha) as handle:
        assert handle.read() == b"synthetic s3 bytes"
