"""Bundle storage: immutable objects named by the SHA-256 of their bytes.

Behind one small interface, ``BundleStorage``, with two implementations over Django's storage
API: a local directory (the app streams objects itself) and S3 through django-storages + boto3
(members download through short-lived presigned URLs). Which one is chosen once, from the
``bundles`` entry of ``STORAGES``, and chosen again only when a test changes that setting.

An object is written before any release that references it commits, and re-writing it is
harmless, so a cutter killed at any point leaves no published release pointing at a missing or
partial object.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast

from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver

CHUNK = 1024 * 1024


class BundleStorage(Protocol):
    """Where bundles live. Objects are content-addressed: ``sha256`` names the bytes."""

    def put(self, handle: IO[bytes], *, sha256: str, size: int) -> None:
        """Store the bytes of ``handle`` (positioned anywhere) as object ``sha256``: checked
        against the digest, idempotent, and replacing an object a crashed write left partial."""

    def open(self, sha256: str) -> BinaryIO:
        """The object's bytes, for reading."""

    def is_intact(self, sha256: str, size: int) -> bool:
        """Whether the object exists with exactly this size and digest."""

    def url_for(self, sha256: str) -> str | None:
        """A short-lived URL members can download the object from directly, or None when the
        app must stream it itself."""


def object_name(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("an object name is a lowercase hex SHA-256")
    return f"sha256/{sha256[:2]}/{sha256}"


def _digest_of(handle: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class _DjangoBundleStorage:
    """Content addressing over any Django ``Storage``; subclasses say how members download."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put(self, handle: IO[bytes], *, sha256: str, size: int) -> None:
        handle.seek(0)
        if _digest_of(handle) != (sha256, size):
            raise ValueError("object bytes do not match the digest they are stored under")
        if self.is_intact(sha256, size):
            return
        name = object_name(sha256)
        if self.storage.exists(name):
            self.storage.delete(name)
        handle.seek(0)
        saved = self.storage.save(name, File(handle, name=name))
        if saved != name:  # pragma: no cover - content-addressed names never collide
            raise RuntimeError(f"bundle storage renamed {name} to {saved}")

    def open(self, sha256: str) -> BinaryIO:
        return cast(BinaryIO, self.storage.open(object_name(sha256), "rb"))

    def is_intact(self, sha256: str, size: int) -> bool:
        name = object_name(sha256)
        if not self.storage.exists(name) or self.storage.size(name) != size:
            return False
        with self.storage.open(name, "rb") as handle:
            return _digest_of(handle) == (sha256, size)


class LocalBundleStorage(_DjangoBundleStorage):
    """A directory on this host (``FileSystemStorage``): there is no URL to hand out.

    Objects are written to a temporary file in the same directory, flushed to disk and renamed
    into place, so a crash, a full disk or a killed worker never leaves a partial object under
    its final name (``FileSystemStorage.save`` writes the final name directly). A failed
    write removes its temporary file and raises; the cut it belonged to rolls back."""

    storage: FileSystemStorage

    def put(self, handle: IO[bytes], *, sha256: str, size: int) -> None:
        handle.seek(0)
        if _digest_of(handle) != (sha256, size):
            raise ValueError("object bytes do not match the digest they are stored under")
        if self.is_intact(sha256, size):
            return
        final = Path(self.storage.path(object_name(sha256)))
        final.parent.mkdir(parents=True, exist_ok=True)
        if self.storage.directory_permissions_mode is not None:
            final.parent.chmod(self.storage.directory_permissions_mode)
        fd, temporary = tempfile.mkstemp(dir=final.parent, prefix=".partial-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                handle.seek(0)
                shutil.copyfileobj(handle, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            if self.storage.file_permissions_mode is not None:
                os.chmod(temporary, self.storage.file_permissions_mode)
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def url_for(self, sha256: str) -> str | None:
        return None


class S3BundleStorage(_DjangoBundleStorage):
    """An S3 bucket (django-storages' ``S3Storage`` with ``querystring_auth``): ``url`` is a
    presigned GET that expires after ``querystring_expire`` seconds."""

    def url_for(self, sha256: str) -> str | None:
        return self.storage.url(object_name(sha256))


@functools.cache
def bundle_storage() -> BundleStorage:
    """The configured bundle storage."""
    storage = storages["bundles"]
    if isinstance(storage, FileSystemStorage):
        return LocalBundleStorage(storage)
    from storages.backends.s3 import S3Storage  # boto3 is imported only when S3 is used

    if isinstance(storage, S3Storage):
        if not storage.querystring_auth:
            raise ImproperlyConfigured("S3 bundle storage needs querystring_auth (presigned URLs).")
        return S3BundleStorage(storage)
    raise ImproperlyConfigured(
        f"STORAGES['bundles'] is {type(storage).__name__}; expected a local directory "
        "(FileSystemStorage) or S3 (storages.backends.s3.S3Storage)."
    )


@receiver(setting_changed)
def _storages_changed(*, setting: str, **kwargs: Any) -> None:
    # Django rebuilds ``storages`` when a test overrides STORAGES; follow it.
    if setting == "STORAGES":
        bundle_storage.cache_clear()
