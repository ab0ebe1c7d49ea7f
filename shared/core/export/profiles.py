"""What `footprint export` writes: the store's customers, activities, current measures and
segment memberships as CDM entities, into a folder, or into a new dated folder named by
`latest.json` once complete.

CustomerMeasure has one row per customer and measure, its value in the one column typed for
it (NumberValue, TimeValue or TextValue; none for a null value) and Kind naming which: every
column's CDM data type holds for every row, so a reader filters and sums without casts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from shared.core.export.folder import (
    MANIFEST,
    MAX_PARTITION_ROWS,
    Column,
    EntityReceipt,
    ExportEntity,
    ExportTarget,
    json_cell,
    write_folder,
)
from shared.core.model import ACTIVITY_FIELDS, Customer
from shared.core.ports import AudienceStore, ExportSource

LATEST = "latest.json"
_ACTIVITY_TYPES = {"ActivityTime": "dateTime", "ShowInTimeline": "boolean", "SourceRow": "integer"}
CUSTOMER_COLUMNS = (
    Column("CustomerId", "string"),
    Column("Attributes", "string"),  # JSON object, as the Customer record holds it
    Column("AlternateKeys", "string"),  # JSON list of {Entity, Key}
    Column("UpdatedAt", "dateTime"),
)
MEASURE_COLUMNS = (
    Column("CustomerId", "string"),
    Column("Measure", "string"),
    Column("Kind", "string"),  # number, time or text: which value column holds the value
    Column("NumberValue", "bigInteger"),  # count, countDistinct
    Column("TimeValue", "dateTime"),  # first, last of ActivityTime
    Column("TextValue", "string"),  # mostFrequent, first, last of another field
)
MEMBERSHIP_COLUMNS = (
    Column("CustomerId", "string"),
    Column("Segment", "string"),
    Column("EnteredAt", "dateTime"),  # the At of the change that made this membership
)


@dataclasses.dataclass(frozen=True)
class AudienceExport:
    """What an export reads of measures and segments: the store's current evaluations, and
    what each configured measure's values are (MeasureConfig.kind: number, time or text)."""

    store: AudienceStore
    kinds: Mapping[str, str]


def activity_columns() -> tuple[Column, ...]:
    return tuple(Column(name, _ACTIVITY_TYPES.get(name, "string")) for name in ACTIVITY_FIELDS.values())


def profile_entities(source: ExportSource, audiences: AudienceExport) -> list[ExportEntity]:
    """The entities of an export, each read from its store only when it is written. With no
    measures or segments configured, CustomerMeasure and SegmentMembership are still there,
    their partitions a header alone: a pipeline attached to the folder keeps its four tables."""
    return [
        ExportEntity(
            "Customer", "Unified customers: every source row sharing one CustomerId",
            CUSTOMER_COLUMNS, lambda: map(_customer_row, source.iter_customers()),
        ),
        ExportEntity(
            "UnifiedActivity", "One activity per source event and configured activity",
            activity_columns(), source.iter_activity_cells, text_cells=True,
            parts=source.activity_cell_parts,
        ),
        ExportEntity(
            "CustomerMeasure", "Each customer's current value of each configured measure",
            MEASURE_COLUMNS, lambda: _measure_rows(audiences),
        ),
        ExportEntity(
            "SegmentMembership", "Each customer's current segments, since when",
            MEMBERSHIP_COLUMNS, lambda: _membership_rows(audiences.store),
        ),
    ]  # fmt: skip


def _customer_row(customer: Customer) -> tuple[Any, ...]:
    record = customer.to_record()
    return (record["CustomerId"], json_cell(record["Attributes"]),
            json_cell(record["AlternateKeys"]), record["UpdatedAt"])  # fmt: skip


def _measure_rows(audiences: AudienceExport) -> Iterator[tuple[Any, ...]]:
    for customer_id, measures in audiences.store.iter_measures():
        for name in sorted(measures):
            yield (customer_id, name, *measure_cells(audiences.kinds.get(name), measures[name]))


def measure_cells(kind: str | None, value: Any) -> tuple[Any, ...]:
    """Kind, NumberValue, TimeValue, TextValue of one value. The configured kind decides; a
    value that does not fit it (one stored before the definitions changed) goes where its own
    type puts it."""
    if value is None:
        return (kind or "", None, None, None)
    if isinstance(value, int) and not isinstance(value, bool) and kind in ("number", None):
        return ("number", value, None, None)
    if isinstance(value, str) and kind == "time":
        return ("time", None, value, None)
    text = value if isinstance(value, str) else json_cell(value)
    return ("text", None, None, text)


def _membership_rows(store: AudienceStore) -> Iterator[tuple[str, str, str]]:
    for segment, customer_id, since in store.iter_memberships():
        yield (customer_id, segment, since)


def export_profiles(
    source: ExportSource, audiences: AudienceExport, target: ExportTarget, max_rows: int = MAX_PARTITION_ROWS
) -> list[EntityReceipt]:
    return write_folder(target, profile_entities(source, audiences), max_rows)


def export_snapshot(
    source: ExportSource, audiences: AudienceExport, target: ExportTarget, now: datetime,
    max_rows: int = MAX_PARTITION_ROWS,
) -> str:
    """Export into a new folder named for `now`, then point `latest.json` at it: a reader that
    follows latest.json never sees half an export. Returns the folder."""
    folder = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    receipts = export_profiles(source, audiences, _Within(target, folder), max_rows)
    latest = {
        "folder": folder,
        "manifest": f"{folder}/{MANIFEST}",
        "exportedAt": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "entities": {r.name: r.rows for r in receipts},
    }
    with target.create(LATEST) as binary:
        binary.write(orjson.dumps(latest, option=orjson.OPT_INDENT_2))
    return folder


class _Within:
    """A target seen from one of its folders."""

    def __init__(self, target: ExportTarget, folder: str) -> None:
        self._target, self._folder = target, folder
        self.forkable = getattr(target, "forkable", False)

    def create(self, path: str) -> BinaryIO:
        return self._target.create(f"{self._folder}/{path}")


def receipt_records(receipts: Iterable[EntityReceipt]) -> Iterator[dict[str, Any]]:
    for r in receipts:
        yield {"entity": r.name, "rows": r.rows, "partitions": r.partitions}
