"""Credentials an API does not take are named in the refusal, never echoed."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from members import tokens
from tests.utils import assert_error

pytestmark = pytest.mark.django_db


def test_a_member_token_on_the_staff_api_says_where_member_tokens_work():
    token = tokens.generate()
    response = APIClient().get(reverse("entry-list"), HTTP_AUTHORIZATION=f"Bearer {token}")

    error = assert_error(response, 401, "not_authenticated")
    assert "Member API tokens" in error["message"] and "/api/v1/sync/" in error["message"]
    assert token not in response.content.decode()
    assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("header", "named"),
    [("Token abcdef", "Token credentials"), ("Weird xyz", "another scheme credentials")],
)
def test_another_scheme_on_the_staff_api_is_named_not_echoed(header, named):
    response = APIClient().get(reverse("entry-list"), HTTP_AUTHORIZATION=header)

    error = assert_error(response, 401, "not_authenticated")
    assert error["message"].startswith(named)
    assert header.split()[1] not in response.content.decode()


def test_no_credentials_on_the_staff_api_is_still_plainly_not_provided():
    error = assert_error(APIClient().get(reverse("entry-list")), 401, "not_authenticated")
    assert "not provided" in error["message"]
