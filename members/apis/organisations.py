"""Staff API for member organisations: contacts, licences, entitlements, sync clients and
tokens (member administrators)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hashsync.pagination import PAGE_PARAMETERS, keyset_page, page_schema
from hashsync.permissions import has_perm
from hashsync.validation import MAX_LABEL, QuietChoiceField, json_object
from members import selectors, services
from members.models import ApiToken, Member

VIEW = has_perm("members.view_member")
MANAGE = has_perm("members.manage_member")


class MemberOutput(serializers.ModelSerializer):
    class Meta:
        model = Member
        fields = ["name", "display_name", "status", "created_at", "suspended_at"]


class TokenOutput(serializers.ModelSerializer):
    client = serializers.CharField(source="client.name")
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "client",
            "prefix",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "status",
        ]

    def get_status(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        if token.expires_at is not None and token.expires_at <= timezone.now():
            return "expired"
        return "active"


class MemberDetailOutput(MemberOutput):
    suspension_reason = serializers.CharField()
    contacts = serializers.SerializerMethodField()
    licences = serializers.SerializerMethodField()
    entitlements = serializers.SerializerMethodField()
    clients = serializers.SerializerMethodField()
    tokens = serializers.SerializerMethodField()

    class Meta(MemberOutput.Meta):
        fields = [
            *MemberOutput.Meta.fields,
            "suspension_reason",
            "contacts",
            "licences",
            "entitlements",
            "clients",
            "tokens",
        ]

    def get_contacts(self, member: Member) -> list[dict[str, Any]]:
        return selectors.member_contacts(member)

    def get_licences(self, member: Member) -> list[dict[str, Any]]:
        return selectors.member_licences(member)

    def get_entitlements(self, member: Member) -> list[dict[str, Any]]:
        return selectors.member_entitlements(member)

    def get_clients(self, member: Member) -> list[dict[str, Any]]:
        return selectors.member_clients(member)

    def get_tokens(self, member: Member) -> list[Any]:
        return list(TokenOutput(selectors.member_tokens(member), many=True).data)


class MemberListApi(APIView):
    def get_permissions(self) -> list[Any]:
        return [MANAGE()] if self.request.method == "POST" else [VIEW()]

    @extend_schema_serializer(component_name="MemberCreateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=64)
        display_name = serializers.CharField(max_length=MAX_LABEL)

    @extend_schema(
        operation_id="members_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("MemberPage", MemberOutput),
    )
    def get(self, request: Request) -> Response:
        def serialize(rows: Sequence[Member]) -> list[Any]:
            return list(MemberOutput(rows, many=True).data)

        return Response(keyset_page(request, selectors.member_list(), serialize))

    @extend_schema(request=InputSerializer, responses={201: MemberDetailOutput})
    def post(self, request: Request) -> Response:
        data = json_object(request.data)
        member = services.member_create(
            actor=request.user, name=data.get("name"), display_name=data.get("display_name")
        )
        return Response(MemberDetailOutput(member).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    permission_classes = [VIEW]

    @extend_schema(operation_id="members_retrieve", responses=MemberDetailOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(MemberDetailOutput(selectors.member_get(name)).data)


_REASON = inline_serializer("ReasonInput", {"reason": serializers.CharField()})


def _detail(name: str) -> Response:
    return Response(MemberDetailOutput(selectors.member_get(name)).data)


class MemberSuspendApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(request=_REASON, responses=MemberDetailOutput)
    def post(self, request: Request, name: str) -> Response:
        services.member_suspend(
            actor=request.user, name=name, reason=json_object(request.data).get("reason")
        )
        return _detail(name)


class MemberReinstateApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(request=_REASON, responses=MemberDetailOutput)
    def post(self, request: Request, name: str) -> Response:
        services.member_reinstate(
            actor=request.user, name=name, reason=json_object(request.data).get("reason")
        )
        return _detail(name)


class ContactAddApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(
        request=inline_serializer(
            "ContactInput",
            {
                "name": serializers.CharField(),
                "email": serializers.EmailField(),
                "role": serializers.ChoiceField(choices=["technical", "legal", "trust_safety"]),
            },
        ),
        responses={201: MemberDetailOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        data = json_object(request.data)
        services.contact_add(
            actor=request.user,
            member_name=name,
            name=data.get("name"),
            email=data.get("email"),
            role=data.get("role"),
        )
        return Response(MemberDetailOutput(selectors.member_get(name)).data, status=201)


class ContactRemoveApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(request=None, responses=MemberDetailOutput)
    def post(self, request: Request, name: str, contact_id: int) -> Response:
        services.contact_remove(actor=request.user, member_name=name, contact_id=contact_id)
        return _detail(name)


class LicenceGrantApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema_serializer(component_name="LicenceGrantInput")
    class InputSerializer(serializers.Serializer):
        kind = QuietChoiceField(choices=["photodna"])
        reference = serializers.CharField(max_length=MAX_LABEL, required=False, allow_blank=True)
        valid_until = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses={201: MemberDetailOutput})
    def post(self, request: Request, name: str) -> Response:
        serializer = self.InputSerializer(data=json_object(request.data))
        serializer.is_valid(raise_exception=True)
        services.licence_grant(actor=request.user, member_name=name, **serializer.validated_data)
        return Response(MemberDetailOutput(selectors.member_get(name)).data, status=201)


class LicenceRevokeApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(request=None, responses=MemberDetailOutput)
    def post(self, request: Request, name: str, kind: str) -> Response:
        services.licence_revoke(actor=request.user, member_name=name, kind=kind)
        return _detail(name)


class EntitlementGrantApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(
        request=inline_serializer("EntitlementInput", {"feed": serializers.CharField()}),
        responses={201: MemberDetailOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        services.entitlement_grant(
            actor=request.user, member_name=name, feed=json_object(request.data).get("feed")
        )
        return Response(MemberDetailOutput(selectors.member_get(name)).data, status=201)


class EntitlementRevokeApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(request=None, responses=MemberDetailOutput)
    def post(self, request: Request, name: str, feed: str) -> Response:
        services.entitlement_revoke(actor=request.user, member_name=name, feed=feed)
        return _detail(name)


class ClientCreateApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(
        request=inline_serializer("SyncClientInput", {"name": serializers.CharField()}),
        responses={201: MemberDetailOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        services.client_create(
            actor=request.user, member_name=name, name=json_object(request.data).get("name")
        )
        return Response(MemberDetailOutput(selectors.member_get(name)).data, status=201)


class TokenCreateApi(APIView):
    """Issue a token for a sync client. The response is the only time the token is shown."""

    permission_classes = [MANAGE]

    @extend_schema(
        request=inline_serializer(
            "TokenInput",
            {
                "scopes": serializers.ListField(
                    child=serializers.ChoiceField(choices=["sync", "lookup", "feedback"])
                ),
                "expires_in_days": serializers.IntegerField(required=False, allow_null=True),
            },
        ),
        responses={
            201: inline_serializer(
                "TokenCreated", {"token": serializers.CharField(), "details": TokenOutput()}
            )
        },
    )
    def post(self, request: Request, name: str, client: str) -> Response:
        data = json_object(request.data)
        token, secret = services.token_create(
            actor=request.user,
            member_name=name,
            client_name=client,
            scopes=data.get("scopes"),
            expires_in_days=data.get("expires_in_days"),
        )
        response = Response(
            {"token": secret, "details": TokenOutput(token).data}, status=status.HTTP_201_CREATED
        )
        response["Cache-Control"] = "no-store"
        return response


class TokenRevokeApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(request=None, responses=TokenOutput)
    def post(self, request: Request, name: str, token_id: int) -> Response:
        token = services.token_revoke(actor=request.user, member_name=name, token_id=token_id)
        return Response(TokenOutput(token).data)
