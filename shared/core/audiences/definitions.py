"""Measures and segments as configured (SPEC §9): their shapes, durations and rule trees."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

AudienceName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")]

# Fields of a UnifiedActivity a measure may filter on (SPEC §9) and aggregate.
WHERE_FIELDS = ("ActivityName", "Title", "ExternalUrl", "ActivityTypeDisplay", "SourceEntity")
OF_FIELDS = (*WHERE_FIELDS, "ActivityTime", "ActivityType", "ActivityId", "VisitorId")
TIME_FIELD = "ActivityTime"
NUMBER_OPS = (">=", ">", "<=", "<", "=", "!=")
TIME_OPS = ("within", "before")
PRESENCE_OPS = ("exists", "notExists")
ATTRIBUTE_OPS = ("=", "!=", "in", "contains", "startsWith", "exists")

_DURATION = re.compile(r"P(?:(?P<w>\d{1,5})W|(?:(?P<d>\d{1,5})D)?(?:T(?P<h>\d{1,6})H)?)")


def parse_duration(text: Any) -> timedelta:
    """An ISO 8601 duration of weeks, days or hours (P2W, P30D, PT12H, P1DT12H)."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration of weeks, days or hours (P30D, PT12H, P2W)")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    delta = timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0))
    if not delta:
        raise ValueError(f"{text!r} is a duration of zero")
    return delta


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def parse_instant(text: str) -> datetime:
    """A UTC ISO 8601 instant as the store writes it (or with an offset) -> aware datetime."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    """The store's form of an instant: UTC, ISO 8601, milliseconds, Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextTest(_Model):
    """One `where` test of a text field: exactly one of its keys is given."""

    equals: str | None = None
    in_: list[str] | None = Field(default=None, alias="in", min_length=1)
    startsWith: str | None = None
    contains: str | None = None

    def model_post_init(self, _context: Any) -> None:
        given = [k for k in ("equals", "in_", "startsWith", "contains") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, in, startsWith, contains")


class MeasureConfig(_Model):
    name: AudienceName
    activities: list[Annotated[str, Field(min_length=1)]] | None = None
    aggregate: Literal["count", "countDistinct", "mostFrequent", "first", "last"]
    of: Literal[OF_FIELDS] | None = None  # type: ignore[valid-type]
    where: dict[Literal[WHERE_FIELDS], TextTest] = {}  # type: ignore[valid-type]
    window: Duration | None = None

    def model_post_init(self, _context: Any) -> None:
        if self.aggregate in ("countDistinct", "mostFrequent") and self.of is None:
            raise ValueError(f"of: {self.aggregate} needs the field it is of")
        if self.aggregate == "count" and self.of is not None:
            raise ValueError("of: count counts activities; it takes no field")

    @property
    def kind(self) -> str:
        """What the measure's values are: "number", "time" or "text"."""
        if self.aggregate in ("count", "countDistinct"):
            return "number"
        field = self.of or TIME_FIELD
        return "time" if field == TIME_FIELD and self.aggregate in ("first", "last") else "text"


# Rules, once parsed: plain frozen records the evaluator walks.
@dataclasses.dataclass(frozen=True)
class All:
    rules: tuple[Rule, ...]


@dataclasses.dataclass(frozen=True)
class AnyOf:
    rules: tuple[Rule, ...]


@dataclasses.dataclass(frozen=True)
class Not:
    rule: Rule


@dataclasses.dataclass(frozen=True)
class MeasureTest:
    measure: str
    op: str
    value: Any = None


@dataclasses.dataclass(frozen=True)
class AttributeTest:
    attribute: str
    op: str
    value: Any = None


@dataclasses.dataclass(frozen=True)
class SegmentTest:
    segment: str


Rule = All | AnyOf | Not | MeasureTest | AttributeTest | SegmentTest
