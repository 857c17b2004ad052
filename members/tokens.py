"""Member API tokens: ``hsk_`` + 40 random base62 characters + a 6-character base62 CRC-32.

The format is shared with staff personal tokens (``hashsync/tokens.py``, which explains it);
these names are the member kind's, as plain functions for the sync API's hot path.
"""

from __future__ import annotations

from hashsync.tokens import MEMBER, digest

PREFIX = MEMBER.prefix
TOKEN_LENGTH = MEMBER.length
# What lists and logs may show of a token: enough to tell tokens apart, useless to an attacker.
DISPLAY_LENGTH = MEMBER.display_length

generate = MEMBER.generate
is_well_formed = MEMBER.is_well_formed
display_prefix = MEMBER.display_prefix

__all__ = [
    "DISPLAY_LENGTH",
    "PREFIX",
    "TOKEN_LENGTH",
    "digest",
    "display_prefix",
    "generate",
    "is_well_formed",
]
