from __future__ import annotations

from django.urls import path

from members import apis

urlpatterns = [
    path("members/", apis.MemberListApi.as_view(), name="member-list"),
    path("members/<slug:name>/", apis.MemberDetailApi.as_view(), name="member-detail"),
    path("members/<slug:name>/suspend/", apis.MemberSuspendApi.as_view(), name="member-suspend"),
    path(
        "members/<slug:name>/reinstate/",
        apis.MemberReinstateApi.as_view(),
        name="member-reinstate",
    ),
    path("members/<slug:name>/contacts/", apis.ContactAddApi.as_view(), name="contact-add"),
    path(
        "members/<slug:name>/contacts/<int:contact_id>/remove/",
        apis.ContactRemoveApi.as_view(),
        name="contact-remove",
    ),
    path("members/<slug:name>/licences/", apis.LicenceGrantApi.as_view(), name="licence-grant"),
    path(
        "members/<slug:name>/licences/<slug:kind>/revoke/",
        apis.LicenceRevokeApi.as_view(),
        name="licence-revoke",
    ),
    path(
        "members/<slug:name>/entitlements/",
        apis.EntitlementGrantApi.as_view(),
        name="entitlement-grant",
    ),
    path(
        "members/<slug:name>/entitlements/<slug:feed>/revoke/",
        apis.EntitlementRevokeApi.as_view(),
        name="entitlement-revoke",
    ),
    path("members/<slug:name>/clients/", apis.ClientCreateApi.as_view(), name="client-create"),
    path(
        "members/<slug:name>/clients/<slug:client>/tokens/",
        apis.TokenCreateApi.as_view(),
        name="token-create",
    ),
    path(
        "members/<slug:name>/tokens/<int:token_id>/revoke/",
        apis.TokenRevokeApi.as_view(),
        name="token-revoke",
    ),
    path("disputes/", apis.DisputeListApi.as_view(), name="dispute-list"),
    path(
        "disputes/<int:feedback_id>/resolve/",
        apis.DisputeResolveApi.as_view(),
        name="dispute-resolve",
    ),
    path("audit/hash-holders/", apis.HashHoldersApi.as_view(), name="hash-holders"),
]
