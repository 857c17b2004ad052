"""Bundle storage: immutable objects named by the SHA-256 of their bytes.

Written through Django's storage API (local directory or S3). An object is written before any
release that references it commits, and re-writing it is harmless, so a cutter killed at any
point leaves no published release pointing at a missing or partial object.
"""

from __future__ import annotations

import hashlib
from typing import IO, BinaryIO, cast

from django.core.files import File
from django.core.files.storage import Storage, storages

CHUNK = 1024 * 1024


def bundle_storage() -> Storage:
    return storages["bundles"]


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


def object_is_intact(sha256: str, size: int) -> bool:
    storage = bundle_storage()
    name = object_name(sha256)
    if not storage.exists(name) or storage.size(name) != size:
        return False
    with storage.open(name, "rb") as handle:
        return _digest_of(handle) == (sha256, size)


def put_object(handle: IO[bytes], *, sha256: str, size: int) -> None:
    """Store the bytes of ``handle`` (positioned anywhere) as object ``sha256``.

    The caller's digest is checked against the bytes, and an existing object is kept only if it
    is intact — a write interrupted earlier (a partial local file) is replaced."""
    handle.seek(0)
    if _digest_of(handle) != (sha256, size):
        raise ValueError("object bytes do not match the digest they are stored under")
    if object_is_intact(sha256, size):
        return
    storage = bundle_storage()
    name = object_name(sha256)
    if storage.exists(name):
        storage.delete(name)
    handle.seek(0)
    saved = storage.save(name, File(handle, name=name))
    if saved != name:  # pragma: no cover - content-addressed names never collide
        raise RuntimeError(f"bundle storage renamed {name} to {saved}")


def open_object(sha256: str) -> BinaryIO:
    return cast(BinaryIO, bundle_storage().open(object_name(sha256), "rb"))


def object_url(sha256: str) -> str | None:
    """A short-lived URL members can download from directly (S3 presigned), or None when the
    storage has none (local directory: the app streams the object itself)."""
    storage = bundle_storage()
    if storage.__class__.__name__ == "FileSystemStorage":
        return None
    return storage.url(object_name(sha256))
