"""Unit tests for hashsync_client.algorithms: parsing and canonical text of hash values.

Every value here is synthetic (seeded random bytes or hashes of b"hello"); no real hash-list
entry may ever appear in this repository.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashsync_client.algorithms import (
    ALGORITHM_CHOICES,
    ALGORITHMS,
    MAX_HASH_TEXT_LENGTH,
    HashAlgorithm,
    HashParseError,
    UnknownAlgorithmError,
    get_algorithm,
    parse_any,
)

ALL = list(ALGORITHMS.values())
by_algorithm = pytest.mark.parametrize("alg", ALL, ids=[a.name for a in ALL])
# Base64 of 144 bytes needs no padding, so "padded" and "unpadded" are the same text there.
PADDABLE = [a for a in ALL if a.length % 3]
by_paddable_algorithm = pytest.mark.parametrize("alg", PADDABLE, ids=[a.name for a in PADDABLE])
PHOTODNA = ALGORITHMS["photodna"]

# No example database: it would write a .hypothesis/ directory into the working tree.
hypothesis_settings = settings(database=None, deadline=None)

# Made-up values: digests of b"hello". usedforsecurity=False because they are test fixtures.
HELLO_MD5 = hashlib.md5(b"hello", usedforsecurity=False).digest()
HELLO_SHA1 = hashlib.sha1(b"hello", usedforsecurity=False).digest()
HELLO_SHA256 = hashlib.sha256(b"hello").digest()


def sample(alg: HashAlgorithm) -> bytes:
    """A synthetic value of the algorithm's length, different per algorithm, stable per run."""
    return random.Random(f"hashsync-test-{alg.name}").randbytes(alg.length)


def hex_of(alg: HashAlgorithm) -> str:
    return sample(alg).hex()


def b64_of(alg: HashAlgorithm) -> str:
    return base64.b64encode(sample(alg)).decode("ascii")


def parse_error(alg: HashAlgorithm, text: str) -> str:
    """Parse text that must be rejected; return the message after checking it leaks nothing."""
    with pytest.raises(HashParseError) as excinfo:
        alg.parse(text)
    message = str(excinfo.value)
    assert message.startswith(f"{alg.name}: expected ")
    assert_message_does_not_leak(message, text)
    return message


def assert_message_does_not_leak(message: str, text: str) -> None:
    stripped = text.strip()
    if len(stripped) > 10_000:
        # Too long to scan cheaply, and too long to fit in a message this size anyway.
        assert len(message) < 1_000
    elif len(stripped) >= 8:
        # No 8-character run of the input may survive into the message: that would be
        # enough to start reconstructing a hash from logs.
        windows = {stripped[i : i + 8] for i in range(len(stripped) - 7)}
        assert not any(w in message for w in windows), message


# --- registry ------------------------------------------------------------------------------


def test_registry_holds_exactly_the_supported_algorithms() -> None:
    assert {name: (a.length, a.kind, a.accepts_decimal_list) for name, a in ALGORITHMS.items()} == {
        "md5": (16, "cryptographic", False),
        "sha1": (20, "cryptographic", False),
        "sha256": (32, "cryptographic", False),
        "pdq": (32, "perceptual", False),
        "photodna": (144, "perceptual", True),
    }


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        ALGORITHMS["sha512"] = ALGORITHMS["sha256"]  # type: ignore[index]


def test_registry_keys_are_the_algorithm_names() -> None:
    assert all(name == alg.name for name, alg in ALGORITHMS.items())


def test_algorithm_choices_pair_names_with_labels() -> None:
    assert ALGORITHM_CHOICES == [
        ("md5", "MD5"),
        ("sha1", "SHA-1"),
        ("sha256", "SHA-256"),
        ("pdq", "PDQ"),
        ("photodna", "PhotoDNA"),
    ]


def test_algorithm_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ALGORITHMS["md5"].length = 20  # type: ignore[misc]


@pytest.mark.parametrize("length", [1, 2, 4])
def test_defining_an_algorithm_whose_hex_and_base64_lengths_collide_fails(length: int) -> None:
    with pytest.raises(ValueError, match="collides"):
        HashAlgorithm(name="tiny", label="Tiny", length=length, kind="cryptographic")


def test_defining_an_algorithm_with_an_unknown_kind_fails() -> None:
    with pytest.raises(ValueError, match="kind"):
        HashAlgorithm(name="x", label="X", length=16, kind="fuzzy")  # type: ignore[arg-type]


def test_defining_an_algorithm_with_an_uppercase_name_fails() -> None:
    with pytest.raises(ValueError, match="lowercase"):
        HashAlgorithm(name="MD6", label="MD6", length=16, kind="cryptographic")


# --- get_algorithm ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("md5", "md5"), ("MD5", "md5"), (" Sha256\n", "sha256"), ("PhotoDNA", "photodna")],
)
def test_get_algorithm_is_case_insensitive_and_ignores_whitespace(name: str, expected: str) -> None:
    assert get_algorithm(name) is ALGORITHMS[expected]


@pytest.mark.parametrize("name", ["sha512", "", "md 5", "sha-256"])
def test_get_algorithm_rejects_unknown_names_listing_the_known_ones(name: str) -> None:
    with pytest.raises(UnknownAlgorithmError) as excinfo:
        get_algorithm(name)
    assert excinfo.value.code == "unknown_algorithm"
    assert isinstance(excinfo.value, ValueError)
    for known in ALGORITHMS:
        assert known in str(excinfo.value)


def test_get_algorithm_does_not_echo_the_unknown_name() -> None:
    swapped_argument = HELLO_MD5.hex()
    with pytest.raises(UnknownAlgorithmError) as excinfo:
        get_algorithm(swapped_argument)
    assert swapped_argument not in str(excinfo.value)


# --- canonical -------------------------------------------------------------------------------


@by_algorithm
def test_canonical_round_trips_through_parse(alg: HashAlgorithm) -> None:
    assert alg.parse(alg.canonical(sample(alg))) == sample(alg)


def test_canonical_md5_is_lowercase_hex() -> None:
    value = HELLO_MD5
    assert ALGORITHMS["md5"].canonical(value) == "5d41402abc4b2a76b9719d911017c592"


@pytest.mark.parametrize("name", ["md5", "sha1", "sha256", "pdq"])
def test_canonical_is_lowercase_hex_for_all_but_photodna(name: str) -> None:
    alg = ALGORITHMS[name]
    assert alg.canonical(sample(alg)) == sample(alg).hex()


def test_canonical_photodna_is_comma_separated_decimals_without_spaces() -> None:
    value = bytes(range(144))
    assert PHOTODNA.canonical(value) == ",".join(str(i) for i in range(144))


@by_algorithm
@pytest.mark.parametrize("delta", [-1, 1])
def test_canonical_rejects_wrong_length(alg: HashAlgorithm, delta: int) -> None:
    with pytest.raises(ValueError, match=f"expected {alg.length} bytes"):
        alg.canonical(bytes(alg.length + delta))


@by_algorithm
def test_canonical_accepts_memoryview_and_bytearray(alg: HashAlgorithm) -> None:
    expected = alg.canonical(sample(alg))
    assert alg.canonical(memoryview(sample(alg))) == expected
    assert alg.canonical(bytearray(sample(alg))) == expected


def test_canonical_rejects_text() -> None:
    with pytest.raises(TypeError, match="parse"):
        ALGORITHMS["md5"].canonical("5d41402abc4b2a76b9719d911017c592")  # type: ignore[arg-type]


# --- parse: accepted forms -------------------------------------------------------------------


def test_md5_accepts_hex_of_hello() -> None:
    assert ALGORITHMS["md5"].parse("5d41402abc4b2a76b9719d911017c592") == HELLO_MD5


@by_algorithm
def test_accepts_lowercase_hex(alg: HashAlgorithm) -> None:
    assert alg.parse(hex_of(alg).lower()) == sample(alg)


@by_algorithm
def test_accepts_uppercase_hex(alg: HashAlgorithm) -> None:
    assert alg.parse(hex_of(alg).upper()) == sample(alg)


@by_algorithm
def test_accepts_mixed_case_hex(alg: HashAlgorithm) -> None:
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(hex_of(alg)))
    assert mixed not in (hex_of(alg).lower(), hex_of(alg).upper())
    assert alg.parse(mixed) == sample(alg)


@by_algorithm
def test_accepts_standard_base64(alg: HashAlgorithm) -> None:
    assert alg.parse(base64.b64encode(sample(alg)).decode()) == sample(alg)


@by_algorithm
def test_accepts_urlsafe_base64(alg: HashAlgorithm) -> None:
    assert alg.parse(base64.urlsafe_b64encode(sample(alg)).decode()) == sample(alg)


@by_algorithm
def test_accepts_unpadded_base64(alg: HashAlgorithm) -> None:
    assert alg.parse(base64.b64encode(sample(alg)).decode().rstrip("=")) == sample(alg)


@by_algorithm
def test_accepts_unpadded_urlsafe_base64(alg: HashAlgorithm) -> None:
    assert alg.parse(base64.urlsafe_b64encode(sample(alg)).decode().rstrip("=")) == sample(alg)


@by_algorithm
def test_accepts_base64_with_both_plus_and_slash(alg: HashAlgorithm) -> None:
    value = b"\xfb\xef\xff" + sample(alg)[3:]
    text = base64.b64encode(value).decode()
    assert text.startswith("++//")
    assert alg.parse(text) == value
    assert alg.parse(base64.urlsafe_b64encode(value).decode()) == value


@by_algorithm
def test_accepts_all_zero_value_as_unpadded_base64(alg: HashAlgorithm) -> None:
    # Runs of "A" are hex digits too; they must not trip the truncated-hex guard.
    unpadded = base64.b64encode(bytes(alg.length)).decode().rstrip("=")
    assert set(unpadded) == {"A"}
    assert alg.parse(unpadded) == bytes(alg.length)


@by_algorithm
@pytest.mark.parametrize("padding", [" ", "\n", "\r\n", "\t", "  \n\t ", "\u00a0"])
def test_ignores_surrounding_whitespace_and_newlines(alg: HashAlgorithm, padding: str) -> None:
    assert alg.parse(f"{padding}{hex_of(alg)}{padding}") == sample(alg)
    assert alg.parse(f"{padding}{b64_of(alg)}{padding}") == sample(alg)


@by_algorithm
def test_accepts_text_up_to_the_length_bound(alg: HashAlgorithm) -> None:
    text = hex_of(alg) + " " * (MAX_HASH_TEXT_LENGTH - alg.hex_length)
    assert len(text) == MAX_HASH_TEXT_LENGTH
    assert alg.parse(text) == sample(alg)


# --- parse: rejected forms -------------------------------------------------------------------


@by_algorithm
@pytest.mark.parametrize("delta", [-1, 1], ids=["short", "long"])
def test_rejects_hex_one_character_off_mentioning_expected_length(
    alg: HashAlgorithm, delta: int
) -> None:
    text = (hex_of(alg) + "a")[: alg.hex_length + delta]
    message = parse_error(alg, text)
    assert f"expected {alg.hex_length} hexadecimal characters" in message
    assert f"got {alg.hex_length + delta} characters" in message


@by_algorithm
@pytest.mark.parametrize("delta", [-1, 1], ids=["short", "long"])
def test_rejects_base64_one_byte_off_mentioning_expected_length(
    alg: HashAlgorithm, delta: int
) -> None:
    text = base64.b64encode(bytes(alg.length + delta)).decode()
    message = parse_error(alg, text)
    assert f"base64 of {alg.length} bytes" in message


@by_algorithm
@pytest.mark.parametrize("position", [0, 7, -1])
def test_rejects_non_hex_character(alg: HashAlgorithm, position: int) -> None:
    chars = list(hex_of(alg))
    chars[position] = "g"
    message = parse_error(alg, "".join(chars))
    index = position % alg.hex_length + 1
    assert f"non-hex character at position {index}" in message


@by_algorithm
@pytest.mark.parametrize("text", ["", " ", "\n\t  \r\n"])
def test_rejects_empty_text(alg: HashAlgorithm, text: str) -> None:
    assert "empty" in parse_error(alg, text)


@by_algorithm
@pytest.mark.parametrize("replacement", ["é", "\uff10", "\u0663", "\u00b2", "\u200b"])
def test_rejects_non_ascii_in_hex_without_unicode_error(
    alg: HashAlgorithm, replacement: str
) -> None:
    # Includes a fullwidth zero, an Arabic-Indic three and a superscript two: digits to
    # str.isdigit() and int(), but not hex digits.
    chars = list(hex_of(alg))
    chars[3] = replacement
    message = parse_error(alg, "".join(chars))
    assert "position 4" in message


@by_algorithm
@pytest.mark.parametrize("text", ["é", "ハッシュ", "\U0001f600" * 10])
def test_rejects_non_ascii_text(alg: HashAlgorithm, text: str) -> None:
    assert "non-ASCII" in parse_error(alg, text)


@by_algorithm
def test_rejects_non_ascii_in_base64(alg: HashAlgorithm) -> None:
    text = "é" + b64_of(alg)[1:]
    assert "non-ASCII character at position 1" in parse_error(alg, text)


@by_algorithm
@pytest.mark.parametrize("size", [MAX_HASH_TEXT_LENGTH + 1, 10_000_000])
def test_rejects_huge_input(alg: HashAlgorithm, size: int) -> None:
    text = (hex_of(alg) * (size // alg.hex_length + 1))[:size]
    message = parse_error(alg, text)
    assert f"got {size} characters" in message


def test_rejects_huge_input_before_any_work() -> None:
    class NoWorkAllowed(str):
        __slots__ = ()

        def strip(self, chars: str | None = None) -> str:
            raise AssertionError("parse() worked on over-long input")

    with pytest.raises(HashParseError):
        ALGORITHMS["md5"].parse(NoWorkAllowed("0" * (MAX_HASH_TEXT_LENGTH + 1)))


@by_algorithm
def test_rejects_whitespace_inside_hex_of_correct_length(alg: HashAlgorithm) -> None:
    # bytes.fromhex() would silently skip this space and return a short value.
    text = hex_of(alg)[:10] + " " + hex_of(alg)[11:]
    assert "whitespace inside the value at position 11" in parse_error(alg, text)


@by_algorithm
@pytest.mark.parametrize("separator", [" ", "\n", ":"])
def test_rejects_separated_hex(alg: HashAlgorithm, separator: str) -> None:
    hexed = hex_of(alg)
    text = separator.join(hexed[i : i + 2] for i in range(0, len(hexed), 2))
    parse_error(alg, text)


@by_algorithm
def test_rejects_whitespace_inside_base64(alg: HashAlgorithm) -> None:
    text = b64_of(alg)[:8] + "\n" + b64_of(alg)[8:]
    assert "whitespace" in parse_error(alg, text)


@by_algorithm
def test_rejects_0x_prefix(alg: HashAlgorithm) -> None:
    assert "0x prefix" in parse_error(alg, "0x" + hex_of(alg))


@by_algorithm
def test_rejects_base64_mixing_standard_and_urlsafe_alphabets(alg: HashAlgorithm) -> None:
    text = "-" + base64.b64encode(b"\xfb\xef\xff" + sample(alg)[3:]).decode()[1:]
    assert "mixing standard" in parse_error(alg, text)


@by_algorithm
def test_rejects_character_outside_base64_alphabet(alg: HashAlgorithm) -> None:
    text = "*" + b64_of(alg)[1:]
    assert "non-base64 character at position 1" in parse_error(alg, text)


@by_paddable_algorithm
def test_rejects_base64_with_wrong_padding(alg: HashAlgorithm) -> None:
    padded = b64_of(alg)
    unpadded = padded.rstrip("=")
    assert "padding" in parse_error(alg, unpadded + "A" * (len(padded) - len(unpadded)))
    assert "padding" in parse_error(alg, "=" + padded[:-1])


@by_paddable_algorithm
def test_rejects_base64_with_non_zero_trailing_bits(alg: HashAlgorithm) -> None:
    unpadded = base64.b64encode(bytes(alg.length)).decode().rstrip("=")
    # "B" is 000001: its lowest bit is never part of the value for these lengths.
    message = parse_error(alg, unpadded[:-1] + "B")
    assert "not canonical base64" in message


@by_algorithm
def test_rejects_hex_cut_to_unpadded_base64_length(alg: HashAlgorithm) -> None:
    unpadded_length = len(b64_of(alg).rstrip("="))
    truncated = ("0123456789abcdef" * 20)[:unpadded_length]
    assert "truncated hexadecimal" in parse_error(alg, truncated)
    assert "truncated hexadecimal" in parse_error(alg, truncated.upper())


@pytest.mark.parametrize("name", ["md5", "sha1", "sha256", "pdq"])
def test_only_photodna_accepts_decimal_lists(name: str) -> None:
    alg = ALGORITHMS[name]
    parse_error(alg, ",".join(map(str, sample(alg))))


@by_algorithm
def test_parse_error_is_a_value_error_with_code_and_algorithm(alg: HashAlgorithm) -> None:
    with pytest.raises(ValueError) as excinfo:
        alg.parse("nope")
    assert isinstance(excinfo.value, HashParseError)
    assert excinfo.value.code == "invalid_hash"
    assert excinfo.value.algorithm == alg.name
    assert str(excinfo.value).startswith(f"{alg.name}: expected ")


def test_md5_error_says_what_was_expected_and_what_was_got() -> None:
    with pytest.raises(HashParseError) as excinfo:
        ALGORITHMS["md5"].parse("a" * 31)
    assert str(excinfo.value) == (
        "md5: expected 32 hexadecimal characters or base64 of 16 bytes (22 or 24 characters);"
        " got 31 characters"
    )


@by_algorithm
def test_error_messages_never_contain_the_input(alg: HashAlgorithm) -> None:
    hexed, b64 = hex_of(alg), b64_of(alg)
    bad_inputs = [
        hexed[:-1],
        hexed + "0",
        hexed[:-1] + "z",
        hexed[:5] + "é" + hexed[6:],
        hexed[:9] + " " + hexed[10:],
        " " + hexed[:-2] + "\n",
        "0x" + hexed,
        b64[:-2] + "*=",
        "-/" + b64[2:],
        b64 + "AAAA",
        hexed * 3,
        ",".join(map(str, sample(alg)[:-1])),
        ",".join(map(str, sample(alg))) + ",",
        ",".join(map(str, sample(alg)[:-1])) + ",999",
    ]
    for text in bad_inputs:
        with pytest.raises(HashParseError) as excinfo:
            alg.parse(text)
        assert_message_does_not_leak(str(excinfo.value), text)
        assert hexed[:8] not in str(excinfo.value)


# --- PhotoDNA decimal lists ------------------------------------------------------------------


def photodna_values() -> list[int]:
    return list(sample(PHOTODNA))


def test_photodna_accepts_decimal_list() -> None:
    assert PHOTODNA.parse(",".join(map(str, photodna_values()))) == sample(PHOTODNA)


def test_photodna_accepts_decimal_list_with_spaces_and_newlines_around_numbers() -> None:
    text = "\n" + ",\n    ".join(f" {v}\t" for v in photodna_values()) + "\n"
    assert PHOTODNA.parse(text) == sample(PHOTODNA)


def test_photodna_accepts_decimal_list_with_leading_zeros() -> None:
    text = ",".join(f"{v:03d}" for v in photodna_values())
    assert PHOTODNA.parse(text) == sample(PHOTODNA)


def test_photodna_accepts_decimal_list_exactly_as_long_as_its_hex_form() -> None:
    # 143 one-digit values and one two-digit value: 288 characters, the hex length.
    values = [1] * 143 + [10]
    text = ",".join(map(str, values))
    assert len(text) == PHOTODNA.hex_length
    assert PHOTODNA.parse(text) == bytes(values)


@pytest.mark.parametrize("count", [143, 145, 2])
def test_photodna_rejects_wrong_number_of_values(count: int) -> None:
    text = ",".join(["7"] * count)
    message = parse_error(PHOTODNA, text)
    assert f"got {count} values" in message
    assert "144 comma-separated decimal values" in message


def test_photodna_rejects_a_single_number_as_too_short() -> None:
    assert "got 1 character" in parse_error(PHOTODNA, "7")


@pytest.mark.parametrize("bad", ["256", "300", "1000", "99999999999999999999"])
def test_photodna_rejects_value_above_255(bad: str) -> None:
    values = [str(v) for v in photodna_values()]
    values[4] = bad
    message = parse_error(PHOTODNA, ",".join(values))
    assert "value 5 is not a byte 0-255" in message
    assert bad not in message.replace("0-255", "")


def test_photodna_rejects_negative_value() -> None:
    values = [str(v) for v in photodna_values()]
    values[9] = "-1"
    assert "value 10 is negative" in parse_error(PHOTODNA, ",".join(values))


@pytest.mark.parametrize("bad", ["abc", "1.5", "0x10", "+5", "1e2", "1 2", "½", "\uff15"])
def test_photodna_rejects_non_number(bad: str) -> None:
    values = [str(v) for v in photodna_values()]
    values[0] = bad
    message = parse_error(PHOTODNA, ",".join(values))
    assert "value 1 is not a whole number" in message or "non-ASCII" in message


def test_photodna_rejects_trailing_comma() -> None:
    text = ",".join(map(str, photodna_values())) + ","
    assert "value 145 is empty (trailing comma?)" in parse_error(PHOTODNA, text)


@pytest.mark.parametrize("text", [",1,2", "1,,2", "1, ,2"], ids=["leading", "doubled", "blank"])
def test_photodna_rejects_stray_comma(text: str) -> None:
    assert "is empty (stray comma?)" in parse_error(PHOTODNA, text)


def test_photodna_rejects_bracketed_list() -> None:
    text = "[" + ",".join(map(str, photodna_values())) + "]"
    assert "value 1 is not a whole number" in parse_error(PHOTODNA, text)


# --- parse_any -------------------------------------------------------------------------------


def test_parse_any_finds_sha256_and_pdq_for_64_hex_characters() -> None:
    text = HELLO_SHA256.hex()
    readings = parse_any(text)
    assert [(a.name, v) for a, v in readings] == [
        ("sha256", HELLO_SHA256),
        ("pdq", HELLO_SHA256),
    ]


def test_parse_any_finds_sha256_and_pdq_for_base64_of_32_bytes() -> None:
    text = base64.b64encode(HELLO_SHA256).decode()
    assert [a.name for a, _ in parse_any(text)] == ["sha256", "pdq"]


def test_parse_any_finds_only_md5_for_32_hex_characters() -> None:
    readings = parse_any(HELLO_MD5.hex().upper())
    assert [(a.name, v) for a, v in readings] == [("md5", HELLO_MD5)]


def test_parse_any_finds_only_sha1_for_40_hex_characters() -> None:
    readings = parse_any(HELLO_SHA1.hex())
    assert [a.name for a, _ in readings] == ["sha1"]


def test_parse_any_finds_only_photodna_for_a_decimal_list() -> None:
    readings = parse_any(PHOTODNA.canonical(sample(PHOTODNA)))
    assert readings == [(PHOTODNA, sample(PHOTODNA))]


@pytest.mark.parametrize("text", ["", "hello", "0x1234", "a" * 31, "é" * 32, "z" * 64])
def test_parse_any_returns_empty_list_when_nothing_accepts(text: str) -> None:
    assert parse_any(text) == []


# --- properties ------------------------------------------------------------------------------


@by_algorithm
@hypothesis_settings
@given(data=st.data())
def test_parse_inverts_canonical(alg: HashAlgorithm, data: st.DataObject) -> None:
    value = data.draw(st.binary(min_size=alg.length, max_size=alg.length))
    assert alg.parse(alg.canonical(value)) == value


@by_algorithm
@hypothesis_settings
@given(data=st.data())
def test_parse_inverts_base64(alg: HashAlgorithm, data: st.DataObject) -> None:
    value = data.draw(st.binary(min_size=alg.length, max_size=alg.length))
    assert alg.parse(base64.b64encode(value).decode()) == value
    assert alg.parse(base64.urlsafe_b64encode(value).decode()) == value


@by_algorithm
@hypothesis_settings
@given(data=st.data())
def test_parse_inverts_hex_in_any_case(alg: HashAlgorithm, data: st.DataObject) -> None:
    value = data.draw(st.binary(min_size=alg.length, max_size=alg.length))
    upper = data.draw(st.lists(st.booleans(), min_size=alg.hex_length, max_size=alg.hex_length))
    text = "".join(c.upper() if u else c for c, u in zip(value.hex(), upper, strict=True))
    assert alg.parse(text) == value


@hypothesis_settings
@given(
    value=st.binary(min_size=144, max_size=144),
    spacing=st.lists(st.sampled_from(["", " ", "\n", "\t", "  "]), min_size=288, max_size=288),
)
def test_photodna_parse_inverts_spaced_decimal_list(value: bytes, spacing: list[str]) -> None:
    text = ",".join(f"{spacing[2 * i]}{v}{spacing[2 * i + 1]}" for i, v in enumerate(value))
    assert PHOTODNA.parse(text) == value


# Text that reaches every branch: arbitrary Unicode, plus text drawn from the characters and
# lengths the parser actually cares about, which st.text() alone almost never produces.
_NEAR_MISS_ALPHABET = "0123456789abcdefABCDEFxyzXYZ+/-_=, \n\té\u00a0\uff10"
_INTERESTING_LENGTHS = sorted(
    {n + d for a in ALL for n in (a.hex_length, 22, 24, 27, 28, 43, 44, 192) for d in (-1, 0, 1)}
)
arbitrary_text = st.one_of(
    st.text(),
    st.text(alphabet=_NEAR_MISS_ALPHABET),
    st.sampled_from(_INTERESTING_LENGTHS).flatmap(
        lambda n: st.text(alphabet=_NEAR_MISS_ALPHABET, min_size=n, max_size=n)
    ),
    st.lists(
        st.one_of(st.integers(-5, 300).map(str), st.sampled_from(["", " ", "x", "1.0"])),
        min_size=140,
        max_size=148,
    ).map(",".join),
)


@by_algorithm
@hypothesis_settings
@given(text=arbitrary_text)
def test_parse_returns_right_length_or_raises_hash_parse_error(
    alg: HashAlgorithm, text: str
) -> None:
    try:
        value = alg.parse(text)
    except HashParseError as error:
        assert str(error).startswith(f"{alg.name}: expected ")
        stripped = text.strip()
        if len(stripped) >= 8:
            assert stripped not in str(error)
    else:
        assert isinstance(value, bytes)
        assert len(value) == alg.length


@hypothesis_settings
@given(text=arbitrary_text)
def test_parse_any_readings_have_their_algorithms_length(text: str) -> None:
    for alg, value in parse_any(text):
        assert len(value) == alg.length
