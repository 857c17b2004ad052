"""The role-matrix harness shared by the API tests of every app: which (URL name, method)
routes an app serves, and what a role that may not use a route gets from it. Each app's test
module keeps its own table of endpoints and who may call them; a test over ``served`` fails
when a route is added without a row in that table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.urls import URLPattern

from tests.utils import assert_error

ROLES = ("analyst", "reviewer", "member_admin", "auditor", "outsider", "anonymous")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def served(patterns: Iterable[Any]) -> set[tuple[str, str]]:
    """(URL name, HTTP method) of every route of ``patterns`` (a ``urls.urlpatterns``)."""
    found = set()
    for pattern in patterns:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class  # type: ignore[attr-defined]
        found |= {(pattern.name or "", m) for m in HTTP_METHODS if hasattr(view, m)}
    return found


def assert_role_refused(response: Any, role: str) -> None:
    """A staff route refuses a role without the permission: 401 with the Basic challenge for
    an anonymous caller, 403 ``permission_denied`` for a signed-in one."""
    if role == "anonymous":
        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Basic")
    else:
        assert_error(response, 403, "permission_denied")
