"""Writes of the member sync API: what member clients report (acks, feedback), and the audit
events of what they were given (plans, bundles, lookups). Each is one transaction with its
audit event, attributed to the client (``MemberPrincipal.label``) and its token's prefix."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from distribution.models import Feed, FeedVersion
from distribution.plans import Plan
from hashlist.grading import parse_hash
from hashsync.errors import Conflict, InvalidInput, NotFound
from hashsync.outages import fail_open_cache as cache
from hashsync.validation import clean_choice, clean_text
from members import selectors as member_selectors
from members.models import Ack, Feedback, FeedbackKind, FeedbackStatus, Holding, SyncClient
from sync import selectors
from sync.auth import MemberPrincipal

if TYPE_CHECKING:
    from sync.stopncii.paging import Page

DIGEST = re.compile(r"[0-9a-f]{64}")


@transaction.atomic
def ack_record(*, principal: MemberPrincipal, feed: Feed, version: Any, state_digest: Any) -> Ack:
    """Record what a client says it holds. A digest that is not the server's flags the client
    for administrators; the client is told to take the snapshot."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput("version must be a positive integer.")
    if not isinstance(state_digest, str) or not DIGEST.fullmatch(state_digest):
        raise InvalidInput("state_digest must be 64 lowercase hexadecimal characters.")
    published = FeedVersion.objects.filter(feed=feed, version=version).first()
    if published is None:
        # invalid_input, as docs/sync-api.md promises: version_unknown is the plan's 409 ("you
        # hold something never published: start over"), not a refused ack.
        raise InvalidInput(f"Feed {feed.name} has no version {version}; sync again from the plan.")
    now = timezone.now()
    matches = published.state_digest == state_digest
    ack = Ack.objects.create(
        client=principal.client,
        feed=feed,
        version=version,
        state_digest=state_digest,
        digest_matches=matches,
        acked_at=now,
    )
    Holding.objects.update_or_create(
        client=principal.client,
        feed=feed,
        defaults={
            "version": version,
            "state_digest": state_digest,
            "digest_matches": matches,
            "acked_at": now,
        },
    )
    if not matches:
        SyncClient.objects.filter(pk=principal.client.pk).update(digest_mismatch_at=now)
    audit_record(
        actor=None,
        actor_label=principal.label,
        client_id=principal.client.pk,
        action="sync.ack",
        object_type="feed",
        object_id=feed.pk,
        after={
            "feed": feed.name,
            "version": version,
            "state_digest": state_digest,
            "digest_matches": matches,
            "token": principal.token.prefix,
        },
    )
    return ack


@transaction.atomic
def feedback_create(
    *, principal: MemberPrincipal, algorithm: Any, value: Any, kind: Any, reason: Any
) -> Feedback:
    name, raw = parse_hash(algorithm, value)
    kind = clean_choice(kind, "kind", FeedbackKind)
    reason = clean_text(reason, "reason", required=True, minimum=10)
    feeds = member_selectors.entitled_feeds(principal.member)
    rows = member_selectors.feed_entries_for([f.pk for f in feeds], [(name, raw)]).get((name, raw))
    if not rows:
        # The same answer whether the hash is unlisted or listed only in feeds this member
        # does not receive: nothing about other feeds leaks.
        raise NotFound("That hash is not in any feed you receive.")
    entry_id = rows[0].entry_id
    if Feedback.objects.filter(
        member=principal.member, entry_id=entry_id, status=FeedbackStatus.OPEN
    ).exists():
        raise Conflict(
            "Your organisation already has an open dispute of this entry; the analysts will "
            "answer it.",
            code="feedback_exists",
        )
    try:
        with transaction.atomic():  # the constraint decides a race between two reports
            feedback = Feedback.objects.create(
                member=principal.member,
                client=principal.client,
                entry_id=entry_id,
                algorithm=name,
                value=raw,
                kind=kind,
                reason=reason,
            )
    except IntegrityError:
        raise Conflict(
            "Your organisation already has an open dispute of this entry.", code="feedback_exists"
        ) from None
    audit_record(
        actor=None,
        actor_label=principal.label,
        client_id=principal.client.pk,
        action="feedback.create",
        object_type="feedback",
        object_id=feedback.pk,
        after={"entry": feedback.entry_id, "kind": kind, "algorithm": name},
        reason=reason,
    )
    return feedback


@transaction.atomic
def record_plan_served(
    *, actor_label: str, client_id: int, feed: Feed, plan: Plan, token_prefix: str
) -> None:
    """A signed manifest (and the bundles it names) was handed to a member: on the trail, in
    the client's lane."""
    audit_record(
        actor=None,
        actor_label=actor_label,
        client_id=client_id,
        action="sync.plan",
        object_type="feed",
        object_id=feed.pk,
        after={
            "feed": feed.name,
            "from_version": plan.from_version,
            "version": plan.version,
            "status": plan.status,
            "manifest_sha256": plan.manifest_sha256,
            "bundles": [s.sha256 for s in plan.steps],
            "token": token_prefix,
        },
    )


@transaction.atomic
def record_bundle_served(
    *, actor_label: str, client_id: int, sha256: str, feeds: list[str], token_prefix: str
) -> None:
    audit_record(
        actor=None,
        actor_label=actor_label,
        client_id=client_id,
        action="sync.bundle",
        object_type="bundle",
        object_id=sha256,
        after={"feeds": feeds, "token": token_prefix},
    )


@transaction.atomic
def record_lookup(
    *,
    actor_label: str,
    client_id: int,
    token_prefix: str,
    asked: int,
    matched: int,
    feeds: list[str],
    action: str = "sync.lookup",
    extra: dict[str, Any] | None = None,
) -> None:
    """A member learnt whether hashes are listed (``sync.lookup``) or near a listed one
    (``sync.match``): on the trail, by count and feed — never the hash values themselves (the
    trail is read by more people than the list is)."""
    audit_record(
        actor=None,
        actor_label=actor_label,
        client_id=client_id,
        action=action,
        object_type="lookup",
        after={
            "asked": asked,
            "matched": matched,
            "feeds": feeds,
            **(extra or {}),
            "token": token_prefix,
        },
    )


def lookup_answer(
    *, principal: MemberPrincipal, pairs: list[tuple[str, bytes]]
) -> list[dict[str, Any]]:
    """Whether each (algorithm, value) is in a feed the member receives, in request order;
    the lookup goes on the trail (``record_lookup``)."""
    results = selectors.lookup_results(principal.member, pairs)
    record_lookup(
        actor_label=principal.label,
        client_id=principal.client.pk,
        token_prefix=principal.token.prefix,
        asked=len(pairs),
        matched=sum(1 for r in results if r["matched"]),
        feeds=sorted({name for r in results for name in r["feeds"]}),
    )
    return results


def match_answer(
    *, principal: MemberPrincipal, pairs: list[tuple[str, bytes]], threshold: int
) -> list[dict[str, Any]]:
    """The entries of the member's feeds matching each (algorithm, value) — PDQ within
    ``threshold`` bits — in request order; on the trail as counts (``sync.match``)."""
    results = selectors.match_results(principal.member, pairs, threshold=threshold)
    record_lookup(
        actor_label=principal.label,
        client_id=principal.client.pk,
        token_prefix=principal.token.prefix,
        asked=len(pairs),
        matched=sum(1 for r in results if r["matched"]),
        feeds=sorted({m["feed"] for r in results for m in r["matches"]}),
        action="sync.match",
        extra={"threshold": threshold},
    )
    return results


def record_page_served(*, principal: MemberPrincipal, feed: Feed, page: Page, window: int) -> bool:
    """Records handed to a member: on the audit trail, like the bundles of the sync API.

    The same page (the same records and position) served again to the same client within
    ``window`` seconds — a replayed ``nextPageToken``, a retry — is recorded once: it tells an
    auditor nothing new, and replays must not grow the chain. How often a client may ask is
    bounded by its budget (``sync.limits``). Returns whether an event was written."""
    after = {
        "feed": feed.name,
        "records": len(page.records),
        "versions": list(page.versions) if page.versions else None,
        "snapshot_version": page.snapshot_at,
        "next_set_timestamp": page.next_set_timestamp,
    }
    served = json.dumps([after, page.records], sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(served.encode()).hexdigest()
    key = f"hashsync:stopncii:audited:{principal.client.pk}:{feed.pk}:{digest}"
    if not cache.add(key, True, timeout=window):
        return False
    try:
        with transaction.atomic():
            audit_record(
                actor=None,
                actor_label=principal.label,
                client_id=principal.client.pk,
                action="sync.stopncii",
                object_type="feed",
                object_id=feed.pk,
                after={**after, "token": principal.token.prefix},
            )
    except BaseException:
        cache.delete(key)  # not on the trail after all: the next serving must record it
        raise
    return True
