"""OpenAPI descriptions of the member token authentications (drf-spectacular extensions):
the served schema tells client authors how to send a member token."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = "sync.auth.MemberTokenAuthentication"
    name = "memberToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A member API token (hsk_…), issued by a member administrator.",
        }
