"""API token format: ``hsk_`` + 40 random base62 characters + a 6-character base62 CRC-32.

The prefix makes a leaked token recognisable to secret scanners; the checksum lets the server
refuse a mistyped or made-up token without touching the database. Only the SHA-256 digest of
a token is stored: tokens carry ~238 bits of randomness, so a fast hash is enough (a slow
password hash would buy nothing and cost every request). Pure functions, no Django.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import zlib

PREFIX = "hsk_"
_ALPHABET = string.digits + string.ascii_letters  # base62
_RANDOM_LENGTH = 40
_CHECK_LENGTH = 6
TOKEN_LENGTH = len(PREFIX) + _RANDOM_LENGTH + _CHECK_LENGTH
# What lists and logs may show of a token: enough to tell tokens apart, useless to an attacker.
DISPLAY_LENGTH = len(PREFIX) + 8


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECK_LENGTH)


def generate() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return PREFIX + body + _checksum(body)


def is_well_formed(token: str) -> bool:
    """Shape and checksum only; says nothing about whether the token exists."""
    # ASCII first: headers arrive latin-1 decoded, and compare_digest refuses non-ASCII str.
    if len(token) != TOKEN_LENGTH or not token.isascii() or not token.startswith(PREFIX):
        return False
    body = token[len(PREFIX) : len(PREFIX) + _RANDOM_LENGTH]
    check = token[len(PREFIX) + _RANDOM_LENGTH :]
    if any(c not in _ALPHABET for c in body):
        return False
    return secrets.compare_digest(_checksum(body), check)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def display_prefix(token: str) -> str:
    return token[:DISPLAY_LENGTH]
