"""The staff pages. Each area's module adds its routes here."""

from __future__ import annotations

from django.urls import path

from web.views import (
    dashboard,
    entries,
    home,
    import_review,
    imports,
    propose,
    reports,
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
    # Reports (web/views/reports.py): every chart the role may see, a page per chart with its
    # table, and each chart's numbers as CSV.
    path("reports/", reports.report_index, name="web-reports"),
    path("reports/feed-sizes/", reports.feed_sizes, name="web-report-feed-sizes"),
    path("reports/changes/", reports.changes, name="web-report-changes"),
    path(
        "reports/review-turnaround/",
        reports.review_turnaround,
        name="web-report-review-turnaround",
    ),
    path("reports/member-lag/", reports.member_lag, name="web-report-member-lag"),
    path("reports/releases/", reports.releases, name="web-report-releases"),
    path("reports/<slug:slug>.csv", reports.report_csv, name="web-report-csv"),
]
