"""Database functions the reports aggregate with, on PostgreSQL and on the embedded SQLite.

``Percentile`` is PostgreSQL's ``percentile_cont``; SQLite has no such aggregate, so
``register_sqlite_functions`` adds one with the same interpolation to every SQLite connection
(``HashsyncConfig.ready``). ``Seconds`` is the time between two datetimes in seconds."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.db.models import Aggregate, Expression, FloatField, Func

SQLITE_PERCENTILE = "hashsync_percentile"


class Percentile(Aggregate):
    """The continuous percentile ``fraction`` (0.5: the median) of ``expression``, with
    linear interpolation between the two nearest values (``percentile_cont``)."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("A percentile's fraction is between 0 and 1.")
        # A float checked above, so writing it into the SQL is safe.
        super().__init__(expression, fraction=repr(fraction), **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            function=SQLITE_PERCENTILE,
            template="%(function)s(%(expressions)s, %(fraction)s)",
            **extra,
        )


class Seconds(Func):
    """``end - start`` in seconds, as a float."""

    output_field = FloatField()

    def __init__(self, end: Expression | str, start: Expression | str) -> None:
        super().__init__(end, start)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="EXTRACT(EPOCH FROM (%(expressions)s))",
            arg_joiner=" - ",
            **extra,
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """``percentile_cont`` in Python: what the SQLite aggregate computes, and the reference
    the tests hold PostgreSQL's to."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class _SqlitePercentile:
    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: Any, fraction: float) -> None:
        self.fraction = float(fraction)
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        return percentile_cont(self.values, self.fraction)


def register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A ``connection_created`` receiver: adds ``hashsync_percentile`` to SQLite."""
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate(SQLITE_PERCENTILE, 2, _SqlitePercentile)


def week_start(moment: dt.datetime) -> dt.datetime:
    """Monday 00:00 UTC of the week ``moment`` is in: how ``TruncWeek`` buckets (in UTC)."""
    moment = moment.astimezone(dt.UTC)
    monday = moment.date() - dt.timedelta(days=moment.weekday())
    return dt.datetime.combine(monday, dt.time(), tzinfo=dt.UTC)


def week_starts(weeks: int, *, now: dt.datetime) -> list[dt.datetime]:
    """The starts of the last ``weeks`` weeks, oldest first, the current week last."""
    last = week_start(now)
    return [last - dt.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
