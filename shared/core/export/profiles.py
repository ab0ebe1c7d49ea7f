"""What `footprint export` writes: the store's customers and activities as CDM entities, into
a folder, or into a new dated folder named by `latest.json` once complete."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
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
    boolean_cell,
    json_cell,
    write_folder,
)
from shared.core.model import ACTIVITY_FIELDS, Activity, Customer
from shared.core.ports import ExportSource

LATEST = "latest.json"
_ACTIVITY_TYPES = {"ActivityTime": "dateTime", "ShowInTimeline": "boolean", "SourceRow": "integer"}
CUSTOMER_COLUMNS = (
    Column("CustomerId", "string"),
    Column("Attributes", "string"),  # JSON object, as the Customer record holds it
    Column("AlternateKeys", "string"),  # JSON list of {Entity, Key}
    Column("UpdatedAt", "dateTime"),
)


def activity_columns() -> tuple[Column, ...]:
    return tuple(Column(name, _ACTIVITY_TYPES.get(name, "string")) for name in ACTIVITY_FIELDS.values())


def profile_entities(source: ExportSource) -> list[ExportEntity]:
    """The entities of an export, each read from the store only when it is written."""
    return [
        ExportEntity(
            "Customer", "Unified customers: every source row sharing one CustomerId",
            CUSTOMER_COLUMNS, lambda: map(_customer_row, source.iter_customers()),
        ),
        ExportEntity(
            "UnifiedActivity", "One activity per source event and configured activity",
            activity_columns(), lambda: _activity_rows(source.iter_activities()),
        ),
    ]


def _customer_row(customer: Customer) -> tuple[Any, ...]:
    record = customer.to_record()
    return (record["CustomerId"], json_cell(record["Attributes"]),
            json_cell(record["AlternateKeys"]), record["UpdatedAt"])  # fmt: skip


def _activity_rows(activities: Iterable[Activity]) -> Iterator[list[Any]]:
    # attrgetter builds each row in C: the export of a million activities is mostly this loop.
    cells = operator.attrgetter(*ACTIVITY_FIELDS)
    flag = list(ACTIVITY_FIELDS).index("show_in_timeline")
    for activity in activities:
        row = list(cells(activity))
        row[flag] = boolean_cell(row[flag])
        yield row


def export_profiles(
    source: ExportSource, target: ExportTarget, max_rows: int = MAX_PARTITION_ROWS
) -> list[EntityReceipt]:
    return write_folder(target, profile_entities(source), max_rows)


def export_snapshot(
    source: ExportSource, target: ExportTarget, now: datetime, max_rows: int = MAX_PARTITION_ROWS
) -> str:
    """Export into a new folder named for `now`, then point `latest.json` at it: a reader that
    follows latest.json never sees half an export. Returns the folder."""
    folder = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
    receipts = export_profiles(source, _Within(target, folder), max_rows)
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

    def create(self, path: str) -> BinaryIO:
        return self._target.create(f"{self._folder}/{path}")


def receipt_records(receipts: Iterable[EntityReceipt]) -> Iterator[dict[str, Any]]:
    for r in receipts:
        yield {"entity": r.name, "rows": r.rows, "partitions": r.partitions}
