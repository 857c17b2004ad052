"""The main navigation: each page area adds one row. A row shows only to people whose role has
its permission, and only once its URL exists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    # Shown when the person holds any of these (empty: every signed-in person).
    permissions: tuple[str, ...] = ()


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("Dashboard", "front"),
    NavItem("Search", "web-search", ("hashlist.view_entry",)),
    NavItem("Propose", "web-propose", ("hashlist.propose_change",)),
    NavItem("Review", "web-review-queue", ("hashlist.review_proposal",)),
    NavItem("Imports", "web-imports", ("hashlist.view_importbatch",)),
    # Analysts and reviewers; auditors reach the frameworks from the audit pages (their bar
    # must stay one line).
    NavItem("Grading", "web-frameworks", ("hashlist.propose_change", "hashlist.review_proposal")),
    NavItem("Disputes", "web-disputes", ("members.view_feedback",)),
    NavItem("Members", "web-members", ("members.view_member",)),
    NavItem("Fleet", "web-fleet", ("members.view_member",)),
    NavItem("Audit", "web-audit", ("audit.view_auditevent",)),
    # "Log", not "Transparency log": the auditor's bar must stay one line at a laptop's width.
    NavItem("Log", "web-transparency", ("transparency.view_log",)),
    NavItem("Releases", "web-releases", ("distribution.view_release",)),
    NavItem("Feeds", "web-feeds", ("distribution.view_feed",)),
    # Each chart has the permission of its data (web/reports.py REPORT_PERMISSIONS).
    NavItem(
        "Reports",
        "web-reports",
        (
            "distribution.view_feed",
            "distribution.view_release",
            "hashlist.view_entry",
            "hashlist.view_proposal",
            "members.view_member",
        ),
    ),
)


def navigation_for(request: HttpRequest) -> list[dict[str, Any]]:
    user = request.user
    items = []
    for item in NAVIGATION:
        if item.permissions and not any(user.has_perm(p) for p in item.permissions):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue  # that area is not built yet
        current = request.path == url if url == "/" else request.path.startswith(url)
        items.append({"label": item.label, "url": url, "current": current})
    return items
