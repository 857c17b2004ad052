"""The token format shared by member (``hsk_``) and staff personal (``hsp_``) tokens."""

from __future__ import annotations

import hashlib

import pytest

from hashsync import tokens
from members import tokens as member_tokens

KINDS = [tokens.MEMBER, tokens.STAFF]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.prefix)
def test_each_kind_makes_well_formed_prefixed_tokens(kind):
    made = {kind.generate() for _ in range(100)}
    assert len(made) == 100
    for token in made:
        assert token.startswith(kind.prefix) and len(token) == kind.length == 50
        assert kind.is_well_formed(token) and kind.has_prefix(token)
        assert kind.display_prefix(token) == token[: kind.display_length] == token[:12]


def test_one_kind_is_never_taken_for_the_other():
    member, staff = tokens.MEMBER.generate(), tokens.STAFF.generate()
    assert not tokens.STAFF.is_well_formed(member) and not tokens.STAFF.has_prefix(member)
    assert not tokens.MEMBER.is_well_formed(staff) and not tokens.MEMBER.has_prefix(staff)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.prefix)
def test_one_changed_character_fails_the_checksum(kind):
    token = kind.generate()
    for at in (len(kind.prefix), 20, kind.length - 1):
        other = "a" if token[at] != "a" else "b"
        assert not kind.is_well_formed(token[:at] + other + token[at + 1 :])


def test_member_tokens_issued_before_the_format_was_shared_stay_valid():
    # Made with the original members/tokens.py: hsk_ + 40 base62 + base62 CRC-32 of the 40.
    issued = "hsk_0123456789abcdefghijABCDEFGHIJ0123456789" + "4D1hvA"
    assert tokens.MEMBER.is_well_formed(issued) and member_tokens.is_well_formed(issued)
    assert member_tokens.digest(issued) == hashlib.sha256(issued.encode()).hexdigest()


def test_members_tokens_keeps_its_public_names():
    token = member_tokens.generate()
    assert member_tokens.PREFIX == "hsk_" and len(token) == member_tokens.TOKEN_LENGTH
    assert member_tokens.DISPLAY_LENGTH == 12
    assert member_tokens.is_well_formed(token)
    assert member_tokens.display_prefix(token) == token[:12]
