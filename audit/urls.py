from __future__ import annotations

from django.urls import path

from audit import apis

urlpatterns = [
    path("audit/events/", apis.AuditEventListApi.as_view(), name="audit-events"),
    path("audit/verify/", apis.AuditVerifyApi.as_view(), name="audit-verify"),
]
