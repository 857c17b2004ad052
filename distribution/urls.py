from __future__ import annotations

from django.urls import path

from distribution import apis

urlpatterns = [
    path("feeds/", apis.FeedListApi.as_view(), name="feed-list"),
    path("feeds/<slug:name>/", apis.FeedDetailApi.as_view(), name="feed-detail"),
    path("feeds/<slug:name>/retire/", apis.FeedRetireApi.as_view(), name="feed-retire"),
    path("feeds/<slug:name>/manifest/", apis.FeedManifestApi.as_view(), name="feed-manifest"),
    path("keyring/", apis.KeyringApi.as_view(), name="keyring"),
    path("bundles/<str:sha256>/", apis.BundleApi.as_view(), name="bundle"),
    path("releases/", apis.ReleaseListApi.as_view(), name="release-list"),
]
