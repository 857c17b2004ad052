"""Staff API for what members report: disputes (analysts), and the auditors' "who held hash X
at time T"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hashlist.grading import parse_hash
from hashsync.errors import InvalidInput
from hashsync.pagination import PAGE_PARAMETERS, keyset_page, page_schema
from hashsync.permissions import has_perm
from hashsync.validation import json_object
from members import selectors, services
from members.models import Feedback, FeedbackStatus

VIEW_FEEDBACK = has_perm("members.view_feedback")
RESOLVE_FEEDBACK = has_perm("members.resolve_feedback")
VIEW_ACKS = has_perm("members.view_ack")


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
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in FeedbackStatus.values:
            raise InvalidInput(f"status must be one of {', '.join(FeedbackStatus.values)}.")
        rows = selectors.dispute_list(status=wanted)

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
        data = json_object(request.data)
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
        serializer = self.InputSerializer(data=json_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        algorithm, value = parse_hash(data["algorithm"], data["value"])
        at = data.get("at") or timezone.now()
        return Response(selectors.hash_holders(algorithm=algorithm, value=value, at=at))
