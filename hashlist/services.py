"""Writes to the hash list. Every change is a proposal; only a second person's approval
changes what members will receive.

The four-eyes rule and the role checks live here, not in views, so no path — API, bulk import,
admin, management command — can bypass them. Each function is one transaction and records
its audit event inside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from hashlist import framework_store
from hashlist.changelog import EntryState, announce_changes_waiting
from hashlist.frameworks.rules import Definition
from hashlist.grading import (
    GRADING_FIELDS,
    canonical_pairs,
    parse_hash,
    parse_hash_list,
)
from hashlist.models import (
    Change,
    ChangeKind,
    Entry,
    EntryStatus,
    Framework,
    FrameworkVersion,
    Hash,
    Proposal,
    ProposalKind,
    ProposalStatus,
)
from hashsync.actors import User, as_staff, require_permission
from hashsync.errors import Conflict, FourEyesViolation, InvalidInput, NotFound, PermissionDenied
from hashsync.validation import MAX_LABEL, clean_text
from hashsync_client.algorithms import get_algorithm

PROPOSE = "hashlist.propose_change"
REVIEW = "hashlist.review_proposal"


def _grading_of(entry: Entry) -> dict[str, Any]:
    return {field: getattr(entry, field) for field in GRADING_FIELDS}


def _existing_hash_owner(pairs: Sequence[tuple[str, bytes]]) -> tuple[int, str, int] | None:
    """(index, algorithm, entry id) of the first pair already on the list, or None."""
    if not pairs:
        return None
    condition = Q()
    for name, value in pairs:
        condition |= Q(algorithm=name, value=value)
    found = {(h.algorithm, bytes(h.value)): h.entry_id for h in Hash.objects.filter(condition)}
    for index, pair in enumerate(pairs):
        if pair in found:
            return index, pair[0], found[pair]
    return None


def _refuse_existing(pairs: Sequence[tuple[str, bytes]]) -> None:
    owner = _existing_hash_owner(pairs)
    if owner is not None:
        index, name, entry_id = owner
        raise Conflict(
            f"hashes[{index}] ({name}) is already on the list, on entry {entry_id}.",
            code="hash_exists",
            details={"index": index, "algorithm": name, "entry_id": entry_id},
        )


def _active_entry(entry_id: Any, *, lock: bool = False) -> Entry:
    try:
        pk = int(entry_id)
    except (TypeError, ValueError):
        raise InvalidInput("entry must be an entry id (an integer).") from None
    qs = Entry.objects.select_for_update() if lock else Entry.objects
    entry = qs.filter(pk=pk).first()
    if entry is None:
        raise NotFound(f"Entry {pk} does not exist.")
    if entry.status != EntryStatus.ACTIVE:
        raise Conflict(f"Entry {pk} is retracted; it cannot be changed.", code="entry_retracted")
    return entry


def _new_proposal(
    *, actor: User, kind: str, entry: Entry | None, payload: dict[str, Any], comment: str
) -> Proposal:
    proposal = Proposal.objects.create(
        kind=kind,
        entry=entry,
        base_revision=entry.revision if entry else None,
        payload=payload,
        comment=comment,
        author=as_staff(actor),
    )
    audit_record(
        actor=actor,
        action=f"proposal.{kind}",
        object_type="proposal",
        object_id=proposal.pk,
        after={"kind": kind, "entry": entry.pk if entry else None, "payload": payload},
        reason=comment,
    )
    return proposal


# --- Proposing ---------------------------------------------------------------------------------


@transaction.atomic
def proposal_create_entry(
    *,
    actor: User,
    grading: Mapping[str, Any] | None,
    hashes: Any,
    facts: Any = None,
    source: Any = "",
    notes: Any = "",
    comment: Any = "",
) -> Proposal:
    """Propose a new entry. ``facts`` (hashlist.frameworks.facts) may be partial or missing
    (unknown); where they determine a framework's class its stored field follows them
    (``framework_store.reconcile``)."""
    require_permission(actor, PROPOSE, "propose changes")
    clean, facts_clean = framework_store.reconcile(grading=grading, facts=facts)
    pairs = parse_hash_list(hashes)
    _refuse_existing(pairs)
    payload = {
        "grading": clean,
        "facts": framework_store.new_facts(facts_clean),
        "hashes": canonical_pairs(pairs),
        "source": clean_text(source, "source", limit=MAX_LABEL),
        "notes": clean_text(notes, "notes"),
    }
    return _new_proposal(
        actor=actor,
        kind=ProposalKind.CREATE,
        entry=None,
        payload=payload,
        comment=clean_text(comment, "comment"),
    )


@transaction.atomic
def proposal_regrade(
    *,
    actor: User,
    entry_id: Any,
    grading: Mapping[str, Any] | None = None,
    facts: Any = None,
    comment: Any = "",
) -> Proposal:
    """Propose new facts and/or stored grading fields for an entry; what is not given keeps
    the entry's value."""
    require_permission(actor, PROPOSE, "propose changes")
    entry = _active_entry(entry_id)
    current = _grading_of(entry)
    clean, facts_clean = framework_store.reconcile(grading=grading, facts=facts, current=entry)
    new = framework_store.new_facts(facts_clean)
    if clean == current and new == framework_store.new_facts(framework_store.facts_of(entry)):
        raise InvalidInput(
            "The proposed grading and facts are the same as the entry's current grading and facts."
        )
    return _new_proposal(
        actor=actor,
        kind=ProposalKind.REGRADE,
        entry=entry,
        payload={"grading": clean, "facts": new},
        comment=clean_text(comment, "comment"),
    )


@transaction.atomic
def proposal_add_hash(
    *, actor: User, entry_id: Any, algorithm: Any, value: Any, comment: Any = ""
) -> Proposal:
    require_permission(actor, PROPOSE, "propose changes")
    entry = _active_entry(entry_id)
    pair = parse_hash(algorithm, value)
    _refuse_existing([pair])
    return _new_proposal(
        actor=actor,
        kind=ProposalKind.ADD_HASH,
        entry=entry,
        payload={"hash": canonical_pairs([pair])[0]},
        comment=clean_text(comment, "comment"),
    )


@transaction.atomic
def proposal_remove_hash(
    *, actor: User, entry_id: Any, algorithm: Any, value: Any, comment: Any = ""
) -> Proposal:
    require_permission(actor, PROPOSE, "propose changes")
    entry = _active_entry(entry_id)
    name, raw = parse_hash(algorithm, value)
    hashes = list(entry.hashes.all())
    if not any(h.algorithm == name and bytes(h.value) == raw for h in hashes):
        raise InvalidInput(f"Entry {entry.pk} has no such {name} hash.", code="hash_not_on_entry")
    if len(hashes) == 1:
        raise InvalidInput(
            f"That is the only hash of entry {entry.pk}; propose a retraction instead.",
            code="last_hash",
        )
    return _new_proposal(
        actor=actor,
        kind=ProposalKind.REMOVE_HASH,
        entry=entry,
        payload={"hash": canonical_pairs([(name, raw)])[0]},
        comment=clean_text(comment, "comment", required=True),
    )


@transaction.atomic
def proposal_retract(*, actor: User, entry_id: Any, reason: Any) -> Proposal:
    require_permission(actor, PROPOSE, "propose changes")
    entry = _active_entry(entry_id)
    return _new_proposal(
        actor=actor,
        kind=ProposalKind.RETRACT,
        entry=entry,
        payload={},
        comment=clean_text(reason, "reason", required=True),
    )


@transaction.atomic
def proposal_withdraw(*, actor: User, proposal_id: Any) -> Proposal:
    require_permission(actor, PROPOSE, "withdraw proposals")
    proposal = _locked_pending(proposal_id)
    if proposal.author_id != actor.pk:
        raise PermissionDenied("Only the author of a proposal can withdraw it.")
    proposal.status = ProposalStatus.WITHDRAWN
    proposal.save(update_fields=["status"])
    _close_import(proposal)
    audit_record(
        actor=actor,
        action="proposal.withdraw",
        object_type="proposal",
        object_id=proposal.pk,
        before={"status": ProposalStatus.PENDING},
        after={"status": ProposalStatus.WITHDRAWN},
    )
    return proposal


# --- Reviewing ---------------------------------------------------------------------------------


def _locked_pending(proposal_id: Any) -> Proposal:
    try:
        pk = int(proposal_id)
    except (TypeError, ValueError):
        raise InvalidInput("proposal must be a proposal id (an integer).") from None
    # Locking the row makes a second concurrent reviewer wait, then see the first decision.
    proposal = Proposal.objects.select_for_update().filter(pk=pk).first()
    if proposal is None:
        raise NotFound(f"Proposal {pk} does not exist.")
    if proposal.status != ProposalStatus.PENDING:
        raise Conflict(
            f"Proposal {pk} is already {proposal.status}; only pending proposals can be reviewed.",
            code="proposal_not_pending",
        )
    return proposal


def _reviewable(actor: User, proposal_id: Any, doing: str) -> Proposal:
    require_permission(actor, REVIEW, doing)
    proposal = _locked_pending(proposal_id)
    if proposal.author_id == actor.pk:
        raise FourEyesViolation(
            f"You wrote proposal {proposal.pk}; a different reviewer must {doing} it."
        )
    return proposal


def _mark_reviewed(proposal: Proposal, *, actor: User, status: str, reason: str) -> None:
    # Conditional update: exactly one decision can move a proposal out of "pending", even if
    # the row lock above were ever bypassed (belt and braces for the four-eyes record).
    now = timezone.now()
    updated = Proposal.objects.filter(pk=proposal.pk, status=ProposalStatus.PENDING).update(
        status=status, reviewer=actor, reviewed_at=now, review_reason=reason
    )
    if updated != 1:
        raise Conflict(
            f"Proposal {proposal.pk} was decided concurrently.", code="proposal_not_pending"
        )
    proposal.status, proposal.reviewer, proposal.reviewed_at = status, actor, now  # type: ignore[assignment]
    proposal.review_reason = reason


@transaction.atomic
def proposal_approve(*, actor: User, proposal_id: Any, reason: Any = "") -> Proposal:
    """Approve and apply a proposal. An import is the exception: this records the decision
    and a task applies its rows after commit (``hashlist.imports.apply``), so the proposal is
    approved while its batch is ``applying``, and ``failed`` if applying it fails."""
    proposal = _reviewable(actor, proposal_id, "approve")
    text = clean_text(reason, "reason")
    importing = proposal.kind == ProposalKind.IMPORT
    # Approved first, then applied: the database refuses a change whose proposal is not yet
    # approved by someone else (migration 0005). A refusal while applying rolls both back.
    _mark_reviewed(proposal, actor=actor, status=ProposalStatus.APPROVED, reason=text)
    if importing:
        from hashlist.imports import import_accept

        import_accept(proposal=proposal)
    else:
        _apply(proposal, approved_at=proposal.reviewed_at)
    audit_record(
        actor=actor,
        action="proposal.approve",
        object_type="proposal",
        object_id=proposal.pk,
        before={"status": ProposalStatus.PENDING},
        after={
            "status": ProposalStatus.APPROVED,
            "kind": proposal.kind,
            "entry": proposal.entry_id,
            "author": proposal.author_id,
        },
        reason=text,
    )
    if not importing:  # an import's rows are announced by the task that applies them
        announce_changes_waiting()
    return proposal


@transaction.atomic
def proposal_reject(*, actor: User, proposal_id: Any, reason: Any) -> Proposal:
    proposal = _reviewable(actor, proposal_id, "reject")
    text = clean_text(reason, "reason", required=True)
    _mark_reviewed(proposal, actor=actor, status=ProposalStatus.REJECTED, reason=text)
    _close_import(proposal)
    audit_record(
        actor=actor,
        action="proposal.reject",
        object_type="proposal",
        object_id=proposal.pk,
        before={"status": ProposalStatus.PENDING},
        after={"status": ProposalStatus.REJECTED},
        reason=text,
    )
    return proposal


def _close_import(proposal: Proposal) -> None:
    if proposal.kind == ProposalKind.IMPORT:
        from hashlist.imports import import_close

        import_close(proposal=proposal)


# --- Applying an approved proposal -------------------------------------------------------------


def _stale_check(proposal: Proposal) -> Entry:
    entry = (
        Entry.objects.select_for_update().filter(pk=proposal.entry_id).first()
        if proposal.entry_id is not None
        else None
    )
    if entry is None:  # PROTECT makes this unreachable; keep the message clear anyway.
        raise NotFound(f"Entry {proposal.entry_id} no longer exists.")
    if entry.revision != proposal.base_revision:
        raise Conflict(
            f"Entry {entry.pk} changed after proposal {proposal.pk} was made (it was at revision "
            f"{proposal.base_revision}, it is now at {entry.revision}). Reject this proposal and "
            "propose the change again against the entry's current state.",
            code="proposal_stale",
            details={"base_revision": proposal.base_revision, "current_revision": entry.revision},
        )
    return entry


def _insert_hashes(entry: Entry, pairs: Sequence[tuple[str, bytes]]) -> None:
    _refuse_existing(pairs)
    try:
        with transaction.atomic():
            Hash.objects.bulk_create([Hash(entry=entry, algorithm=n, value=v) for n, v in pairs])
    except IntegrityError:
        # Another approval inserted the same hash between our check and our insert.
        raise Conflict(
            "A hash of this proposal was added to the list by another approval just now.",
            code="hash_exists",
        ) from None


def _apply(proposal: Proposal, *, approved_at: Any) -> None:
    payload = proposal.payload
    if proposal.kind == ProposalKind.CREATE:
        entry = Entry.objects.create(
            **payload["grading"],
            **payload.get("facts", {}),
            source=payload.get("source", ""),
            notes=payload.get("notes", ""),
        )
        _insert_hashes(entry, [(n, get_algorithm(n).parse(v)) for n, v in payload["hashes"]])
        Proposal.objects.filter(pk=proposal.pk).update(entry=entry)
        proposal.entry = entry
        Change.objects.create(
            entry=entry,
            proposal=proposal,
            kind=ChangeKind.CREATE,
            before=None,
            after=EntryState.of(entry).to_json(),
            approved_at=approved_at,
        )
        return

    if proposal.kind == ProposalKind.FRAMEWORK:
        _apply_framework(proposal)
        return
    entry = _stale_check(proposal)
    before = EntryState.of(entry).to_json()
    if proposal.kind == ProposalKind.REGRADE:
        # Proposals made before facts existed carry only a grading.
        for field, value in {**payload["grading"], **payload.get("facts", {})}.items():
            setattr(entry, field, value)
    elif proposal.kind == ProposalKind.ADD_HASH:
        name, text = payload["hash"]
        _insert_hashes(entry, [(name, get_algorithm(name).parse(text))])
    elif proposal.kind == ProposalKind.REMOVE_HASH:
        name, text = payload["hash"]
        deleted, _ = entry.hashes.filter(
            algorithm=name, value=get_algorithm(name).parse(text)
        ).delete()
        if not deleted:
            raise Conflict("That hash is no longer on the entry.", code="proposal_stale")
    elif proposal.kind == ProposalKind.RETRACT:
        entry.status = EntryStatus.RETRACTED
    else:  # pragma: no cover - the check constraint admits no other kind
        raise InvalidInput(f"Unknown proposal kind {proposal.kind!r}.")
    entry.revision += 1
    entry.save()
    Change.objects.create(
        entry=entry,
        proposal=proposal,
        kind=proposal.kind,
        before=before,
        after=EntryState.of(entry).to_json(),
        approved_at=approved_at,
    )


# --- Framework rules ---------------------------------------------------------------------------


def _newest_version(framework: Framework) -> FrameworkVersion:
    version = framework.versions.order_by("-version").first()
    if version is None:  # every framework is created with version 1 (migration 0007)
        raise NotFound(f"Framework {framework.slug} has no rules.")
    return version


@transaction.atomic
def proposal_framework(*, actor: User, framework: Any, definition: Any, comment: Any) -> Proposal:
    """Propose new rules for a framework: its next version once a second person approves.
    The comment (why, and the source) is required; docs/grading.md."""
    require_permission(actor, PROPOSE, "propose changes")
    slug = framework if isinstance(framework, str) else ""
    found = Framework.objects.filter(slug=slug[:64]).first()
    if found is None:
        raise NotFound("No such framework.", code="framework_not_found")
    parsed = Definition.parse(definition)
    newest = _newest_version(found)
    if parsed == Definition.parse(newest.definition):
        raise InvalidInput(
            f"Those are the rules of {found.slug} version {newest.version} already.",
            code="framework_unchanged",
        )
    return _new_proposal(
        actor=actor,
        kind=ProposalKind.FRAMEWORK,
        entry=None,
        payload={
            "framework": found.slug,
            "base_version": newest.version,
            "definition": parsed.to_json(),
        },
        comment=clean_text(comment, "comment", required=True),
    )


def _apply_framework(proposal: Proposal) -> None:
    payload = proposal.payload
    framework = Framework.objects.select_for_update().get(slug=payload["framework"])
    newest = _newest_version(framework)
    if newest.version != payload["base_version"]:
        raise Conflict(
            f"Framework {framework.slug} changed after proposal {proposal.pk} was made (it was "
            f"at version {payload['base_version']}, it is now at {newest.version}). Reject this "
            "proposal and propose the change again against the current rules.",
            code="proposal_stale",
            details={"base_version": payload["base_version"], "current_version": newest.version},
        )
    created = FrameworkVersion.objects.create(
        framework=framework,
        version=newest.version + 1,
        definition=payload["definition"],
        proposal=proposal,
    )
    audit_record(
        actor=proposal.reviewer,
        action="framework.version",
        object_type="framework",
        object_id=framework.slug,
        before={"version": newest.version, "definition": newest.definition},
        after={"version": created.version, "definition": created.definition},
        reason=proposal.comment,
    )
