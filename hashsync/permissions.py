from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def has_perm(*perms: str) -> type[BasePermission]:
    """A DRF permission class requiring every one of Django permissions ``perms``."""

    class _HasPerm(BasePermission):
        message = "Your role does not allow this operation."

        def has_permission(self, request: Request, view: Any) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(perms))

    _HasPerm.__name__ = f"HasPerm[{','.join(perms)}]"
    return _HasPerm
