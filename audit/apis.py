"""The auditor's API (``/api/v1/audit/``): read the trail, verify the chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors
from audit.models import AuditEvent
from audit.verify import verify_chain
from hashsync.pagination import PAGE_PARAMETERS, keyset_page, page_schema
from hashsync.permissions import has_perm

VIEW_AUDIT = has_perm("audit.view_auditevent")


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "seq",
            "lane",
            "lane_seq",
            "format",
            "at",
            "actor",
            "actor_id",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "reason",
            "request_id",
            "prev_digest",
            "digest",
        ]


class AuditEventListApi(APIView):
    permission_classes = [VIEW_AUDIT]

    class FilterSerializer(serializers.Serializer):
        object_type = serializers.CharField(max_length=64, required=False)
        object_id = serializers.CharField(max_length=64, required=False)
        action = serializers.CharField(max_length=64, required=False)
        lane = serializers.IntegerField(min_value=0, max_value=32767, required=False)

    @extend_schema(
        parameters=[*PAGE_PARAMETERS, FilterSerializer],
        responses=page_schema("AuditEventPage", AuditEventOutput),
    )
    def get(self, request: Request) -> Response:
        # Query parameters always arrive as a mapping, so unlike a request body they need no
        # "must be a JSON object" check before validation.
        query = self.FilterSerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        filters = {
            k: v
            for k, v in query.validated_data.items()
            if k in ("object_type", "object_id", "action", "lane")
        }

        def serialize(rows: Sequence[AuditEvent]) -> list[Any]:
            return list(AuditEventOutput(rows, many=True).data)

        return Response(
            keyset_page(request, selectors.audit_events(**filters), serialize, key="seq")
        )


class AuditVerifyApi(APIView):
    permission_classes = [VIEW_AUDIT]

    @extend_schema(
        responses=inline_serializer(
            name="AuditVerifyResult",
            fields={
                "ok": serializers.BooleanField(),
                "events_checked": serializers.IntegerField(),
                "head_seq": serializers.IntegerField(),
                "head_digest": serializers.CharField(),
                "first_bad_seq": serializers.IntegerField(allow_null=True),
                "problem": serializers.CharField(),
                "findings": serializers.ListField(child=serializers.CharField()),
                "first_bad_lane": serializers.IntegerField(allow_null=True),
                "lanes": inline_serializer(
                    name="AuditVerifyLane",
                    many=True,
                    fields={
                        "lane": serializers.IntegerField(),
                        "ok": serializers.BooleanField(),
                        "events_checked": serializers.IntegerField(),
                        "head_seq": serializers.IntegerField(),
                        "head_digest": serializers.CharField(),
                        "first_bad_lane_seq": serializers.IntegerField(allow_null=True),
                        "first_bad_seq": serializers.IntegerField(allow_null=True),
                        "problem": serializers.CharField(),
                    },
                ),
            },
        )
    )
    def get(self, request: Request) -> Response:
        report = verify_chain()
        return Response(
            {
                **report.__dict__,
                "findings": list(report.findings),
                "lanes": [{**lane.__dict__, "ok": lane.ok} for lane in report.lanes],
            }
        )
