"""TableStore: the profile store on Azure Table Storage (or Cosmos DB for Table), many writers."""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

import orjson

from shared.adapters.azure.ledger import TableLedger
from shared.adapters.azure.table_access import RequestHook, TableAccess
from shared.adapters.azure.table_keys import Entity, descending, digest
from shared.adapters.azure.table_layout import (
    ACTIVITIES,
    CUSTOMER_ROWS,
    KEYED,
    KEYED_IDENTITY,
    MEMBER_IDENTITY,
    MEMBERS,
    OVERLAPS,
    REJECTS,
    REREADS,
    activity_of,
    activity_record,
    activity_where,
    customer_key_of,
    customer_record,
    customer_where,
    keyed_range,
    keyed_record,
    member_record,
    members_range,
    overlap_record,
    reject_of,
    reject_record,
    reread_record,
    timeline_key,
)
from shared.adapters.azure.table_lineage import (
    Put,
    forget_version,
    has_other_version,
    losses,
    put_greatest,
    stale_index_rows,
)
from shared.core.ingest.claims import utc_now
from shared.core.ingest.overlaps import reachable
from shared.core.model import (
    Activity,
    AlternateKey,
    Customer,
    CustomerRow,
    Page,
    Reject,
    TimelineQuery,
)
from shared.core.paging import decode_cursor, encode_cursor

R = TypeVar("R", Activity, CustomerRow)
T = TypeVar("T")
CustomerKey = tuple[str, str]
_SCAN_CHUNK = 1000
# Azure allows 15 comparisons in a filter, and a type filter takes two per type (the
# activity's name or its configured type); more types are filtered here instead.
_MAX_TYPE_FILTER = 5
_MAX_KNOWN_KEYS = 200_000
_MISSING_SECONDS = 60.0
_REJECT_FIELDS = ("File", "FileETag", "Row", "Entity", "Reason", "Excerpt")


def open_tables(
    connection_string: str, table_prefix: str, on_request: RequestHook | None = None
) -> tuple[TableStore, TableLedger]:
    """A store and ledger sharing one client; tables are created when first used.
    `on_request` sees every HTTP attempt, retries included (tests count them)."""
    access = TableAccess(connection_string, table_prefix, on_request)
    return TableStore(access), TableLedger(access)


def _greatest(
    records: Iterable[R], key: Callable[[R], Hashable], met: set[tuple[str, str]]
) -> list[R]:
    """One record per key: the greatest (source_file, source_row), the later one on a tie;
    adds to `met` the (winner file, loser file) of copies from different files."""
    chosen: dict[Hashable, R] = {}
    for record in records:
        old = chosen.get(key(record))
        if old is None or _lineage(record) >= _lineage(old):
            chosen[key(record)] = record
            winner, loser = record, old
        else:
            winner, loser = old, record
        if loser is not None and loser.source_file != winner.source_file:
            met.add((winner.source_file, loser.source_file))
    return list(chosen.values())


def _lineage(record: Activity | CustomerRow) -> tuple[str, int]:
    return record.source_file, record.source_row


def _where(entity: Entity) -> tuple[str, str]:
    return entity["PartitionKey"], entity["RowKey"]


class TableStore:
    def __init__(self, access: TableAccess) -> None:
        self.io = access
        # Customer keys known to have a customer row, so that counting a write's unmatched
        # activities does not read every key of every batch again. A customer row goes only
        # when its file is forgotten: here, that updates this; in another process, a file
        # report's count of unmatched activities may be off, and nothing else depends on it.
        self._customer_keys: set[CustomerKey] = set()
        # Keys found without a customer row, and when: not read again for a while, as the
        # events of unknown visitors recur in every batch. A customer row written here clears
        # its key; one written by another process meanwhile leaves the count off, as above.
        self._missing: dict[CustomerKey, float] = {}

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        activities: Sequence[Activity],
        customers: Sequence[CustomerRow],
        rejects: Sequence[Reject],
    ) -> int:
        if customers:
            self._write_customers(customers)
        if activities:
            self._write_activities(activities)
        if rejects:
            latest = {(r.file, r.row): r for r in rejects}
            self.io.write_all(REJECTS, [("upsert", reject_record(r)) for r in latest.values()])
        return self._unmatched(activities, customers)

    def _write_activities(self, activities: Sequence[Activity]) -> None:
        met: set[tuple[str, str]] = set()
        greatest = _greatest(activities, lambda a: a.activity_id, met)
        records = [activity_record(a) for a in greatest]
        # Index first: a reader skips an index row whose activity says otherwise, but could
        # never find an activity whose index row is missing.
        keyed = [row for row in map(keyed_record, records) if row is not None]
        self.io.write_all(KEYED, [("upsert", row) for row in keyed])
        outcomes = put_greatest(self.io, ACTIVITIES, [Put(r) for r in records])
        self._note_overlaps(met | losses(outcomes))
        self.io.delete_if_unchanged(KEYED, stale_index_rows(outcomes, keyed_record), KEYED_IDENTITY)

    def _write_customers(self, customers: Sequence[CustomerRow]) -> None:
        now = utc_now()
        met: set[tuple[str, str]] = set()
        latest = _greatest(customers, lambda c: (c.entity, c.key), met)
        records = [customer_record(c, now) for c in latest]
        self.io.write_all(MEMBERS, [("upsert", member_record(r)) for r in records])
        outcomes = put_greatest(self.io, CUSTOMER_ROWS, [Put(r) for r in records])
        self._note_overlaps(met | losses(outcomes))
        self.io.delete_if_unchanged(
            MEMBERS, stale_index_rows(outcomes, member_record), MEMBER_IDENTITY
        )

    def _unmatched(self, activities: Sequence[Activity], customers: Sequence[CustomerRow]) -> int:
        known, missing = self._customer_keys, self._missing
        if len(known) > _MAX_KNOWN_KEYS:
            known.clear()
        if len(missing) > _MAX_KNOWN_KEYS:
            missing.clear()
        for c in customers:
            known.add((c.entity, c.key))
            missing.pop((c.entity, c.key), None)
        keys = [_customer_key(a) for a in activities]
        now = time.monotonic()
        wanted = {
            k for k in keys
            if k is not None and k not in known and now - missing.get(k, -_MISSING_SECONDS) >= _MISSING_SECONDS
        }  # fmt: skip
        found = self._resolve(wanted)
        known.update(found)
        missing.update((k, now) for k in wanted if k not in found)
        return sum(1 for k in keys if k is None or k not in known)

    def _note_overlaps(self, met: set[tuple[str, str]]) -> None:
        # Losses and copies met inside one batch; replacements are noted by put_greatest. A
        # crash before this leaves the file unfinished, and its re-run loses again.
        if met:
            self.io.write_all(OVERLAPS, [("upsert", overlap_record(*pair)) for pair in met])

    def _overlaps_won_by(self, winner: str) -> list[Entity]:
        found = self.io.query(OVERLAPS, "PartitionKey eq @pk", {"pk": digest(winner)})
        return [r for r in found if r["Winner"] == winner]  # digests can collide

    def overlapping_files(self, path: str, keep_etag: str) -> list[str]:
        def losers_of(winner: str) -> list[str]:
            return sorted(r["Loser"] for r in self._overlaps_won_by(winner))

        files = reachable(path, losers_of)
        if files and any(has_other_version(self.io, name, path, keep_etag)
                         for name in (ACTIVITIES, CUSTOMER_ROWS)):  # fmt: skip
            return files
        return []

    def _rereads(self, path: str) -> list[Entity]:
        found = self.io.query(REREADS, "PartitionKey eq @pk", {"pk": digest(path)})
        return sorted((r for r in found if r["Path"] == path), key=lambda r: r["Noted"])

    def note_rereads(self, path: str, files: Sequence[str]) -> list[str]:
        noted = self._rereads(path)
        known = {r["File"] for r in noted}
        new = [f for f in dict.fromkeys(files) if f not in known]
        if new:
            start = len(noted)
            records = [reread_record(path, f, start + n) for n, f in enumerate(new)]
            self.io.write_all(REREADS, [("upsert", r) for r in records])
        return [r["File"] for r in noted] + new

    def clear_rereads(self, path: str) -> None:
        self.io.write_all(REREADS, [("delete", r) for r in self._rereads(path)])

    def forget_file(self, path: str, keep_etag: str) -> None:
        gone = forget_version(self.io, ACTIVITIES, path, keep_etag)
        keyed = [row for row in map(keyed_record, gone) if row is not None]
        self.io.delete_if_unchanged(KEYED, keyed, KEYED_IDENTITY)
        gone_rows = forget_version(self.io, CUSTOMER_ROWS, path, keep_etag)
        self._customer_keys.difference_update((r["Entity"], r["Key"]) for r in gone_rows)
        self.io.delete_if_unchanged(MEMBERS, [member_record(r) for r in gone_rows], MEMBER_IDENTITY)
        if gone or gone_rows:
            self.io.write_all(OVERLAPS, [("delete", r) for r in self._overlaps_won_by(path)])
        stale = self.io.query(
            REJECTS, "PartitionKey eq @file and FileETag ne @keep",
            {"file": digest(path), "keep": keep_etag}, select=["PartitionKey", "RowKey"],
        )  # fmt: skip
        self.io.write_all(REJECTS, [("delete", r) for r in list(stale)])

    # -- reading ---------------------------------------------------------------------------

    def _customer_row(self, key: CustomerKey) -> Entity | None:
        row = self.io.get(CUSTOMER_ROWS, *customer_where(*key))
        return row if row is not None and (row["Entity"], row["Key"]) == key else None

    def _resolve(self, keys: set[CustomerKey]) -> dict[CustomerKey, str]:
        """CustomerId of each customer key that has a customer row now."""
        ordered = list(keys)
        rows = self.io.map(self._customer_row, ordered)
        return {k: r["CustomerId"] for k, r in zip(ordered, rows, strict=True) if r is not None}

    def _rows_of(self, customer_id: str) -> list[Entity]:
        """The customer rows of one customer id, by (entity, key), checked against the truth."""
        partition, low, high = members_range(customer_id)
        members = self.io.query(
            MEMBERS, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
            {"pk": partition, "low": low, "high": high}, select=["Entity", "Key"],
        )  # fmt: skip
        rows = self.io.map(self._customer_row, [(m["Entity"], m["Key"]) for m in members])
        found = [r for r in rows if r is not None and r["CustomerId"] == customer_id]
        return sorted(found, key=lambda r: (r["Entity"], r["Key"]))

    def get_customer(self, customer_id: str) -> Customer | None:
        rows = self._rows_of(customer_id)
        if not rows:
            return None
        attributes: dict[str, object] = {}
        for row in rows:
            for name, value in orjson.loads(row["Attributes"]).items():
                if attributes.get(name) in (None, ""):
                    attributes[name] = value
        keys = tuple(AlternateKey(r["Entity"], r["Key"]) for r in rows)
        return Customer(customer_id, attributes, keys, max(r["UpdatedAt"] for r in rows))

    def customer_activities(self, customer_id: str) -> list[Activity]:
        """Every activity that reaches the customer, ShowInTimeline or not: the index rows of
        its keys, each checked against the activity itself."""
        ids: dict[str, str] = {}
        for row in self._rows_of(customer_id):
            partition, low, high = keyed_range(row["Entity"], row["Key"])
            for hit in self.io.query(
                KEYED, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
                {"pk": partition, "low": low, "high": high}, select=["ActivityId", "RowKey"],
            ):  # fmt: skip
                ids.setdefault(hit["ActivityId"], hit["RowKey"])
        records = self.io.map(lambda a: self.io.get(ACTIVITIES, *activity_where(a)), list(ids))
        found = []
        for record in records:
            keyed = keyed_record(record) if record is not None else None
            if keyed is not None and ids.get(record["ActivityId"]) == keyed["RowKey"]:  # type: ignore[index]
                found.append(activity_of(record, customer_id))  # type: ignore[arg-type]
        return found

    def activity_counts(self, customer_id: str) -> dict[str, int]:
        # Counted from the index alone, unchecked: only a writer that died between index and
        # truth leaves a stray row, and re-running its file puts the truth in place.
        counts: Counter[str] = Counter()
        seen: set[str] = set()
        for row in self._rows_of(customer_id):
            partition, low, high = keyed_range(row["Entity"], row["Key"])
            for hit in self.io.query(
                KEYED, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
                {"pk": partition, "low": low, "high": high}, select=["ActivityId", "ActivityType"],
            ):  # fmt: skip
                if hit["ActivityId"] not in seen:
                    seen.add(hit["ActivityId"])
                    counts[hit["ActivityType"]] += 1
        return dict(sorted(counts.items()))

    def timeline(self, customer_id: str, query: TimelineQuery) -> Page:
        after = decode_cursor(query.continuation) if query.continuation else None
        streams = [self._keyed(row, query, after) for row in self._rows_of(customer_id)]
        merged = heapq.merge(*streams, key=lambda hit: hit["RowKey"][32:])
        candidates = _unique(merged)
        items: list[Activity] = []
        while len(items) <= query.limit:
            chunk = list(islice(candidates, query.limit + 1 - len(items)))
            if not chunk:
                break
            checked = self.io.map(lambda hit: self._checked(hit, customer_id, query), chunk)
            items += [a for a in checked if a is not None]
        page = items[: query.limit]
        more = len(items) > query.limit
        token = encode_cursor(page[-1].activity_time, page[-1].activity_id) if more else None
        return Page(page, token)

    def _keyed(
        self, row: Entity, query: TimelineQuery, after: tuple[str, str] | None
    ) -> Iterator[Entity]:
        """Index rows of one customer key in timeline order, narrowed by the query."""
        partition, low, high = keyed_range(row["Entity"], row["Key"])
        ck = low
        if after is not None:
            low = max(low, ck + timeline_key(*after))
        if query.until is not None:
            low = max(low, ck + descending(query.until) + "~~")
        if query.since is not None:
            high = ck + descending(query.since) + "~~"
        where = "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high"
        where += " and ShowInTimeline eq true"
        params: dict[str, object] = {"pk": partition, "low": low, "high": high}
        if query.types and len(query.types) <= _MAX_TYPE_FILTER:
            params.update({f"t{i}": t for i, t in enumerate(query.types)})
            either = " or ".join(
                f"ActivityType eq @t{i} or ActivityTypeDisplay eq @t{i}"
                for i in range(len(query.types))
            )
            where += f" and ( {either} )"
        page = min(query.limit + 1, 1000)
        return self.io.query_by_row_key(KEYED, where, params, ["ActivityId"], page)

    def _checked(self, hit: Entity, customer_id: str, query: TimelineQuery) -> Activity | None:
        """The activity an index row points at, if the activity still says the same."""
        record = self.io.get(ACTIVITIES, *activity_where(hit["ActivityId"]))
        keyed = keyed_record(record) if record is not None else None
        if keyed is None or keyed["RowKey"] != hit["RowKey"] or not keyed["ShowInTimeline"]:
            return None
        if query.types and not _of_type(record, query.types):  # type: ignore[arg-type]
            return None
        return activity_of(record, customer_id)  # type: ignore[arg-type]

    def search_customers(self, text: str, limit: int, after: str | None = None) -> list[Customer]:
        # A scan of every customer row: Tables have no substring index. Fine for the sizes a
        # profile search serves; a search service is the next step beyond that. A later page
        # has the service skip the ids before it.
        needle = text.casefold()
        where, params = "RowKey gt @low and RowKey lt @high", {"low": "c", "high": "d"}
        if after is not None:
            where += " and CustomerId gt @after"
            params["after"] = after
        rows = self.io.query(CUSTOMER_ROWS, where, params)
        ids = {row["CustomerId"] for row in rows if _matches(row, text, needle)}
        found = (self.get_customer(customer_id) for customer_id in sorted(ids)[:limit])
        return [c for c in found if c is not None]

    def _scan_activities(
        self,
        activity_type: str | None,
        select: list[str] | None = None,
        before: str | None = None,
    ) -> Iterator[Entity]:
        where, params = "RowKey gt @low and RowKey lt @high", {"low": "a", "high": "b"}
        if activity_type is not None:
            where += " and ( ActivityType eq @type or ActivityTypeDisplay eq @type )"
            params["type"] = activity_type
        if before is not None:
            where += " and ActivityTime le @before"
            params["before"] = before
        return self.io.query(ACTIVITIES, where, params, select=select, page=_SCAN_CHUNK)

    def list_activities(
        self,
        activity_type: str | None,
        unmatched: bool,
        limit: int | None,
        after: tuple[str, str] | None = None,
    ) -> list[Activity]:
        # A scan of the table (a later page has the service skip what is newer than it).
        # Customers are looked up for the chosen page only, unless whether an activity is
        # unmatched decides if it is chosen at all.
        records = self._scan_activities(activity_type, before=after[0] if after else None)
        if after is not None:
            records = (r for r in records if (r["ActivityTime"], r["ActivityId"]) < after)
        if unmatched:
            items = list(self._linked(records, unmatched=True))
            return _newest(items, limit, lambda a: (a.activity_time, a.activity_id))
        chosen = _newest(records, limit, lambda r: (r["ActivityTime"], r["ActivityId"]))
        return list(self._linked(iter(chosen), unmatched=False))

    def _linked(self, records: Iterator[Entity], unmatched: bool) -> Iterator[Activity]:
        resolved: dict[CustomerKey, str | None] = {}
        while chunk := list(islice(records, _SCAN_CHUNK)):
            keys = {k for k in map(customer_key_of, chunk) if k is not None and k not in resolved}
            resolved.update(dict.fromkeys(keys))
            resolved.update(self._resolve(keys))
            for record in chunk:
                key = customer_key_of(record)
                customer_id = resolved[key] if key is not None else None
                if not unmatched or customer_id is None:
                    yield activity_of(record, customer_id)

    def list_rejects(
        self, limit: int | None, file: str | None = None, after: tuple[str, int] | None = None
    ) -> list[Reject]:
        if file is not None:  # one partition, in row order: read only the page
            row = after[1] if after is not None and after[0] == file else -1
            if after is not None and after[0] > file:
                return []
            records = self.io.query_by_row_key(
                REJECTS, "PartitionKey eq @pk and RowKey gt @row",
                {"pk": digest(file), "row": f"{row:012d}"}, list(_REJECT_FIELDS),
                min(limit or 1000, 1000),
            )  # fmt: skip
            found = (r for r in map(reject_of, records) if r.file == file)
            return list(found if limit is None else islice(found, limit))
        # Every file: a scan, since partitions are by a digest of the file, not in file order;
        # a later page has the service skip the files before it.
        if after is None:
            records = self.io.scan(REJECTS)
        else:
            records = self.io.query(REJECTS, "File ge @file", {"file": after[0]})
        found = (r for r in map(reject_of, records) if after is None or (r.file, r.row) > after)
        if limit is None:
            return sorted(found, key=lambda r: (r.file, r.row))
        return heapq.nsmallest(limit, found, key=lambda r: (r.file, r.row))

    def count_unmatched(self) -> int:
        # A scan of the activities' customer keys, each key looked up once.
        counts: Counter[CustomerKey | None] = Counter()
        for record in self._scan_activities(None, ["CustomerEntity", "ActivityForeignKey"]):
            counts[customer_key_of(record)] += 1
        found = self._resolve({k for k in counts if k is not None})
        return sum(n for k, n in counts.items() if k is None or k not in found)

    def count_unmatched_by_type(self) -> dict[str, int]:
        counts: Counter[tuple[str, CustomerKey | None]] = Counter()
        select = ["ActivityType", "CustomerEntity", "ActivityForeignKey"]
        for record in self._scan_activities(None, select):
            counts[record["ActivityType"], customer_key_of(record)] += 1
        found = self._resolve({k for _, k in counts if k is not None})
        by_type: Counter[str] = Counter()
        for (activity_type, key), n in counts.items():
            if key is None or key not in found:
                by_type[activity_type] += n
        return dict(sorted(by_type.items()))

    def relink(self) -> int:
        """Nothing waits to be linked: an activity finds its customer through its key when read."""
        return 0

    def iter_customers(self) -> Iterator[Customer]:
        # A scan of the customer rows for their ids, then each customer read by its partition.
        rows = self.io.query(
            CUSTOMER_ROWS, "RowKey gt @low and RowKey lt @high", {"low": "c", "high": "d"},
            select=["CustomerId"],
        )
        for customer_id in sorted({row["CustomerId"] for row in rows}):
            customer = self.get_customer(customer_id)
            if customer is not None:
                yield customer

    def iter_activities(self) -> Iterator[Activity]:
        # A scan of the table in its own order, customers looked up a chunk at a time.
        return self._linked(self._scan_activities(None), unmatched=False)

    def close(self) -> None:
        self.io.close()


def _of_type(record: Entity, types: Sequence[str]) -> bool:
    """A type filter names the activity (ActivityType) or its configured type (display)."""
    return record.get("ActivityType") in types or record.get("ActivityTypeDisplay") in types


def _newest(
    items: Iterable[T], limit: int | None, order: Callable[[T], tuple[str, str]]
) -> list[T]:
    if limit is None:
        return sorted(items, key=order, reverse=True)
    return heapq.nlargest(limit, items, key=order)


def _customer_key(activity: Activity) -> CustomerKey | None:
    entity, key = activity.customer_entity, activity.activity_foreign_key
    return None if entity is None or key is None else (entity, key)


def _matches(row: Entity, text: str, needle: str) -> bool:
    """Exact customer id, or a case-insensitive part of the key or of an attribute value."""
    if row["CustomerId"] == text or needle in row["Key"].casefold():
        return True
    values = orjson.loads(row["Attributes"]).values()
    return any(needle in str(value).casefold() for value in values if value)


def _unique(hits: Iterable[Entity]) -> Iterator[Entity]:
    seen: set[str] = set()
    for hit in hits:
        if hit["ActivityId"] not in seen:
            seen.add(hit["ActivityId"])
            yield hit
