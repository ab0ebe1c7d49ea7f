"""Config + parsed rows -> activities and customer rows; filters, ActivityId, UTC times."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from shared.core.config import ActivityConfig, Config, CustomerSource
from shared.core.errors import PermanentError
from shared.core.identity.links import Spans, spans_of
from shared.core.model import Activity, CustomerRow, Reject, SourceFile
from shared.core.reading.records import ParsedRow

MAX_KEY_LENGTH = 1024
# Longer text is a broken row, not an event: every store must hold the record (an Azure
# Table entity holds at most 1 MiB), so the row is rejected rather than the whole file failed.
MAX_VALUES_LENGTH = 64 * 1024  # event, details and web address together
MAX_ATTRIBUTES_LENGTH = 256 * 1024  # a customer row's attribute values together
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
    # Exports write nearly every timestamp already in the output form; recognising that form
    # (its date and hour seen valid before) saves a datetime round trip on each row.
    if (
        len(value) == 24
        and value[13:19] in _MINUTES_SECONDS
        and value[19:] in _MILLIS_Z
        and value[:13] in _VALID_HOURS
    ):
        return value
    moment = _parsed_utc(value)
    if moment == value and value.isascii():
        if len(_VALID_HOURS) >= _MAX_VALID_HOURS:
            _VALID_HOURS.clear()
        _VALID_HOURS.add(value[:13])
    return moment


_MINUTES_SECONDS = frozenset(f":{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_MILLIS_Z = frozenset(f".{ms:03d}Z" for ms in range(1000))
_VALID_HOURS: set[str] = set()  # "YYYY-MM-DDTHH" prefixes of valid timestamps
_MAX_VALID_HOURS = 100_000


def _parsed_utc(value: str) -> str | None:
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


Getter = Callable[[Mapping[str, Any]], "str | None"]
# What one activity makes of one row: the activity, why it cannot be one, or None when the
# activity's filter leaves the row out.
Rule = Callable[[Mapping[str, Any], str, str, int], "Activity | str | None"]


def _getter(columns: Sequence[str] | None) -> Getter:
    """The first non-blank value of `columns` in a row (None for no columns at all)."""
    if not columns:
        return lambda values: None
    if len(columns) > 1:
        names = tuple(columns)

        # _first's loop inlined rather than called from a lambda: one call less per row.
        def first_of(values: Mapping[str, Any]) -> str | None:
            for column in names:
                value = values.get(column)
                if value and not value.isspace():
                    return value
            return None

        return first_of
    [column] = columns

    def first(values: Mapping[str, Any]) -> str | None:
        value = values.get(column)
        return value if value and not value.isspace() else None

    return first


class _Naming(dict):
    """Each value as it names someone, or None for a placeholder, remembered: visitor ids
    recur on every page a visitor views, and trimming and case-folding each costs."""

    MAX = 100_000

    def __init__(self, placeholders: frozenset[str]) -> None:
        super().__init__()
        self.placeholders = placeholders

    def __call__(self, value: str) -> str | None:
        found = self.get(value, self)
        if found is self:
            if len(self) >= self.MAX:
                self.clear()
            found = self[value] = None if value.strip().casefold() in self.placeholders else value
        return found  # type: ignore[return-value]


def _naming(columns: Sequence[str], placeholders: frozenset[str]) -> Getter:
    """The first non-blank value of `columns` in a row that is no placeholder."""
    names, named = tuple(columns), _Naming(placeholders)
    known = named.get

    def first_named(values: Mapping[str, Any]) -> str | None:
        for column in names:
            value = values.get(column)
            if value and not value.isspace():
                found = known(value, named)  # the cache inlined: once per row and column
                if found is named:
                    found = named(value)
                if found is not None:
                    return value
        return None

    return first_named


def _activity_rule(c: ActivityConfig, entity: str) -> Rule:
    """One configured activity compiled for one entity: everything a row does not change is
    worked out once here, since the returned function runs for every row of every file."""
    filters = tuple((column, frozenset(allowed)) for column, allowed in c.filter.items())
    key_of, time_of, event_of = _getter(c.primaryKey), _getter(c.timestamp), _getter(c.event)
    details_of, address_of = _getter(c.details), _getter(c.webAddress)
    rel = c.relationship
    customer_entity = rel.customerEntity if rel else None
    visitor_of = _getter(rel.visitorKey) if rel and rel.visitorKey else None
    placeholders = rel.placeholders() if rel else frozenset()
    # Where visitors are stitched, a placeholder ("guest") is no key: the foreign key is the
    # first column that names someone, so an anonymous visit's key is its visitor id.
    foreign_key_of = (
        _naming(rel.foreignKey, placeholders) if visitor_of is not None
        else _getter(rel.foreignKey if rel else None)
    )  # fmt: skip
    named = _Naming(placeholders)
    known_name = named.get
    # As activity_id() hashes: copying a hash of the prefix costs a third less per row than
    # hashing the prefix again (blake2b's keyword arguments are slow to parse).
    id_hash = hashlib.blake2b(f"{c.name}\x1f{entity}\x1f".encode(), digest_size=16)
    name, display, show = c.name, c.activityType, c.showInTimeline
    timestamps = ", ".join(c.timestamp)
    no_key, no_time = (
        f"missing primary key ({', '.join(c.primaryKey)})",
        f"missing timestamp ({timestamps})",
    )
    too_long = f"event, details and web address longer than {MAX_VALUES_LENGTH} characters"
    new, copy_id_hash = tuple.__new__, id_hash.copy

    def build(values: Mapping[str, Any], path: str, etag: str, row: int) -> Activity | str | None:
        for column, allowed in filters:
            if values.get(column) not in allowed:
                return None
        key = key_of(values)
        if key is None:
            return no_key
        if len(key) > MAX_KEY_LENGTH:
            return f"primary key longer than {MAX_KEY_LENGTH} characters"
        raw_time = time_of(values)
        if raw_time is None:
            return no_time
        moment = to_utc(raw_time)
        if moment is None:
            return f"unparseable timestamp {raw_time[:40]!r} in {timestamps}"
        foreign_key = foreign_key_of(values)
        if foreign_key is not None and len(foreign_key) > MAX_KEY_LENGTH:
            return f"foreign key longer than {MAX_KEY_LENGTH} characters"
        event, details, address = event_of(values), details_of(values), address_of(values)
        if len(event or "") + len(details or "") + len(address or "") > MAX_VALUES_LENGTH:
            return too_long
        visitor = visitor_of(values) if visitor_of is not None else None
        if visitor is not None:
            if len(visitor) > MAX_KEY_LENGTH:
                return f"visitor key longer than {MAX_KEY_LENGTH} characters"
            found = known_name(visitor, named)  # "anonymous" and the like name nobody
            visitor = named(visitor) if found is named else found
        hashed = copy_id_hash()
        hashed.update(key.encode())
        return new(Activity, (
            hashed.hexdigest(), None, name, display, event, moment, details, address, entity,
            key, foreign_key, show, path, etag, row, customer_entity, visitor, None,
        ))  # fmt: skip

    return build


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
        if sum(len(v) for v in attributes.values() if v) > MAX_ATTRIBUTES_LENGTH:
            return f"customer attributes longer than {MAX_ATTRIBUTES_LENGTH} characters"
        customer_id = unified or derived_customer_id(s.entity, key)
        return CustomerRow(s.entity, key, customer_id, attributes, file.path, file.etag, row)


class MappedRow(NamedTuple):
    activities: list[Activity]
    customers: list[CustomerRow]
    # Why the row (or part of it) could not be mapped; None when nothing went wrong.
    reject: str | None
    # True when every activity's filter excluded the row and no customer source took it.
    filtered: bool


@dataclasses.dataclass
class MappedBatch:
    """What a run of parsed rows became: records to write, and how many rows made none."""

    activities: list[Activity] = dataclasses.field(default_factory=list)
    customers: list[CustomerRow] = dataclasses.field(default_factory=list)
    rejects: list[Reject] = dataclasses.field(default_factory=list)
    links: Spans = dataclasses.field(default_factory=dict)  # of this file version
    rows: int = 0
    filtered: int = 0


def _needed_columns(config: Config, entity: str) -> list[tuple[str, tuple[str, ...]]]:
    """(where in the config, columns) a file of `entity` must hold one of. Optional fields
    (details, webAddress, customerId, attributes) may be absent: their values are then empty."""
    needed: list[tuple[str, tuple[str, ...]]] = []
    for a in config.activities:
        if a.entity == entity:
            needed += [(f"{a.name}.{field}", tuple(getattr(a, field)))
                       for field in ("primaryKey", "timestamp", "event")]  # fmt: skip
            needed += [(f"{a.name}.filter", (column,)) for column in a.filter]
            if a.relationship is not None:
                needed.append((f"{a.name}.relationship.foreignKey", tuple(a.relationship.foreignKey)))
    needed += [(f"customerSources {s.entity}.key", (s.key,))
               for s in config.customerSources if s.entity == entity]  # fmt: skip
    return needed


class EntityMapping:
    """What one entity's rows become under a configuration."""

    def __init__(self, config: Config, entity: str) -> None:
        self.entity = entity
        self._activities = tuple(
            (a.name, _activity_rule(a, entity)) for a in config.activities if a.entity == entity
        )
        self._customers = tuple(
            _CustomerRule(s) for s in config.customerSources if s.entity == entity
        )
        # Only activities whose relationship names a visitor key make links.
        self._stitched = any(
            a.entity == entity and a.relationship and a.relationship.visitorKey
            for a in config.activities
        )
        # A row becomes nothing without one of these: primary keys and customer keys.
        self._keys = frozenset(
            [c for a in config.activities if a.entity == entity for c in a.primaryKey]
            + [s.key for s in config.customerSources if s.entity == entity]
        )
        self._needed = _needed_columns(config, entity)

    @property
    def is_empty(self) -> bool:
        return not self._activities and not self._customers

    def check_columns(self, columns: Collection[str]) -> None:
        """Refuse a file that lacks a column every record needs (a list of columns needs one of
        them): no row could be mapped, and rejecting each would look like a load."""
        present = set(columns)
        for where, needed in self._needed:
            if present.isdisjoint(needed):
                found = ", ".join(list(columns)[:20])[:500]
                raise PermanentError(
                    f"{where}: no column {', '.join(needed)} among the file's columns "
                    f"[{found}]: a misspelt column, or a wrong delimiter or header?"
                )

    def map_row(self, values: Mapping[str, Any], file: SourceFile, row: int) -> MappedRow:
        activities: list[Activity] = []
        customers: list[CustomerRow] = []
        reasons: list[str] = []
        for name, rule in self._activities:
            built = rule(values, file.path, file.etag, row)
            if isinstance(built, str):
                reasons.append(f"{name}: {built}" if len(self._activities) > 1 else built)
            elif built is not None:
                activities.append(built)
        for customer_rule in self._customers:
            made = customer_rule.build(values, file, row)
            if isinstance(made, str):
                reasons.append(made)
            else:
                customers.append(made)
        filtered = not activities and not customers and not reasons
        return MappedRow(activities, customers, "; ".join(reasons) or None, filtered)

    def map_rows(self, rows: Iterable[ParsedRow], file: SourceFile) -> MappedBatch:
        """Map a run of parsed rows; rows that cannot be read or mapped become rejects."""
        batch = self._map_rows(rows, file)
        if self._stitched:
            batch.links = spans_of(batch.activities)
        return batch

    def _map_rows(self, rows: Iterable[ParsedRow], file: SourceFile) -> MappedBatch:
        batch = MappedBatch()
        if len(self._activities) == 1 and not self._customers:
            self._map_events(rows, file, batch)
            return batch
        for row, values, error, text in rows:
            batch.rows += 1
            if values is None:
                batch.rejects.append(
                    Reject(file.path, file.etag, row, self.entity, error or "bad row", text)
                )
                continue
            mapped = self.map_row(values, file, row)
            batch.activities += mapped.activities
            batch.customers += mapped.customers
            batch.filtered += mapped.filtered
            if mapped.reject is not None:
                batch.rejects.append(
                    Reject(file.path, file.etag, row, self.entity, mapped.reject, excerpt(values))
                )
        return batch

    def _map_events(self, rows: Iterable[ParsedRow], file: SourceFile, batch: MappedBatch) -> None:
        """map_rows for the usual entity, events feeding one activity: the same outcome with
        the per-row work cut to the bone, as this loop runs for every event ingested."""
        [(_, build)] = self._activities
        path, etag, entity = file.path, file.etag, self.entity
        keep, reject = batch.activities.append, batch.rejects.append
        count = filtered = 0
        for count, (row, values, error, text) in enumerate(rows, 1):  # noqa: B007
            if values is None:
                reject(Reject(path, etag, row, entity, error or "bad row", text))
                continue
            made = build(values, path, etag, row)
            if made is None:
                filtered += 1
            elif made.__class__ is str:
                reject(Reject(path, etag, row, entity, made, excerpt(values)))  # type: ignore[arg-type]
            else:
                keep(made)  # type: ignore[arg-type]
        batch.rows += count
        batch.filtered += filtered


def excerpt(values: Mapping[str, Any]) -> str:
    """A short, printable extract of a row for a rejects record."""
    return orjson.dumps(dict(values)).decode()[:EXCERPT_LENGTH]
