"""The site's URLs plus stand-ins for pages other areas build (the propose pages, a proposal's
page, an import's page, a dispute's page), so the links to them can be tested before they
exist. Stand-ins come first: with the real pages merged, these still answer."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def _stand_in(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse("stand-in")


urlpatterns = [
    path("proposals/<int:proposal_id>/", _stand_in, name="web-proposal"),
    path("imports/<int:batch_id>/", _stand_in, name="web-import"),
    path("disputes/<int:feedback_id>/", _stand_in, name="web-dispute"),
    path("entries/<int:entry_id>/regrade/", _stand_in, name="web-propose-regrade"),
    path("entries/<int:entry_id>/add-hash/", _stand_in, name="web-propose-add-hash"),
    path("entries/<int:entry_id>/remove-hash/", _stand_in, name="web-propose-remove-hash"),
    path("entries/<int:entry_id>/retract/", _stand_in, name="web-propose-retract"),
    path("", include("hashsync.urls")),
]
