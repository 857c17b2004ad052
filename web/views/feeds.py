"""The feeds: each one's filter in words, its size, current version and manifest, the members
entitled to it and the releases that changed it. Read-only (feeds are created and retired
through the API by member administrators)."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from distribution import overview
from distribution.feeds import FeedFilter
from distribution.framework_grading import FORMAT_1_FRAMEWORK
from distribution.models import Feed
from hashlist.models import AGE_GROUP_CHOICES, CONTENT_TYPE_CHOICES, INDUSTRY_CLASS_CHOICES
from hashsync_client.algorithms import ALGORITHMS
from members import selectors as members_selectors
from web.pages import staff_page

VIEW_FEED = "distribution.view_feed"
VIEW_RELEASE = "distribution.view_release"
VIEW_MEMBER = "members.view_member"


def _labels(values: list[str], names: dict[str, str]) -> str:
    return ", ".join(str(names.get(v, v)) for v in sorted(values))


def filter_facts(feed: Feed) -> list[tuple[str, str]]:
    """The feed's filter field by field, as people read it ("any" where it does not filter)."""
    algorithms = {name: algo.label for name, algo in ALGORITHMS.items()}
    version = f"rules version {feed.framework_version}" if feed.framework_version else "unpublished"
    return [
        (
            "Grading framework",
            f"{feed.framework} ({version}; bundle format "
            f"{1 if feed.framework == FORMAT_1_FRAMEWORK else 2})",
        ),
        (f"Classes ({feed.framework})", _labels(feed.classes or [], {}) or "any"),
        ("Algorithms", _labels(feed.algorithms, algorithms) or "any"),
        ("Categories", _labels(feed.categories, {}) or "any"),
        ("Age groups", _labels(feed.age_groups, dict(AGE_GROUP_CHOICES)) or "any"),
        ("Content types", _labels(feed.content_types, dict(CONTENT_TYPE_CHOICES)) or "any"),
        (
            "Industry classes",
            _labels(feed.industry_classes, dict(INDUSTRY_CLASS_CHOICES)) or "any",
        ),
        ("INTERPOL baseline", "only baseline entries" if feed.baseline_only else "not required"),
        (
            "PhotoDNA",
            "may carry PhotoDNA hashes: members need a PhotoDNA licence"
            if feed.carries_photodna
            else "carries no PhotoDNA hashes",
        ),
    ]


def _expiry(expires_at: object, now: object) -> str:
    if expires_at is None:
        return ""
    left = expires_at - now  # type: ignore[operator]
    if left.total_seconds() <= 0:
        return "expired"
    if left.total_seconds() <= settings.HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS * 3600:
        return "soon"
    return "ok"


@staff_page(VIEW_FEED)
@require_safe
def feed_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    show_members = request.user.has_perm(VIEW_MEMBER)
    counts = members_selectors.feed_member_counts() if show_members else {}
    rows = [
        {
            "feed": feed,
            "filter": FeedFilter.of(feed).describe(),
            "members": counts.get(feed.pk, 0),
            "expiry": _expiry(feed.latest_manifest_expires_at, now),  # type: ignore[attr-defined]
        }
        for feed in overview.feed_overview()
    ]
    return render(
        request,
        "web/feeds/list.html",
        {
            "rows": rows,
            "show_members": show_members,
            "show_releases": request.user.has_perm(VIEW_RELEASE),
        },
    )


@staff_page(VIEW_FEED)
@require_safe
def feed_page(request: HttpRequest, name: str) -> HttpResponse:
    detail = overview.feed_detail(name=name)
    if detail is None:
        raise Http404("There is no feed of that name.")
    show_members = request.user.has_perm(VIEW_MEMBER)
    return render(
        request,
        "web/feeds/feed.html",
        {
            "detail": detail,
            "feed": detail.feed,
            "filter": FeedFilter.of(detail.feed).describe(),
            "facts": filter_facts(detail.feed),
            "members": members_selectors.feed_members(detail.feed) if show_members else None,
            "show_releases": request.user.has_perm(VIEW_RELEASE),
            "resign_hours": settings.HASHSYNC_MANIFEST_RESIGN_BEFORE_HOURS,
        },
    )
