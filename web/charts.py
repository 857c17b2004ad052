"""Charts drawn by the application: a series of numbers per week (or per category) turned into
an accessible inline SVG.

Why server-side SVG rather than a vendored charting library: the pages are server-rendered and
the Content-Security-Policy forbids inline scripts and styles, so a chart that is plain markup
works without JavaScript, prints, is read by screen readers through its ``<title>``/``<desc>``,
and is tested here like any other function. Colours and line styles are classes styled in
``static/hashsync/app.css`` (the CSP refuses ``style=`` attributes); only geometry is written
here. Every chart is shown with the table of its numbers, so the picture is never the only way
to the figures.

``render(chart)`` returns the markup; ``nice_scale`` and the ``format_*`` helpers are public so
the tables and tests use the same rounding as the axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

LINE = "line"
BARS = "bars"  # one bar per series side by side in each slot
STACKED = "stacked"  # the series stacked in one bar per slot

WIDTH = 760
HEIGHT = 300
LEFT, RIGHT, TOP, BOTTOM = 86, 16, 16, 52
# At most this many labels under the x axis; the others are left out (the table has them all).
MAX_X_LABELS = 7
# Series past this many share the last colour class (the legend still names each one).
PALETTE_SIZE = 8

Number = float | int


def _short(value: float, digits: int = 3) -> str:
    """At most ``digits`` significant digits, never in exponent form: 0.25, 2.5, 25, 250."""
    if abs(value) >= 10 ** (digits - 1) or value == int(value):
        return f"{value:.0f}"
    text = f"{value:.{digits}g}"
    return f"{float(text):f}".rstrip("0").rstrip(".") if "e" in text else text


def format_count(value: Number) -> str:
    """12, 1,250, 34.5k, 12M: short enough for an axis, exact enough to read a trend."""
    value = float(value)
    magnitude = abs(value)
    for limit, divisor, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if magnitude >= limit:
            return f"{_short(value / divisor)}{suffix}"
    if value == int(value):
        return f"{int(value):,}"
    return _short(value, 2)


def format_bytes(value: Number) -> str:
    value = float(value)
    for limit, unit in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
        if abs(value) >= limit:
            return f"{_short(value / limit)} {unit}"
    return f"{int(value)} B"


DURATION_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def format_duration(seconds: Number) -> str:
    """Seconds as people say them: 0.4 s, 12 s, 5.5 min, 3.2 h, 2.1 d."""
    seconds = float(seconds)
    if seconds == 0:
        return "0"
    for limit, unit in DURATION_UNITS:
        if abs(seconds) >= limit or limit == 1:
            return f"{_short(seconds / limit, 2)} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Number | None]  # one per slot; None: no value there (a gap, not a zero)


@dataclass(frozen=True)
class Chart:
    """What to draw. ``slots`` are the x positions' labels (week starts, or categories)."""

    title: str
    description: str
    slots: Sequence[str]
    series: Sequence[Series]
    x_label: str
    y_label: str  # with its unit: "Entries", "Seconds", "Bytes per week"
    kind: str = LINE
    format_value: Callable[[Number], str] = format_count
    slug: str = "chart"
    # Classes per series (``series-0`` …) unless given, so one thing keeps one colour.
    classes: Sequence[str] = field(default=())
    # Classes per slot, for a chart of one series of categories whose bars mean different
    # things (up to date, behind a day): each bar gets its slot's class.
    slot_classes: Sequence[str] = field(default=())

    def is_empty(self) -> bool:
        return not self.slots or all(v is None for s in self.series for v in s.values)


def nice_scale(maximum: float, ticks: int = 5, *, integer: bool = False) -> list[float]:
    """Tick values from 0 to a round number at or above ``maximum`` (1, 2, 2.5 or 5 times a
    power of ten per step), about ``ticks`` steps; whole steps only when ``integer``."""
    if not math.isfinite(maximum) or maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1, math.ceil(step) if step != 2.5 else 2)
    count = math.ceil(maximum / step - 1e-9)
    if integer:
        count = max(count, 2)  # a count of 1 still gets a gridline above it
    return [round(i * step, 10) for i in range(count + 1)]


def axis_ticks(chart: Chart) -> list[float]:
    """The y axis's ticks, round in the chart's unit: whole counts, powers of 1024 for
    bytes, seconds/minutes/hours/days for durations."""
    maximum = _maximum(chart)
    if chart.format_value is format_bytes:
        unit = 1024 ** max(0, math.floor(math.log(maximum, 1024))) if maximum > 0 else 1
        return [t * unit for t in nice_scale(maximum / unit)]
    if chart.format_value is format_duration:
        unit = next((limit for limit, _ in DURATION_UNITS if maximum >= limit), 1)
        return [t * unit for t in nice_scale(maximum / unit)]
    return nice_scale(maximum, integer=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _series_class(chart: Chart, index: int) -> str:
    if index < len(chart.classes):
        return chart.classes[index]
    return f"series-{min(index, PALETTE_SIZE - 1)}"


def _maximum(chart: Chart) -> float:
    if chart.kind == STACKED:
        sums = [sum(float(s.values[i] or 0) for s in chart.series) for i in range(len(chart.slots))]
        return max(sums, default=0.0)
    return max((float(v) for s in chart.series for v in s.values if v is not None), default=0.0)


def render(chart: Chart) -> SafeString:
    """The chart as an ``<svg>`` element (empty string for an empty chart: the page shows its
    empty state instead of a broken picture)."""
    if chart.is_empty():
        return mark_safe("")
    for s in chart.series:
        if len(s.values) != len(chart.slots):
            raise ValueError(
                f"series {s.name!r} has {len(s.values)} values for {len(chart.slots)} slots"
            )
    ticks = axis_ticks(chart)
    top_value = ticks[-1]
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    n = len(chart.slots)
    slot_w = plot_w / n

    def y(value: float) -> float:
        return TOP + plot_h - (value / top_value) * plot_h

    def x_center(i: int) -> float:
        return LEFT + slot_w * (i + 0.5)

    ident = escape(chart.slug)
    parts: list[str] = [
        f'<svg class="chart chart-{escape(chart.kind)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-title">{escape(chart.title)}</title>',
        f'<desc id="{ident}-desc">{escape(chart.description)}</desc>',
    ]
    # Gridlines and the y axis's labels.
    parts.append('<g class="grid" aria-hidden="true">')
    for tick in ticks:
        ty = _num(y(tick))
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty}" y2="{ty}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{ty}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(chart.format_value(tick))}</text>'
        )
    parts.append("</g>")
    # The x axis: a label under every few slots, so they never overlap.
    every = max(1, math.ceil(n / MAX_X_LABELS))
    parts.append('<g class="axis" aria-hidden="true">')
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>'
    )
    for i, label in enumerate(chart.slots):
        if i % every and i != n - 1:
            continue
        if i != n - 1 and n - 1 - i < every and (n - 1) % every:
            continue  # too close to the last label, which is always shown
        parts.append(
            f'<text class="tick" x="{_num(x_center(i))}" y="{TOP + plot_h + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" '
        f'text-anchor="middle">{escape(chart.x_label)}</text>'
    )
    parts.append(
        f'<text class="axis-label" x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(chart.y_label)}</text>'
    )
    parts.append("</g>")
    # The data.
    if chart.kind == LINE:
        parts.extend(_lines(chart, y, x_center))
    else:
        parts.extend(_bars(chart, y, x_center, slot_w))
    parts.append("</svg>")
    # Every text in ``parts`` went through escape(); the rest is numbers and fixed markup.
    return mark_safe("".join(parts))  # noqa: S308


def _point_title(chart: Chart, series: Series, i: int, value: Number) -> str:
    name = f"{series.name}, " if len(chart.series) > 1 else ""
    return escape(f"{name}{chart.slots[i]}: {chart.format_value(value)}")


def _lines(chart: Chart, y: Callable[[float], float], x: Callable[[int], float]) -> list[str]:
    parts = []
    for index, series in enumerate(chart.series):
        css = escape(_series_class(chart, index))
        parts.append(f'<g class="series {css}">')
        run: list[str] = []
        runs: list[list[str]] = []
        for i, value in enumerate(series.values):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{_num(x(i))},{_num(y(float(value)))}")
        if run:
            runs.append(run)
        for points in runs:
            if len(points) > 1:
                parts.append(f'<polyline fill="none" points="{" ".join(points)}"/>')
        for i, value in enumerate(series.values):
            if value is None:
                continue
            parts.append(
                f'<circle cx="{_num(x(i))}" cy="{_num(y(float(value)))}" r="3">'
                f"<title>{_point_title(chart, series, i, value)}</title></circle>"
            )
        parts.append("</g>")
    return parts


def _bars(
    chart: Chart, y: Callable[[float], float], x: Callable[[int], float], slot_w: float
) -> list[str]:
    parts = []
    stacked = chart.kind == STACKED
    width = slot_w * 0.7
    each = width if stacked else width / len(chart.series)
    base = [0.0] * len(chart.slots)
    for index, series in enumerate(chart.series):
        css = escape(_series_class(chart, index))
        parts.append(f'<g class="series {css}">')
        for i, value in enumerate(series.values):
            if value is None or float(value) == 0:
                continue
            bottom = base[i] if stacked else 0.0
            top = bottom + float(value)
            left = x(i) - width / 2 + (0 if stacked else index * each)
            height = max(y(bottom) - y(top), 1.0)  # a small value still shows
            slot_class = (
                f' class="{escape(chart.slot_classes[i])}"' if i < len(chart.slot_classes) else ""
            )
            parts.append(
                f'<rect{slot_class} x="{_num(left)}" y="{_num(y(top))}" '
                f'width="{_num(max(each - 1, 1))}" '
                f'height="{_num(height)}"><title>{_point_title(chart, series, i, value)}'
                f"</title></rect>"
            )
            if stacked:
                base[i] = top
        parts.append("</g>")
    if len(chart.series) == 1 and not stacked:
        # One series of categories: each bar's number above it (zeros too), so a count is
        # read, not estimated against the grid.
        parts.append('<g class="values" aria-hidden="true">')
        for i, value in enumerate(chart.series[0].values):
            if value is not None:
                parts.append(
                    f'<text x="{_num(x(i))}" y="{_num(y(float(value)) - 5)}" '
                    f'text-anchor="middle">{escape(chart.format_value(value))}</text>'
                )
        parts.append("</g>")
    return parts


def legend(chart: Chart) -> list[dict[str, str]]:
    """The series' names and classes, for the HTML legend under the chart (it wraps, and a
    screen reader reads it as a list); none for a chart of one series."""
    if len(chart.series) < 2:
        return []
    return [
        {"name": series.name, "css": _series_class(chart, index)}
        for index, series in enumerate(chart.series)
    ]
