"""Bundle storage: content-addressed, idempotent, self-healing; the local-directory and the S3
implementation (django-storages + boto3, against moto_server started on localhost by the
fixture in conftest), chosen from settings."""

from __future__ import annotations

import hashlib
import io
import urllib.request
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from distribution import releases
from distribution.models import Feed, FeedVersion
from distribution.storage import (
    LocalBundleStorage,
    S3BundleStorage,
    bundle_storage,
    object_name,
)
from tests.distribution.conftest import BUCKET, URL_EXPIRY
from tests.factories import approved_entry

pytestmark = pytest.mark.django_db


def _put(data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    bundle_storage().put(io.BytesIO(data), sha256=sha, size=len(data))
    return sha


@pytest.fixture
def bundle_root(settings) -> Path:
    return Path(settings.STORAGES["bundles"]["OPTIONS"]["location"])


def test_local_storage_is_chosen_for_a_directory():
    assert isinstance(bundle_storage(), LocalBundleStorage)


def test_objects_are_stored_under_their_digest_and_read_back(bundle_root):
    sha = _put(b"synthetic bundle bytes")
    assert (bundle_root / "sha256" / sha[:2] / sha).read_bytes() == b"synthetic bundle bytes"
    with bundle_storage().open(sha) as handle:
        assert handle.read() == b"synthetic bundle bytes"


def test_local_storage_has_no_url_the_app_streams_the_bytes():
    assert bundle_storage().url_for(_put(b"synthetic bundle bytes")) is None


def test_storing_twice_is_harmless():
    sha = _put(b"same bytes")
    assert _put(b"same bytes") == sha
    assert bundle_storage().is_intact(sha, len(b"same bytes"))


def test_a_partial_object_left_by_a_crash_is_replaced(bundle_root):
    data = b"0123456789" * 100
    sha = hashlib.sha256(data).hexdigest()
    path = bundle_root / object_name(sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(data[:300])  # what a killed writer leaves behind
    assert not bundle_storage().is_intact(sha, len(data))
    _put(data)
    assert path.read_bytes() == data


class _FailsOnSecondPass(io.BytesIO):
    """Reads whole once (the digest check), then fails half-way, like a disk that fills up."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.passes = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0:
            self.passes += 1
        return super().seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        if self.passes >= 2 and self.tell() > 0:
            raise OSError(28, "No space left on device")
        return super().read(100 if self.passes >= 2 else size)


def test_a_write_that_fails_half_way_leaves_nothing_under_the_final_name(bundle_root):
    data = b"0123456789" * 100
    sha = hashlib.sha256(data).hexdigest()

    with pytest.raises(OSError, match="No space left"):
        bundle_storage().put(_FailsOnSecondPass(data), sha256=sha, size=len(data))

    assert not (bundle_root / object_name(sha)).exists()
    assert [p.name for p in (bundle_root / "sha256").rglob("*") if p.is_file()] == []
    _put(data)  # the retry stores it whole
    assert bundle_storage().is_intact(sha, len(data))


def test_an_object_of_the_right_size_but_wrong_bytes_is_not_intact(bundle_root):
    data = b"synthetic" * 10
    sha = hashlib.sha256(data).hexdigest()
    path = bundle_root / object_name(sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(len(data)))
    assert not bundle_storage().is_intact(sha, len(data))


def test_bytes_that_do_not_match_their_digest_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        bundle_storage().put(io.BytesIO(b"abc"), sha256="0" * 64, size=3)


@pytest.mark.parametrize("bad", ["", "ABC", "0" * 63, "g" * 64, "../" + "0" * 61])
def test_object_names_must_be_sha256_hex(bad):
    with pytest.raises(ValueError):
        object_name(bad)


def test_the_storage_follows_a_change_of_settings(settings, tmp_path):
    before = bundle_storage()
    settings.STORAGES = {
        **settings.STORAGES,
        "bundles": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    sha = _put(b"synthetic elsewhere")
    assert bundle_storage() is not before
    assert (tmp_path / object_name(sha)).exists()


def test_a_storage_that_is_neither_a_directory_nor_s3_is_refused(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "bundles": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    with pytest.raises(ImproperlyConfigured, match="InMemoryStorage"):
        bundle_storage()


# --- S3 -------------------------------------------------------------------------------------


def test_s3_storage_is_chosen_for_an_s3_backend(s3_storage):
    assert isinstance(bundle_storage(), S3BundleStorage)


def test_s3_storage_without_presigned_urls_is_refused(s3_storage, settings):
    bundles = settings.STORAGES["bundles"]
    settings.STORAGES = {
        **settings.STORAGES,
        "bundles": {**bundles, "OPTIONS": {**bundles["OPTIONS"], "querystring_auth": False}},
    }
    with pytest.raises(ImproperlyConfigured, match="presigned"):
        bundle_storage()


def test_a_release_on_s3_writes_every_bundle_and_serves_presigned_urls(
    s3_storage, analyst, reviewer
):
    feed = Feed.objects.create(name="all")
    releases.release_cut()
    approved_entry(analyst, reviewer)
    releases.release_cut()
    releases.snapshot_build(feed_id=feed.pk)

    written = 0
    for fv in FeedVersion.objects.filter(feed=feed):
        for sha, size in ((fv.delta_sha256, fv.delta_size), (fv.snapshot_sha256, fv.snapshot_size)):
            if not sha:
                continue
            written += 1
            assert bundle_storage().is_intact(sha, size)
            url = bundle_storage().url_for(sha)
            assert url is not None
            assert f"X-Amz-Expires={URL_EXPIRY}" in url and "X-Amz-Signature" in url
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - localhost
                assert hashlib.sha256(response.read()).hexdigest() == sha
    assert written == 3  # two snapshots (first publication, snapshot_build) and one delta


def test_storing_twice_on_s3_is_harmless(s3_storage):
    sha = _put(b"synthetic s3 bytes")
    assert _put(b"synthetic s3 bytes") == sha
    with bundle_storage().open(sha) as handle:
        assert handle.read() == b"synthetic s3 bytes"


def test_a_partial_object_on_s3_is_replaced(s3_storage, settings):
    data = b"synthetic s3 object " * 50
    sha = hashlib.sha256(data).hexdigest()
    key = f"{settings.STORAGES['bundles']['OPTIONS']['location']}/{object_name(sha)}"
    s3_storage.put_object(Bucket=BUCKET, Key=key, Body=data[:100])
    assert not bundle_storage().is_intact(sha, len(data))
    _put(data)
    assert bundle_storage().is_intact(sha, len(data))
