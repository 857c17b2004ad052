"""Ed25519 keys: keyids, the private-key wrapper, base64 public keys and PEM key files.

A ``keyid`` is the SHA-256 hex digest of the raw 32-byte Ed25519 public key. Nothing here logs
or formats private key material.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hashsync_client.signing.errors import KeyFormatError

logger = logging.getLogger(__name__)


def keyid_of(public_key: Ed25519PublicKey) -> str:
    """SHA-256 hex digest of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


class SigningKey:
    """An Ed25519 private key with its keyid. ``repr`` shows the keyid only."""

    __slots__ = ("_private_key", "keyid", "public_key")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("SigningKey wraps an Ed25519PrivateKey")
        self._private_key = private_key
        self.public_key: Ed25519PublicKey = private_key.public_key()
        self.keyid: str = keyid_of(self.public_key)

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private_key

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(keyid={self.keyid!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SigningKey) and other.keyid == self.keyid

    def __hash__(self) -> int:
        return hash(self.keyid)


def generate_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def public_key_b64(key: Ed25519PublicKey | SigningKey) -> str:
    """Standard base64 of the raw 32-byte public key (the form used in keyrings)."""
    public = key.public_key if isinstance(key, SigningKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key_b64(text: str) -> Ed25519PublicKey:
    """Inverse of ``public_key_b64``; ``KeyFormatError`` unless it is 32 bytes of base64."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise KeyFormatError("public key is not standard base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        # Keyring payloads are canonical: one key has one text (padded, unused bits zero).
        raise KeyFormatError("public key is not canonical standard base64 (padded)")
    if len(raw) != 32:
        raise KeyFormatError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def write_private_key(
    path: str | os.PathLike[str], key: SigningKey, *, password: bytes | None = None
) -> None:
    """Write ``key`` as PEM PKCS#8 (encrypted when ``password`` is given), mode 0600.

    Atomic and never overwrites: the PEM goes to a 0600 temporary file in the same directory,
    which is then hard-linked to ``path`` (``link`` fails if ``path`` exists, so two writers
    cannot clobber each other and a reader never sees half a key). Raises ``FileExistsError``.
    """
    target = Path(path)
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "refusing to overwrite an existing key file", str(path))
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    directory = target.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # exactly 0600 whatever the umask
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, target)
    finally:
        os.unlink(temporary)
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def load_private_key(path: str | os.PathLike[str], *, password: bytes | None = None) -> SigningKey:
    """Read a PEM PKCS#8 Ed25519 private key. ``KeyFormatError`` if it is anything else."""
    target = Path(path)
    mode = target.stat().st_mode
    if mode & 0o077:
        logger.warning("private key file %s is accessible to group or others (mode %o)", path, mode)
    data = target.read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # cryptography's messages are fixed texts ("Bad decrypt...", "Password was not given..."),
        # never the key bytes; `from None` keeps the file contents out of the traceback.
        raise KeyFormatError(f"{path}: not a usable PEM PKCS#8 private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{path}: expected an Ed25519 key, found {type(key).__name__}")
    return SigningKey(key)
