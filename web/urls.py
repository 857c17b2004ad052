"""The staff pages. Each area's module adds its routes here."""

from __future__ import annotations

from django.urls import path

from web.views import entries, home

urlpatterns = [
    path("", home.home, name="front"),
    path("entries/<int:entry_id>/", entries.entry_detail, name="web-entry"),
]
