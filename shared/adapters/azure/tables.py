"""TableStore: the profile store on Azure Table Storage (or Cosmos DB for Table), many writers."""

from __future__ import annotations

import contextlib
import heapq
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, NamedTuple, TypeVar

import orjson

from shared.adapters.azure.ledger import TableLedger
from shared.adapters.azure.table_access import RequestHook, TableAccess
from shared.adapters.azure.table_identity import Resolver
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
    visitor_keyed_range,
    visitor_keyed_record,
)
from shared.adapters.azure.table_lineage import (
    Put,
    forget_version,
    has_other_version,
    losses,
    put_greatest,
    stale_index_rows,
)
from shared.adapters.azure.table_links import (
    every_link,
    forget_links,
    links_of,
    links_of_many,
    visitors_of_many,
    write_links,
)
from shared.core.audiences.touched import Touched
from shared.core.identity.links import Link
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
    activity_cells,
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
        self._missing_visitors: dict[tuple[str | None, str | None], float] = {}
        self.rules: dict[str, str] = {}

    # -- writing ---------------------------------------------------------------------------

    def write(
        self,
        activities: Sequence[Activity],
        customers: Sequence[CustomerRow],
        rejects: Sequence[Reject],
        links: Sequence[Link] = (),
        touched: Touched | None = None,
    ) -> int:
        if links:
            write_links(self.io, links)
        if customers:
            self._write_customers(customers, touched)
        if activities:
            self._write_activities(activities, touched)
        if rejects:
            latest = {(r.file, r.row): r for r in rejects}
            self.io.write_all(REJECTS, [("upsert", reject_record(r)) for r in latest.values()])
        return self._unmatched(activities, customers)

    def _write_activities(self, activities: Sequence[Activity], touched: Touched | None) -> None:
        met: set[tuple[str, str]] = set()
        greatest = _greatest(activities, lambda a: a.activity_id, met)
        records = [activity_record(a) for a in greatest]
        # Index first: a reader skips an index row whose activity says otherwise, but could
        # never find an activity whose index row is missing.
        keyed = [row for row in map(keyed_record, records) if row is not None]
        keyed += [row for row in map(visitor_keyed_record, records) if row is not None]
        self.io.write_all(KEYED, [("upsert", row) for row in keyed])
        outcomes = put_greatest(self.io, ACTIVITIES, [Put(r) for r in records])
        for old in (o.old for o in outcomes if o.old is not None and touched is not None):
            touched.add_activity(old.get("CustomerEntity"), old.get("ActivityForeignKey"), old.get("VisitorId"))  # type: ignore[union-attr]
        self._note_overlaps(met | losses(outcomes))
        stale = stale_index_rows(outcomes, keyed_record)
        stale += stale_index_rows(outcomes, visitor_keyed_record)
        self.io.delete_if_unchanged(KEYED, stale, KEYED_IDENTITY)

    def _write_customers(self, customers: Sequence[CustomerRow], touched: Touched | None) -> None:
        now = utc_now()
        met: set[tuple[str, str]] = set()
        latest = _greatest(customers, lambda c: (c.entity, c.key), met)
        records = [customer_record(c, now) for c in latest]
        self.io.write_all(MEMBERS, [("upsert", member_record(r)) for r in records])
        outcomes = put_greatest(self.io, CUSTOMER_ROWS, [Put(r) for r in records])
        for old in (o.old for o in outcomes if o.old is not None and touched is not None):
            touched.add_row(old["Entity"], old["Key"], old["CustomerId"])  # type: ignore[union-attr]
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
        waiting = [a for a, k in zip(activities, keys, strict=True) if k is None or k not in known]
        return self._unmatched_visitors(waiting, now)

    def _unmatched_visitors(self, waiting: list[Activity], now: float) -> int:
        """How many of `waiting` (no customer by key) find none through their visitor either;
        visitors found without one are not read again for a while, as keys are not."""
        missing = self._missing_visitors
        if len(missing) > _MAX_KNOWN_KEYS:
            missing.clear()
        resolver = self._resolver()
        resolver.customers.update((k, None) for k in map(_customer_key, waiting) if k is not None)
        asked = [
            a for a in waiting if a.visitor_id is not None and a.customer_entity is not None
            and now - missing.get((a.customer_entity, a.visitor_id), -_MISSING_SECONDS)
            >= _MISSING_SECONDS
        ]  # fmt: skip
        resolver.prefetch(asked)
        found = {(a.customer_entity, a.visitor_id) for a in asked
                 if resolver.resolve(a).customer_id is not None}  # fmt: skip
        missing.update(((a.customer_entity, a.visitor_id), now) for a in asked
                       if (a.customer_entity, a.visitor_id) not in found)  # fmt: skip
        return sum(1 for a in waiting if (a.customer_entity, a.visitor_id) not in found)

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

    def forget_file(self, path: str, keep_etag: str) -> Touched:
        touched = Touched()
        for link in forget_links(self.io, path, keep_etag):
            touched.add_link(link.customer_entity, link.visitor_id, link.key)
        gone = forget_version(self.io, ACTIVITIES, path, keep_etag)
        for r in gone:
            touched.add_activity(r.get("CustomerEntity"), r.get("ActivityForeignKey"), r.get("VisitorId"))
        keyed = [row for row in map(keyed_record, gone) if row is not None]
        keyed += [row for row in map(visitor_keyed_record, gone) if row is not None]
        self.io.delete_if_unchanged(KEYED, keyed, KEYED_IDENTITY)
        gone_rows = forget_version(self.io, CUSTOMER_ROWS, path, keep_etag)
        for r in gone_rows:
            touched.add_row(r["Entity"], r["Key"], r["CustomerId"])
        self._customer_keys.difference_update((r["Entity"], r["Key"]) for r in gone_rows)
        self.io.delete_if_unchanged(MEMBERS, [member_record(r) for r in gone_rows], MEMBER_IDENTITY)
        if gone or gone_rows:
            self.io.write_all(OVERLAPS, [("delete", r) for r in self._overlaps_won_by(path)])
        stale = self.io.query(
            REJECTS, "PartitionKey eq @file and FileETag ne @keep",
            {"file": digest(path), "keep": keep_etag}, select=["PartitionKey", "RowKey"],
        )  # fmt: skip
        self.io.write_all(REJECTS, [("delete", r) for r in list(stale)])
        return touched

    def customers_reached(self, touched: Touched) -> set[str]:
        """As AudienceStore.customers_reached says (TableAudiences asks here). A row key's
        activities' visitors are found among the visitors linked to it: a signed-in visit
        links its visitor to its key."""
        row_keys = sorted(touched.row_keys)
        linked = {(k[0], v) for k, found in zip(row_keys, visitors_of_many(self.io, row_keys), strict=True)
                  for v in found}  # fmt: skip
        visitors = sorted(touched.visitors | touched.row_keys | linked)
        links = links_of_many(self.io, visitors)
        keys = touched.keys | touched.row_keys | {(link.customer_entity, link.key) for found in links for link in found}
        return set(self._resolve(keys).values())

    # -- reading ---------------------------------------------------------------------------

    def _customer_row(self, key: CustomerKey) -> Entity | None:
        row = self.io.get(CUSTOMER_ROWS, *customer_where(*key))
        return row if row is not None and (row["Entity"], row["Key"]) == key else None

    def _customer_rows(self, keys: Sequence[CustomerKey]) -> list[Entity | None]:
        """_customer_row of each key, a query per partition and a few keys (not from inside
        the pool)."""
        rows = self.io.get_many(CUSTOMER_ROWS, [customer_where(*k) for k in keys])
        return [r if r is not None and (r["Entity"], r["Key"]) == k else None
                for k, r in zip(keys, rows, strict=True)]  # fmt: skip

    def _resolve(self, keys: set[CustomerKey]) -> dict[CustomerKey, str]:
        """CustomerId of each customer key that has a customer row now."""
        ordered = sorted(keys)
        rows = self._customer_rows(ordered)
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

    def customer_attributes(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """As get_customer's Attributes, of many customers at once (their visitors not read)."""
        ids = list(dict.fromkeys(customer_ids))
        return _attributes_of(ids, self._rows_of_many(ids))

    def _rows_of_many(self, customer_ids: Sequence[str]) -> list[Entity]:
        """The customer rows of these customer ids, checked against the truth: their members'
        keys, then those rows, each step for all of them at once."""
        wanted = set(customer_ids)
        keys = sorted({(m["Entity"], m["Key"]) for found in self._members_of_many(customer_ids) for m in found})
        return [r for r in self._customer_rows(keys) if r is not None and r["CustomerId"] in wanted]

    def _resolver(self, customers: Iterable[Entity] = ()) -> Resolver:
        resolver = Resolver(self.io, self.rules, self._customer_row, self._customer_rows)
        resolver.customers.update(((r["Entity"], r["Key"]), r["CustomerId"]) for r in customers)
        return resolver

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
        linked = self._resolver(rows).visitors_of_keys((r["Entity"], r["Key"]) for r in rows)
        visitors = tuple(link for _, link in linked)
        updated = max(r["UpdatedAt"] for r in rows)
        return Customer(customer_id, attributes, keys, updated, visitors)

    def _reaching(self, customer_id: str) -> tuple[Resolver, list[_Stream]]:
        """The index ranges that may hold a customer's activities: each of its keys', and each
        of its visitors' (anonymous visits by key, signed-in ones by visitor)."""
        rows = self._rows_of(customer_id)
        resolver = self._resolver(rows)
        streams = [_Stream(*keyed_range(r["Entity"], r["Key"]), r["Entity"], r["Key"])
                   for r in rows]  # fmt: skip
        for entity, link in resolver.visitors_of_keys((r["Entity"], r["Key"]) for r in rows):
            visitor = link.visitor_id
            streams.append(_Stream(*keyed_range(entity, visitor), entity, visitor))
            streams.append(_Stream(*visitor_keyed_range(entity, visitor), entity, None))
        return resolver, streams

    def activities_of_customers(self, customer_ids: Sequence[str]) -> dict[str, list[Activity]]:
        """Every activity that reaches each customer, ShowInTimeline or not, by key or through
        a visitor (the index rows of its keys and visitors, each checked against the activity);
        each step for all of them at once: as many round trips as for one customer."""
        ids = list(dict.fromkeys(customer_ids))
        return self._activities_reaching(ids, self._rows_of_many(ids))

    def inputs_of_customers(
        self, customer_ids: Sequence[str]
    ) -> tuple[dict[str, list[Activity]], dict[str, dict[str, Any] | None]]:
        """activities_of_customers and customer_attributes of the same customers, from one
        read of their members and customer rows (an evaluation needs both)."""
        ids = list(dict.fromkeys(customer_ids))
        rows = self._rows_of_many(ids)
        return self._activities_reaching(ids, rows), _attributes_of(ids, rows)

    def _activities_reaching(self, ids: Sequence[str], rows: Sequence[Entity]) -> dict[str, list[Activity]]:
        """activities_of_customers, given the customers' rows (_rows_of_many)."""
        resolver = self._resolver(rows)
        streams = [_Stream(*keyed_range(r["Entity"], r["Key"]), r["Entity"], r["Key"]) for r in rows]
        for entity, link in resolver.visitors_of_keys((r["Entity"], r["Key"]) for r in rows):
            visitor = link.visitor_id
            streams.append(_Stream(*keyed_range(entity, visitor), entity, visitor))
            streams.append(_Stream(*visitor_keyed_range(entity, visitor), entity, None))
        found = self.io.query_ranges(KEYED, [(s.partition, s.low, s.high) for s in streams], ["ActivityId"])
        # An activity may have several index rows in these ranges: its own, and strays a writer
        # that died between index and truth left (an older time, another key). Each activity
        # is read once and kept if any of its rows is its own: the first row met must not decide.
        hits: dict[str, list[Entity]] = {}
        for part in found:
            for hit in part:
                hits.setdefault(hit["ActivityId"], []).append(hit)
        stored = self.io.get_many(ACTIVITIES, [activity_where(a) for a in hits])
        records = [r for rows, r in zip(hits.values(), stored, strict=True)
                   if r is not None and any(_indexed_by(r, hit) for hit in rows)]  # fmt: skip
        activities = [activity_of(r, None) for r in records]
        resolver.prefetch(activities)
        reaching: dict[str, list[Activity]] = {c: [] for c in ids}
        for activity in map(resolver.resolve, activities):
            if activity.customer_id in reaching:
                reaching[activity.customer_id].append(activity)
        return reaching

    def _members_of_many(self, customer_ids: Sequence[str]) -> list[list[Entity]]:
        """_members_of each customer, a query per partition and a few customers."""
        return self.io.query_ranges(MEMBERS, [members_range(c) for c in customer_ids], ["Entity", "Key"])

    def _members_of(self, customer_id: str) -> list[Entity]:
        partition, low, high = members_range(customer_id)
        return list(self.io.query(
            MEMBERS, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
            {"pk": partition, "low": low, "high": high}, select=["Entity", "Key"],
        ))  # fmt: skip

    def activity_counts(self, customer_id: str) -> dict[str, int]:
        # Counted from the index, unchecked but for which customer a visitor's activity's own
        # key names, and each activity once: only a writer that died between index and truth
        # leaves a stray row. Re-running its file puts the truth in place but need not remove
        # the stray (the next attempt may not write that version: another batch size, a newer
        # file); one under another customer's key makes that customer's count one too high.
        # Evaluations and the timeline check every row (activities_of_customers, _checked).
        resolver, streams = self._reaching(customer_id)
        found = self.io.map(lambda s: list(self._hits(s, ["ActivityType", "ForeignKey"])), streams)
        counts: Counter[str] = Counter()
        seen: set[str] = set()
        for stream, hits in zip(streams, found, strict=True):
            for hit in hits:
                key = stream.key if stream.key is not None else hit.get("ForeignKey")
                if hit["ActivityId"] in seen:
                    continue
                if key is None or resolver.customer_of(stream.entity, key) in (None, customer_id):
                    seen.add(hit["ActivityId"])
                    counts[hit["ActivityType"]] += 1
        return dict(sorted(counts.items()))

    def _hits(self, stream: _Stream, select: list[str]) -> Iterator[Entity]:
        where = "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high"
        params = {"pk": stream.partition, "low": stream.low, "high": stream.high}
        return self.io.query(KEYED, where, params, select=["ActivityId", *select])

    def timeline(self, customer_id: str, query: TimelineQuery) -> Page:
        resolver, streams = self._reaching(customer_id)
        return self._merged_page(streams, query, resolver,
                                 lambda a: a.customer_id == customer_id and a.show_in_timeline,
                                 timeline=True)  # fmt: skip

    def visitor_activities(self, visitor_id: str, query: TimelineQuery) -> Page:
        entities = sorted(self.rules) or sorted({link.customer_entity for link in
                                                 self.visitor_links(visitor_id)})  # fmt: skip
        streams = [stream for entity in entities for stream in (
            _Stream(*keyed_range(entity, visitor_id), entity, visitor_id),
            _Stream(*visitor_keyed_range(entity, visitor_id), entity, None),
        )]  # fmt: skip
        resolver = self._resolver()
        return self._merged_page(streams, query, resolver, lambda a: a.visitor_id == visitor_id)

    def _merged_page(
        self,
        streams: list[_Stream],
        query: TimelineQuery,
        resolver: Resolver,
        chosen: Callable[[Activity], bool],
        timeline: bool = False,
    ) -> Page:
        """One newest-first page over several index ranges, each read in timeline order and
        merged, every hit checked against its activity; one token resumes them all."""
        after = decode_cursor(query.continuation) if query.continuation else None
        ranges = [self._keyed(stream, query, after, timeline) for stream in streams]
        merged = heapq.merge(*ranges, key=lambda hit: hit["RowKey"][32:])
        # Every row checked before an activity counts as met: a stray row a writer that died
        # between index and truth left (another time) must not hide the activity's own row.
        # One activity may still be met twice (under its key and its visitor): kept once.
        items: list[Activity] = []
        met: set[str] = set()
        unmet = (hit for hit in merged if hit["ActivityId"] not in met)
        while len(items) <= query.limit:
            chunk = list(islice(unmet, query.limit + 1 - len(items)))
            if not chunk:
                break
            records = self.io.map(lambda hit: self._checked(hit, query), chunk)
            found = []
            for record in records:
                if record is not None and record["ActivityId"] not in met:
                    met.add(record["ActivityId"])
                    found.append(activity_of(record, None))
            resolver.prefetch(found)
            items += [a for a in map(resolver.resolve, found) if chosen(a)]
        page = items[: query.limit]
        more = len(items) > query.limit
        token = encode_cursor(page[-1].activity_time, page[-1].activity_id) if more else None
        return Page(page, token)

    def _keyed(
        self, stream: _Stream, query: TimelineQuery, after: tuple[str, str] | None,
        timeline: bool = True,
    ) -> Iterator[Entity]:
        """Index rows of one range in timeline order, narrowed by the query."""
        partition, low, high = stream.partition, stream.low, stream.high
        ck = low
        if after is not None:
            low = max(low, ck + timeline_key(*after))
        if query.until is not None:
            low = max(low, ck + descending(query.until) + "~~")
        if query.since is not None:
            high = ck + descending(query.since) + "~~"
        where = "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high"
        if timeline:
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

    def _checked(self, hit: Entity, query: TimelineQuery) -> Entity | None:
        """The activity record an index row points at, if the activity still says the same."""
        record = self.io.get(ACTIVITIES, *activity_where(hit["ActivityId"]))
        if record is None or not _indexed_by(record, hit):
            return None
        if query.types and not _of_type(record, query.types):  # type: ignore[arg-type]
            return None
        return record

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
        resolver = self._resolver()
        while chunk := list(islice(records, _SCAN_CHUNK)):
            activities = [activity_of(record, None) for record in chunk]
            resolver.prefetch(activities)
            for activity in map(resolver.resolve, activities):
                if not unmatched or activity.customer_id is None:
                    yield activity

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
        return sum(self._unmatched_counts().values())

    def _unmatched_counts(self) -> Counter[str]:
        # A scan of the activities' types, customer keys and visitors, each looked up once.
        counts: Counter[tuple] = Counter()
        select = ["ActivityType", "CustomerEntity", "ActivityForeignKey", "VisitorId"]
        for record in self._scan_activities(None, select):
            counts[tuple(record.get(name) for name in select)] += 1
        activities = [Activity("", None, kind, "", None, "", None, None, "", "", fk, True, "", "",
                               0, entity, visitor) for kind, entity, fk, visitor in counts]  # fmt: skip
        resolver = self._resolver()
        resolver.prefetch(activities)
        by_type: Counter[str] = Counter()
        for a, n in zip(activities, counts.values(), strict=True):
            if resolver.resolve(a).customer_id is None:
                by_type[a.activity_type] += n
        return by_type

    def count_unmatched_by_type(self) -> dict[str, int]:
        return dict(sorted(self._unmatched_counts().items()))

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

    def iter_activity_cells(self) -> Iterator[Sequence[str]]:
        return map(activity_cells, self.iter_activities())

    @contextlib.contextmanager
    def activity_cell_parts(self, parts_for: Callable[[int], int]) -> Iterator[list[Callable[[], Iterable[Sequence[str]]]]]:
        yield [self.iter_activity_cells]  # one: no cheap split

    # -- links (LinkStore) -----------------------------------------------------------------

    def use_conflict_rules(self, rules: Mapping[str, str]) -> None:
        self.rules = dict(rules)

    def visitor_links(self, visitor_id: str) -> list[Link]:
        if not self.rules:  # entities unknown: a scan, for a store opened without a config
            return sorted(every_link(self.io, visitor_id))
        return sorted(link for entity in sorted(self.rules)
                      for link in links_of(self.io, entity, visitor_id))  # fmt: skip

    def conflicting_links(self, limit: int | None) -> list[list[Link]]:
        # A scan of every link: a list for an operator, not a card's read.
        groups: dict[tuple[str, str], list[Link]] = {}
        for link in every_link(self.io):
            groups.setdefault((link.customer_entity, link.visitor_id), []).append(link)
        found = [sorted(links) for _, links in sorted(groups.items())
                 if len({link.key for link in links}) > 1]  # fmt: skip
        return found if limit is None else found[:limit]

    def close(self) -> None:
        self.io.close()


class _Stream(NamedTuple):
    """One index range of activities that may reach a customer or visitor: `key` is the
    foreign key its rows hold (None: each row says, as ForeignKey)."""

    partition: str
    low: str
    high: str
    entity: str
    key: str | None


def _indexed_by(record: Entity, hit: Entity) -> bool:
    """Whether an activity record still says what the index row pointing at it says."""
    rows = [row for row in (keyed_record(record), visitor_keyed_record(record)) if row]
    return any(row["RowKey"] == hit["RowKey"] for row in rows)


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


def _attributes_of(customer_ids: Sequence[str], rows: Sequence[Entity]) -> dict[str, dict[str, Any] | None]:
    """Each customer's Attributes from its customer rows, as get_customer merges them (the
    first non-empty value of each, in (entity, key) order); None for one without rows."""
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(customer_ids)
    for row in sorted(rows, key=lambda r: (r["Entity"], r["Key"])):
        if row["CustomerId"] not in found:
            continue
        attributes = found[row["CustomerId"]] or {}
        for name, value in orjson.loads(row["Attributes"]).items():
            if attributes.get(name) in (None, ""):
                attributes[name] = value
        found[row["CustomerId"]] = attributes
    return found
