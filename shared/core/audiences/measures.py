"""Measures: one value per customer over the activities that reach it, at an evaluation time."""

from __future__ import annotations

import bisect
import functools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
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
_MS = timedelta(milliseconds=1)


def _text_test(field: str, test: TextTest) -> Callable[[Record], bool]:
    if test.equals is not None:
        wanted = test.equals
        return lambda a: a.get(field) == wanted
    if test.in_ is not None:
        among = frozenset(test.in_)
        return lambda a: a.get(field) in among
    if test.startsWith is not None:
        prefix = test.startsWith
        return lambda a: isinstance(v := a.get(field), str) and v.startswith(prefix)
    part = test.contains
    return lambda a: isinstance(v := a.get(field), str) and part in v  # type: ignore[operator]


class Measure:
    """One configured measure, compiled: its filter once, then an aggregate per customer."""

    def __init__(self, config: MeasureConfig) -> None:
        self.config = config
        self.name = config.name
        self.window = config.window
        self._types = frozenset(config.activities) if config.activities is not None else None
        self._tests = [_text_test(f, t) for f, t in config.where.items()]
        self.predicate = _predicate(self._types, self._tests)  # None: every activity
        # Measures that select the same activities share one pass over them per customer.
        self.selection = (
            tuple(sorted(self._types)) if self._types is not None else None,
            tuple(sorted((f, t.model_dump_json()) for f, t in config.where.items())),
        )

    @property
    def fields(self) -> frozenset[str]:
        """The activity fields this measure reads, besides its time and id (its order)."""
        of = (self.config.of,) if self.config.of else ()
        typed = ("ActivityType",) if self._types is not None else ()
        return frozenset((*self.config.where, *of, *typed))

    def selects(self, activity: Record) -> bool:
        """Whether the activity is of the measure's kind, whatever its time."""
        return self.predicate is None or self.predicate(activity)

    def value(self, chosen: Sequence[Record]) -> Any:
        """The aggregate over the activities inside the window, sorted by (time, id)."""
        config = self.config
        if config.aggregate == "count":
            return len(chosen)
        field = config.of or TIME_FIELD
        if config.aggregate == "countDistinct":
            return len({v for a in chosen if (v := a.get(field)) is not None})
        if config.aggregate == "mostFrequent":
            counts = Counter(v for a in chosen if (v := a.get(field)) is not None)
            if not counts:
                return None
            top = max(counts.values())
            return min((v for v, n in counts.items() if n == top), key=_order_key)
        if not chosen:
            return None
        # Ties go to the greatest (ActivityTime, ActivityId), for first and last alike.
        if config.aggregate == "last":
            return chosen[-1].get(field)
        earliest = chosen[0]["ActivityTime"]
        pick = chosen[0]
        for activity in chosen[1:]:
            if activity["ActivityTime"] != earliest:
                break
            pick = activity
        return pick.get(field)


def _predicate(
    types: frozenset[str] | None, tests: Sequence[Callable[[Record], bool]]
) -> Callable[[Record], bool] | None:
    """The measure's filter as one function (a full pass calls it for every activity)."""
    if types is None and not tests:
        return None
    if types is None:
        if len(tests) == 1:
            return tests[0]
        return lambda a: all(test(a) for test in tests)
    if not tests:
        return lambda a: a.get("ActivityType") in types
    return lambda a: a.get("ActivityType") in types and all(test(a) for test in tests)


def _recency(activity: Record) -> tuple[str, str]:
    return activity["ActivityTime"], activity.get("ActivityId") or ""


_TIME_AND_ID = itemgetter("ActivityTime", "ActivityId")


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
    measures: Sequence[Measure], activities: Sequence[Record], at: datetime
) -> tuple[dict[str, Any], datetime | None]:
    """Every measure's value at `at`, and the next moment after it when one would change as
    time passes alone (an activity leaving a window, or one after `at` starting to count)."""
    now = _instant(at)
    ordered = _in_order(activities)
    selections: dict[tuple, tuple[list[Record], list[str]]] = {}
    values: dict[str, Any] = {}
    upcoming: list[str] = []  # activities after `at`, starting to count
    leaving: list[datetime] = []  # the oldest activity in a window, leaving it
    for measure in measures:
        found = selections.get(measure.selection)
        if found is None:
            predicate = measure.predicate
            chosen = ordered if predicate is None else list(filter(predicate, ordered))
            found = selections[measure.selection] = (chosen, [a["ActivityTime"] for a in chosen])
        selected, times = found
        high = bisect.bisect_right(times, now)
        if high < len(times):
            upcoming.append(times[high])
        low = bisect.bisect_right(times, _instant(at, measure.window), 0, high) if measure.window else 0
        values[measure.name] = measure.value(selected[low:high])
        if measure.window and low < high:
            # An activity at t counts while at < t + window: the oldest leaves first.
            leaving.append(parse_instant(times[low]) + measure.window)
    if upcoming:
        leaving.append(parse_instant(min(upcoming)))
    if not leaving:
        return values, None
    first = min(leaving)  # to the millisecond, as the store writes instants
    return values, first.replace(microsecond=first.microsecond // 1000 * 1000)
