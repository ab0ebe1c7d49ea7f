"""Segment membership: a rule tree over measures, attributes and other segments, at a time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.core.audiences.definitions import (
    All,
    AnyOf,
    AttributeTest,
    MeasureTest,
    Not,
    Rule,
    SegmentTest,
    format_instant,
    parse_instant,
)

_MS = timedelta(milliseconds=1)


class RuleContext:
    """What one customer's rules read: measure values, attributes, segments decided so far,
    and the moments after which a time condition would turn (collected as they are read)."""

    def __init__(self, measures: Mapping[str, Any], attributes: Mapping[str, Any], at: datetime) -> None:
        self.measures = measures
        self.attributes = attributes
        self.at = at
        self.members: set[str] = set()
        self.turns: list[datetime] = []

    def holds(self, rule: Rule) -> bool:
        if isinstance(rule, All):
            return all([self.holds(r) for r in rule.rules])  # every branch read: turns of all
        if isinstance(rule, AnyOf):
            return any([self.holds(r) for r in rule.rules])
        if isinstance(rule, Not):
            return not self.holds(rule.rule)
        if isinstance(rule, SegmentTest):
            return rule.segment in self.members
        if isinstance(rule, MeasureTest):
            return self._measure(rule)
        return _attribute(rule, self.attributes.get(rule.attribute))

    def _measure(self, test: MeasureTest) -> bool:
        value = self.measures.get(test.measure)
        if test.op == "notExists":
            return value is None
        if value is None:
            return False
        if test.op == "exists":
            return True
        if test.op in ("within", "before"):
            # within D: value >= at - D; before D: value < at - D. Both turn once at passes
            # value + D.
            moment = parse_instant(value) + test.value
            if moment >= self.at:
                self.turns.append(moment + _MS)
            bound = format_instant(self.at - test.value)
            return value >= bound if test.op == "within" else value < bound
        return _compare(value, test.op, _instant_or(test.value, value))


def _instant_or(wanted: Any, value: Any) -> Any:
    """A time measure is compared with an instant in the store's own form."""
    if isinstance(wanted, str) and isinstance(value, str) and value.endswith("Z") and len(value) == 24:
        try:
            return format_instant(parse_instant(wanted))
        except ValueError:
            return wanted
    return wanted


def _compare(value: Any, op: str, wanted: Any) -> bool:
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted
    numbers = (int, float)
    if isinstance(value, numbers) != isinstance(wanted, numbers) or isinstance(value, bool):
        return False
    if op == ">=":
        return value >= wanted
    if op == ">":
        return value > wanted
    if op == "<=":
        return value <= wanted
    return value < wanted


def _same(value: Any, wanted: Any) -> bool:
    return value == wanted or (isinstance(wanted, str) and not isinstance(value, str) and str(value) == wanted)


def _attribute(test: AttributeTest, value: Any) -> bool:
    if value is None or value == "":
        return False
    op = test.op
    if op == "exists":
        return True
    if op == "=":
        return _same(value, test.value)
    if op == "!=":
        return not _same(value, test.value)
    if op == "in":
        return any(_same(value, w) for w in test.value)
    if not isinstance(value, str):
        return False
    return test.value in value if op == "contains" else value.startswith(test.value)
