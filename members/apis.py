"""Staff API for members (member administrators), disputes (analysts) and the auditors'
"who held hash X at time T". Member clients use the sync API (``sync.apis``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hashlist.grading import parse_hash
from hashsync.errors import InvalidInput
from hashsync.fields import QuietChoiceField
from hashsync.pagination import PAGE_PARAMETERS, keyset_page, page_schema
from hashsync.permissions import has_perm
from members import selectors, services
from members.models import ApiToken, Feedback, FeedbackStatus, Member

VIEW = has_perm("members.view_member")
MANAGE = has_perm("members.manage_member")
VIEW_FEEDBACK = has_perm("members.view_feedback")
RESOLVE_FEEDBACK = has_perm("members.resolve_feedback")
VIEW_ACKS = has_perm("members.view_ack")


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return request.data


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
        return [
            {"id": c.pk, "name": c.name, "email": c.email, "role": c.role}
            for c in member.contacts.order_by("id")
        ]

    def get_licences(self, member: Member) -> list[dict[str, Any]]:
        return [
            {"kind": lic.kind, "reference": lic.reference, "valid_until": lic.valid_until}
            for lic in member.licences.order_by("kind")
        ]

    def get_entitlements(self, member: Member) -> list[dict[str, Any]]:
        receivable = {f.pk for f in selectors.entitled_feeds(member)}
        return [
            {"feed": e.feed.name, "granted_at": e.granted_at, "receivable": e.feed_id in receivable}
            for e in member.entitlements.select_related("feed").order_by("feed__name")
        ]

    def get_clients(self, member: Member) -> list[dict[str, Any]]:
        return [
            {
                "name": client.name,
                "created_at": client.created_at,
                "digest_mismatch_at": client.digest_mismatch_at,
                "holdings": [
                    {
                        "feed": h.feed.name,
                        "version": h.version,
                        "digest_matches": h.digest_matches,
                        "acked_at": h.acked_at,
                    }
                    for h in client.holdings.select_related("feed").order_by("feed__name")
                ],
            }
            for client in member.clients.order_by("name")
        ]

    def get_tokens(self, member: Member) -> list[Any]:
        rows = ApiToken.objects.filter(client__member=member).select_related("client")
        return list(TokenOutput(rows.order_by("id"), many=True).data)


class MemberListApi(APIView):
    def get_permissions(self) -> list[Any]:
        return [MANAGE()] if self.request.method == "POST" else [VIEW()]

    @extend_schema_serializer(component_name="MemberCreateInput")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=64)
        display_name = serializers.CharField(max_length=200)

    @extend_schema(parameters=PAGE_PARAMETERS, responses=page_schema("MemberPage", MemberOutput))
    def get(self, request: Request) -> Response:
        def serialize(rows: Sequence[Member]) -> list[Any]:
            return list(MemberOutput(rows, many=True).data)

        return Response(keyset_page(request, Member.objects.all(), serialize))

    @extend_schema(request=InputSerializer, responses={201: MemberDetailOutput})
    def post(self, request: Request) -> Response:
        data = _body(request)
        member = services.member_create(
            actor=request.user, name=data.get("name"), display_name=data.get("display_name")
        )
        return Response(MemberDetailOutput(member).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    permission_classes = [VIEW]

    @extend_schema(responses=MemberDetailOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(MemberDetailOutput(selectors.member_get(name)).data)


_REASON = inline_serializer("ReasonInput", {"reason": serializers.CharField()})


def _detail(name: str) -> Response:
    return Response(MemberDetailOutput(selectors.member_get(name)).data)


class MemberSuspendApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(request=_REASON, responses=MemberDetailOutput)
    def post(self, request: Request, name: str) -> Response:
        services.member_suspend(actor=request.user, name=name, reason=_body(request).get("reason"))
        return _detail(name)


class MemberReinstateApi(APIView):
    permission_classes = [MANAGE]

    @extend_schema(request=_REASON, responses=MemberDetailOutput)
    def post(self, request: Request, name: str) -> Response:
        services.member_reinstate(
            actor=request.user, name=name, reason=_body(request).get("reason")
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
        data = _body(request)
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
        reference = serializers.CharField(max_length=200, required=False, allow_blank=True)
        valid_until = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses={201: MemberDetailOutput})
    def post(self, request: Request, name: str) -> Response:
        serializer = self.InputSerializer(data=_body(request))
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
            actor=request.user, member_name=name, feed=_body(request).get("feed")
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
            actor=request.user, member_name=name, name=_body(request).get("name")
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
        data = _body(request)
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


# --- Disputes (analysts) ---------------------------------------------------------------------


class DisputeOutput(serializers.ModelSerializer):
    member = serializers.CharField(source="member.name")
    client = serializers.CharField(source="client.name")
    entry = serializers.IntegerField(source="entry_id")
    resolved_by = serializers.CharField(source="resolved_by.username", allow_null=True)

    class Meta:
        model = Feedback
        fields = [
            "id",
            "member",
            "client",
            "entry",
            "algorithm",
            "kind",
            "reason",
            "status",
            "created_at",
            "resolved_at",
            "resolved_by",
            "resolution",
        ]


class DisputeListApi(APIView):
    permission_classes = [VIEW_FEEDBACK]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=page_schema("DisputePage", DisputeOutput))
    def get(self, request: Request) -> Response:
        rows = Feedback.objects.select_related("member", "client", "resolved_by")
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in FeedbackStatus.values:
                raise InvalidInput(f"status must be one of {', '.join(FeedbackStatus.values)}.")
            rows = rows.filter(status=wanted)

        def serialize(page: Sequence[Feedback]) -> list[Any]:
            return list(DisputeOutput(page, many=True).data)

        return Response(keyset_page(request, rows, serialize))


class DisputeResolveApi(APIView):
    permission_classes = [RESOLVE_FEEDBACK]

    @extend_schema(
        request=inline_serializer(
            "DisputeResolveInput",
            {
                "status": serializers.ChoiceField(choices=["upheld", "dismissed"]),
                "resolution": serializers.CharField(),
            },
        ),
        responses=DisputeOutput,
    )
    def post(self, request: Request, feedback_id: int) -> Response:
        data = _body(request)
        feedback = services.feedback_resolve(
            actor=request.user,
            feedback_id=feedback_id,
            status=data.get("status"),
            resolution=data.get("resolution"),
        )
        return Response(DisputeOutput(feedback).data)


# --- Auditors --------------------------------------------------------------------------------


class HashHoldersApi(APIView):
    """Which member clients held a hash at a moment, and when each acked its removal. The
    hash goes in the body, never the URL."""

    permission_classes = [VIEW_ACKS]

    @extend_schema_serializer(component_name="HashHoldersInput")
    class InputSerializer(serializers.Serializer):
        algorithm = serializers.CharField(max_length=32)
        value = serializers.CharField(max_length=4096)
        at = serializers.DateTimeField(required=False)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            "HashHolders",
            {
                "listed": serializers.BooleanField(),
                "at": serializers.DateTimeField(),
                "holders": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=_body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        algorithm, value = parse_hash(data["algorithm"], data["value"])
        at = data.get("at") or timezone.now()
        return Response(selectors.hash_holders(algorithm=algorithm, value=value, at=at))
