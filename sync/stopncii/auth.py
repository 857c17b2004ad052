"""How a StopNCII client presents a member token: the key headers, checked like a Bearer
token by ``sync.auth.token_authenticate``."""

from __future__ import annotations

import hmac
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from hashsync.errors import NotAuthenticated
from members.models import ApiToken
from sync.auth import MemberPrincipal, token_authenticate

CHALLENGE = 'x-functions-key realm="hashsync"'


class StopNCIIKeyAuthentication(BaseAuthentication):
    """The member token from ``x-functions-key`` and/or ``Ocp-Apim-Subscription-Key`` (the
    StopNCII client sends both; when both are present they must be the same token). Checked by
    ``sync.auth.token_authenticate``, like a Bearer token: throttling of bad tokens,
    revocation, expiry and suspension apply unchanged."""

    HEADERS = ("HTTP_X_FUNCTIONS_KEY", "HTTP_OCP_APIM_SUBSCRIPTION_KEY")

    def authenticate_header(self, request: Request) -> str:
        return CHALLENGE

    def authenticate(self, request: Request) -> tuple[MemberPrincipal, ApiToken] | None:
        presented = [request.META[h].strip() for h in self.HEADERS if h in request.META]
        if not presented:
            return None  # DRF answers 401 not_authenticated with our challenge
        try:
            # Refused before any lookup, so it tells a guesser nothing and is not counted.
            if len(presented) == 2 and not hmac.compare_digest(
                presented[0].encode(), presented[1].encode()
            ):
                raise NotAuthenticated(
                    "The x-functions-key and Ocp-Apim-Subscription-Key headers must carry the "
                    "same member token."
                )
            return token_authenticate(
                request,
                presented[0],
                malformed="The x-functions-key and Ocp-Apim-Subscription-Key headers must "
                "carry a valid member token (hsk_…).",
            )
        except NotAuthenticated as refused:
            refused.headers["WWW-Authenticate"] = CHALLENGE
            raise


class StopNCIIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "sync.stopncii.auth.StopNCIIKeyAuthentication"
    name = "stopnciiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "x-functions-key"}
