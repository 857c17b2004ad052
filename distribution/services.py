"""Writes of distribution: feeds, and the record of staff bundle downloads. (Releases are cut
by ``distribution.releases``.)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from audit.services import audit_record
from distribution import selectors
from distribution.framework_grading import FORMAT_1_FRAMEWORK, grader
from distribution.models import BundleObject, Feed
from distribution.tasks import schedule_release_cut
from hashlist.models import Framework
from hashlist.services import User, require_permission
from hashsync.errors import Conflict, InvalidInput, NotFound
from hashsync.validation import clean_name, clean_text
from hashsync_client.algorithms import ALGORITHMS
from hashsync_client.format import AGE_GROUPS, CATEGORIES, CONTENT_TYPES, INDUSTRY_CLASSES

MANAGE = "distribution.manage_feed"
# A bundle holds every hash of a feed, PhotoDNA included: staff may download one only if they
# may read the entries themselves (analysts, reviewers, auditors — not member administrators,
# who manage what is distributed but are refused entries and hash search). docs/api.md.
DOWNLOAD_BUNDLE = ("distribution.view_feed", "hashlist.view_entry")


def _subset(field: str, values: Any, allowed: Iterable[str]) -> list[str]:
    allowed = [a for a in allowed if a]
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidInput(f"{field} must be a list of strings (empty for any).")
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        shown = ", ".join(v if len(v) <= 12 else f"<{len(v)} characters>" for v in unknown[:5])
        raise InvalidInput(
            f"{field}: unknown value(s) {shown}; expected any of {', '.join(allowed)}."
        )
    return sorted(set(values), key=list(allowed).index)


def _framework_of(data: dict[str, Any]) -> dict[str, Any]:
    """The feed's framework (default uk) and the classes of it the feed admits, checked
    against the framework's newest rules."""
    slug = data.get("framework")
    if slug in (None, ""):
        slug = FORMAT_1_FRAMEWORK
    if not isinstance(slug, str) or not Framework.objects.filter(slug=slug[:64]).exists():
        known = ", ".join(Framework.objects.order_by("slug").values_list("slug", flat=True))
        shown = repr(slug) if isinstance(slug, str) and len(slug) <= 32 else "that value"
        raise InvalidInput(
            f"framework: {shown} is not a grading framework; expected one of {known}.",
            code="unknown_framework",
        )
    classes = data.get("classes")
    if classes is None:
        classes = []
    allowed = grader(slug).definition.classes
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise InvalidInput("classes must be a list of strings (empty for any).")
    unknown = sorted(set(classes) - set(allowed))
    if unknown:
        shown = ", ".join(v if len(v) <= 16 else f"<{len(v)} characters>" for v in unknown[:5])
        raise InvalidInput(
            f"classes: {shown} not a class of {slug}; expected any of {', '.join(allowed)}.",
            code="unknown_class",
            details={"framework": slug, "classes": list(allowed)},
        )
    return {"framework": slug, "classes": sorted(set(classes), key=list(allowed).index)}


def feed_filter_of(data: dict[str, Any]) -> dict[str, Any]:
    return {
        **_framework_of(data),
        "algorithms": _subset("algorithms", data.get("algorithms"), ALGORITHMS),
        "categories": _subset("categories", data.get("categories"), CATEGORIES),
        "age_groups": _subset("age_groups", data.get("age_groups"), AGE_GROUPS),
        "industry_classes": _subset(
            "industry_classes", data.get("industry_classes"), INDUSTRY_CLASSES
        ),
        "content_types": _subset("content_types", data.get("content_types"), CONTENT_TYPES),
        "baseline_only": bool(data.get("baseline_only", False)),
    }


@transaction.atomic
def feed_create(*, actor: User, name: Any, description: Any = "", **filters: Any) -> Feed:
    """Create a feed. It is published by the next release (which is asked for on commit),
    as a snapshot of every entry it admits."""
    require_permission(actor, MANAGE, "manage feeds")
    name = clean_name(name, "name")
    description = clean_text(description, "description")
    clean = feed_filter_of(filters)
    try:
        with transaction.atomic():
            feed = Feed.objects.create(name=name, description=description, **clean)
    except IntegrityError:
        raise Conflict(f"A feed named {name} already exists.", code="feed_exists") from None
    audit_record(
        actor=actor, action="feed.create", object_type="feed", object_id=feed.name, after=clean
    )
    schedule_release_cut()
    return feed


@transaction.atomic
def feed_retire(*, actor: User, name: Any) -> Feed:
    """Stop publishing a feed. Its published versions stay readable for audit."""
    require_permission(actor, MANAGE, "manage feeds")
    feed = Feed.objects.select_for_update().filter(name=name).first()
    if feed is None:
        raise NotFound(f"Feed {name} does not exist.")
    if not feed.active:
        raise Conflict(f"Feed {name} is already retired.", code="feed_retired")
    feed.active = False
    feed.save(update_fields=["active"])
    audit_record(
        actor=actor,
        action="feed.retire",
        object_type="feed",
        object_id=feed.name,
        before={"active": True},
        after={"active": False},
    )
    return feed


@transaction.atomic
def bundle_download_record(*, actor: User, bundle: BundleObject, delivery: str) -> None:
    """Put a staff download of ``bundle`` on the audit trail: who, which bundle (kind, size,
    the feeds that publish it) and how it was delivered (``streamed`` or ``presigned_url``) —
    never a hash value. Members' downloads are recorded by the sync API."""
    for perm in DOWNLOAD_BUNDLE:
        require_permission(actor, perm, "download bundles")
    audit_record(
        actor=actor,
        action="bundle.download",
        object_type="bundle",
        object_id=bundle.sha256,
        after={
            "kind": bundle.kind,
            "size": bundle.size,
            "feeds": selectors.bundle_feed_names(bundle.sha256),
            "delivery": delivery,
        },
    )
