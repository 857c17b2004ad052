"""Keyset pagination: ``?after=<key>&limit=<n>``. Constant cost per page however deep, and
stable while rows are added (unlike offsets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request

from hashsync.validation import MAX_BIGINT, query_int

M = TypeVar("M", bound=Model)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def keyset_page(
    request: Request,
    queryset: QuerySet[M],
    serialize: Callable[[Sequence[M]], list[Any]],
    *,
    key: str = "id",
) -> dict[str, Any]:
    params = request.query_params
    after = query_int(params, "after", default=0, minimum=0, maximum=MAX_BIGINT)
    limit = query_int(params, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    rows = list(queryset.filter(**{f"{key}__gt": after}).order_by(key)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "results": serialize(rows),
        "next_after": getattr(rows[-1], key) if more and rows else None,
    }


PAGE_PARAMETERS = [
    OpenApiParameter("after", int, description="Return rows after this key (keyset pagination)."),
    OpenApiParameter("limit", int, description="Rows per page, 1–1000 (default 100)."),
]


def page_schema(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    """The OpenAPI shape of a ``keyset_page`` response of ``item`` rows."""
    return inline_serializer(
        name=name,
        fields={
            "results": item(many=True),
            "next_after": serializers.IntegerField(allow_null=True),
        },
    )
