"""The records Footprint reads and writes: activities, customers, rejects, ledger entries."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

# Statuses of a file in the ledger.
DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
QUARANTINED = "quarantined"
RUNNING = "running"
STATUSES = (DONE, SKIPPED, FAILED, QUARANTINED, RUNNING)

COUNT_FIELDS = ("rows", "activities", "unmatched", "filtered", "rejected", "customers", "suppressed")


class SourceFile(NamedTuple):
    """One file of an export as it is now: its path inside the source, ETag and size."""

    path: str
    etag: str
    size: int


class Activity(NamedTuple):
    """A UnifiedActivity: one source event mapped by one configured activity."""

    activity_id: str
    customer_id: str | None
    activity_type: str
    activity_type_display: str
    activity_name: str | None
    activity_time: str
    title: str | None
    external_url: str | None
    source_entity: str
    source_activity_id: str
    activity_foreign_key: str | None
    show_in_timeline: bool
    source_file: str
    source_etag: str
    source_row: int
    # The relationship's customer entity: which customers' keys the foreign key refers to.
    customer_entity: str | None
    # The visitor key's value (None without one, or for a placeholder such as "anonymous").
    visitor_id: str | None = None
    # How the customer was found: "key" (the foreign key), "visitor" (a link), None unmatched.
    identity_path: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {name: getattr(self, attr) for attr, name in ACTIVITY_FIELDS.items()}


# Python attribute -> field name of the public record (API, CLI --json, exports).
ACTIVITY_FIELDS = {
    "activity_id": "ActivityId",
    "customer_id": "CustomerId",
    "activity_type": "ActivityType",
    "activity_type_display": "ActivityTypeDisplay",
    "activity_name": "ActivityName",
    "activity_time": "ActivityTime",
    "title": "Title",
    "external_url": "ExternalUrl",
    "source_entity": "SourceEntity",
    "source_activity_id": "SourceActivityId",
    "activity_foreign_key": "ActivityForeignKey",
    "show_in_timeline": "ShowInTimeline",
    "source_file": "SourceFile",
    "source_etag": "SourceETag",
    "source_row": "SourceRow",
    "visitor_id": "VisitorId",
    "identity_path": "IdentityPath",
}


# An export row's cells may come joined into one str by CELL (the SQLite store's fast path:
# one object per row instead of one per cell); such a str holds exactly one CELL fewer than
# the row has cells, none inside a cell.
CELL = "\x1f"


def split_cells(row: Sequence[str]) -> Sequence[str]:
    """A row's cells, whether it came as its cells or joined by CELL."""
    return row.split(CELL) if isinstance(row, str) else row


def activity_cells(activity: Activity) -> tuple[str, ...]:
    """An activity's row in the export: its ACTIVITY_FIELDS as text, '' for none, ShowInTimeline
    'true' or 'false'. The SQLite store builds the same rows in SQL."""
    return tuple(
        "" if value is None else ("true" if value else "false") if isinstance(value, bool) else str(value)
        for value in (getattr(activity, attr) for attr in ACTIVITY_FIELDS)
    )


class CustomerRow(NamedTuple):
    """One row of a customer source: the key it is known by and the customer it belongs to."""

    entity: str
    key: str
    customer_id: str
    attributes: dict[str, Any]
    source_file: str
    source_etag: str
    source_row: int


@dataclasses.dataclass(frozen=True)
class AlternateKey:
    entity: str
    key: str

    def to_record(self) -> dict[str, str]:
        return {"Entity": self.entity, "Key": self.key}


@dataclasses.dataclass(frozen=True)
class Customer:
    """A unified customer: every source row sharing one CustomerId."""

    customer_id: str
    attributes: dict[str, Any]
    alternate_keys: tuple[AlternateKey, ...]
    updated_at: str
    # The winning link of each visitor resolved to this customer (VisitorLink records).
    visitors: tuple[Any, ...] = ()

    def to_record(self) -> dict[str, Any]:
        return {
            "CustomerId": self.customer_id,
            "Attributes": self.attributes,
            "AlternateKeys": [k.to_record() for k in self.alternate_keys],
            "UpdatedAt": self.updated_at,
            "Visitors": [v.to_record() for v in self.visitors],
        }


class Reject(NamedTuple):
    """A row that could not become a record, kept with the reason why."""

    file: str
    etag: str
    row: int
    entity: str | None
    reason: str
    excerpt: str

    def to_record(self) -> dict[str, Any]:
        return {
            "File": self.file,
            "ETag": self.etag,
            "Row": self.row,
            "Entity": self.entity,
            "Reason": self.reason,
            "Excerpt": self.excerpt,
        }


@dataclasses.dataclass
class Counts:
    rows: int = 0
    activities: int = 0
    unmatched: int = 0
    filtered: int = 0
    rejected: int = 0
    customers: int = 0
    # Rows skipped because their key or visitor was erased (SPEC §11).
    suppressed: int = 0

    def to_record(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class LedgerEntry:
    """What Footprint knows of one file at one ETag."""

    path: str
    etag: str
    status: str
    attempts: int = 0
    counts: Counts = dataclasses.field(default_factory=Counts)
    entity: str | None = None
    error: str | None = None
    # True when retrying at this ETag cannot help (bad file, unknown entity).
    permanent: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    # Earliest time a transient failure may be retried, or until when a running claim holds
    # (its lease end, renewed while the holder works on the file).
    not_before: str | None = None
    # Who claimed the file last (host:process), so another worker can tell who holds it.
    holder: str | None = None
    # The mapping_fingerprint of the config that read the file's entity: a file settled under
    # another mapping is due again. None before the entity is known (or in older ledgers).
    mapping: str | None = None

    @property
    def lease_until(self) -> str | None:
        return self.not_before if self.status == RUNNING else None
    # True when new or changed CDM metadata above the file may change the outcome: it failed
    # or was skipped for want of a schema (Ledger.awaiting_metadata finds these by folder).
    awaits_metadata: bool = False

    def to_record(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "etag": self.etag,
            "status": self.status,
            "attempts": self.attempts,
            **self.counts.to_record(),
            "entity": self.entity,
            "error": self.error,
            "permanent": self.permanent,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": self.duration_ms,
            "not_before": self.not_before,
            "holder": self.holder,
            "lease_until": self.lease_until,
            "mapping": self.mapping,
        }


@dataclasses.dataclass
class IngestReport:
    """The outcome of one ingest call for one file: one JSON line of `footprint ingest`."""

    file: str
    entity: str | None
    status: str
    # What this call read: zeros when it read nothing (a file done already, say).
    counts: Counts = dataclasses.field(default_factory=Counts)
    # Why a file failed; None unless it did.
    error: str | None = None
    etag: str | None = None
    # A transient failure: the caller (a trigger) should let the runtime retry.
    retryable: bool = False
    # Why the caller should start no further file (the store's disk is full), or None.
    halt: str | None = None
    # Why a file was skipped (done already, not data, entity unmapped); None otherwise.
    reason: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "entity": self.entity,
            "status": self.status,
            **self.counts.to_record(),
            "error": self.error,
            "reason": self.reason,
        }


@dataclasses.dataclass(frozen=True)
class TimelineQuery:
    types: tuple[str, ...] = ()
    since: str | None = None  # inclusive, UTC ISO 8601
    until: str | None = None  # exclusive, UTC ISO 8601
    limit: int = 50
    continuation: str | None = None


@dataclasses.dataclass(frozen=True)
class Page:
    items: list[Activity]
    continuation: str | None
