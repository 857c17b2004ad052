from __future__ import annotations

from django.urls import path

from hashlist import apis, import_apis

urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
    path("entries/", apis.EntryListApi.as_view(), name="entry-list"),
    path("entries/<int:entry_id>/", apis.EntryDetailApi.as_view(), name="entry-detail"),
    path("hashes/search/", apis.HashSearchApi.as_view(), name="hash-search"),
    path("proposals/", apis.ProposalListApi.as_view(), name="proposal-list"),
    path("proposals/create-entry/", apis.ProposeCreateEntryApi.as_view(), name="propose-create"),
    path("proposals/regrade/", apis.ProposeRegradeApi.as_view(), name="propose-regrade"),
    path("proposals/add-hash/", apis.ProposeAddHashApi.as_view(), name="propose-add-hash"),
    path("proposals/remove-hash/", apis.ProposeRemoveHashApi.as_view(), name="propose-remove-hash"),
    path("proposals/retract/", apis.ProposeRetractApi.as_view(), name="propose-retract"),
    path("proposals/<int:proposal_id>/", apis.ProposalDetailApi.as_view(), name="proposal-detail"),
    path(
        "proposals/<int:proposal_id>/approve/",
        apis.ProposalApproveApi.as_view(),
        name="proposal-approve",
    ),
    path(
        "proposals/<int:proposal_id>/reject/",
        apis.ProposalRejectApi.as_view(),
        name="proposal-reject",
    ),
    path(
        "proposals/<int:proposal_id>/withdraw/",
        apis.ProposalWithdrawApi.as_view(),
        name="proposal-withdraw",
    ),
    path("frameworks/", apis.FrameworkListApi.as_view(), name="framework-list"),
    path(
        "frameworks/<slug:slug>/versions/",
        apis.FrameworkVersionListApi.as_view(),
        name="framework-versions",
    ),
    path("proposals/framework/", apis.ProposeFrameworkApi.as_view(), name="propose-framework"),
    path("review-queue/", apis.ReviewQueueApi.as_view(), name="review-queue"),
    path("imports/", import_apis.ImportUploadApi.as_view(), name="import-upload"),
    path("imports/<int:batch_id>/", import_apis.ImportDetailApi.as_view(), name="import-detail"),
    path(
        "imports/<int:batch_id>/errors/",
        import_apis.ImportErrorListApi.as_view(),
        name="import-errors",
    ),
    path(
        "imports/<int:batch_id>/rows/", import_apis.ImportRowListApi.as_view(), name="import-rows"
    ),
    path(
        "imports/<int:batch_id>/summary/",
        import_apis.ImportSummaryApi.as_view(),
        name="import-summary",
    ),
    path(
        "imports/<int:batch_id>/sample/",
        import_apis.ImportSampleApi.as_view(),
        name="import-sample",
    ),
]
