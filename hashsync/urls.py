from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from hashsync import api, api_docs, metrics, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="health"),
    path("readyz", views.readyz, name="ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("", include("accounts.urls")),
    path("", include("web.urls")),
    path("api/v1/", views.ApiIndexApi.as_view(), name="api-index"),
    path("api/v1/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path("api/v1/docs/", api_docs.SwaggerDocsView.as_view(), name="api-docs"),
    path("api/v1/docs/redoc/", api_docs.RedocDocsView.as_view(), name="api-docs-redoc"),
    path("api/v1/", include("audit.urls")),
    path("api/v1/", include("hashlist.urls")),
    path("api/v1/", include("distribution.urls")),
    path("api/v1/", include("members.urls")),
    path("api/v1/", include("sync.urls")),
    # Unknown API URLs answer JSON even with DEBUG on (Django's debug 404 page is HTML).
    re_path(r"^api/", api.json_404),
]

# JSON under /api/, a page elsewhere.
handler400 = views.error_400
handler403 = views.error_403
handler404 = views.error_404
handler500 = views.error_500
