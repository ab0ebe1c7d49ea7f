"""The one evaluator of SPEC §9: a customer's activities and attributes at a time T -> its
measures, its segments and the next moment either would change with no new data."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from shared.core.audiences.definitions import TIME_FIELD, MeasureConfig, format_instant
from shared.core.audiences.measures import Columns, Measure, measure_values
from shared.core.audiences.rules import SegmentConfig, segment_order
from shared.core.audiences.segments import RuleContext


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One customer at one time."""

    measures: dict[str, Any]
    segments: tuple[str, ...]  # sorted
    next_change: str | None  # the first instant after T at which this may differ, or None


class Audiences:
    """The measures and segments of a config, compiled once."""

    def __init__(self, measures: Sequence[MeasureConfig], segments: Sequence[SegmentConfig]) -> None:
        self.measure_configs = tuple(measures)
        self.segment_configs = tuple(segments)
        self._measures = [Measure(m) for m in measures]
        self._ordered = segment_order(segments)
        self.fingerprint = _fingerprint(measures, segments)
        # The activity fields any measure reads: a store's full pass may read only these.
        self.fields = tuple(sorted({TIME_FIELD, "ActivityId"}.union(*(m.fields for m in self._measures))))

    @property
    def empty(self) -> bool:
        return not self._measures and not self._ordered

    def segment(self, name: str) -> SegmentConfig | None:
        return next((s for s in self.segment_configs if s.name == name), None)

    def evaluate(
        self, activities: Sequence[Mapping[str, Any]] | Columns, attributes: Mapping[str, Any], at: datetime
    ) -> Evaluation:
        """The customer at `at`, from its activities as records in any order, or as columns
        (a store's full pass reads them so: measures.Columns)."""
        if not isinstance(activities, Columns):
            activities = Columns.of_records(activities, self.fields)
        values, next_change = measure_values(self._measures, activities, at)
        context = RuleContext(values, attributes, at)
        for segment in self._ordered:
            if context.holds(segment.rule):
                context.members.add(segment.name)
        moments = [m for m in (next_change, *context.turns) if m is not None and m > at]
        return Evaluation(
            values,
            tuple(sorted(context.members)),
            format_instant(min(moments)) if moments else None,
        )


def _fingerprint(measures: Sequence[MeasureConfig], segments: Sequence[SegmentConfig]) -> str:
    """Changes exactly when a definition does: everyone is evaluated again then."""
    document = {
        "measures": [m.model_dump(mode="json", by_alias=True) for m in measures],
        "segments": [
            {"name": s.name, "description": s.description, "rule": repr(s.rule)} for s in segments
        ],
    }
    data = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=12).hexdigest()
