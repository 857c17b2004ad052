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
from members.holders import EVIDENCE_VALUES, HASH_STATES, HOLDER_STATES
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


@extend_schema_serializer(component_name="HashHolderListedVersions")
class ListedVersionsOutput(serializers.Serializer):
    from_version = serializers.IntegerField(help_text="The first version of the feed listing it.")
    until_version = serializers.IntegerField(
        allow_null=True,
        help_text="The first version without it (null: still listed).",
    )


_EVIDENCE = list(EVIDENCE_VALUES)


@extend_schema_serializer(component_name="HashHolder")
class HolderOutput(serializers.Serializer):
    """One sync client that ever acked a version of one feed listing the hash (docs/audit.md,
    "Who held a hash")."""

    member = serializers.CharField()
    client = serializers.CharField()
    feed = serializers.CharField()
    state_at_time = serializers.ChoiceField(
        choices=list(HOLDER_STATES),
        help_text="held: its last ack at or before `at` names a version listing the hash and "
        "the bundles served to it lead to that version; claimed_unverified: the ack names "
        "such a version but no served bundles lead to it; not_held: the ack names a version "
        "without the hash; no_ack: it had acked nothing by then.",
    )
    held_at_time = serializers.BooleanField(help_text="state_at_time is held.")
    evidence = serializers.ChoiceField(
        choices=_EVIDENCE,
        allow_null=True,
        help_text="What the state rests on (null: no ack by then).",
    )
    version_at_time = serializers.IntegerField(allow_null=True)
    acked_at = serializers.DateTimeField(allow_null=True)
    listed_versions = ListedVersionsOutput(many=True)
    removed_in_version = serializers.IntegerField(allow_null=True)
    removal_acked_at = serializers.DateTimeField(allow_null=True)
    removal_evidence = serializers.ChoiceField(choices=_EVIDENCE, allow_null=True)


@extend_schema_serializer(component_name="HashHolders")
class HashHoldersOutput(serializers.Serializer):
    # Not "hash_status": drf-spectacular would name its enum HashStatusEnum, which is
    # StopNCII's hashStatus (Active/Deleted).
    hash_state = serializers.ChoiceField(
        choices=list(HASH_STATES),
        help_text="active: an active entry holds the hash; retracted: its entry was "
        "retracted; unknown: no entry holds it (never listed, or removed from its entry).",
    )
    at = serializers.DateTimeField()
    holders = HolderOutput(many=True)


class HashHoldersApi(APIView):
    """Which member clients held a hash at a moment, and when each acked its removal. The
    hash goes in the body, never the URL."""

    permission_classes = [VIEW_ACKS]

    @extend_schema_serializer(component_name="HashHoldersInput")
    class InputSerializer(serializers.Serializer):
        algorithm = serializers.CharField(max_length=32)
        value = serializers.CharField(max_length=4096)
        at = serializers.DateTimeField(required=False)

    @extend_schema(request=InputSerializer, responses=HashHoldersOutput)
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=json_object(request.data))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        algorithm, value = parse_hash(data["algorithm"], data["value"])
        at = data.get("at") or timezone.now()
        answer = selectors.hash_holders(algorithm=algorithm, value=value, at=at)
        return Response(HashHoldersOutput(answer).data)
