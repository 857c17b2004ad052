"""The staff pages. Each area's module adds its routes here."""

from __future__ import annotations

from django.urls import path

from web.views import dashboard, entries, home, search

urlpatterns = [
    path("", home.home, name="front"),
    path("dashboard/imports/", dashboard.dashboard_imports, name="web-dashboard-imports"),
    path("search/", search.search, name="web-search"),
    path("entries/<int:entry_id>/", entries.entry_detail, name="web-entry"),
]
