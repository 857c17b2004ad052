"""Fixtures of the distribution tests: bundle storage on S3, served by a moto_server this
process starts on localhost (no network)."""

from __future__ import annotations

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

from tests.utils import wait_for

BUCKET = "hashsync-test-bundles"
URL_EXPIRY = 120


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


@pytest.fixture(scope="session")
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
    """Bundle storage on the moto bucket, configured as ``hashsync.settings`` does for S3;
    returns a boto3 client of that server."""
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
                "querystring_expire": URL_EXPIRY,
                "addressing_style": "path",
                "signature_version": "s3v4",
            },
        },
    }
    return client
