from __future__ import annotations

from django.urls import path

from sync import apis, log_apis, stopncii

# The member sync API (token-authenticated; docs/sync-api.md).
urlpatterns = [
    path("sync/feeds/", apis.SyncFeedListApi.as_view(), name="sync-feeds"),
    path("sync/feeds/<slug:name>/plan/", apis.SyncPlanApi.as_view(), name="sync-plan"),
    path("sync/feeds/<slug:name>/ack/", apis.SyncAckApi.as_view(), name="sync-ack"),
    path("sync/bundles/<str:sha256>/", apis.SyncBundleApi.as_view(), name="sync-bundle"),
    path("sync/lookup/", apis.SyncLookupApi.as_view(), name="sync-lookup"),
    path("sync/match/", apis.SyncMatchApi.as_view(), name="sync-match"),
    path("sync/feedback/", apis.SyncFeedbackApi.as_view(), name="sync-feedback"),
]

# The transparency log (docs/transparency.md).
urlpatterns += [
    path(
        "sync/log/checkpoint/", log_apis.SyncLogCheckpointApi.as_view(), name="sync-log-checkpoint"
    ),
    path("sync/log/inclusion/", log_apis.SyncLogInclusionApi.as_view(), name="sync-log-inclusion"),
    path(
        "sync/log/consistency/",
        log_apis.SyncLogConsistencyApi.as_view(),
        name="sync-log-consistency",
    ),
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
