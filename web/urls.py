"""The staff pages. Each area's module adds its routes here."""

from __future__ import annotations

from django.urls import path

from web.views import (
    dashboard,
    entries,
    feeds,
    home,
    import_review,
    imports,
    propose,
    releases,
    review,
    search,
)

urlpatterns = [
    path("", home.home, name="front"),
    path("dashboard/imports/", dashboard.dashboard_imports, name="web-dashboard-imports"),
    path("search/", search.search, name="web-search"),
    path("entries/<int:entry_id>/", entries.entry_detail, name="web-entry"),
    # Proposing (web/views/propose.py) and reviewing (web/views/review.py).
    path("propose/", propose.propose_entry, name="web-propose"),
    path("entries/<int:entry_id>/regrade/", propose.propose_regrade, name="web-propose-regrade"),
    path("entries/<int:entry_id>/add-hash/", propose.propose_add_hash, name="web-propose-add-hash"),
    path(
        "entries/<int:entry_id>/remove-hash/",
        propose.propose_remove_hash,
        name="web-propose-remove-hash",
    ),
    path("entries/<int:entry_id>/retract/", propose.propose_retract, name="web-propose-retract"),
    path("proposals/<int:proposal_id>/", review.proposal_page, name="web-proposal"),
    path(
        "proposals/<int:proposal_id>/approve/",
        review.proposal_approve,
        name="web-proposal-approve",
    ),
    path("proposals/<int:proposal_id>/reject/", review.proposal_reject, name="web-proposal-reject"),
    path(
        "proposals/<int:proposal_id>/withdraw/",
        review.proposal_withdraw,
        name="web-proposal-withdraw",
    ),
    path("review/", review.review_queue, name="web-review-queue"),
    # Bulk imports: the list and upload, an import's page, its progress, its error report, and
    # the review of a staged import.
    path("imports/", imports.import_list, name="web-imports"),
    path("imports/upload/", imports.import_upload, name="web-import-upload"),
    path("imports/<int:batch_id>/", imports.import_page, name="web-import"),
    path("imports/<int:batch_id>/progress/", imports.import_progress, name="web-import-progress"),
    path(
        "imports/<int:batch_id>/errors.csv", imports.import_errors_csv, name="web-import-errors-csv"
    ),
    path(
        "imports/<int:batch_id>/approve/", import_review.import_approve, name="web-import-approve"
    ),
    path("imports/<int:batch_id>/reject/", import_review.import_reject, name="web-import-reject"),
    path(
        "imports/<int:batch_id>/withdraw/",
        import_review.import_withdraw,
        name="web-import-withdraw",
    ),
    # What is published (web/views/releases.py, web/views/feeds.py): read-only.
    path("releases/", releases.release_list, name="web-releases"),
    path("releases/<int:version>/", releases.release_page, name="web-release"),
    path("keyring/", releases.keyring_page, name="web-keyring"),
    path("feeds/", feeds.feed_list, name="web-feeds"),
    path("feeds/<slug:name>/", feeds.feed_page, name="web-feed"),
]
