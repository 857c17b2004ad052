"""Staff API for members (member administrators), disputes (analysts) and the auditors'
"who held hash X at time T". Member clients use the sync API (``sync.apis``)."""

from __future__ import annotations

from members.apis.disputes import (
    DisputeListApi,
    DisputeOutput,
    DisputeResolveApi,
    HashHoldersApi,
)
from members.apis.organisations import (
    ClientCreateApi,
    ContactAddApi,
    ContactRemoveApi,
    EntitlementGrantApi,
    EntitlementRevokeApi,
    LicenceGrantApi,
    LicenceRevokeApi,
    MemberDetailApi,
    MemberDetailOutput,
    MemberListApi,
    MemberOutput,
    MemberReinstateApi,
    MemberSuspendApi,
    TokenCreateApi,
    TokenOutput,
    TokenRevokeApi,
)

__all__ = [
    "ClientCreateApi",
    "ContactAddApi",
    "ContactRemoveApi",
    "DisputeListApi",
    "DisputeOutput",
    "DisputeResolveApi",
    "EntitlementGrantApi",
    "EntitlementRevokeApi",
    "HashHoldersApi",
    "LicenceGrantApi",
    "LicenceRevokeApi",
    "MemberDetailApi",
    "MemberDetailOutput",
    "MemberListApi",
    "MemberOutput",
    "MemberReinstateApi",
    "MemberSuspendApi",
    "TokenCreateApi",
    "TokenOutput",
    "TokenRevokeApi",
]
