"""The bulk-import API (``/api/v1/imports/``): upload, progress, errors, and what a reviewer
reads before approving — the staged rows, a summary and a random sample. Approving or rejecting
an import is the proposal API's (``hashlist.apis``). Hash values travel only in response
bodies, never in URLs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hashlist import imports, selectors
from hashlist.models import ImportBatch, ImportRowError, StagedRow
from hashsync.errors import NotFound
from hashsync.pagination import PAGE_PARAMETERS, keyset_page, page_schema
from hashsync.permissions import has_perm
from hashsync.validation import QuietChoiceField, query_int, validated

PROPOSE = has_perm("hashlist.propose_change")
VIEW_IMPORT = has_perm("hashlist.view_importbatch")


class ImportOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    original_name = serializers.CharField()
    format = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    uploaded_by = serializers.CharField(source="uploaded_by.username")
    bytes_processed = serializers.IntegerField()
    rows_processed = serializers.IntegerField()
    rows_valid = serializers.IntegerField()
    rows_applied = serializers.IntegerField()
    apply_started_at = serializers.DateTimeField(allow_null=True)
    error_count = serializers.IntegerField()
    percent = serializers.SerializerMethodField()
    failure_message = serializers.CharField()
    proposal = serializers.IntegerField(source="proposal_id", allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_percent(self, batch: ImportBatch) -> float:
        if batch.finished_at:
            return 100.0
        return round(100.0 * batch.bytes_processed / batch.size, 1) if batch.size else 0.0


class ImportUploadApi(APIView):
    permission_classes = [PROPOSE]
    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="ImportUploadInput")
    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)
        format = QuietChoiceField(choices=["csv", "jsonl"], required=False)
        comment = serializers.CharField(max_length=4000, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={202: ImportOutput})
    def post(self, request: Request) -> Response:
        data = validated(self.InputSerializer, {k: request.data.get(k) for k in request.data})
        batch = imports.import_upload(
            actor=request.user,
            file=data["file"],
            format=data.get("format"),
            comment=data.get("comment", ""),
        )
        batch.refresh_from_db()
        return Response(ImportOutput(batch).data, status=status.HTTP_202_ACCEPTED)


class ImportDetailApi(APIView):
    permission_classes = [VIEW_IMPORT]

    @extend_schema(responses=ImportOutput)
    def get(self, request: Request, batch_id: int) -> Response:
        batch = selectors.import_get(batch_id=batch_id)
        if batch is None:
            raise NotFound(f"Import {batch_id} does not exist.")
        return Response(ImportOutput(batch).data)


class ImportErrorOutput(serializers.Serializer):
    id = serializers.IntegerField()
    line = serializers.IntegerField()
    message = serializers.CharField()


class ImportErrorListApi(APIView):
    permission_classes = [VIEW_IMPORT]

    @extend_schema(
        parameters=PAGE_PARAMETERS, responses=page_schema("ImportErrorPage", ImportErrorOutput)
    )
    def get(self, request: Request, batch_id: int) -> Response:
        if selectors.import_get(batch_id=batch_id) is None:
            raise NotFound(f"Import {batch_id} does not exist.")

        def serialize(rows: Sequence[ImportRowError]) -> list[Any]:
            return list(ImportErrorOutput(rows, many=True).data)

        return Response(keyset_page(request, selectors.import_errors(batch_id=batch_id), serialize))


def _import_or_404(batch_id: int) -> ImportBatch:
    batch = selectors.import_get(batch_id=batch_id)
    if batch is None:
        raise NotFound(f"Import {batch_id} does not exist.")
    return batch


class StagedRowOutput(serializers.Serializer):
    """A staged row as the reviewer sees it. Notes included: they are internal analyst notes,
    and everyone who may view imports is staff (they are never distributed to members)."""

    line = serializers.IntegerField()
    category = serializers.CharField()
    age_group = serializers.CharField()
    baseline = serializers.BooleanField(allow_null=True)
    industry_class = serializers.CharField()
    content_type = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # as in EntryOutput
    notes = serializers.CharField(help_text="Internal analyst notes; never distributed.")
    pubertal_stage = serializers.CharField()
    activity = serializers.CharField()
    origin = serializers.CharField()
    self_generated = serializers.CharField()
    hashes = serializers.SerializerMethodField()

    def get_hashes(self, row: StagedRow) -> list[dict[str, str]]:
        return [{"algorithm": name, "value": text} for name, text in json.loads(row.hashes)]


def _staged(rows: Sequence[StagedRow]) -> list[Any]:
    return list(StagedRowOutput(rows, many=True).data)


class ImportRowListApi(APIView):
    """The staged rows of an import, in line order (``after`` is a line number). Empty once
    the import is decided: approved rows are entries, rejected ones are gone."""

    permission_classes = [VIEW_IMPORT]

    @extend_schema(
        parameters=PAGE_PARAMETERS, responses=page_schema("ImportRowPage", StagedRowOutput)
    )
    def get(self, request: Request, batch_id: int) -> Response:
        _import_or_404(batch_id)
        rows = selectors.import_staged_rows(batch_id=batch_id)
        return Response(keyset_page(request, rows, _staged, key="line"))


class ImportSummaryApi(APIView):
    permission_classes = [VIEW_IMPORT]

    class Output(serializers.Serializer):
        rows = serializers.IntegerField()
        by_algorithm = serializers.DictField(child=serializers.IntegerField())
        by_category = serializers.DictField(child=serializers.IntegerField())
        by_age_group = serializers.DictField(child=serializers.IntegerField())
        by_content_type = serializers.DictField(child=serializers.IntegerField())
        by_baseline = serializers.DictField(child=serializers.IntegerField())
        by_industry_class = serializers.DictField(child=serializers.IntegerField())
        by_pubertal_stage = serializers.DictField(child=serializers.IntegerField())
        by_activity = serializers.DictField(child=serializers.IntegerField())
        by_origin = serializers.DictField(child=serializers.IntegerField())
        by_self_generated = serializers.DictField(child=serializers.IntegerField())
        on_list = inline_serializer(
            name="ImportOnList",
            fields={
                "count": serializers.IntegerField(),
                "lines": serializers.ListField(child=serializers.IntegerField()),
            },
        )

    @extend_schema(responses=Output)
    def get(self, request: Request, batch_id: int) -> Response:
        batch = _import_or_404(batch_id)
        return Response(self.Output(selectors.import_summary(batch=batch)).data)


class ImportSampleApi(APIView):
    permission_classes = [VIEW_IMPORT]

    @extend_schema(
        parameters=[
            OpenApiParameter("size", int, description="Rows to draw at random, 1–100 (20).")
        ],
        responses=inline_serializer(
            name="ImportSample", fields={"results": StagedRowOutput(many=True)}
        ),
    )
    def get(self, request: Request, batch_id: int) -> Response:
        _import_or_404(batch_id)
        size = query_int(
            request.query_params, "size", default=20, minimum=1, maximum=selectors.SAMPLE_MAX
        )
        return Response({"results": _staged(selectors.import_sample(batch_id=batch_id, size=size))})
