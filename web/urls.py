"""The staff pages. Each area's module adds its routes here."""

from __future__ import annotations

from django.urls import path

from web.views import (
    audit,
    dashboard,
    disputes,
    entries,
    feeds,
    fleet,
    frameworks,
    home,
    import_review,
    imports,
    members,
    propose,
    releases,
    reports,
    review,
    search,
    transparency,
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
    # Member administrators (web/views/members.py). "_new" cannot be a member's name (names
    # begin with a letter or digit), so the create action never hides a member's page.
    path("members/", members.member_list, name="web-members"),
    path("members/_new/", members.member_create, name="web-member-create"),
    path("members/<slug:name>/", members.member_page, name="web-member"),
    path("members/<slug:name>/suspend/", members.member_suspend, name="web-member-suspend"),
    path("members/<slug:name>/reinstate/", members.member_reinstate, name="web-member-reinstate"),
    path("members/<slug:name>/contacts/", members.contact_add, name="web-member-contact-add"),
    path(
        "members/<slug:name>/contacts/<int:contact_id>/remove/",
        members.contact_remove,
        name="web-member-contact-remove",
    ),
    path("members/<slug:name>/licences/", members.licence_grant, name="web-member-licence-grant"),
    path(
        "members/<slug:name>/licences/<slug:kind>/revoke/",
        members.licence_revoke,
        name="web-member-licence-revoke",
    ),
    path(
        "members/<slug:name>/entitlements/",
        members.entitlement_grant,
        name="web-member-entitlement-grant",
    ),
    path(
        "members/<slug:name>/entitlements/<slug:feed>/revoke/",
        members.entitlement_revoke,
        name="web-member-entitlement-revoke",
    ),
    path("members/<slug:name>/clients/", members.client_create, name="web-member-client-create"),
    path("members/<slug:name>/tokens/", members.token_create, name="web-member-token-create"),
    path(
        "members/<slug:name>/tokens/<int:token_id>/revoke/",
        members.token_revoke,
        name="web-member-token-revoke",
    ),
    # The fleet (web/views/fleet.py) and members' disputes (web/views/disputes.py).
    path("fleet/", fleet.fleet_view, name="web-fleet"),
    path("fleet/fleet.csv", fleet.fleet_csv, name="web-fleet-csv"),
    path("disputes/", disputes.dispute_queue, name="web-disputes"),
    path("disputes/<int:feedback_id>/", disputes.dispute_page, name="web-dispute"),
    path(
        "disputes/<int:feedback_id>/resolve/", disputes.dispute_resolve, name="web-dispute-resolve"
    ),
    # The auditors' pages (web/views/audit.py): the trail, an event, the CSV export, chain
    # verification and "who held hash X".
    path("audit/", audit.audit_trail, name="web-audit"),
    path("audit/<int:seq>/", audit.audit_event, name="web-audit-event"),
    path("audit/export.csv", audit.audit_export, name="web-audit-export"),
    path("audit/checks/", audit.audit_checks, name="web-audit-checks"),
    path("audit/checks/<int:check_id>/", audit.audit_check, name="web-audit-check"),
    path("audit/verify/", audit.audit_verify, name="web-audit-verify"),
    path("audit/hash-holders/", audit.hash_holders, name="web-hash-holders"),
    # What is published (web/views/releases.py, web/views/feeds.py): read-only.
    path("releases/", releases.release_list, name="web-releases"),
    path("releases/<int:version>/", releases.release_page, name="web-release"),
    path("keyring/", releases.keyring_page, name="web-keyring"),
    path("feeds/", feeds.feed_list, name="web-feeds"),
    path("feeds/<slug:name>/", feeds.feed_page, name="web-feed"),
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
    # Grading frameworks (web/views/frameworks.py): rules, versions, proposing a change, and
    # the entries a framework leaves unassessed.
    path("frameworks/", frameworks.framework_list, name="web-frameworks"),
    path("frameworks/<slug:slug>/", frameworks.framework_page, name="web-framework"),
    path(
        "frameworks/<slug:slug>/propose/",
        frameworks.framework_propose,
        name="web-framework-propose",
    ),
    path("unassessed/", frameworks.unassessed_index, name="web-unassessed"),
    path("unassessed/<slug:slug>/", frameworks.unassessed_list, name="web-unassessed-list"),
    # The transparency log, for auditors (web/views/transparency.py).
    path("transparency/", transparency.log_page, name="web-transparency"),
]
