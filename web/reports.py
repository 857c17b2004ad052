"""The report figures: each turns one selector's rows into a chart, the table of the same
numbers, and the CSV of them (raw values: ISO dates, counts, seconds, bytes).

Each figure carries the permission of the data it shows; a page shows, and the CSV serves, a
figure only to a role holding it. The selectors aggregate in the database by week over the
chosen range (4, 12 or 52 weeks), so a figure's cost is bounded by its range, not by the list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString

from distribution import selectors as distribution_selectors
from hashlist import selectors as hashlist_selectors
from hashlist.models import ChangeKind
from hashsync.aggregates import week_start, week_starts
from members import selectors as members_selectors
from web import charts

WEEK_CHOICES = (4, 12, 52)
DEFAULT_WEEKS = 12
WEEK_AXIS = "Week starting Monday (UTC)"


@dataclass
class Figure:
    """A chart with its numbers. ``rows`` hold raw values (for the CSV); ``formats`` turn
    each column's value into the table's text."""

    slug: str
    chart: charts.Chart
    columns: Sequence[str]
    rows: list[list[Any]]
    formats: Sequence[Callable[[Any], str]]
    headers: Sequence[str] = ()  # the table's column headings (default: the CSV's columns)
    empty: str = ""  # why there is nothing to draw, and what makes it appear
    facts: list[tuple[str, str]] = field(default_factory=list)  # headline figures
    note: str = ""

    @property
    def svg(self) -> SafeString:
        return charts.render(self.chart)

    @property
    def legend(self) -> list[dict[str, str]]:
        return charts.legend(self.chart)

    @property
    def table(self) -> list[list[str]]:
        return [[fmt(v) for fmt, v in zip(self.formats, row, strict=True)] for row in self.rows]

    @property
    def table_headers(self) -> Sequence[str]:
        return self.headers or self.columns

    @property
    def is_empty(self) -> bool:
        return self.chart.is_empty()


@dataclass(frozen=True)
class Report:
    slug: str
    title: str
    summary: str
    permission: str
    page: str  # the URL name of the page that shows it
    build: Callable[[Any], Figure]  # (a Span) → Figure
    ranged: bool = True  # False: a picture of now, the range does not apply


@dataclass(frozen=True)
class Span:
    """The weeks a figure covers: ``weeks`` weeks ending with the current one."""

    weeks: int
    now: dt.datetime

    @property
    def starts(self) -> list[dt.datetime]:
        return week_starts(self.weeks, now=self.now)

    @property
    def since(self) -> dt.datetime:
        return self.starts[0]

    @property
    def slots(self) -> list[str]:
        return [f"{w.day} {w:%b}" for w in self.starts]

    @property
    def axis(self) -> str:
        first, last = self.starts[0], self.starts[-1]
        return f"{WEEK_AXIS}, {first.day} {first:%b %Y} to {last.day} {last:%b %Y}"


def _iso(value: dt.datetime) -> str:
    return value.date().isoformat()


def _count(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _duration(value: Any) -> str:
    return "—" if value is None else charts.format_duration(value)


def _bytes(value: Any) -> str:
    return "—" if value is None else charts.format_bytes(value)


def _week(value: Any) -> dt.datetime:
    """A ``TruncWeek`` value as the aware datetime of its week's start (SQLite returns it
    naive in UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return week_start(value)


# --- Curation ---------------------------------------------------------------------------------


def feed_sizes(span: Span) -> Figure:
    found = distribution_selectors.feed_sizes_per_week(since=span.since)
    feeds = found["feeds"]
    by_week = {(f, _week(w)): count for (f, w), count in found["weeks"].items()}
    series = []
    for feed in feeds:
        current = found["start"].get(feed.pk)
        values: list[int | None] = []
        for start in span.starts:
            current = by_week.get((feed.pk, start), current)
            values.append(current)
        label = feed.name if feed.active else f"{feed.name} (retired)"
        series.append(charts.Series(label, values))
    chart = charts.Chart(
        title="Entries per feed",
        description=(
            f"Hashes in each published feed at the end of each week, over the last {span.weeks} "
            f"weeks: {', '.join(s.name for s in series) or 'no feed yet'}."
        ),
        slots=span.slots,
        series=series,
        x_label=span.axis,
        y_label="Hashes in the feed",
        slug="feed-sizes",
    )
    rows = [[_iso(w), *[s.values[i] for s in series]] for i, w in enumerate(span.starts)]
    return Figure(
        slug="feed-sizes",
        chart=chart,
        columns=["week_start", *[f.name for f in feeds]],
        headers=["Week starting", *[s.name for s in series]],
        rows=rows,
        formats=[_text, *[_count] * len(feeds)],
        empty="No feed has been published yet. A feed's size is charted from the first release "
        "that publishes it: create a feed, approve changes, and the release cutter publishes it.",
        note="A feed's size is its number of hashes (an entry with two hashes counts twice) "
        "as of its last release in the week.",
    )


def changes(span: Span) -> Figure:
    found = hashlist_selectors.changes_per_week(since=span.since)
    by_week_kind = {(_week(r["week"]), r["kind"]): r["count"] for r in found}
    groups = hashlist_selectors.CHANGE_GROUPS
    series = [
        charts.Series(name, [sum(by_week_kind.get((w, k), 0) for k in kinds) for w in span.starts])
        for name, kinds in groups.items()
    ]
    kinds = [k for group in groups.values() for k in group]
    chart = charts.Chart(
        title="Changes approved per week",
        description=f"Approved changes to the list per week over the last {span.weeks} weeks, "
        "stacked by kind: added, regraded, retracted.",
        slots=span.slots,
        series=series,
        x_label=span.axis,
        y_label="Changes approved",
        kind=charts.STACKED,
        slug="changes",
        classes=["kind-added", "kind-regraded", "kind-retracted"],
    )
    if not any(v for s in series for v in s.values):
        chart = _emptied(chart)
    rows = [
        [
            _iso(w),
            *[s.values[i] for s in series],
            sum(s.values[i] or 0 for s in series),
            *[by_week_kind.get((w, k), 0) for k in kinds],
        ]
        for i, w in enumerate(span.starts)
    ]
    return Figure(
        slug="changes",
        chart=chart,
        columns=["week_start", *[n.lower() for n in groups], "total", *kinds],
        headers=[
            "Week starting",
            *groups,
            "Total",
            *[ChangeKind(k).label for k in kinds],
        ],
        rows=rows,
        formats=[_text, *[_count] * (len(groups) + 1 + len(kinds))],
        empty=f"No change was approved in the last {span.weeks} weeks. Changes appear here "
        "once a reviewer approves a proposal; try a longer range.",
        note="Added: new entries and hashes added to entries. Retracted: entries retracted and "
        "hashes removed. Counted in the week the change was approved.",
    )


def review_turnaround(span: Span) -> Figure:
    found = {
        _week(r["week"]): r for r in hashlist_selectors.review_turnaround_per_week(since=span.since)
    }
    median = [found[w]["median"] if w in found else None for w in span.starts]
    p90 = [found[w]["p90"] if w in found else None for w in span.starts]
    chart = charts.Chart(
        title="Review turnaround",
        description="Time from a proposal to its decision, per week of decision, over the last "
        f"{span.weeks} weeks: the median and the 90th percentile.",
        slots=span.slots,
        series=[charts.Series("Median", median), charts.Series("90th percentile", p90)],
        x_label=span.axis,
        y_label="Proposal to decision",
        format_value=charts.format_duration,
        slug="review-turnaround",
    )
    rows = [
        [
            _iso(w),
            found[w]["count"] if w in found else 0,
            median[i],
            p90[i],
        ]
        for i, w in enumerate(span.starts)
    ]
    return Figure(
        slug="review-turnaround",
        chart=chart,
        columns=["week_start", "decided", "median_seconds", "p90_seconds"],
        headers=["Week starting", "Decided", "Median", "90th percentile"],
        rows=rows,
        formats=[_text, _count, _duration, _duration],
        empty=f"No proposal was decided in the last {span.weeks} weeks. The turnaround is "
        "charted once reviewers approve or reject proposals; try a longer range.",
        note="Approved and rejected proposals, by the week they were decided; withdrawn ones "
        "were never decided and are left out.",
    )


# --- Members ----------------------------------------------------------------------------------

# Short enough to sit under a bar; the table has the full names.
LAG_AXIS = {
    "current": "Up to date",
    "hour": "Under 1 hour",
    "day": "1 hour to 1 day",
    "over_day": "Over 1 day",
    "never": "Never acknowledged",
}


def member_lag(span: Span) -> Figure:
    found = members_selectors.client_lag_now(now=span.now)
    buckets = members_selectors.LAG_BUCKETS
    chart = charts.Chart(
        title="Member lag now",
        description=f"Clients of active members by how far behind the published feeds they are "
        f"now: {', '.join(f'{label} {found[key]}' for key, label in buckets)}.",
        slots=[LAG_AXIS[key] for key, _label in buckets],
        series=[charts.Series("Clients", [found[key] for key, _label in buckets])],
        x_label="How far behind the current versions (each client by its furthest feed)",
        y_label="Clients",
        kind=charts.BARS,
        slug="member-lag",
        classes=["lag"],
        slot_classes=[f"lag-{key}" for key, _label in buckets],
    )
    if not found["total"]:
        chart = _emptied(chart)
    total = found["total"]
    rows: list[list[Any]] = [[label, found[key]] for key, label in buckets]
    rows.append(["Within one release (however long ago)", found["within_one_release"]])
    return Figure(
        slug="member-lag",
        chart=chart,
        columns=["how_far_behind", "clients"],
        headers=["How far behind", "Clients"],
        rows=rows,
        formats=[_text, _count],
        empty="No active member has a sync client yet. Clients appear here once a member "
        "administrator creates one with a token.",
        facts=[
            ("Clients of active members", _count(total)),
            ("Within one release", f"{_count(found['within_one_release'])} of {_count(total)}"),
            ("Behind over a day", _count(found["over_day"])),
        ],
        note="A client counts as behind from the moment the first version it lacks was "
        "published, on its furthest feed. Suspended members' clients are left out.",
    )


# --- Publication ------------------------------------------------------------------------------


def release_cuts(span: Span) -> Figure:
    found = {
        _week(r["week"]): r for r in distribution_selectors.releases_per_week(since=span.since)
    }
    mean = [found[w]["mean_seconds"] if w in found else None for w in span.starts]
    longest = [found[w]["max_seconds"] if w in found else None for w in span.starts]
    chart = charts.Chart(
        title="Release cut duration",
        description=f"How long the release cutter took per release, by week, over the last "
        f"{span.weeks} weeks: the mean and the longest.",
        slots=span.slots,
        series=[charts.Series("Mean", mean), charts.Series("Longest", longest)],
        x_label=span.axis,
        y_label="Cut duration",
        format_value=charts.format_duration,
        slug="release-cuts",
    )
    rows = [
        [
            _iso(w),
            found[w]["count"] if w in found else 0,
            found[w]["changes"] if w in found else 0,
            mean[i],
            longest[i],
        ]
        for i, w in enumerate(span.starts)
    ]
    untimed = sum(r["count"] - r["timed"] for r in found.values())
    note = "Measured by the cutter from taking the release lock to recording the release."
    if untimed:
        were = "release in this range was" if untimed == 1 else "releases in this range were"
        note += f" {untimed} {were} cut before durations were recorded: not in the chart."
    return Figure(
        slug="release-cuts",
        chart=chart,
        columns=["week_start", "releases", "changes", "mean_seconds", "max_seconds"],
        headers=["Week starting", "Releases", "Changes", "Mean cut", "Longest cut"],
        rows=rows,
        formats=[_text, _count, _count, _duration, _duration],
        empty=f"No timed release was cut in the last {span.weeks} weeks. Releases are cut "
        "when approved changes wait; try a longer range.",
        note=note,
    )


def bundle_bytes(span: Span) -> Figure:
    found = {
        (_week(r["week"]), r["kind"]): r
        for r in distribution_selectors.bundle_bytes_per_week(since=span.since)
    }

    def of(week: dt.datetime, kind: str, key: str) -> int:
        row = found.get((week, kind))
        return int(row[key] or 0) if row else 0

    series = [
        charts.Series("Deltas", [of(w, "delta", "bytes") for w in span.starts]),
        charts.Series("Snapshots", [of(w, "snapshot", "bytes") for w in span.starts]),
    ]
    chart = charts.Chart(
        title="Bundle bytes written per week",
        description=f"Bytes of delta and snapshot bundles stored per week over the last "
        f"{span.weeks} weeks, stacked.",
        slots=span.slots,
        series=series,
        x_label=span.axis,
        y_label="Bundle bytes written",
        kind=charts.STACKED,
        format_value=charts.format_bytes,
        slug="bundle-bytes",
        classes=["bundle-delta", "bundle-snapshot"],
    )
    if not found:
        chart = _emptied(chart)
    rows = [
        [
            _iso(w),
            of(w, "delta", "count"),
            of(w, "delta", "bytes"),
            of(w, "snapshot", "count"),
            of(w, "snapshot", "bytes"),
            of(w, "snapshot", "largest") or None,
        ]
        for w in span.starts
    ]
    return Figure(
        slug="bundle-bytes",
        chart=chart,
        columns=[
            "week_start",
            "delta_bundles",
            "delta_bytes",
            "snapshots",
            "snapshot_bytes",
            "largest_snapshot_bytes",
        ],
        headers=[
            "Week starting",
            "Deltas",
            "Delta bytes",
            "Snapshots",
            "Snapshot bytes",
            "Largest snapshot",
        ],
        rows=rows,
        formats=[_text, _count, _bytes, _count, _bytes, _bytes],
        empty=f"No bundle was written in the last {span.weeks} weeks. Each release writes a "
        "delta per changed feed, and snapshots are built as feeds grow; try a longer range.",
        note="Each content-addressed bundle is counted once, in the week it was stored.",
    )


def _emptied(chart: charts.Chart) -> charts.Chart:
    """The chart with no values: all-zero counts are "nothing happened", shown as the empty
    state rather than a flat line."""
    return charts.Chart(
        title=chart.title,
        description=chart.description,
        slots=chart.slots,
        series=[charts.Series(s.name, [None] * len(s.values)) for s in chart.series],
        x_label=chart.x_label,
        y_label=chart.y_label,
        kind=chart.kind,
        format_value=chart.format_value,
        slug=chart.slug,
        classes=chart.classes,
    )


VIEW_FEED = "distribution.view_feed"
VIEW_RELEASE = "distribution.view_release"
VIEW_ENTRY = "hashlist.view_entry"
VIEW_PROPOSAL = "hashlist.view_proposal"
VIEW_MEMBER = "members.view_member"

REPORTS: dict[str, Report] = {
    r.slug: r
    for r in (
        Report(
            "feed-sizes",
            "Feed sizes",
            "How many hashes each feed carries, week by week.",
            VIEW_FEED,
            "web-report-feed-sizes",
            feed_sizes,
        ),
        Report(
            "changes",
            "Changes per week",
            "Approved additions, regradings and retractions per week.",
            VIEW_ENTRY,
            "web-report-changes",
            changes,
        ),
        Report(
            "review-turnaround",
            "Review turnaround",
            "How long proposals wait for a decision: median and 90th percentile per week.",
            VIEW_PROPOSAL,
            "web-report-review-turnaround",
            review_turnaround,
        ),
        Report(
            "member-lag",
            "Member lag",
            "How many member clients are up to date, and how far behind the others are.",
            VIEW_MEMBER,
            "web-report-member-lag",
            member_lag,
            ranged=False,
        ),
        Report(
            "release-cuts",
            "Release cut duration",
            "How long cutting a release takes, per week.",
            VIEW_RELEASE,
            "web-report-releases",
            release_cuts,
        ),
        Report(
            "bundle-bytes",
            "Bundle sizes",
            "Bytes of delta and snapshot bundles written per week.",
            VIEW_RELEASE,
            "web-report-releases",
            bundle_bytes,
        ),
    )
}
# Every permission a report needs: a person holding any of them has a Reports page.
REPORT_PERMISSIONS = tuple(sorted({r.permission for r in REPORTS.values()}))


def reports_for(user: Any) -> list[Report]:
    return [r for r in REPORTS.values() if user.has_perm(r.permission)]
