from __future__ import annotations

from django.urls import path

from distribution import apis, stopncii, sync_apis

urlpatterns = [
    path("feeds/", apis.FeedListApi.as_view(), name="feed-list"),
    path("feeds/<slug:name>/", apis.FeedDetailApi.as_view(), name="feed-detail"),
    path("feeds/<slug:name>/retire/", apis.FeedRetireApi.as_view(), name="feed-retire"),
    path("feeds/<slug:name>/manifest/", apis.FeedManifestApi.as_view(), name="feed-manifest"),
    path("keyring/", apis.KeyringApi.as_view(), name="keyring"),
    path("bundles/<str:sha256>/", apis.BundleApi.as_view(), name="bundle"),
    path("releases/", apis.ReleaseListApi.as_view(), name="release-list"),
]

# The member sync API (token-authenticated; docs/sync-api.md).
urlpatterns += [
    path("sync/feeds/", sync_apis.SyncFeedListApi.as_view(), name="sync-feeds"),
    path("sync/feeds/<slug:name>/plan/", sync_apis.SyncPlanApi.as_view(), name="sync-plan"),
    path("sync/feeds/<slug:name>/ack/", sync_apis.SyncAckApi.as_view(), name="sync-ack"),
    path("sync/bundles/<str:sha256>/", sync_apis.SyncBundleApi.as_view(), name="sync-bundle"),
    path("sync/lookup/", sync_apis.SyncLookupApi.as_view(), name="sync-lookup"),
    path("sync/feedback/", sync_apis.SyncFeedbackApi.as_view(), name="sync-feedback"),
]

# StopNCII-compatible FetchHashes for Meta's threatexchange CLI and HMA (docs/sync-api.md): the
# client's base-URL override is …/api/v1/stopncii/<feed>/v1, to which it appends /FetchHashes.
urlpatterns += [
    path(
        "stopncii/<slug:name>/v1/FetchHashes",
        stopncii.StopNCIIFetchHashesApi.as_view(),
        name="stopncii-fetch-hashes",
    ),
]
