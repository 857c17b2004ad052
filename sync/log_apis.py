"""The transparency log over the member API (docs/transparency.md): the newest checkpoint, an
inclusion proof and a consistency proof, each on its own. Proofs are hashes only; a leaf's index
tells a member nothing about feeds it does not receive."""

from __future__ import annotations

import base64

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from hashsync.errors import InvalidInput, NotFound
from hashsync.validation import MAX_BIGINT, query_int
from hashsync_client.tlog import ProofError
from members.models import TokenScope
from sync.apis import MemberApi
from sync.auth import principal_of, require_scope
from sync.limits import spend
from transparency import selectors as log_selectors
from transparency.models import Checkpoint


def _checkpoint() -> Checkpoint:
    checkpoint = log_selectors.checkpoint_latest()
    if checkpoint is None:
        raise NotFound(
            "The log is empty: nothing has been signed since it began.", code="log_empty"
        )
    return checkpoint


def _size(request: Request, name: str, checkpoint: Checkpoint, *, minimum: int = 1) -> int:
    size = query_int(
        request.query_params,
        name,
        default=checkpoint.size if name == "size" else None,
        minimum=minimum,
        maximum=MAX_BIGINT,
        code="log_size_invalid",
    )
    if size > checkpoint.size:
        raise InvalidInput(
            f"{name} {size} is larger than the log ({checkpoint.size} leaves).",
            code="log_size_invalid",
            details={"log_size": checkpoint.size},
        )
    return size


class LogApi(MemberApi):
    permission_classes = [require_scope(TokenScope.SYNC)]

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        super().initial(request, *args, **kwargs)
        principal = principal_of(request)
        spend(principal, "member", per_minute=settings.HASHSYNC_MEMBER_REQUESTS_PER_MINUTE)


class SyncLogCheckpointApi(LogApi):
    """The log's newest signed checkpoint (a C2SP signed note)."""

    @extend_schema(
        operation_id="sync_log_checkpoint",
        responses=inline_serializer(
            "SyncLogCheckpoint",
            {"checkpoint": serializers.CharField(), "size": serializers.IntegerField()},
        ),
    )
    def get(self, request: Request) -> Response:
        checkpoint = _checkpoint()
        note = log_selectors.checkpoint_served(checkpoint)
        return Response({"checkpoint": note, "size": checkpoint.size})


def _proof_response(fields: dict[str, int], hashes: list[bytes]) -> Response:
    return Response({**fields, "hashes": [base64.b64encode(h).decode() for h in hashes]})


_PROOF: dict[str, serializers.Field] = {
    "size": serializers.IntegerField(),
    "hashes": serializers.ListField(child=serializers.CharField()),
}


class SyncLogInclusionApi(LogApi):
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves (default: the
    newest checkpoint's)."""

    @extend_schema(
        operation_id="sync_log_inclusion",
        parameters=[
            OpenApiParameter("index", int, required=True),
            OpenApiParameter("size", int, required=False),
        ],
        responses=inline_serializer(
            "SyncLogInclusion", {"index": serializers.IntegerField(), **_PROOF}
        ),
    )
    def get(self, request: Request) -> Response:
        checkpoint = _checkpoint()
        size = _size(request, "size", checkpoint)
        index = query_int(
            request.query_params,
            "index",
            default=None,
            minimum=0,
            maximum=MAX_BIGINT,
            code="log_index_invalid",
        )
        if index >= size:
            raise InvalidInput(f"index must be below size ({size}).", code="log_index_invalid")
        inclusion, _ = log_selectors.proofs(inclusions=[index], size=size)
        return _proof_response({"index": index, "size": size}, inclusion[index])


class SyncLogConsistencyApi(LogApi):
    """RFC 9162 consistency proof from the tree of ``from_size`` leaves to the one of ``size``
    (default: the newest checkpoint's)."""

    @extend_schema(
        operation_id="sync_log_consistency",
        parameters=[
            OpenApiParameter("from_size", int, required=True),
            OpenApiParameter("size", int, required=False),
        ],
        responses=inline_serializer(
            "SyncLogConsistency", {"from_size": serializers.IntegerField(), **_PROOF}
        ),
    )
    def get(self, request: Request) -> Response:
        checkpoint = _checkpoint()
        size = _size(request, "size", checkpoint)
        from_size = _size(request, "from_size", checkpoint)
        if from_size > size:
            raise InvalidInput("from_size must not exceed size.", code="log_size_invalid")
        try:
            _, consistency = log_selectors.proofs(
                inclusions=[], size=size, consistency_from=from_size
            )
        except ProofError as exc:
            raise InvalidInput(str(exc), code=exc.code) from None
        assert consistency is not None
        return _proof_response({"from_size": from_size, "size": size}, consistency)
