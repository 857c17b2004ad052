"""The analyst, reviewer and auditor API (``/api/v1/``): one view per operation.

Views check the caller's role, validate the shape of the input with a nested serializer, call
one service or selector, and serialise the result. Errors are raised, never returned: the
exception handler in ``hashsync.api`` renders them. Hash values travel only in request bodies,
never in URLs, so they cannot land in access logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import (
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hashlist import framework_store, selectors, services
from hashlist.frameworks.facts import FACTS, NEW_FACTS, UNKNOWN
from hashlist.grading import GRADING_FIELDS
from hashlist.models import (
    AGE_GROUP_CHOICES,
    CATEGORY_CHOICES,
    CONTENT_TYPE_CHOICES,
    INDUSTRY_CLASS_CHOICES,
    Entry,
    EntryStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
)
from hashsync.errors import InvalidInput, NotFound
from hashsync.pagination import PAGE_PARAMETERS, keyset_page, page_schema
from hashsync.permissions import has_perm
from hashsync.validation import AlgorithmField, QuietChoiceField

VIEW_ENTRY = has_perm("hashlist.view_entry")
VIEW_PROPOSAL = has_perm("hashlist.view_proposal")
PROPOSE = has_perm("hashlist.propose_change")
REVIEW = has_perm("hashlist.review_proposal")


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _choice(choices: Any, *, required: bool = False) -> serializers.ChoiceField:
    return QuietChoiceField(choices=getattr(choices, "choices", choices), required=required)


class HashSerializer(serializers.Serializer):
    algorithm = AlgorithmField()
    value = serializers.CharField(max_length=2048, trim_whitespace=False)


class EntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    category = serializers.CharField()
    age_group = serializers.CharField()
    baseline = serializers.BooleanField(allow_null=True)
    industry_class = serializers.CharField()
    content_type = serializers.CharField()
    # A field named "source" shadows Field.source in the stubs; DRF itself allows it.
    source = serializers.CharField()  # type: ignore[assignment]
    notes = serializers.CharField(help_text="Internal analyst notes; never distributed.")
    status = serializers.CharField()
    revision = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    hashes = serializers.SerializerMethodField()
    facts = serializers.SerializerMethodField()
    classes = serializers.SerializerMethodField()

    def get_facts(self, entry: Entry) -> dict[str, str]:
        """What the analyst recorded (docs/grading.md); "unknown" where they could not tell."""
        return framework_store.facts_of(entry)

    def get_classes(self, entry: Entry) -> dict[str, str]:
        """Each framework's class for the entry's facts under its current rules, or
        "unassessed" where the facts do not determine one."""
        defs = self.context.get("definitions")
        if defs is None:
            defs = self.context["definitions"] = framework_store.definitions()
        return framework_store.classes_of(framework_store.facts_of(entry), defs)

    def get_hashes(self, entry: Entry) -> list[dict[str, str]]:
        return [
            {"algorithm": h.algorithm, "value": selectors.hash_canonical(h.algorithm, h.value)}
            for h in entry.hashes.all()
        ]


class ProposalOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    entry = serializers.IntegerField(source="entry_id", allow_null=True)
    base_revision = serializers.IntegerField(allow_null=True)
    payload = serializers.JSONField()
    comment = serializers.CharField()
    author = serializers.CharField(source="author.username")
    reviewer = serializers.CharField(source="reviewer.username", allow_null=True, default=None)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    review_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    import_batch = serializers.SerializerMethodField()
    import_status = serializers.SerializerMethodField()

    def get_import_batch(self, proposal: Proposal) -> int | None:
        batch = getattr(proposal, "import_batch", None)
        return batch.pk if batch else None

    def get_import_status(self, proposal: Proposal) -> str | None:
        """An approved import is applied by a task: ``applying``, then ``approved`` (applied)
        or ``failed`` (nothing applied; the import's failure_message says why)."""
        batch = getattr(proposal, "import_batch", None)
        return batch.status if batch else None


def _entries(rows: Sequence[Entry]) -> list[Any]:
    context = {"definitions": framework_store.definitions()}
    return list(EntryOutput(rows, many=True, context=context).data)


def _proposals(rows: Sequence[Proposal]) -> list[Any]:
    return list(ProposalOutput(rows, many=True).data)


# --- Entries --------------------------------------------------------------------------------


class EntryListApi(APIView):
    permission_classes = [VIEW_ENTRY]

    class FilterSerializer(serializers.Serializer):
        status = _choice(EntryStatus)
        category = _choice(CATEGORY_CHOICES)

    @extend_schema(
        operation_id="entries_list",
        parameters=[*PAGE_PARAMETERS, FilterSerializer],
        responses=page_schema("EntryPage", EntryOutput),
    )
    def get(self, request: Request) -> Response:
        filters = _validated(self.FilterSerializer, request.query_params.dict())
        return Response(keyset_page(request, selectors.entry_list(**filters), _entries))


class EntryDetailApi(APIView):
    permission_classes = [VIEW_ENTRY]

    @extend_schema(operation_id="entries_retrieve", responses=EntryOutput)
    def get(self, request: Request, entry_id: int) -> Response:
        entry = selectors.entry_get(entry_id=entry_id)
        if entry is None:
            raise NotFound(f"Entry {entry_id} does not exist.")
        return Response(EntryOutput(entry).data)


class HashSearchApi(APIView):
    """Find entries by a hash value in any accepted form (POST so the value stays out of URLs)."""

    permission_classes = [VIEW_ENTRY]

    # Every view names its input "InputSerializer"; the schema needs a distinct component each,
    # or drf-spectacular silently gives all of them the first one's fields.
    @extend_schema_serializer(component_name="HashSearchInput")
    class InputSerializer(serializers.Serializer):
        value = serializers.CharField(max_length=2048, trim_whitespace=False)
        algorithm = AlgorithmField(required=False)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            name="HashSearchResult",
            fields={
                "matches": inline_serializer(
                    name="HashSearchMatch",
                    fields={"algorithm": serializers.CharField(), "entry": EntryOutput()},
                    many=True,
                )
            },
        ),
    )
    def post(self, request: Request) -> Response:
        data = _validated(self.InputSerializer, request.data)
        matches = selectors.hash_search(value=data["value"], algorithm=data.get("algorithm"))
        return Response(
            {"matches": [{"algorithm": a, "entry": EntryOutput(e).data} for a, e in matches]}
        )


# --- Proposals ------------------------------------------------------------------------------


class GradingFields(serializers.Serializer):
    category = _choice(CATEGORY_CHOICES)
    age_group = _choice(AGE_GROUP_CHOICES)
    baseline = serializers.BooleanField(required=False, allow_null=True)
    industry_class = QuietChoiceField(
        choices=INDUSTRY_CLASS_CHOICES, required=False, allow_blank=True
    )
    content_type = _choice(CONTENT_TYPE_CHOICES)

    def grading(self, data: dict[str, Any]) -> dict[str, Any]:
        return {k: data[k] for k in GRADING_FIELDS if k in data}


class FactsInput(serializers.Serializer):
    """The facts that are not grading fields; each may be left out or "unknown"."""

    pubertal_stage = QuietChoiceField(choices=[*FACTS["pubertal_stage"], UNKNOWN], required=False)
    activity = QuietChoiceField(choices=[*FACTS["activity"], UNKNOWN], required=False)
    origin = QuietChoiceField(choices=[*FACTS["origin"], UNKNOWN], required=False)
    self_generated = QuietChoiceField(choices=[*FACTS["self_generated"], UNKNOWN], required=False)


def _facts(data: dict[str, Any]) -> dict[str, str] | None:
    given = data.get("facts")
    return {k: given[k] for k in NEW_FACTS if k in given} if given is not None else None


def _created(proposal: Proposal) -> Response:
    return Response(ProposalOutput(proposal).data, status=status.HTTP_201_CREATED)


class ProposeCreateEntryApi(APIView):
    permission_classes = [PROPOSE]

    @extend_schema_serializer(component_name="ProposeCreateEntryInput")
    class InputSerializer(GradingFields):
        # Required unless the facts determine it (the UK framework's class).
        category = _choice(CATEGORY_CHOICES)
        age_group = _choice(AGE_GROUP_CHOICES, required=True)
        facts = FactsInput(required=False)
        hashes = HashSerializer(many=True, allow_empty=False)
        source = serializers.CharField(  # type: ignore[assignment]
            max_length=200, required=False, allow_blank=True
        )
        notes = serializers.CharField(max_length=4000, required=False, allow_blank=True)
        comment = serializers.CharField(max_length=4000, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={201: ProposalOutput})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer
        data = _validated(serializer, request.data)
        proposal = services.proposal_create_entry(
            actor=request.user,
            grading=GradingFields().grading(data),
            facts=_facts(data),
            hashes=[dict(h) for h in data["hashes"]],
            source=data.get("source", ""),
            notes=data.get("notes", ""),
            comment=data.get("comment", ""),
        )
        return _created(proposal)


class ProposeRegradeApi(APIView):
    permission_classes = [PROPOSE]

    @extend_schema_serializer(component_name="ProposeRegradeInput")
    class InputSerializer(GradingFields):
        entry = serializers.IntegerField(min_value=1)
        facts = FactsInput(required=False)
        comment = serializers.CharField(max_length=4000, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={201: ProposalOutput})
    def post(self, request: Request) -> Response:
        data = _validated(self.InputSerializer, request.data)
        grading = GradingFields().grading(data)
        facts = _facts(data)
        if not grading and not facts:
            raise InvalidInput("Give at least one grading field or fact to change.")
        return _created(
            services.proposal_regrade(
                actor=request.user,
                entry_id=data["entry"],
                grading=grading,
                facts=facts,
                comment=data.get("comment", ""),
            )
        )


class _HashChangeInput(serializers.Serializer):
    entry = serializers.IntegerField(min_value=1)
    algorithm = AlgorithmField()
    value = serializers.CharField(max_length=2048, trim_whitespace=False)
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True)


class ProposeAddHashApi(APIView):
    permission_classes = [PROPOSE]

    @extend_schema(request=_HashChangeInput, responses={201: ProposalOutput})
    def post(self, request: Request) -> Response:
        data = _validated(_HashChangeInput, request.data)
        return _created(
            services.proposal_add_hash(
                actor=request.user,
                entry_id=data["entry"],
                algorithm=data["algorithm"],
                value=data["value"],
                comment=data.get("comment", ""),
            )
        )


class ProposeRemoveHashApi(APIView):
    permission_classes = [PROPOSE]

    @extend_schema(request=_HashChangeInput, responses={201: ProposalOutput})
    def post(self, request: Request) -> Response:
        data = _validated(_HashChangeInput, request.data)
        return _created(
            services.proposal_remove_hash(
                actor=request.user,
                entry_id=data["entry"],
                algorithm=data["algorithm"],
                value=data["value"],
                comment=data.get("comment", ""),
            )
        )


class ProposeRetractApi(APIView):
    permission_classes = [PROPOSE]

    @extend_schema_serializer(component_name="ProposeRetractInput")
    class InputSerializer(serializers.Serializer):
        entry = serializers.IntegerField(min_value=1)
        reason = serializers.CharField(max_length=4000)

    @extend_schema(request=InputSerializer, responses={201: ProposalOutput})
    def post(self, request: Request) -> Response:
        data = _validated(self.InputSerializer, request.data)
        return _created(
            services.proposal_retract(
                actor=request.user, entry_id=data["entry"], reason=data["reason"]
            )
        )


class ProposalListApi(APIView):
    permission_classes = [VIEW_PROPOSAL]

    class FilterSerializer(serializers.Serializer):
        status = _choice(ProposalStatus)
        kind = _choice(ProposalKind)
        mine = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="proposals_list",
        parameters=[*PAGE_PARAMETERS, FilterSerializer],
        responses=page_schema("ProposalPage", ProposalOutput),
    )
    def get(self, request: Request) -> Response:
        filters = _validated(self.FilterSerializer, request.query_params.dict())
        qs = selectors.proposal_list(
            status=filters.get("status"),
            kind=filters.get("kind"),
            author_id=request.user.pk if filters.get("mine") else None,
        )
        return Response(keyset_page(request, qs, _proposals))


class ProposalDetailApi(APIView):
    permission_classes = [VIEW_PROPOSAL]

    @extend_schema(operation_id="proposals_retrieve", responses=ProposalOutput)
    def get(self, request: Request, proposal_id: int) -> Response:
        proposal = selectors.proposal_list().filter(pk=proposal_id).first()
        if proposal is None:
            raise NotFound(f"Proposal {proposal_id} does not exist.")
        return Response(ProposalOutput(proposal).data)


class ReviewQueueApi(APIView):
    permission_classes = [REVIEW]

    @extend_schema(
        parameters=PAGE_PARAMETERS, responses=page_schema("ReviewQueuePage", ProposalOutput)
    )
    def get(self, request: Request) -> Response:
        qs = selectors.review_queue(reviewer_id=int(request.user.pk or 0))
        return Response(keyset_page(request, qs, _proposals))


class _ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=4000, required=False, allow_blank=True)


class ProposalApproveApi(APIView):
    permission_classes = [REVIEW]

    @extend_schema(request=_ReasonInput, responses={200: ProposalOutput, 202: ProposalOutput})
    def post(self, request: Request, proposal_id: int) -> Response:
        data = _validated(_ReasonInput, request.data)
        proposal = services.proposal_approve(
            actor=request.user, proposal_id=proposal_id, reason=data.get("reason", "")
        )
        if proposal.kind != ProposalKind.IMPORT:
            return Response(ProposalOutput(proposal).data)
        # Accepted: a task applies the rows; follow import_status or the import's rows_applied.
        proposal = selectors.proposal_list().get(pk=proposal.pk)
        return Response(ProposalOutput(proposal).data, status=status.HTTP_202_ACCEPTED)


class ProposalRejectApi(APIView):
    permission_classes = [REVIEW]

    @extend_schema_serializer(component_name="ProposalRejectInput")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=4000)

    @extend_schema(request=InputSerializer, responses=ProposalOutput)
    def post(self, request: Request, proposal_id: int) -> Response:
        data = _validated(self.InputSerializer, request.data)
        proposal = services.proposal_reject(
            actor=request.user, proposal_id=proposal_id, reason=data["reason"]
        )
        return Response(ProposalOutput(proposal).data)


class ProposalWithdrawApi(APIView):
    permission_classes = [PROPOSE]

    @extend_schema(request=None, responses=ProposalOutput)
    def post(self, request: Request, proposal_id: int) -> Response:
        proposal = services.proposal_withdraw(actor=request.user, proposal_id=proposal_id)
        return Response(ProposalOutput(proposal).data)


class MeApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            name="Me",
            fields={
                "username": serializers.CharField(),
                "roles": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        roles = sorted(request.user.groups.values_list("name", flat=True))
        return Response({"username": request.user.get_username(), "roles": roles})


# --- Grading frameworks ----------------------------------------------------------------------


class FrameworkOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    definition = serializers.SerializerMethodField()

    def get_definition(self, current: framework_store.Current) -> dict[str, Any]:
        return current.definition.to_json()


class FrameworkListApi(APIView):
    """Every framework with its current rules (docs/grading.md)."""

    permission_classes = [VIEW_ENTRY]

    @extend_schema(operation_id="frameworks_list", responses=FrameworkOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(FrameworkOutput(framework_store.frameworks_current(), many=True).data)


class FrameworkVersionOutput(serializers.Serializer):
    version = serializers.IntegerField()
    definition = serializers.JSONField()
    created_at = serializers.DateTimeField()
    proposal = serializers.IntegerField(source="proposal_id", allow_null=True)
    author = serializers.CharField(source="proposal.author.username", default=None)
    reviewer = serializers.CharField(source="proposal.reviewer.username", default=None)


class FrameworkVersionListApi(APIView):
    """Every version of a framework's rules, newest first, with who proposed and approved
    each (version 1 was seeded by the migration that introduced frameworks)."""

    permission_classes = [VIEW_PROPOSAL]

    @extend_schema(
        operation_id="framework_versions_list", responses=FrameworkVersionOutput(many=True)
    )
    def get(self, request: Request, slug: str) -> Response:
        versions = list(framework_store.framework_versions(slug=slug))
        if not versions:
            raise NotFound("No such framework.", code="framework_not_found")
        return Response(FrameworkVersionOutput(versions, many=True).data)


class ProposeFrameworkApi(APIView):
    """Propose new rules for a framework; a second person's approval makes them its next
    version."""

    permission_classes = [PROPOSE]

    @extend_schema_serializer(component_name="ProposeFrameworkInput")
    class InputSerializer(serializers.Serializer):
        framework = serializers.SlugField(max_length=32)
        definition = serializers.JSONField()
        comment = serializers.CharField(max_length=4000)

    @extend_schema(request=InputSerializer, responses={201: ProposalOutput})
    def post(self, request: Request) -> Response:
        data = _validated(self.InputSerializer, request.data)
        return _created(
            services.proposal_framework(
                actor=request.user,
                framework=data["framework"],
                definition=data["definition"],
                comment=data["comment"],
            )
        )
