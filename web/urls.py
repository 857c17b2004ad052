"""The staff pages. Each area's module adds its routes here."""

from __future__ import annotations

from django.urls import path

from web.views import home, import_review, imports

urlpatterns = [
    path("", home.home, name="front"),
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
]
