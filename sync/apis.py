"""The member sync API (docs/sync-api.md): authenticated by member API tokens only.

Every view starts from what the member may receive (``members.selectors.entitlements_in_force``,
through ``entitled_feeds`` or the token query's feed head), so a member never receives — nor
learns of, through an error — a feed, bundle or lookup result it is not entitled to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from distribution import keys, plans
from distribution import selectors as distribution_selectors
from distribution.apis import FeedFilterFields
from distribution.bundles import bundle_response
from distribution.log_proofs import plan_log
from distribution.models import Feed
from hashlist.grading import parse_hash
from hashsync import metrics
from hashsync.api import BinaryContentNegotiation
from hashsync.errors import InvalidInput, NotFound
from hashsync.validation import (
    MAX_BIGINT,
    MAX_TEXT,
    SHA256_HEX,
    QuietChoiceField,
    query_int,
    validated,
)
from members import selectors as member_selectors
from members.models import Feedback, TokenScope
from sync import selectors, services
from sync.auth import MemberTokenAuthentication, pace, principal_of, require_scope
from sync.limits import DOWNLOADS, spend


class MemberApi(APIView):
    authentication_classes = [MemberTokenAuthentication]


def _envelope(data: bytes | None) -> Any:
    return json.loads(data) if data is not None else None


def _entitled_feed(request: Request, name: str) -> Feed:
    feed = member_selectors.entitled_feed(principal_of(request).member, name)
    if feed is None:
        raise NotFound("You receive no feed of that name.")
    return feed


class SyncFeedOutput(FeedFilterFields):
    filter = serializers.CharField()  # the filter in words
    version = serializers.IntegerField()
    entry_count = serializers.IntegerField()
    state_digest = serializers.CharField(allow_null=True)
    manifest_sha256 = serializers.CharField(allow_null=True)
    published = serializers.BooleanField()


class SyncFeedListApi(MemberApi):
    permission_classes = [require_scope(TokenScope.SYNC)]

    @extend_schema(
        operation_id="sync_feeds",
        responses=inline_serializer(
            "SyncFeedList",
            {
                "poll_interval_seconds": serializers.IntegerField(),
                "feeds": SyncFeedOutput(many=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        pace(principal, "feeds")
        feeds = selectors.feed_list(principal.member)
        return Response(
            {"poll_interval_seconds": settings.HASHSYNC_POLL_INTERVAL_SECONDS, "feeds": feeds}
        )


def from_version_of(params: Mapping[str, str]) -> int:
    """The plan's ``from_version`` parameter: the version the client holds; 0: none."""
    return query_int(params, "from_version", default=None, minimum=0, maximum=MAX_BIGINT)


def _from_version(request: Request) -> int:
    return from_version_of(request.query_params)


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak or strong)."""
    if not if_none_match:
        return False
    return any(tag.strip() in (etag, f"W/{etag}") for tag in if_none_match.split(","))


def _log_size(request: Request) -> int:
    # The size of the log checkpoint the client holds; 0: none.
    return query_int(
        request.query_params,
        "log_size",
        default=0,
        minimum=0,
        maximum=MAX_BIGINT,
        code="log_size_invalid",
    )


def _etag_matches(request: Request, etag: str) -> bool:
    return etag_matches(request.META.get("HTTP_IF_NONE_MATCH", ""), etag)


_STEP = inline_serializer(
    "SyncPlanStep",
    {
        "kind": serializers.ChoiceField(choices=["snapshot", "delta"]),
        "from_version": serializers.IntegerField(),
        "to_version": serializers.IntegerField(),
        "sha256": serializers.CharField(),
        "size": serializers.IntegerField(),
        "records": serializers.IntegerField(allow_null=True),
        "url": serializers.CharField(),
        "manifest": serializers.DictField(),
    },
)


class SyncPlanApi(MemberApi):
    """ "I hold version N of feed F": what to fetch. Send ``If-None-Match`` with the previous
    answer's ETag for the cheap up-to-date check (304)."""

    permission_classes = [require_scope(TokenScope.SYNC)]
    feed_head_kwarg = "name"  # MemberTokenAuthentication reads this feed with the token

    @extend_schema(
        operation_id="sync_plan",
        parameters=[
            OpenApiParameter(
                "from_version", int, required=True, description="The version you hold (0: none)."
            ),
            OpenApiParameter(
                "log_size",
                int,
                required=False,
                description="The size of the log checkpoint you hold (0 or absent: none).",
            ),
        ],
        responses={
            200: inline_serializer(
                "SyncPlan",
                {
                    "feed": serializers.CharField(),
                    "from_version": serializers.IntegerField(),
                    "version": serializers.IntegerField(),
                    "status": serializers.ChoiceField(choices=["up_to_date", "deltas", "snapshot"]),
                    "poll_interval_seconds": serializers.IntegerField(),
                    "manifest": serializers.DictField(allow_null=True),
                    "keyrings": serializers.ListField(child=serializers.DictField()),
                    "steps": serializers.ListField(child=_STEP),
                    "log": serializers.DictField(allow_null=True),
                },
            ),
            304: None,
        },
    )
    def get(self, request: Request, name: str) -> HttpResponseBase:
        principal = principal_of(request)
        from_version = _from_version(request)
        # Entitlement and the newest manifest, read by the token's own query (feed_head_kwarg
        # above): the whole poll is one query, ~0.16 ms of CPU with PostgreSQL's. Before: four
        # ORM queries, ~2.1 ms (P4, docs/benchmarks.md).
        head = principal.entitled_feed_head(name)
        if head is None:
            raise NotFound("You receive no feed of that name.")
        feed = head.feed
        pace(principal, f"plan:{feed.pk}")
        etag = plans.plan_etag(head.manifest_sha256, from_version)
        if _etag_matches(request, etag):
            response: HttpResponseBase = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
        else:
            plan = plans.plan_build(feed, from_version)
            if plan.manifest is not None:
                services.record_plan_served(
                    actor_label=principal.label,
                    client_id=principal.client.pk,
                    feed=feed,
                    plan=plan,
                    token_prefix=principal.token.prefix,
                )
            response = Response(
                {
                    "feed": plan.feed,
                    "from_version": plan.from_version,
                    "version": plan.version,
                    "status": plan.status,
                    "poll_interval_seconds": settings.HASHSYNC_POLL_INTERVAL_SECONDS,
                    "manifest": _envelope(plan.manifest),
                    "keyrings": [_envelope(k) for k in keys.keyring_envelopes()],
                    "steps": [
                        {
                            "kind": step.kind,
                            "from_version": step.from_version,
                            "to_version": step.to_version,
                            "sha256": step.sha256,
                            "size": step.size,
                            "records": step.records,
                            "url": f"/api/v1/sync/bundles/{step.sha256}/",
                            "manifest": _envelope(step.manifest),
                        }
                        for step in plan.steps
                    ],
                    # Transparency (docs/transparency.md): read here, never on the 304 path.
                    "log": plan_log(plan, log_size=_log_size(request)),
                }
            )
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        return response


def _count_bundle_served(response: HttpResponseBase, sha256: str) -> None:
    """Bundle bytes handed out (/metrics): streamed ones by their length, redirected ones (S3)
    by the size the bundle index records."""
    if response.has_header("Content-Length"):
        via, size = "app", int(response["Content-Length"])
    else:
        bundle = distribution_selectors.bundle_get(sha256)
        via, size = "redirect", bundle.size if bundle is not None else 0
    metrics.BUNDLES_SERVED.labels(via).inc()
    metrics.BUNDLE_BYTES_SERVED.labels(via).inc(size)


class SyncBundleApi(MemberApi):
    """A bundle of one of your feeds, by SHA-256."""

    content_negotiation_class = BinaryContentNegotiation
    permission_classes = [require_scope(TokenScope.SYNC)]

    @extend_schema(
        operation_id="sync_bundle",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 302: None},
    )
    def get(self, request: Request, sha256: str) -> HttpResponseBase:
        principal = principal_of(request)
        spend(principal, DOWNLOADS, per_minute=settings.HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE)
        # One answer for "malformed", "no such bundle" and "not yours": nothing to probe.
        not_found = NotFound("None of your feeds has a bundle with that SHA-256.")
        if not SHA256_HEX.fullmatch(sha256):
            raise not_found
        feeds = selectors.bundle_feeds(principal.member, sha256)
        if not feeds:
            raise not_found
        services.record_bundle_served(
            actor_label=principal.label,
            client_id=principal.client.pk,
            sha256=sha256,
            feeds=feeds,
            token_prefix=principal.token.prefix,
        )
        response = bundle_response(sha256)
        _count_bundle_served(response, sha256)
        return response


class SyncAckApi(MemberApi):
    permission_classes = [require_scope(TokenScope.SYNC)]

    @extend_schema_serializer(component_name="SyncAckInput")
    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(min_value=1, max_value=MAX_BIGINT)
        state_digest = serializers.RegexField(r"^[0-9a-f]{64}\Z")

    @extend_schema(
        operation_id="sync_ack",
        request=InputSerializer,
        responses=inline_serializer(
            "SyncAckResult",
            {
                "status": serializers.ChoiceField(choices=["ok", "mismatch"]),
                "version": serializers.IntegerField(),
                "message": serializers.CharField(required=False),
            },
        ),
    )
    def post(self, request: Request, name: str) -> Response:
        principal = principal_of(request)
        spend(principal, "member", per_minute=settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE)
        feed = _entitled_feed(request, name)
        data = validated(self.InputSerializer, request.data)
        ack = services.ack_record(principal=principal, feed=feed, **data)
        if ack.digest_matches:
            return Response({"status": "ok", "version": ack.version})
        return Response(
            {
                "status": "mismatch",
                "version": ack.version,
                "message": "That is not the state digest of this version: discard your copy "
                "of the feed and sync again from version 0 (the snapshot).",
            }
        )


class SyncLookupApi(MemberApi):
    permission_classes = [require_scope(TokenScope.LOOKUP)]

    @extend_schema(
        operation_id="sync_lookup",
        request=inline_serializer(
            "SyncLookupInput",
            {
                "hashes": serializers.ListField(
                    child=inline_serializer(
                        "SyncLookupHash",
                        {"algorithm": serializers.CharField(), "value": serializers.CharField()},
                    )
                )
            },
        ),
        responses=inline_serializer(
            "SyncLookupResult",
            {
                "results": serializers.ListField(
                    child=inline_serializer(
                        "SyncLookupMatch",
                        {
                            "algorithm": serializers.CharField(),
                            "value": serializers.CharField(),
                            "matched": serializers.BooleanField(),
                            "feeds": serializers.ListField(child=serializers.CharField()),
                            "category": serializers.CharField(allow_null=True),
                            "age_group": serializers.CharField(allow_null=True),
                            "baseline": serializers.BooleanField(allow_null=True),
                            "industry_class": serializers.CharField(allow_null=True),
                            "content_type": serializers.CharField(allow_null=True),
                        },
                    )
                )
            },
        ),
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        spend(principal, "member", per_minute=settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE)
        pairs = _hash_batch(request, what="lookup")
        results = services.lookup_answer(principal=principal, pairs=pairs)
        return Response({"results": results})


def _hash_batch(request: Request, *, what: str, too_many: str = "invalid_input") -> list[Any]:
    """The body's ``hashes``, parsed: 1..HASHSYNC_LOOKUP_MAX_HASHES {algorithm, value}."""
    items = request.data.get("hashes") if isinstance(request.data, dict) else None
    limit = settings.HASHSYNC_LOOKUP_MAX_HASHES
    if not isinstance(items, list) or not items:
        raise InvalidInput("hashes must be a non-empty list of {algorithm, value} objects.")
    if len(items) > limit:
        raise InvalidInput(f"At most {limit} hashes per {what}; split the batch.", code=too_many)
    pairs = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"hashes[{index}] must be an object with algorithm and value.")
        pairs.append(parse_hash(item.get("algorithm"), item.get("value"), where=f"hashes[{index}]"))
    return pairs


_GRADING_FIELDS: dict[str, serializers.Field] = {
    "category": serializers.CharField(allow_null=True),
    "age_group": serializers.CharField(allow_null=True),
    "baseline": serializers.BooleanField(allow_null=True),
    "industry_class": serializers.CharField(allow_null=True),
    "content_type": serializers.CharField(allow_null=True),
}


class SyncMatchApi(MemberApi):
    """Match a batch of hashes against your feeds without holding them: PDQ by Hamming
    distance (exact, ``sync.matcher``), every other algorithm exactly (docs/sync-api.md)."""

    permission_classes = [require_scope(TokenScope.LOOKUP)]

    @extend_schema(
        operation_id="sync_match",
        request=inline_serializer(
            "SyncMatchInput",
            {
                "hashes": serializers.ListField(
                    child=inline_serializer(
                        "SyncMatchHash",
                        {"algorithm": serializers.CharField(), "value": serializers.CharField()},
                    ),
                    min_length=1,
                    max_length=1000,
                ),
                "threshold": serializers.IntegerField(
                    required=False,
                    min_value=0,
                    help_text="PDQ: the largest Hamming distance that matches (default 31; at "
                    "most HASHSYNC_MATCH_MAX_THRESHOLD).",
                ),
            },
        ),
        responses=inline_serializer(
            "SyncMatchResult",
            {
                "threshold": serializers.IntegerField(),
                "results": serializers.ListField(
                    child=inline_serializer(
                        "SyncMatchAnswer",
                        {
                            "algorithm": serializers.CharField(),
                            "value": serializers.CharField(),
                            "matched": serializers.BooleanField(),
                            "matches": serializers.ListField(
                                child=inline_serializer(
                                    "SyncMatchEntry",
                                    {
                                        "feed": serializers.CharField(),
                                        "value": serializers.CharField(),
                                        "distance": serializers.IntegerField(),
                                        **_GRADING_FIELDS,
                                        "framework": serializers.CharField(),
                                        "framework_version": serializers.IntegerField(
                                            allow_null=True
                                        ),
                                        "class": serializers.CharField(),
                                    },
                                )
                            ),
                        },
                    )
                ),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        spend(principal, "member", per_minute=settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE)
        pairs = _hash_batch(request, what="match", too_many="too_many_hashes")
        highest = settings.HASHSYNC_MATCH_MAX_THRESHOLD
        default = min(settings.HASHSYNC_MATCH_DEFAULT_THRESHOLD, highest)
        threshold = request.data.get("threshold", default)
        if type(threshold) is not int or not 0 <= threshold <= highest:
            raise InvalidInput(
                f"threshold must be a whole number of bits from 0 to {highest}.",
                code="invalid_threshold",
            )
        results = services.match_answer(principal=principal, pairs=pairs, threshold=threshold)
        return Response({"threshold": threshold, "results": results})


class FeedbackOutput(serializers.ModelSerializer):
    class Meta:
        model = Feedback
        fields = ["id", "kind", "status", "created_at", "resolved_at", "resolution"]


class SyncFeedbackApi(MemberApi):
    permission_classes = [require_scope(TokenScope.FEEDBACK)]

    @extend_schema_serializer(component_name="SyncFeedbackInput")
    class InputSerializer(serializers.Serializer):
        algorithm = serializers.CharField(max_length=32)
        value = serializers.CharField(max_length=4096)
        kind = QuietChoiceField(choices=["false_positive"])
        reason = serializers.CharField(max_length=MAX_TEXT)

    @extend_schema(operation_id="sync_feedback_list", responses=FeedbackOutput(many=True))
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        rows = selectors.feedback_of(principal.member)
        return Response(FeedbackOutput(rows, many=True).data)

    @extend_schema(
        operation_id="sync_feedback_create",
        request=InputSerializer,
        responses={201: FeedbackOutput},
    )
    def post(self, request: Request) -> Response:
        principal = principal_of(request)
        spend(principal, "member", per_minute=settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE)
        data = validated(self.InputSerializer, request.data)
        feedback = services.feedback_create(principal=principal, **data)
        return Response(FeedbackOutput(feedback).data, status=status.HTTP_201_CREATED)
