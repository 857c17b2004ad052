"""The single registry of hash algorithms hashsync understands, and their text forms.

This module is shared with the member client, so it must stay pure standard-library Python:
no Django, no third-party imports.

Every hash enters the system as text somebody pasted or a file somebody exported, and leaves
it as canonical text. :meth:`HashAlgorithm.parse` turns the first into bytes;
:meth:`HashAlgorithm.canonical` turns bytes into the second.

Accepted text forms (surrounding whitespace is ignored):

* hexadecimal, any letter case, exactly ``2 * length`` digits, nothing else (no ``0x``,
  no separators);
* base64, standard (``+/``) or URL-safe (``-_``) alphabet, padded or unpadded, decoding to
  exactly ``length`` bytes;
* PhotoDNA only: ``length`` comma-separated decimal byte values, as the field exchanges them.

Which form a text is in is decided by its length *before* decoding. The hex length ``2n`` and
the base64 lengths ``ceil(n / 3) * 4`` (padded) and ``ceil(4n / 3)`` (unpadded) never coincide
for the lengths in use (checked when an algorithm is defined), so a 64-character hex string is
never read as base64.

Privacy rule: error messages never contain the offending text, only its length and the nature
of the problem. Parse errors end up in logs, API responses and import reports, and the values
being parsed are hashes of child-abuse images.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_CHOICES",
    "MAX_HASH_TEXT_LENGTH",
    "HashAlgorithm",
    "HashKind",
    "HashParseError",
    "UnknownAlgorithmError",
    "get_algorithm",
    "parse_any",
]

HashKind = Literal["cryptographic", "perceptual"]

MAX_HASH_TEXT_LENGTH: Final[int] = 4096
"""Longest text :meth:`HashAlgorithm.parse` looks at, whitespace included.

The longest legitimate form is a PhotoDNA decimal list: 144 values of up to 3 digits plus
commas is under 600 characters, and this leaves room for one value per indented line. The
bound exists so a multi-megabyte paste is rejected before it is stripped, scanned or split.
"""

_HEX_DIGITS: Final = frozenset(string.hexdigits)
_LOWER_HEX_RE: Final = re.compile(r"[0-9a-f]*[0-9][0-9a-f]*")
_UPPER_HEX_RE: Final = re.compile(r"[0-9A-F]*[0-9][0-9A-F]*")
_STD_B64_RE: Final = re.compile(r"[A-Za-z0-9+/]*")
_URLSAFE_TO_STD: Final = str.maketrans("-_", "+/")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class HashParseError(ValueError):
    """Text could not be read as a hash of the requested algorithm.

    ``str(error)`` is safe to show to the person who supplied the text and to log: it never
    contains the text itself.
    """

    code = "invalid_hash"

    def __init__(self, message: str, *, algorithm: str | None = None) -> None:
        super().__init__(message)
        self.algorithm = algorithm


class UnknownAlgorithmError(ValueError):
    """An algorithm name that is not in :data:`ALGORITHMS`."""

    code = "unknown_algorithm"


@dataclass(frozen=True, slots=True)
class HashAlgorithm:
    """One hash algorithm: its identity, its size and how its values are written as text.

    ``length`` is in **bytes** (PDQ is a 256-bit hash, so 32). ``name`` is the stable
    identifier stored in the database and exchanged with members; never rename one.
    """

    name: str
    label: str
    length: int
    kind: HashKind
    accepts_decimal_list: bool = False

    # Derived once so parse(), which bulk import calls millions of times, only compares ints.
    hex_length: int = field(init=False, repr=False, compare=False)
    _b64_padded_length: int = field(init=False, repr=False, compare=False)
    _b64_unpadded_length: int = field(init=False, repr=False, compare=False)
    _expected: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip().lower():
            raise ValueError(f"algorithm name must be lowercase without spaces: {self.name!r}")
        if self.length <= 0:
            raise ValueError(f"{self.name}: length must be a positive number of bytes")
        if self.kind not in ("cryptographic", "perceptual"):
            raise ValueError(f"{self.name}: kind must be 'cryptographic' or 'perceptual'")

        hex_length = 2 * self.length
        padded = -(-self.length // 3) * 4
        unpadded = -(-self.length * 4 // 3)
        # The whole "decide the form by length" design rests on this; fail at import time
        # rather than silently misreading hex as base64 for some future algorithm.
        if hex_length in (padded, unpadded):
            raise ValueError(
                f"{self.name}: hex length {hex_length} collides with a base64 length; "
                "parse() cannot tell the forms apart"
            )

        b64_lengths = str(padded) if padded == unpadded else f"{unpadded} or {padded}"
        b64 = f"base64 of {self.length} bytes ({b64_lengths} characters)"
        if self.accepts_decimal_list:
            expected = (
                f"{hex_length} hexadecimal characters, {b64}, "
                f"or {self.length} comma-separated decimal values 0-255"
            )
        else:
            expected = f"{hex_length} hexadecimal characters or {b64}"

        object.__setattr__(self, "hex_length", hex_length)
        object.__setattr__(self, "_b64_padded_length", padded)
        object.__setattr__(self, "_b64_unpadded_length", unpadded)
        object.__setattr__(self, "_expected", expected)

    def parse(self, text: str) -> bytes:
        """Read a hash value from text in any accepted form (see the module docstring).

        Returns exactly ``self.length`` bytes, or raises :class:`HashParseError` whose message
        says what was expected and what is wrong, without repeating the text.
        """
        if len(text) > MAX_HASH_TEXT_LENGTH:
            raise self._error(
                f"got {len(text)} characters, more than the {MAX_HASH_TEXT_LENGTH} accepted"
            )
        s = text.strip()
        n = len(s)

        if n == self.hex_length:
            try:
                value = bytes.fromhex(s)
            except ValueError:
                value = b""
            # fromhex() skips ASCII whitespace, so "ab cd..." of the right length decodes
            # short instead of failing; the byte count is what proves it was pure hex.
            if len(value) == self.length:
                return value
            # A PhotoDNA decimal list can happen to be exactly 288 characters long.
            if not (self.accepts_decimal_list and "," in s):
                raise self._hex_error(s)

        if not s:
            raise self._error("got an empty value")
        if not s.isascii():
            position = next(i for i, c in enumerate(s, 1) if not c.isascii())
            raise self._error(f"got a non-ASCII character at position {position}")
        if self.accepts_decimal_list and "," in s:
            return self._parse_decimal_list(s)
        if n in (self._b64_padded_length, self._b64_unpadded_length):
            return self._parse_base64(s)
        raise self._error(self._describe_wrong_length(s))

    def canonical(self, value: bytes | bytearray | memoryview) -> str:
        """The text form stored and exchanged: lowercase hex, or for PhotoDNA the decimal list.

        Accepts a ``memoryview`` because that is what database drivers return for binary
        columns. Raises ``ValueError`` if ``value`` is not exactly ``self.length`` bytes.
        """
        if isinstance(value, str):
            raise TypeError("canonical() takes bytes; use parse() to read text")
        raw = bytes(value)
        if len(raw) != self.length:
            raise ValueError(f"{self.name}: expected {self.length} bytes, got {len(raw)}")
        if self.accepts_decimal_list:
            return ",".join(map(str, raw))
        return raw.hex()

    # --- slow paths: only reached for base64, decimal lists and errors -------------------

    def _error(self, problem: str) -> HashParseError:
        return HashParseError(
            f"{self.name}: expected {self._expected}; {problem}", algorithm=self.name
        )

    def _hex_error(self, s: str) -> HashParseError:
        for position, char in enumerate(s, 1):
            if char not in _HEX_DIGITS:
                if char.isspace():
                    problem = f"whitespace inside the value at position {position}"
                elif not char.isascii():
                    problem = f"non-ASCII character at position {position}"
                else:
                    problem = f"non-hex character at position {position}"
                return self._error(f"got {len(s)} characters with a {problem}")
        # Unreachable while fromhex() and _HEX_DIGITS agree; kept so a surprise is still an
        # actionable HashParseError rather than an AssertionError in someone's import.
        return self._error(f"got {len(s)} characters that are not valid hexadecimal")

    def _describe_wrong_length(self, s: str) -> str:
        problem = f"got {_count(len(s), 'character')}"
        if any(c.isspace() for c in s):
            problem += " including whitespace inside the value (remove spaces and line breaks)"
        elif s[:2] in ("0x", "0X"):
            problem += " (remove the 0x prefix)"
        return problem

    def _parse_base64(self, s: str) -> bytes:
        has_urlsafe = "-" in s or "_" in s
        if has_urlsafe and ("+" in s or "/" in s):
            raise self._error(
                f"got {len(s)} characters mixing standard (+/) and URL-safe (-_) base64"
            )
        body = s.rstrip("=")
        pad = len(s) - len(body)
        if len(s) == self._b64_unpadded_length:
            expected_pad = 0
        else:
            expected_pad = self._b64_padded_length - self._b64_unpadded_length
        if pad != expected_pad:
            raise self._error(f"got {len(s)} characters with incorrect base64 padding")
        if has_urlsafe:
            body = body.translate(_URLSAFE_TO_STD)
        if not _STD_B64_RE.fullmatch(body):
            position = next(i for i, c in enumerate(body, 1) if not _STD_B64_RE.fullmatch(c))
            raise self._error(
                f"got {len(s)} characters with a non-base64 character at position {position}"
            )
        if pad == 0 and (_LOWER_HEX_RE.fullmatch(body) or _UPPER_HEX_RE.fullmatch(body)):
            # Real base64 made only of one-case hex digits is a ~1e-13 event per value; a hex
            # hash cut short (or a longer hash's hex cut to fit) is a common paste accident
            # that would otherwise decode "successfully" into a wrong hash. Requiring a
            # digit keeps runs of "A" (zero bytes) valid. Padded base64 is the way out.
            raise self._error(
                f"got {len(s)} characters that look like truncated hexadecimal "
                "(if this really is base64, supply it with = padding)"
            )
        full = body + "=" * (-len(body) % 4)
        try:
            value = binascii.a2b_base64(full, strict_mode=True)
        except binascii.Error:
            raise self._error(f"got {len(s)} characters that are not valid base64") from None
        # Reject unused low bits that are set: no encoder produces them, so they mean the
        # value was corrupted or cut, and accepting them would give one hash many spellings.
        if len(value) != self.length or base64.b64encode(value).decode("ascii") != full:
            raise self._error(
                f"got {len(s)} characters that are not canonical base64 "
                "(non-zero trailing bits; truncated or corrupted?)"
            )
        return value

    def _parse_decimal_list(self, s: str) -> bytes:
        parts = s.split(",")
        values = bytearray()
        for position, part in enumerate(parts, 1):
            item = part.strip()
            if not item:
                where = "trailing comma" if position == len(parts) else "stray comma"
                raise self._error(f"value {position} is empty ({where}?)")
            # isdigit() is safe here: the text is already known to be ASCII, so it admits
            # only 0-9 (no superscripts or other scripts' digits).
            if not item.isdigit():
                if item[0] == "-" and item[1:].isdigit():
                    problem = "is negative"
                else:
                    problem = "is not a whole number"
                raise self._error(f"value {position} {problem}; each value must be 0-255")
            if len(item) > 3 or int(item) > 255:
                raise self._error(f"value {position} is not a byte 0-255")
            values.append(int(item))
        if len(values) != self.length:
            raise self._error(f"got {_count(len(values), 'value')}")
        return bytes(values)


# Adding an algorithm is one entry here. Names are stored in the database: never rename.
_REGISTRY: Final[tuple[HashAlgorithm, ...]] = (
    HashAlgorithm(name="md5", label="MD5", length=16, kind="cryptographic"),
    HashAlgorithm(name="sha1", label="SHA-1", length=20, kind="cryptographic"),
    HashAlgorithm(name="sha256", label="SHA-256", length=32, kind="cryptographic"),
    HashAlgorithm(name="pdq", label="PDQ", length=32, kind="perceptual"),
    HashAlgorithm(
        name="photodna",
        label="PhotoDNA",
        length=144,
        kind="perceptual",
        accepts_decimal_list=True,
    ),
)

ALGORITHMS: Final[Mapping[str, HashAlgorithm]] = MappingProxyType(
    {algorithm.name: algorithm for algorithm in _REGISTRY}
)
if len(ALGORITHMS) != len(_REGISTRY):
    raise ValueError("duplicate algorithm name in _REGISTRY")

ALGORITHM_CHOICES: Final[list[tuple[str, str]]] = [(a.name, a.label) for a in _REGISTRY]
"""``(name, label)`` pairs for Django ``choices``."""


def get_algorithm(name: str) -> HashAlgorithm:
    """Look up an algorithm by name, ignoring case and surrounding whitespace."""
    try:
        return ALGORITHMS[name.strip().lower()]
    except KeyError:
        # The name is not echoed: a caller that swapped its arguments would put a hash here.
        raise UnknownAlgorithmError(
            f"unknown hash algorithm; expected one of: {', '.join(ALGORITHMS)}"
        ) from None


def parse_any(text: str) -> list[tuple[HashAlgorithm, bytes]]:
    """Every ``(algorithm, value)`` reading of ``text``, in registry order.

    For searching by a hash when the user does not say which algorithm it is. Ambiguity is
    normal, not an error: 64 hex characters are both a SHA-256 and a PDQ hash, and both are
    returned. An empty list means no algorithm accepts the text.
    """
    readings: list[tuple[HashAlgorithm, bytes]] = []
    for algorithm in _REGISTRY:
        try:
            readings.append((algorithm, algorithm.parse(text)))
        except HashParseError:
            continue
    return readings
