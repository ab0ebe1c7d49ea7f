"""Config + parsed rows -> activities and customer rows; filters, ActivityId, UTC times."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from shared.core.config import ActivityConfig, Config, CustomerSource
from shared.core.model import Activity, CustomerRow, SourceFile

MAX_KEY_LENGTH = 1024
EXCERPT_LENGTH = 200


def activity_id(activity_name: str, entity: str, primary_key: str) -> str:
    """Deterministic id of the activity one source event becomes under one activity."""
    material = f"{activity_name}\x1f{entity}\x1f{primary_key}".encode()
    return hashlib.blake2b(material, digest_size=16).hexdigest()


def derived_customer_id(entity: str, key: str) -> str:
    """A stable CustomerId for a customer source row that brings no unified id of its own."""
    return "c-" + hashlib.blake2b(f"{entity}\x1f{key}".encode(), digest_size=12).hexdigest()


def to_utc(value: str) -> str | None:
    """ISO 8601 (offset, Z or naive = UTC) -> UTC ISO 8601 with milliseconds; None if invalid."""
    text = value.strip()
    if len(text) > 64 or not text[:4].isdigit():
        return None
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def _first(values: Mapping[str, Any], columns: Sequence[str]) -> str | None:
    for column in columns:
        value = values.get(column)
        if value and not value.isspace():
            return value
    return None


@dataclasses.dataclass(frozen=True)
class _ActivityRule:
    config: ActivityConfig
    filters: tuple[tuple[str, frozenset[str]], ...]

    def accepts(self, values: Mapping[str, Any]) -> bool:
        return all(values.get(column) in allowed for column, allowed in self.filters)

    def build(
        self, values: Mapping[str, Any], entity: str, file: SourceFile, row: int
    ) -> Activity | str:
        """The activity of this row, or the reason it cannot be one."""
        c = self.config
        key = _first(values, c.primaryKey)
        if key is None:
            return f"missing primary key ({', '.join(c.primaryKey)})"
        if len(key) > MAX_KEY_LENGTH:
            return f"primary key longer than {MAX_KEY_LENGTH} characters"
        raw_time = _first(values, c.timestamp)
        if raw_time is None:
            return f"missing timestamp ({', '.join(c.timestamp)})"
        moment = to_utc(raw_time)
        if moment is None:
            return f"unparseable timestamp {raw_time[:40]!r} in {', '.join(c.timestamp)}"
        rel = c.relationship
        foreign_key = _first(values, rel.foreignKey) if rel else None
        if foreign_key is not None and len(foreign_key) > MAX_KEY_LENGTH:
            return f"foreign key longer than {MAX_KEY_LENGTH} characters"
        return Activity(
            activity_id(c.name, entity, key), None, c.name, c.activityType,
            _first(values, c.event), moment,
            _first(values, c.details) if c.details else None,
            _first(values, c.webAddress) if c.webAddress else None,
            entity, key, foreign_key, c.showInTimeline,
            file.path, file.etag, row, rel.customerEntity if rel else None,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _CustomerRule:
    source: CustomerSource

    def build(self, values: Mapping[str, Any], file: SourceFile, row: int) -> CustomerRow | str:
        s = self.source
        key = _first(values, (s.key,))
        if key is None:
            return f"missing customer key ({s.key})"
        if len(key) > MAX_KEY_LENGTH:
            return f"customer key longer than {MAX_KEY_LENGTH} characters"
        unified = _first(values, (s.customerId,)) if s.customerId else None
        names = s.attributes or [c for c in values if c not in (s.key, s.customerId)]
        attributes = {name: values.get(name) for name in names}
        customer_id = unified or derived_customer_id(s.entity, key)
        return CustomerRow(s.entity, key, customer_id, attributes, file.path, file.etag, row)


class MappedRow(NamedTuple):
    activities: list[Activity]
    customers: list[CustomerRow]
    # Why the row (or part of it) could not be mapped; None when nothing went wrong.
    reject: str | None
    # True when every activity's filter excluded the row and no customer source took it.
    filtered: bool


class EntityMapping:
    """What one entity's rows become under a configuration."""

    def __init__(self, config: Config, entity: str) -> None:
        self.entity = entity
        self._activities = tuple(
            _ActivityRule(a, tuple((col, frozenset(vals)) for col, vals in a.filter.items()))
            for a in config.activities
            if a.entity == entity
        )
        self._customers = tuple(
            _CustomerRule(s) for s in config.customerSources if s.entity == entity
        )

    @property
    def is_empty(self) -> bool:
        return not self._activities and not self._customers

    def map_row(self, values: Mapping[str, Any], file: SourceFile, row: int) -> MappedRow:
        activities: list[Activity] = []
        customers: list[CustomerRow] = []
        reasons: list[str] = []
        for rule in self._activities:
            if not rule.accepts(values):
                continue
            built = rule.build(values, self.entity, file, row)
            if isinstance(built, str):
                reasons.append(
                    f"{rule.config.name}: {built}" if len(self._activities) > 1 else built
                )
            else:
                activities.append(built)
        for customer_rule in self._customers:
            made = customer_rule.build(values, file, row)
            if isinstance(made, str):
                reasons.append(made)
            else:
                customers.append(made)
        filtered = not activities and not customers and not reasons
        return MappedRow(activities, customers, "; ".join(reasons) or None, filtered)


def excerpt(values: Mapping[str, Any]) -> str:
    """A short, printable extract of a row for a rejects record."""
    return orjson.dumps(dict(values)).decode()[:EXCERPT_LENGTH]
