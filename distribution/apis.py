"""Staff API for feeds and releases (member administrators manage feeds). The member-facing
sync API is separate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from distribution import selectors, services
from distribution.bundles import bundle_response
from distribution.models import Feed, Release
from hashsync.api import BinaryContentNegotiation
from hashsync.errors import NotFound
from hashsync.pagination import PAGE_PARAMETERS, keyset_page, page_schema
from hashsync.permissions import has_perm
from hashsync.validation import MAX_TEXT, StrictTextField, validated

VIEW_FEED = has_perm("distribution.view_feed")
MANAGE_FEED = has_perm("distribution.manage_feed")
VIEW_RELEASE = has_perm("distribution.view_release")


class FeedFilterFields(serializers.Serializer):
    """A feed's name, description and filter (an empty list admits any value), as staff and
    members see them."""

    name = serializers.CharField()
    description = serializers.CharField()
    algorithms = serializers.ListField(child=serializers.CharField())
    categories = serializers.ListField(child=serializers.CharField())
    age_groups = serializers.ListField(child=serializers.CharField())
    industry_classes = serializers.ListField(child=serializers.CharField())
    content_types = serializers.ListField(child=serializers.CharField())
    baseline_only = serializers.BooleanField()
    framework = serializers.CharField()
    classes = serializers.ListField(child=serializers.CharField())


class FeedOutput(FeedFilterFields):
    active = serializers.BooleanField()
    framework_version = serializers.IntegerField()
    version = serializers.IntegerField()
    entry_count = serializers.IntegerField()
    published = serializers.SerializerMethodField()
    latest_manifest_sha256 = serializers.SerializerMethodField()

    def get_published(self, feed: Feed) -> bool:
        return feed.populated_at is not None

    def get_latest_manifest_sha256(self, feed: Feed) -> str | None:
        # Annotated by the selectors (feed_list, feed_get): serializers never query.
        sha256: str | None = feed.latest_manifest_sha256  # type: ignore[attr-defined]
        return sha256


def _feeds(rows: Sequence[Feed]) -> list[Any]:
    return list(FeedOutput(rows, many=True).data)


def _read_back(feed: Feed) -> Feed:
    """The feed a service just wrote, read as the output serializer needs it."""
    found = selectors.feed_get(name=feed.name)
    assert found is not None  # committed by the service, and feeds are never deleted
    return found


class FeedListApi(APIView):
    def get_permissions(self) -> list[Any]:
        return [MANAGE_FEED()] if self.request.method == "POST" else [VIEW_FEED()]

    @extend_schema_serializer(component_name="FeedCreateInput")
    class InputSerializer(serializers.Serializer):
        name = StrictTextField(max_length=64)
        description = serializers.CharField(max_length=MAX_TEXT, required=False, allow_blank=True)
        algorithms = serializers.ListField(
            child=serializers.CharField(max_length=32), required=False, max_length=16
        )
        categories = serializers.ListField(
            child=serializers.CharField(max_length=32), required=False, max_length=16
        )
        age_groups = serializers.ListField(
            child=serializers.CharField(max_length=32), required=False, max_length=16
        )
        industry_classes = serializers.ListField(
            child=serializers.CharField(max_length=32, allow_blank=True),
            required=False,
            max_length=16,
        )
        content_types = serializers.ListField(
            child=serializers.CharField(max_length=32), required=False, max_length=16
        )
        baseline_only = serializers.BooleanField(required=False, default=False)
        framework = serializers.CharField(max_length=32, required=False)
        classes = serializers.ListField(
            child=serializers.CharField(max_length=32), required=False, max_length=16
        )

    @extend_schema(
        operation_id="feeds_list",
        parameters=PAGE_PARAMETERS,
        responses=page_schema("FeedPage", FeedOutput),
    )
    def get(self, request: Request) -> Response:
        return Response(keyset_page(request, selectors.feed_list(), _feeds))

    @extend_schema(request=InputSerializer, responses={201: FeedOutput})
    def post(self, request: Request) -> Response:
        data = validated(self.InputSerializer, request.data)
        feed = services.feed_create(actor=request.user, **data)
        return Response(FeedOutput(_read_back(feed)).data, status=status.HTTP_201_CREATED)


class FeedDetailApi(APIView):
    permission_classes = [VIEW_FEED]

    @extend_schema(operation_id="feeds_retrieve", responses=FeedOutput)
    def get(self, request: Request, name: str) -> Response:
        feed = selectors.feed_get(name=name)
        if feed is None:
            raise NotFound(f"Feed {name} does not exist.")
        return Response(FeedOutput(feed).data)


class FeedRetireApi(APIView):
    permission_classes = [MANAGE_FEED]

    @extend_schema(request=None, responses=FeedOutput)
    def post(self, request: Request, name: str) -> Response:
        feed = services.feed_retire(actor=request.user, name=name)
        return Response(FeedOutput(_read_back(feed)).data)


class ReleaseOutput(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = ["version", "created_at", "change_count", "first_change_id", "last_change_id"]


class ReleaseListApi(APIView):
    permission_classes = [VIEW_RELEASE]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=page_schema("ReleasePage", ReleaseOutput))
    def get(self, request: Request) -> Response:
        def serialize(rows: Sequence[Release]) -> list[Any]:
            return list(ReleaseOutput(rows, many=True).data)

        return Response(keyset_page(request, selectors.release_list(), serialize, key="version"))


# --- Published artefacts (staff and auditors; members get them through the sync API) ---------


class FeedManifestApi(APIView):
    """The feed's newest signed manifest: the DSSE envelope, byte for byte."""

    permission_classes = [VIEW_FEED]

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request: Request, name: str) -> HttpResponse:
        feed = selectors.feed_get(name=name)
        manifest = selectors.manifest_latest(feed.pk) if feed else None
        if manifest is None:
            raise NotFound(f"Feed {name} has no published manifest.")
        return HttpResponse(bytes(manifest.envelope), content_type="application/json")


class KeyringApi(APIView):
    """Every keyring version in order, as DSSE envelopes (verify from the pinned root)."""

    permission_classes = [VIEW_FEED]

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request: Request) -> HttpResponse:
        envelopes = b",".join(selectors.keyring_envelopes())
        return HttpResponse(b'{"keyrings":[' + envelopes + b"]}", content_type="application/json")


class BundleApi(APIView):
    """A bundle by its SHA-256: streamed from local storage, or a redirect to a short-lived
    presigned URL when bundles live on S3. Only for roles that may read entries (a bundle is a
    feed's hashes); every download is on the audit trail."""

    content_negotiation_class = BinaryContentNegotiation
    permission_classes = [has_perm(*services.DOWNLOAD_BUNDLE)]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, sha256: str) -> HttpResponseBase:
        bundle = selectors.bundle_get(sha256)
        if bundle is None:
            raise NotFound("No bundle has that SHA-256.")
        response = bundle_response(sha256)
        delivery = "presigned_url" if isinstance(response, HttpResponseRedirect) else "streamed"
        try:
            services.bundle_download_record(actor=request.user, bundle=bundle, delivery=delivery)
        except BaseException:
            response.close()  # the open file of a streamed answer that will not be sent
            raise
        return response
