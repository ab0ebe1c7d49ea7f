"""Measures: one value per customer over the activities that reach it, at an evaluation time.

The evaluator reads a customer's activities column by column (Columns), in (ActivityTime,
ActivityId) order: a measure's filter is a pass over the columns it tests, its window two
bisections of the time column and its aggregate one over a slice, with no object made per
activity. Records (as every store reads them) become columns in Columns.of_records; a store's
full pass may read columns directly (Columns.of_rows)."""

from __future__ import annotations

import bisect
import functools
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import compress, repeat
from operator import itemgetter
from typing import Any

from shared.core.audiences.definitions import (
    TIME_FIELD,
    MeasureConfig,
    TextTest,
    format_instant,
    parse_instant,
)

Record = Mapping[str, Any]
ID_FIELD = "ActivityId"
Mask = Iterable[bool]


class Columns:
    """A customer's activities, one sequence per field, all in (ActivityTime, ActivityId)
    order (a missing or null id ordered as "", kept as None). A field not read holds None
    throughout."""

    __slots__ = ("_columns", "size")

    def __init__(self, columns: Mapping[str, Sequence[Any]]) -> None:
        self._columns = columns
        self.size = len(columns[TIME_FIELD]) if TIME_FIELD in columns else 0

    @classmethod
    def of_records(cls, activities: Sequence[Record], fields: Iterable[str]) -> Columns:
        """The `fields` of these activities, in any order."""
        ordered = _in_order(activities)
        return cls({field: [a.get(field) for a in ordered] for field in {TIME_FIELD, *fields}})

    @classmethod
    def of_rows(cls, names: Sequence[str], rows: list[tuple[Any, ...]]) -> Columns:
        """Rows of values named `names` (each may hold more after them), in any order, each
        with its time and a non-null id (as a store holds them): sorted here, in place."""
        rows.sort(key=itemgetter(names.index(TIME_FIELD), names.index(ID_FIELD)))
        return cls(dict(zip(names, zip(*rows, strict=False), strict=False)))

    def column(self, field: str) -> Sequence[Any]:
        found = self._columns.get(field)
        return found if found is not None else (None,) * self.size

    def records(self) -> list[dict[str, Any]]:
        """The activities as records of the fields held, in order."""
        names = list(self._columns)
        return [dict(zip(names, values, strict=True)) for values in zip(*self._columns.values(), strict=True)]


def _text_test(field: str, test: TextTest) -> Callable[[Columns], Mask]:
    """The test as a pass over the field's column: one truth value per activity."""
    if test.equals is not None:
        wanted = test.equals
        return lambda c: map(operator.eq, c.column(field), repeat(wanted))
    if test.in_ is not None:
        among = frozenset(test.in_)
        return lambda c: map(among.__contains__, c.column(field))
    if test.startsWith is not None:
        return _of_text(field, str.startswith, test.startsWith)
    return _of_text(field, str.__contains__, test.contains)  # type: ignore[arg-type]


def _of_text(field: str, test: Callable[[str, str], bool], part: str) -> Callable[[Columns], Mask]:
    """A test of text values: false for any other (a null one); in C where all are text."""

    def mask(c: Columns) -> Mask:
        values = c.column(field)
        try:
            return list(map(test, values, repeat(part)))
        except TypeError:  # a value not text
            return [isinstance(v, str) and test(v, part) for v in values]

    return mask


class Measure:
    """One configured measure, compiled: its filter once, then an aggregate per customer."""

    def __init__(self, config: MeasureConfig) -> None:
        self.config = config
        self.name = config.name
        self.window = config.window
        self.field = config.of or TIME_FIELD
        types = frozenset(config.activities) if config.activities is not None else None
        tests = [_text_test(f, t) for f, t in config.where.items()]
        if types is not None:
            tests.append(lambda c: map(types.__contains__, c.column("ActivityType")))
        self._tests = tests
        # Measures that select the same activities share one pass over them per customer.
        self.selection = (
            tuple(sorted(types)) if types is not None else None,
            tuple(sorted((f, t.model_dump_json()) for f, t in config.where.items())),
        )

    @property
    def fields(self) -> frozenset[str]:
        """The activity fields this measure reads, besides its time and id (its order)."""
        of = (self.config.of,) if self.config.of else ()
        typed = ("ActivityType",) if self.config.activities is not None else ()
        return frozenset((*self.config.where, *of, *typed))

    def mask(self, activities: Columns) -> list[bool] | None:
        """Which activities are of the measure's kind, whatever their time; None: all."""
        if not self._tests:
            return None
        masks = [test(activities) for test in self._tests]
        return list(functools.reduce(lambda a, b: map(operator.and_, a, b), masks))

    def value(self, values: Sequence[Any], times: Sequence[str], low: int, high: int) -> Any:
        """The aggregate over the activities low:high inside the window, `values` the
        measure's field and `times` their times, both of its kind and in order."""
        aggregate = self.config.aggregate
        if aggregate == "count":
            return high - low
        if aggregate == "countDistinct":
            distinct = set(values[low:high])
            distinct.discard(None)
            return len(distinct)
        if aggregate == "mostFrequent":
            counts = Counter(values[low:high])
            counts.pop(None, None)
            if not counts:
                return None
            top = max(counts.values())
            tied = [v for v, n in counts.items() if n == top]
            return tied[0] if len(tied) == 1 else min(tied, key=_order_key)
        if low == high:
            return None
        # Ties go to the greatest (ActivityTime, ActivityId), for first and last alike.
        if aggregate == "last":
            return values[high - 1]
        return values[bisect.bisect_right(times, times[low], low, high) - 1]


def _recency(activity: Record) -> tuple[str, str]:
    return activity[TIME_FIELD], activity.get(ID_FIELD) or ""


_TIME_AND_ID = itemgetter(TIME_FIELD, ID_FIELD)


def _in_order(activities: Sequence[Record]) -> list[Record]:
    """Sorted by (ActivityTime, ActivityId), a missing or null id as "": by a key made in C
    where every activity has an id (a store's always do), else by one made here."""
    try:
        return sorted(activities, key=_TIME_AND_ID)
    except (KeyError, TypeError):  # an id missing, or null ones compared
        return sorted(activities, key=_recency)


def _order_key(value: Any) -> tuple[int, Any]:
    # Values of one field are of one type in practice; the type name keeps mixed ones ordered.
    return (0, value) if isinstance(value, int | float) else (1, str(value))


@functools.lru_cache(maxsize=256)
def _instant(at: datetime, back: timedelta | None = None) -> str:
    """`at` (less `back`) in the store's form: the same few for every customer of a pass."""
    return format_instant(at if back is None else at - back)


def measure_values(
    measures: Sequence[Measure], activities: Columns, at: datetime
) -> tuple[dict[str, Any], datetime | None]:
    """Every measure's value at `at`, and the next moment after it when one would change as
    time passes alone (an activity leaving a window, or one after `at` starting to count)."""
    now = _instant(at)
    every = activities.column(TIME_FIELD)
    masks: dict[tuple, list[bool] | None] = {}
    columns: dict[tuple, Sequence[Any]] = {}  # (selection, field) -> the field of its activities
    values: dict[str, Any] = {}
    upcoming: list[str] = []  # activities after `at`, starting to count
    leaving: list[datetime] = []  # the oldest activity in a window, leaving it
    for measure in measures:
        selection = measure.selection
        if selection not in masks:
            mask = masks[selection] = measure.mask(activities)
            columns[selection, TIME_FIELD] = every if mask is None else list(compress(every, mask))
        times = columns[selection, TIME_FIELD]
        chosen = columns.get((selection, measure.field))
        if chosen is None:
            column, mask = activities.column(measure.field), masks[selection]
            chosen = columns[selection, measure.field] = column if mask is None else list(compress(column, mask))
        high = bisect.bisect_right(times, now)
        if high < len(times):
            upcoming.append(times[high])
        low = bisect.bisect_right(times, _instant(at, measure.window), 0, high) if measure.window else 0
        values[measure.name] = measure.value(chosen, times, low, high)
        if measure.window and low < high:
            # An activity at t counts while at < t + window: the oldest leaves first.
            leaving.append(parse_instant(times[low]) + measure.window)
    if upcoming:
        leaving.append(parse_instant(min(upcoming)))
    if not leaving:
        return values, None
    first = min(leaving)  # to the millisecond, as the store writes instants
    return values, first.replace(microsecond=first.microsecond // 1000 * 1000)
