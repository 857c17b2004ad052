"""The charts (web/charts.py), the report reads behind them, and the Reports pages: the SVG
builder's scales, empty series, single points, large values and escaping; percentiles equal
on SQLite and PostgreSQL; each page per role; the CSV's content; bad ranges. Synthetic data
only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
import re
from typing import Any

import pytest
from django.utils import timezone

from distribution import releases
from distribution.models import Release
from hashsync.aggregates import Percentile, percentile_cont, week_start, week_starts
from members.models import Member, MemberStatus
from tests.web.report_helpers import build_fleet, build_history
from web import charts
from web.reports import REPORTS

# --- The SVG builder --------------------------------------------------------------------------


def _chart(**kwargs: Any) -> charts.Chart:
    defaults: dict[str, Any] = {
        "title": "Entries per feed",
        "description": "Synthetic",
        "slots": ["1 Jan", "8 Jan", "15 Jan"],
        "series": [charts.Series("md5-all", [1, 2, 3])],
        "x_label": "Week starting",
        "y_label": "Hashes",
    }
    return charts.Chart(**{**defaults, **kwargs})


@pytest.mark.parametrize(
    ("maximum", "expected_top"),
    [(1, 1), (7, 8), (10, 10), (26, 30), (99, 100), (1234, 1250), (9.5e9, 1e10)],
)
def test_the_scale_ends_at_a_round_number_at_or_above_the_maximum(maximum, expected_top):
    ticks = charts.nice_scale(maximum)
    assert ticks[0] == 0
    assert ticks[-1] == pytest.approx(expected_top)
    assert ticks[-1] >= maximum
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1, ticks  # evenly spaced
    assert 2 <= len(ticks) <= 7


@pytest.mark.parametrize("maximum", [0, -5, math.nan, math.inf])
def test_the_scale_of_nothing_is_zero_to_one(maximum):
    assert charts.nice_scale(maximum) == [0.0, 1.0]


def test_counts_get_whole_ticks():
    assert charts.nice_scale(3, integer=True) == [0, 1, 2, 3]
    assert charts.nice_scale(1, integer=True) == [0, 1, 2]
    assert all(t == int(t) for t in charts.nice_scale(1, integer=True))


def test_byte_and_duration_axes_are_round_in_their_unit():
    kib = charts.axis_ticks(
        _chart(series=[charts.Series("b", [0, 9000, 24000])], format_value=charts.format_bytes)
    )
    assert all((t / 1024) == int(t / 1024) for t in kib), kib
    hours = charts.axis_ticks(
        _chart(
            series=[charts.Series("d", [0, 3 * 3600, 20 * 3600])],
            format_value=charts.format_duration,
        )
    )
    assert all((t / 3600) == int(t / 3600) for t in hours), hours


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (12, "12"),
        (1250, "1,250"),
        (34_500, "34.5k"),
        (12_000_000, "12M"),
        (3.2e9, "3.2G"),
        (0.5, "0.5"),
    ],
)
def test_counts_are_short_and_never_in_exponent_form(value, text):
    assert charts.format_count(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (0.4, "0.4 s"),
        (12, "12 s"),
        (330, "5.5 min"),
        (59 * 60, "59 min"),
        (3 * 3600, "3 h"),
        (2.5 * 86400, "2.5 d"),
    ],
)
def test_durations_read_as_people_say_them(value, text):
    assert charts.format_duration(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(512, "512 B"), (2048, "2 KiB"), (1000 * 1024, "1000 KiB"), (5 * 1024**3, "5 GiB")],
)
def test_bytes_are_binary_units(value, text):
    assert charts.format_bytes(value) == text


def test_a_chart_is_an_accessible_svg_without_inline_styles():
    svg = str(charts.render(_chart(slug="feed-sizes")))
    assert svg.startswith('<svg class="chart chart-line"')
    assert 'role="img"' in svg and 'aria-labelledby="feed-sizes-title feed-sizes-desc"' in svg
    assert '<title id="feed-sizes-title">Entries per feed</title>' in svg
    assert '<desc id="feed-sizes-desc">Synthetic</desc>' in svg
    assert "style=" not in svg and "<style" not in svg and "<script" not in svg
    assert 'class="axis-label"' in svg and ">Hashes<" in svg and ">Week starting<" in svg
    assert svg.count("<circle") == 3 and svg.count("<polyline") == 1
    # Each point says its value on hover.
    assert "<title>8 Jan: 2</title>" in svg


def test_an_empty_chart_draws_nothing():
    empty = _chart(series=[charts.Series("a", [None, None, None])])
    assert empty.is_empty()
    assert charts.render(empty) == ""
    assert charts.render(_chart(slots=[], series=[])) == ""


def test_one_point_is_a_dot_not_a_line():
    svg = str(charts.render(_chart(slots=["1 Jan"], series=[charts.Series("a", [5])])))
    assert svg.count("<circle") == 1 and "<polyline" not in svg


def test_a_missing_week_breaks_the_line_rather_than_dropping_to_zero():
    svg = str(charts.render(_chart(series=[charts.Series("a", [1, None, 3])])))
    assert svg.count("<circle") == 2
    assert "<polyline" not in svg  # two runs of one point each


def test_large_values_keep_short_tick_labels():
    svg = str(charts.render(_chart(series=[charts.Series("a", [2e9, 5e9, 9.9e9])])))
    labels = re.findall(r'class="tick"[^>]*>([^<]*)<', svg)
    assert "10G" in labels and all(len(label) <= 7 for label in labels), labels
    assert "e+" not in svg


def test_labels_are_escaped_everywhere():
    evil = '<script>alert("x")</script>&'
    chart = _chart(
        title=evil,
        description=evil,
        slots=[evil, "b", "c"],
        series=[charts.Series(evil, [1, 2, 3]), charts.Series("b", [1, 1, 1])],
        x_label=evil,
        y_label=evil,
        slug='x" onload="alert(1)',
    )
    svg = str(charts.render(chart))
    assert "<script>" not in svg and 'onload="' not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in svg
    assert charts.legend(chart)[0]["name"] == evil  # the template escapes it


def test_stacked_bars_sum_and_grouped_bars_sit_side_by_side():
    series = [charts.Series("Added", [3, 0, 1]), charts.Series("Retracted", [1, 0, None])]
    stacked = str(charts.render(_chart(series=series, kind=charts.STACKED)))
    assert stacked.count("<rect") == 3  # zeros and gaps draw nothing
    assert charts.axis_ticks(_chart(series=series, kind=charts.STACKED))[-1] >= 4
    grouped = _chart(series=[charts.Series("Clients", [0, 2, 5])], kind=charts.BARS)
    svg = str(charts.render(grouped))
    assert svg.count("<rect") == 2
    # One series of categories: its numbers above the bars, the zero too.
    assert re.findall(r'<g class="values"[^>]*>(.*?)</g>', svg)[0].count("<text") == 3


def test_a_series_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="has 2 values for 3 slots"):
        charts.render(_chart(series=[charts.Series("a", [1, 2])]))


def test_the_legend_names_each_series_with_its_class():
    assert charts.legend(_chart()) == []  # one series: the title says it
    two = _chart(series=[charts.Series("a", [1, 2, 3]), charts.Series("b", [1, 2, 3])])
    assert charts.legend(two) == [
        {"name": "a", "css": "series-0"},
        {"name": "b", "css": "series-1"},
    ]
    many = _chart(series=[charts.Series(str(i), [1, 1, 1]) for i in range(12)])
    assert charts.legend(many)[-1]["css"] == f"series-{charts.PALETTE_SIZE - 1}"


def test_many_weeks_label_only_some_slots_and_always_the_last():
    slots = [f"w{i}" for i in range(52)]
    svg = str(charts.render(_chart(slots=slots, series=[charts.Series("a", list(range(52)))])))
    shown = [s for s in slots if f">{s}</text>" in svg]
    assert len(shown) <= charts.MAX_X_LABELS and shown[-1] == "w51" and shown[0] == "w0"


# --- Aggregates and reads ---------------------------------------------------------------------


def test_weeks_start_on_monday_in_utc():
    now = dt.datetime(2026, 12, 5, 5, 30, tzinfo=dt.UTC)  # a Saturday
    assert week_start(now) == dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    starts = week_starts(3, now=now)
    assert starts == [
        dt.datetime(2026, 11, 16, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    ]


def test_percentile_cont_interpolates():
    assert percentile_cont([], 0.5) is None
    assert percentile_cont([4.0], 0.9) == 4.0
    assert percentile_cont([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile_cont([10.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 0.9) == 9.1
    with pytest.raises(ValueError):
        Percentile("cut_seconds", 1.5)


@pytest.mark.django_db
def test_the_database_percentile_equals_the_reference():
    values = [0.5, 3.0, 1.25, 9.0, 2.0, 7.5, 0.25]
    for version, value in enumerate(values, start=1):
        Release.objects.create(
            version=version,
            change_count=0,
            first_change_id=0,
            last_change_id=0,
            cut_seconds=value,
        )
    Release.objects.create(version=99, change_count=0, first_change_id=0, last_change_id=0)
    found = Release.objects.aggregate(
        median=Percentile("cut_seconds", 0.5), p90=Percentile("cut_seconds", 0.9)
    )
    assert found["median"] == pytest.approx(percentile_cont(values, 0.5))
    assert found["p90"] == pytest.approx(percentile_cont(values, 0.9))


@pytest.mark.django_db
def test_the_cutter_records_how_long_the_cut_took(analyst, reviewer):
    from tests.factories import approved_entry

    approved_entry(analyst, reviewer)
    release = releases.release_cut()
    assert release is not None
    release.refresh_from_db()
    assert release.cut_seconds is not None and 0 <= release.cut_seconds < 60


# --- The pages --------------------------------------------------------------------------------


@pytest.fixture
def history(analyst2, reviewer2, db):
    from tests.factories import staff_user

    admin = staff_user("member_admin")
    found = build_history(analyst2, reviewer2, admin, weeks=5)
    found["clients"] = build_fleet(admin, found["feeds"][0])
    return found


def _csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode())))


TITLES = {slug: report.title for slug, report in REPORTS.items()}
SEES = {
    "analyst": {"feed-sizes", "changes", "review-turnaround", "release-cuts", "bundle-bytes"},
    "reviewer": {"feed-sizes", "changes", "review-turnaround", "release-cuts", "bundle-bytes"},
    "auditor": set(REPORTS),
    "member_admin": {"feed-sizes", "member-lag", "release-cuts", "bundle-bytes"},
}


@pytest.mark.parametrize("role", sorted(SEES))
def test_the_index_shows_a_role_only_the_charts_it_may_see(client_as, role, history):
    response = client_as(role).get("/reports/")
    page = response.content.decode()
    assert response.status_code == 200
    for slug in TITLES:
        assert (f'id="{slug}-heading"' in page) == (slug in SEES[role]), (role, slug)
    assert page.count("<svg") == len(SEES[role])
    assert '<a href="/reports/"' in page and ">Reports</a>" in page  # the navigation row


def test_someone_without_a_staff_role_has_no_reports(client_as, history):
    response = client_as("outsider").get("/reports/")
    assert response.status_code == 403
    page = client_as("outsider").get("/").content.decode()
    assert 'href="/reports/"' not in page


@pytest.mark.parametrize(
    ("url", "slugs"),
    [
        ("/reports/feed-sizes/", ["feed-sizes"]),
        ("/reports/changes/", ["changes"]),
        ("/reports/review-turnaround/", ["review-turnaround"]),
        ("/reports/member-lag/", ["member-lag"]),
        ("/reports/releases/", ["release-cuts", "bundle-bytes"]),
    ],
)
def test_each_chart_page_has_its_chart_table_and_csv_link(client_as, history, url, slugs):
    page = client_as("auditor").get(url).content.decode()
    for slug in slugs:
        assert f'aria-labelledby="{slug}-title {slug}-desc"' in page
        assert f'href="/reports/{slug}.csv' in page
    assert page.count('<details class="report-table"') == len(slugs)
    assert page.count("<svg") == len(slugs)
    assert "style=" not in page


def test_the_changes_csv_counts_each_kind_per_week(client_as, history):
    rows = _csv(client_as("analyst").get("/reports/changes.csv?weeks=12"))
    assert len(rows) == 12
    assert list(rows[0]) == [
        "week_start",
        "added",
        "regraded",
        "retracted",
        "total",
        "create",
        "add_hash",
        "regrade",
        "retract",
        "remove_hash",
    ]
    assert sum(int(r["create"]) for r in rows) == 2 + 3 + 4 + 5 + 6
    assert sum(int(r["regrade"]) for r in rows) == 2
    assert sum(int(r["retract"]) for r in rows) == 1
    for row in rows:
        assert int(row["total"]) == int(row["added"]) + int(row["regraded"]) + int(row["retracted"])
    # Weeks are Monday starts, oldest first.
    weeks = [dt.date.fromisoformat(r["week_start"]) for r in rows]
    assert weeks == sorted(weeks) and all(w.weekday() == 0 for w in weeks)


def test_the_turnaround_csv_has_median_and_p90_per_week(client_as, history):
    rows = [
        r
        for r in _csv(client_as("reviewer").get("/reports/review-turnaround.csv"))
        if r["decided"] != "0"
    ]
    assert len(rows) == 5
    for row in rows:
        assert float(row["p90_seconds"]) >= float(row["median_seconds"]) > 0
    # The waits grow week by week (report_helpers).
    medians = [float(r["median_seconds"]) for r in rows]
    assert medians == sorted(medians)


def test_the_feed_sizes_csv_carries_the_size_forward(client_as, history):
    rows = _csv(client_as("member_admin").get("/reports/feed-sizes.csv?weeks=12"))
    sizes = [r["md5-all"] for r in rows if r["md5-all"]]
    assert [int(s) for s in sizes] == sorted(int(s) for s in sizes)
    assert int(sizes[-1]) == history["feeds"][0].entry_count


def test_the_member_lag_csv_and_its_suspended_members(client_as, history, member_admin):
    rows = {
        r["how_far_behind"]: int(r["clients"])
        for r in _csv(client_as("auditor").get("/reports/member-lag.csv"))
    }
    assert rows == {
        "Up to date": 1,
        "Behind under an hour": 1,
        "Behind 1 hour to 1 day": 0,
        "Behind over a day": 1,
        "Never acknowledged": 1,
        "Within one release (however long ago)": 2,
    }
    Member.objects.filter(name="member-stale").update(status=MemberStatus.SUSPENDED)
    rows = {
        r["how_far_behind"]: int(r["clients"])
        for r in _csv(client_as("member_admin").get("/reports/member-lag.csv"))
    }
    assert rows["Behind over a day"] == 0


def test_the_release_csvs(client_as, history):
    cuts = [
        r
        for r in _csv(client_as("member_admin").get("/reports/release-cuts.csv"))
        if r["releases"] != "0"
    ]
    assert sum(int(r["releases"]) for r in cuts) == len(history["releases"])
    assert all(float(r["max_seconds"]) >= float(r["mean_seconds"]) >= 0 for r in cuts)
    sizes = _csv(client_as("auditor").get("/reports/bundle-bytes.csv?weeks=52"))
    assert len(sizes) == 52
    assert sum(int(r["delta_bytes"]) for r in sizes) > 0
    assert sum(int(r["snapshots"]) for r in sizes) >= 2  # each feed's first publication


@pytest.mark.parametrize("weeks", ["4", "12", "52"])
def test_the_range_selects_the_weeks(client_as, history, weeks):
    response = client_as("analyst").get(f"/reports/changes/?weeks={weeks}")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<th scope="row">') == int(weeks)
    assert f'<option value="{weeks}" selected>' in page
    assert len(_csv(client_as("analyst").get(f"/reports/changes.csv?weeks={weeks}"))) == int(weeks)


@pytest.mark.parametrize("weeks", ["7", "-1", "abc", "9" * 500, "52\x00"])
def test_a_bad_range_is_refused_next_to_the_field_and_the_default_shown(client_as, history, weeks):
    response = client_as("analyst").get("/reports/changes/", {"weeks": weeks})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_weeks-error"' in page and "Choose 4, 12 or 52 weeks." in page
    assert page.count('<th scope="row">') == 12
    # The CSV falls back to the default range rather than failing.
    assert len(_csv(client_as("analyst").get("/reports/changes.csv", {"weeks": weeks}))) == 12


def test_a_csv_is_refused_to_a_role_without_its_data(client_as, history):
    assert client_as("analyst").get("/reports/member-lag.csv").status_code == 403
    assert client_as("member_admin").get("/reports/changes.csv").status_code == 403
    assert client_as("member_admin").get("/reports/review-turnaround.csv").status_code == 403
    assert client_as("outsider").get("/reports/feed-sizes.csv").status_code == 403
    anonymous = client_as("anonymous").get("/reports/feed-sizes.csv")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/?next=")


def test_an_unknown_chart_is_not_found(client_as, history):
    assert client_as("auditor").get("/reports/nothing-here.csv").status_code == 404
    assert client_as("auditor").get("/reports/" + "x" * 300 + ".csv").status_code == 404


def test_reports_are_read_only(client_as, history):
    assert client_as("auditor").post("/reports/").status_code == 405
    assert client_as("auditor").post("/reports/changes.csv").status_code == 405


def test_the_csv_is_named_after_the_chart_and_range(client_as, history):
    response = client_as("auditor").get("/reports/changes.csv?weeks=4")
    today = timezone.now().date().isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="hashsync-changes-4w-{today}.csv"'
    )
    lag = client_as("auditor").get("/reports/member-lag.csv?weeks=4")
    assert f'filename="hashsync-member-lag-{today}.csv"' in lag["Content-Disposition"]


# --- Empty states -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/reports/feed-sizes/", "No feed has been published yet."),
        ("/reports/changes/", "No change was approved in the last 12 weeks."),
        ("/reports/review-turnaround/", "No proposal was decided in the last 12 weeks."),
        ("/reports/member-lag/", "No active member has a sync client yet."),
        ("/reports/releases/", "No timed release was cut in the last 12 weeks."),
    ],
)
def test_a_new_install_shows_why_each_chart_is_empty(client_as, url, says):
    response = client_as("auditor").get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert says in page
    assert "<svg" not in page
    assert '<details class="report-table" open>' in page  # the (empty) numbers, open


def test_a_release_cut_before_durations_were_recorded_is_said_so(client_as, db):
    Release.objects.create(version=1, change_count=1, first_change_id=1, last_change_id=1)
    page = client_as("auditor").get("/reports/releases/").content.decode()
    assert "1 release in this range was cut before durations were recorded" in page


def test_the_reports_cost_the_same_queries_with_more_history(
    client_as, analyst, reviewer, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import staff_user

    client = client_as("auditor")
    with CaptureQueriesContext(connection) as empty:
        client.get("/reports/?weeks=52")
    build_history(analyst, reviewer, staff_user("member_admin"), weeks=4)
    with django_assert_max_num_queries(len(empty.captured_queries) + 2):
        assert client.get("/reports/?weeks=52").status_code == 200
