"""The two refusals of the trust layer: received data (``SignatureError``) and key material
(``KeyFormatError``). Mistakes by the calling code raise plain ``ValueError``/``TypeError``."""

from __future__ import annotations


class SignatureError(ValueError):
    """Received data (envelope, keyring, manifest) is refused. ``code`` is stable, for APIs."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class KeyFormatError(ValueError):
    """A key file or an encoded public key is not a usable Ed25519 key."""
