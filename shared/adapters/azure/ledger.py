"""TableLedger: per-file processing records in an Azure Table; one claimer wins a race."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.adapters.azure.errors import translated
from shared.adapters.azure.table_access import TableAccess, if_unchanged
from shared.adapters.azure.table_keys import Entity, digest, pack, plain_key
from shared.adapters.azure.table_layout import AWAITING, LEDGER
from shared.core.errors import TransientError
from shared.core.ingest.claims import next_claim, renewed
from shared.core.model import COUNT_FIELDS, Counts, LedgerEntry

MAX_TRIES = 8
# LedgerEntry attribute -> table property; counts are flattened beside them.
_FIELDS = {
    "path": "Path", "etag": "FileETag", "status": "Status", "attempts": "Attempts",
    "entity": "Entity", "error": "Error", "permanent": "Permanent", "started_at": "StartedAt",
    "finished_at": "FinishedAt", "duration_ms": "DurationMs", "not_before": "NotBefore",
    "holder": "Holder",
    "mapping": "Mapping",
    "awaits_metadata": "AwaitsMetadata",
}  # fmt: skip
_COUNTS = {name: name.capitalize() for name in COUNT_FIELDS}


def _where(path: str, etag: str) -> tuple[str, str]:
    return digest(path), plain_key(etag)


def _record(entry: LedgerEntry, seq: str) -> Entity:
    partition, row = _where(entry.path, entry.etag)
    record: Entity = {"PartitionKey": partition, "RowKey": row, "Seq": seq}
    record.update({prop: getattr(entry, attr) for attr, prop in _FIELDS.items()})
    record.update({prop: getattr(entry.counts, attr) for attr, prop in _COUNTS.items()})
    return record


def _awaiting_record(entry: LedgerEntry) -> Entity:
    partition, row = _where(entry.path, entry.etag)
    return {"PartitionKey": "a", "RowKey": f"{partition}-{row}", "Path": entry.path,
            "FileETag": entry.etag}  # fmt: skip


def _entry(record: Entity) -> LedgerEntry:
    values = {attr: record.get(prop) for attr, prop in _FIELDS.items()}
    values["awaits_metadata"] = bool(values["awaits_metadata"])
    counts = Counts(**{attr: record.get(prop) or 0 for attr, prop in _COUNTS.items()})
    return LedgerEntry(**values, counts=counts)


class _Sequence:
    """Increasing stamps of when entries were started, so `latest` can order them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        # Wall-clock nanoseconds, made strictly increasing within this process.
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:020d}"


class TableLedger:
    def __init__(self, access: TableAccess) -> None:
        self.io = access
        self._seq = _Sequence()

    def _read(self, path: str, etag: str) -> Entity | None:
        record = self.io.get(LEDGER, *_where(path, etag))
        # A digest collision is absurdly unlikely; checking costs nothing.
        if record is None or (record["Path"], record["FileETag"]) != (path, etag):
            return None
        return record

    def get(self, path: str, etag: str) -> LedgerEntry | None:
        record = self._read(path, etag)
        return _entry(record) if record is not None else None

    def latest(self, path: str) -> LedgerEntry | None:
        found = [
            r for r in self.io.query(LEDGER, "PartitionKey eq @pk", {"pk": digest(path)})
            if r["Path"] == path
        ]  # fmt: skip
        return _entry(max(found, key=lambda r: r["Seq"])) if found else None

    def claim(
        self,
        path: str,
        etag: str,
        now: str,
        lease_until: str,
        force: bool = False,
        holder: str | None = None,
    ) -> LedgerEntry | None:
        """Create the entry if absent, else replace it only as read (If-Match); on a lost
        race read again and decide again, so exactly one of several claimers wins."""
        for _ in range(MAX_TRIES):
            record = self._read(path, etag)
            old = _entry(record) if record is not None else None
            entry = next_claim(old, path, etag, now, lease_until, force, holder)
            if entry is None:
                return None
            if self._put(_record(entry, self._seq.next()), record):
                return entry
        raise TransientError(f"claiming {path}: the ledger entry kept changing under us")

    def renew(self, entry: LedgerEntry, lease_until: str) -> bool:
        """Replace the entry only as read (If-Match), as a claim does: a worker taking the
        file over at the same moment makes this renewal read again and lose."""
        for _ in range(MAX_TRIES):
            record = self._read(entry.path, entry.etag)
            new = renewed(_entry(record) if record is not None else None, entry, lease_until)
            if new is None:
                return False
            if self._put(_record(new, record["Seq"]), record):  # type: ignore[index]
                return True
        raise TransientError(f"renewing the claim of {entry.path}: the entry kept changing")

    def _put(self, record: Entity, old: Entity | None) -> bool:
        """Write `record` where `old` was read; False when another writer came first."""
        table = self.io.table(LEDGER)
        with translated(f"writing the ledger entry of {record['Path']}"):
            try:
                if old is None:
                    table.create_entity(pack(record))
                else:
                    table.update_entity(pack(record), UpdateMode.REPLACE, **if_unchanged(old))
            except (ResourceExistsError, ResourceModifiedError):
                return False
        return True

    def record(self, entry: LedgerEntry) -> None:
        """Store an outcome, keeping the entry's place in `latest` (set when it was claimed)."""
        old = self._read(entry.path, entry.etag)
        seq = old["Seq"] if old is not None else self._seq.next()
        with translated(f"writing the ledger entry of {entry.path}"):
            if entry.awaits_metadata:  # the index first: it is checked against the entry
                self.io.table(AWAITING).upsert_entity(pack(_awaiting_record(entry)))
            self.io.table(LEDGER).upsert_entity(pack(_record(entry, seq)), mode=UpdateMode.REPLACE)

    def entries(self, status: str | None = None) -> Iterator[LedgerEntry]:
        if status is None:
            records = self.io.scan(LEDGER)
        else:
            records = self.io.query(LEDGER, "Status eq @status", {"status": status})
        return iter(sorted((_entry(r) for r in records), key=lambda e: (e.path, e.etag)))

    def latest_entries(
        self, status: str | None, limit: int, after: str | None = None
    ) -> list[LedgerEntry]:
        """With a status, the entries having it (a filtered scan: the status is no key), each
        checked against its path's partition to be the latest; without, a scan of the whole
        ledger. Either way a later page has the service skip the paths before it."""
        where, params = ("Path gt @after", {"after": after}) if after else ("", {})
        if status is None:
            records = self.io.query(LEDGER, where, params) if where else self.io.scan(LEDGER)
            latest: dict[str, Entity] = {}
            for r in records:
                if r["Path"] not in latest or r["Seq"] > latest[r["Path"]]["Seq"]:
                    latest[r["Path"]] = r
            return [_entry(latest[p]) for p in sorted(latest)[:limit]]
        where = " and ".join(filter(None, ["Status eq @status", where]))
        having = self.io.query(LEDGER, where, {**params, "status": status}, select=["Path"])
        candidates = sorted({r["Path"] for r in having})
        found: list[LedgerEntry] = []
        for path in candidates:
            entry = self.latest(path)
            if entry is not None and entry.status == status:
                found.append(entry)
                if len(found) == limit:
                    break
        return found

    def awaiting_metadata(self, folder: str) -> Iterator[LedgerEntry]:
        """The index rows under `folder`, each checked against its entry; rows whose entry no
        longer awaits metadata (done since, or claimed) are removed as they are met."""
        where, parameters = "PartitionKey eq 'a'", {}
        if folder:  # paths under folder 'x/' sort from 'x/' to just before 'x0'
            where += " and Path ge @low and Path lt @high"
            parameters = {"low": folder, "high": folder[:-1] + chr(ord(folder[-1]) + 1)}
        found = []
        for row in self.io.query(AWAITING, where, parameters):
            entry = self.get(row["Path"], row["FileETag"])
            if entry is not None and entry.awaits_metadata:
                found.append(entry)
            else:
                with translated("clearing the awaiting-metadata index"), contextlib.suppress(
                    ResourceNotFoundError
                ):
                    self.io.table(AWAITING).delete_entity("a", row["RowKey"])
        return iter(sorted(found, key=lambda e: (e.path, e.etag)))
