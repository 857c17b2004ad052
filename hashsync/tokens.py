"""The API token format shared by member tokens (``hsk_``) and staff personal tokens (``hsp_``):
the prefix + 40 random base62 characters + a 6-character base62 CRC-32 of those 40.

The prefix makes a leaked token recognisable to secret scanners, and tells people and the
server which kind it is; the checksum lets the server refuse a mistyped or made-up token
without touching the database. Only the SHA-256 digest of a token is stored: tokens carry ~238
bits of randomness, so a fast hash is enough (a slow password hash would buy nothing and cost
every request). Pure functions, no Django.

``token_format(prefix)`` builds each kind's functions as closures over its constants, so the
member sync API's hot path calls plain functions, as it did before the format was shared.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass

ALPHABET = string.digits + string.ascii_letters  # base62
RANDOM_LENGTH = 40
CHECK_LENGTH = 6
# What lists and logs may show of a token after its prefix: enough to tell tokens apart,
# useless to an attacker.
DISPLAY_CHARACTERS = 8

MEMBER_PREFIX = "hsk_"
STAFF_PREFIX = "hsp_"  # "personal": a staff user's own token for the staff API


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    # Over the random part only: member tokens issued before the format was shared stay valid.
    return _base62(zlib.crc32(body.encode("ascii")), CHECK_LENGTH)


def digest(token: str) -> str:
    """The stored form of a token (of any kind): SHA-256, hex. Call it only on a token that
    ``is_well_formed`` accepted (it is ASCII then)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class TokenFormat:
    """One kind of token: its prefix, lengths and functions."""

    prefix: str
    length: int
    display_length: int
    generate: Callable[[], str]
    is_well_formed: Callable[[str], bool]
    display_prefix: Callable[[str], str]

    def has_prefix(self, text: str) -> bool:
        """Whether ``text`` claims to be of this kind (well formed or not)."""
        return text.startswith(self.prefix)


def token_format(prefix: str) -> TokenFormat:
    start = len(prefix)
    end = start + RANDOM_LENGTH
    length = end + CHECK_LENGTH
    display_length = start + DISPLAY_CHARACTERS
    alphabet = ALPHABET

    def generate() -> str:
        body = "".join(secrets.choice(alphabet) for _ in range(RANDOM_LENGTH))
        return prefix + body + _checksum(body)

    def is_well_formed(token: str) -> bool:
        """Shape and checksum only; says nothing about whether the token exists."""
        # ASCII first: headers arrive latin-1 decoded, and compare_digest refuses non-ASCII str.
        if len(token) != length or not token.isascii() or not token.startswith(prefix):
            return False
        body = token[start:end]
        if any(c not in alphabet for c in body):
            return False
        return secrets.compare_digest(_checksum(body), token[end:])

    def display_prefix(token: str) -> str:
        return token[:display_length]

    return TokenFormat(
        prefix=prefix,
        length=length,
        display_length=display_length,
        generate=generate,
        is_well_formed=is_well_formed,
        display_prefix=display_prefix,
    )


MEMBER = token_format(MEMBER_PREFIX)
STAFF = token_format(STAFF_PREFIX)
