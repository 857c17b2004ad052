"""The StopNCII ``FetchHashes`` endpoint (the package's docstring explains the protocol)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from hashsync.errors import NotFound
from hashsync.validation import query_int
from members import selectors
from members.models import TokenScope
from sync import services
from sync.apis import MemberApi
from sync.auth import pace, principal_of, require_scope
from sync.limits import DOWNLOADS, spend
from sync.stopncii.auth import StopNCIIKeyAuthentication
from sync.stopncii.cursor import (
    CURSOR_MAX_AGE_SECONDS,
    MAX_TIMESTAMP,
    memo_put,
    token_decode,
    token_encode,
)
from sync.stopncii.paging import SIGNAL_TYPE, fetch_page

DEFAULT_PAGE_SIZE = 800  # what the threatexchange client asks for
MAX_PAGE_SIZE = 10_000


_FEEDBACK = inline_serializer(
    "StopNCIIFeedback",
    {
        "source": serializers.CharField(),
        "feedbackValue": serializers.ChoiceField(choices=["Blocked", "Deleted"]),
        "tags": serializers.ListField(child=serializers.CharField()),
    },
)
_RECORD = inline_serializer(
    "StopNCIIHashRecord",
    {
        "lastModtimestamp": serializers.IntegerField(),
        "signalType": serializers.ChoiceField(choices=[SIGNAL_TYPE]),
        "hashValue": serializers.CharField(),
        "hashStatus": serializers.ChoiceField(choices=["Active", "Deleted"]),
        "caseNumbers": serializers.DictField(child=serializers.CharField()),
        "CSPFeedbacks": serializers.ListField(child=_FEEDBACK),
    },
)


class StopNCIIFetchHashesApi(MemberApi):
    """StopNCII ``FetchHashes`` over one feed's PDQ hashes (docs/sync-api.md, "StopNCII
    compatibility")."""

    authentication_classes = [StopNCIIKeyAuthentication]
    permission_classes = [require_scope(TokenScope.SYNC)]

    @extend_schema(
        operation_id="stopncii_fetch_hashes",
        parameters=[
            OpenApiParameter(
                "startTimestamp",
                int,
                description="The nextSetTimestamp of your last complete fetch (0: from nothing).",
            ),
            OpenApiParameter("pageSize", int, description=f"1..{MAX_PAGE_SIZE}, default 800."),
            OpenApiParameter("nextPageToken", str, description="From the previous page."),
        ],
        responses=inline_serializer(
            "StopNCIIFetchHashes",
            {
                "count": serializers.IntegerField(),
                "nextPageToken": serializers.CharField(allow_null=True),
                "nextSetTimestamp": serializers.IntegerField(),
                "hasMoreRecords": serializers.BooleanField(),
                "hashRecords": serializers.ListField(child=_RECORD),
            },
        ),
    )
    def get(self, request: Request, name: str) -> Response:
        principal = principal_of(request)
        # Every page counts, the first of a fetch and those after it (a replayed
        # nextPageToken too): pages hand out the list, as bundles do, and share their budget.
        spend(principal, DOWNLOADS, per_minute=settings.HASHSYNC_BUNDLE_DOWNLOADS_PER_MINUTE)
        start = query_int(
            request.query_params,
            "startTimestamp",
            default=0,
            minimum=0,
            maximum=MAX_TIMESTAMP,
            code="invalid_start_timestamp",
        )
        size = query_int(
            request.query_params,
            "pageSize",
            default=DEFAULT_PAGE_SIZE,
            minimum=1,
            maximum=MAX_PAGE_SIZE,
            code="invalid_page_size",
        )
        feed = selectors.entitled_feed(principal.member, name)
        if feed is None:
            raise NotFound("You receive no feed of that name.")
        raw_token = request.query_params.get("nextPageToken", "")
        cursor = token_decode(feed, raw_token, principal.client.pk) if raw_token else None
        if cursor is None:
            # Only the first page of a fetch is paced: the client pages without pausing.
            pace(principal, f"stopncii:{feed.pk}")
        page = fetch_page(feed, start=start, size=size, cursor=cursor)
        if page.held is not None:
            memo_put(feed, page.held)
        if page.records:
            services.record_page_served(
                principal=principal, feed=feed, page=page, window=CURSOR_MAX_AGE_SECONDS
            )
        return Response(
            {
                "count": len(page.records),
                "nextPageToken": (
                    token_encode(feed, page.cursor, principal.client.pk) if page.cursor else None
                ),
                "nextSetTimestamp": page.next_set_timestamp,
                "hasMoreRecords": page.cursor is not None,
                "hashRecords": page.records,
            }
        )
