"""The token format (members/tokens.py) and the one request that used to crash on it."""

from __future__ import annotations

import pytest

from members import tokens
from tests.factories import member_with_token
from tests.utils import assert_error


def test_a_generated_token_is_well_formed_prefixed_and_unique():
    made = {tokens.generate() for _ in range(200)}
    assert len(made) == 200
    for token in made:
        assert token.startswith("hsk_") and len(token) == tokens.TOKEN_LENGTH
        assert tokens.is_well_formed(token)


def test_one_changed_character_fails_the_checksum():
    token = tokens.generate()
    body_char = token[10]
    other = "a" if body_char != "a" else "b"
    assert not tokens.is_well_formed(token[:10] + other + token[11:])


@pytest.mark.parametrize(
    "text",
    ["", "hsk_", "Bearer", "x" * 50, "hsk_" + "é" * 46, "hsk_" + "0" * 45 + "é", "hsk_\x00" * 10],
)
def test_malformed_tokens_are_refused_without_raising(text):
    assert tokens.is_well_formed(text) is False


def test_the_stored_digest_and_display_prefix_reveal_nothing_usable():
    token = tokens.generate()
    assert tokens.digest(token) != token and len(tokens.digest(token)) == 64
    assert tokens.display_prefix(token) == token[:12]


@pytest.mark.django_db
def test_a_non_ascii_token_is_a_401_not_a_500(api, member_admin):
    _, token = member_with_token(member_admin)
    # WSGI decodes headers as latin-1: a non-ASCII checksum character reaches the check.
    response = api(None).get("/api/v1/sync/feeds/", HTTP_AUTHORIZATION=f"Bearer {token[:-1]}é")
    assert_error(response, 401, "authentication_failed")
