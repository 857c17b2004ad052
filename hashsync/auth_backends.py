"""Authentication backends."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.http import HttpRequest


class ModelBackend(DjangoModelBackend):
    """Django's username/password backend, refusing a username that contains NUL.

    PostgreSQL text cannot hold NUL, so looking such a username up raises a database error
    (a 500) instead of finding no user. Django's login form rejects NUL before it gets here;
    HTTP Basic (DRF) hands the decoded header straight to ``authenticate``.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if isinstance(username, str) and "\x00" in username:
            return None  # no such user can exist
        return super().authenticate(request, username=username, password=password, **kwargs)
