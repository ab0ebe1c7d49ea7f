"""MemoryStore and MemoryLedger: the in-memory doubles of the ports, for tests and dry runs."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from shared.core.audiences.touched import Touched
from shared.core.identity.links import Link
from shared.core.identity.resolution import resolve
from shared.core.identity.winners import LATEST, VisitorLink, winner
from shared.core.ingest.claims import next_claim, renewed, utc_now
from shared.core.ingest.overlaps import reachable
from shared.core.model import (
    Activity,
    AlternateKey,
    Customer,
    CustomerRow,
    LedgerEntry,
    Page,
    Reject,
    TimelineQuery,
    activity_cells,
)
from shared.core.paging import decode_cursor, encode_cursor


def _wins(new: Activity | CustomerRow, old: Activity | CustomerRow | None) -> bool:
    return old is None or (new.source_file, new.source_row) >= (old.source_file, old.source_row)


def _of_type(activity: Activity, types: Sequence[str]) -> bool:
    """A type filter names the activity (ActivityType) or its configured type (display)."""
    return activity.activity_type in types or activity.activity_type_display in types


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.activities: dict[str, Activity] = {}
        self.customer_rows: dict[tuple[str, str], tuple[CustomerRow, str]] = {}
        self.rejects: dict[tuple[str, int], Reject] = {}
        # (customer entity, visitor) -> links by identity
        self.links: dict[tuple[str, str], dict[tuple, Link]] = defaultdict(dict)
        self.rules: dict[str, str] = {}
        self.overlaps: dict[str, set[str]] = defaultdict(set)  # winner file -> loser files
        self.rereads: dict[str, dict[str, None]] = defaultdict(dict)  # path -> files, in order

    def _overlap(self, new: Activity | CustomerRow, old: Activity | CustomerRow | None) -> None:
        if old is not None and new.source_file != old.source_file:
            winner, loser = (new, old) if _wins(new, old) else (old, new)
            self.overlaps[winner.source_file].add(loser.source_file)

    def _customer_of_key(self, entity: str, key: str) -> str | None:
        found = self.customer_rows.get((entity, key))
        return found[0].customer_id if found else None

    def _winner_of(self, entity: str, visitor: str) -> VisitorLink | None:
        found = self.links.get((entity, visitor))
        return winner(found.values(), self.rules.get(entity, LATEST)) if found else None

    def _resolved(self, activity: Activity) -> Activity:
        """Its customer as the store is now: nothing is stored that could go stale."""
        return resolve(activity, self._customer_of_key, self._winner_of)

    def write(
        self,
        activities: Sequence[Activity],
        customers: Sequence[CustomerRow],
        rejects: Sequence[Reject],
        links: Sequence[Link] = (),
        touched: Touched | None = None,
    ) -> int:
        with self._lock:
            now = utc_now()
            for row in customers:
                old = self.customer_rows.get((row.entity, row.key))
                self._overlap(row, old[0] if old else None)
                if old is not None and touched is not None:
                    touched.add_row(row.entity, row.key, old[0].customer_id)
                if _wins(row, old[0] if old else None):
                    self.customer_rows[(row.entity, row.key)] = (row, now)
            for link in links:
                held = self.links[(link.customer_entity, link.visitor_id)]
                known = held.get(link.identity)
                held[link.identity] = link if known is None else known.merged(link)
            unmatched = 0
            for activity in activities:
                stored = activity._replace(customer_id=None, identity_path=None)
                unmatched += self._resolved(stored).customer_id is None
                old_activity = self.activities.get(activity.activity_id)
                self._overlap(stored, old_activity)
                if old_activity is not None and touched is not None:
                    o = old_activity
                    touched.add_activity(o.customer_entity, o.activity_foreign_key, o.visitor_id)
                if _wins(stored, old_activity):
                    self.activities[activity.activity_id] = stored
            for reject in rejects:
                self.rejects[(reject.file, reject.row)] = reject
            return unmatched

    def _stale(self, path: str, keep_etag: str) -> tuple[list[tuple[str, str]], list[str]]:
        customers = [
            k for k, (row, _) in self.customer_rows.items()
            if row.source_file == path and row.source_etag != keep_etag
        ]  # fmt: skip
        activities = [
            activity_id for activity_id, a in self.activities.items()
            if a.source_file == path and a.source_etag != keep_etag
        ]  # fmt: skip
        return customers, activities

    def overlapping_files(self, path: str, keep_etag: str) -> list[str]:
        with self._lock:
            if not any(self._stale(path, keep_etag)):
                return []
            return reachable(path, lambda winner: sorted(self.overlaps.get(winner, ())))

    def note_rereads(self, path: str, files: Sequence[str]) -> list[str]:
        with self._lock:
            self.rereads[path].update(dict.fromkeys(files))
            return list(self.rereads.get(path, ()))

    def clear_rereads(self, path: str) -> None:
        with self._lock:
            self.rereads.pop(path, None)

    def forget_file(self, path: str, keep_etag: str) -> Touched:
        touched = Touched()
        with self._lock:
            stale, stale_activities = self._stale(path, keep_etag)
            if stale or stale_activities:
                self.overlaps.pop(path, None)
            for key in stale:
                touched.add_row(*key, self.customer_rows.pop(key)[0].customer_id)
            for activity_id in stale_activities:
                a = self.activities.pop(activity_id)
                touched.add_activity(a.customer_entity, a.activity_foreign_key, a.visitor_id)
            for visitor, held in list(self.links.items()):
                for identity, link in list(held.items()):
                    if link.source_file == path and link.source_etag != keep_etag:
                        touched.add_link(link.customer_entity, link.visitor_id, link.key)
                        del held[identity]
                if not held:
                    del self.links[visitor]
            for key, r in list(self.rejects.items()):
                if r.file == path and r.etag != keep_etag:
                    del self.rejects[key]
        return touched

    def customers_reached(self, touched: Touched) -> set[str]:
        """As AudienceStore.customers_reached says (MemoryAudiences asks here)."""
        with self._lock:
            visitors = touched.visitors | touched.row_keys | {
                (e, v) for (e, v) in self.links for link in self.links[(e, v)].values()
                if (e, link.key) in touched.row_keys
            }  # fmt: skip
            keys = set(touched.keys) | touched.row_keys
            keys |= {(v[0], link.key) for v in visitors for link in self.links.get(v, {}).values()}
            found = {self._customer_of_key(*k) for k in keys}
        found.discard(None)
        return found  # type: ignore[return-value]

    def get_customer(self, customer_id: str) -> Customer | None:
        with self._lock:
            rows = sorted(
                (
                    entry
                    for entry in self.customer_rows.values()
                    if entry[0].customer_id == customer_id
                ),
                key=lambda e: (e[0].entity, e[0].key),
            )
        if not rows:
            return None
        attributes: dict[str, object] = {}
        for row, _ in rows:
            for name, value in row.attributes.items():
                if attributes.get(name) in (None, ""):
                    attributes[name] = value
        keys = tuple(AlternateKey(row.entity, row.key) for row, _ in rows)
        visitors = self._visitors_of({(row.entity, row.key) for row, _ in rows})
        return Customer(
            customer_id, attributes, keys, max(updated for _, updated in rows), visitors
        )

    def _visitors_of(self, keys: set[tuple[str, str]]) -> tuple[VisitorLink, ...]:
        with self._lock:
            found = [
                (entity, link) for (entity, visitor) in self.links
                if (link := self._winner_of(entity, visitor)) is not None
                and (entity, link.key) in keys
            ]  # fmt: skip
        return tuple(link for _, link in sorted(found, key=lambda f: (f[0], f[1].visitor_id)))

    def _resolved_all(self, keep: Callable[[Activity], bool] = lambda a: True) -> list[Activity]:
        with self._lock:
            return [r for a in self.activities.values() if keep(r := self._resolved(a))]

    def activity_counts(self, customer_id: str) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for a in self._resolved_all(lambda a: a.customer_id == customer_id):
            counts[a.activity_type] += 1
        return dict(sorted(counts.items()))

    def timeline(self, customer_id: str, query: TimelineQuery) -> Page:
        return self._page(
            lambda a: a.customer_id == customer_id and a.show_in_timeline, query
        )

    def visitor_activities(self, visitor_id: str, query: TimelineQuery) -> Page:
        return self._page(lambda a: a.visitor_id == visitor_id, query)

    def _page(self, chosen: Callable[[Activity], bool], query: TimelineQuery) -> Page:
        after = decode_cursor(query.continuation) if query.continuation else None
        items = self._resolved_all(lambda a: (
            chosen(a)
            and (not query.types or _of_type(a, query.types))
            and (query.since is None or a.activity_time >= query.since)
            and (query.until is None or a.activity_time < query.until)
            and (after is None or (a.activity_time, a.activity_id) < after)
        ))  # fmt: skip
        items.sort(key=lambda a: (a.activity_time, a.activity_id), reverse=True)
        page = items[: query.limit]
        more = len(items) > query.limit
        token = encode_cursor(page[-1].activity_time, page[-1].activity_id) if more else None
        return Page(page, token)

    def search_customers(self, text: str, limit: int, after: str | None = None) -> list[Customer]:
        needle = text.casefold()
        with self._lock:
            ids = sorted({
                row.customer_id for row, _ in self.customer_rows.values()
                if (after is None or row.customer_id > after)
                and (row.customer_id == text or needle in row.key.casefold()
                     or any(needle in str(v).casefold() for v in row.attributes.values() if v))
            })  # fmt: skip
        found = (self.get_customer(customer_id) for customer_id in ids[:limit])
        return [c for c in found if c is not None]

    def list_activities(
        self,
        activity_type: str | None,
        unmatched: bool,
        limit: int | None,
        after: tuple[str, str] | None = None,
    ) -> list[Activity]:
        items = self._resolved_all(lambda a: (
            (activity_type is None or _of_type(a, (activity_type,)))
            and (not unmatched or a.customer_id is None)
            and (after is None or (a.activity_time, a.activity_id) < after)
        ))  # fmt: skip
        items.sort(key=lambda a: (a.activity_time, a.activity_id), reverse=True)
        return items if limit is None else items[:limit]

    def list_rejects(
        self, limit: int | None, file: str | None = None, after: tuple[str, int] | None = None
    ) -> list[Reject]:
        with self._lock:
            items = sorted(
                (r for r in self.rejects.values()
                 if (file is None or r.file == file) and (after is None or (r.file, r.row) > after)),
                key=lambda r: (r.file, r.row),
            )  # fmt: skip
        return items if limit is None else items[:limit]

    def count_unmatched(self) -> int:
        return len(self._resolved_all(lambda a: a.customer_id is None))

    def count_unmatched_by_type(self) -> dict[str, int]:
        found = self._resolved_all(lambda a: a.customer_id is None)
        return dict(sorted(Counter(a.activity_type for a in found).items()))

    def relink(self) -> int:
        """Nothing waits to be linked: an activity finds its customer when read."""
        return 0

    # -- links (LinkStore) -----------------------------------------------------------------

    def use_conflict_rules(self, rules: Mapping[str, str]) -> None:
        with self._lock:
            self.rules = dict(rules)

    def visitor_links(self, visitor_id: str) -> list[Link]:
        with self._lock:
            found = [
                link for (_, visitor), held in self.links.items() if visitor == visitor_id
                for link in held.values()
            ]  # fmt: skip
        return sorted(found)

    def conflicting_links(self, limit: int | None) -> list[list[Link]]:
        with self._lock:
            groups = [
                sorted(held.values()) for _, held in sorted(self.links.items())
                if len({link.key for link in held.values()}) > 1
            ]  # fmt: skip
        return groups if limit is None else groups[:limit]

    def iter_customers(self) -> Iterator[Customer]:
        with self._lock:
            ids = sorted({row.customer_id for row, _ in self.customer_rows.values()})
        found = (self.get_customer(customer_id) for customer_id in ids)
        return (c for c in found if c is not None)

    def iter_activities(self) -> Iterator[Activity]:
        return iter(sorted(self._resolved_all(), key=lambda a: a.activity_id))

    def iter_activity_cells(self) -> Iterator[Sequence[str]]:
        return map(activity_cells, self.iter_activities())

    @contextlib.contextmanager
    def activity_cell_parts(self, parts_for: Callable[[int], int]) -> Iterator[list[Callable[[], Iterable[Sequence[str]]]]]:
        yield [self.iter_activity_cells]  # one: no cheap split

    def close(self) -> None:
        pass


class MemoryLedger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], LedgerEntry] = {}
        self._order: dict[tuple[str, str], int] = {}
        self._awaiting: set[tuple[str, str]] = set()  # the keys of entries awaiting metadata
        self._seq = 0

    def get(self, path: str, etag: str) -> LedgerEntry | None:
        with self._lock:
            entry = self._entries.get((path, etag))
            return dataclasses.replace(entry) if entry else None

    def latest(self, path: str) -> LedgerEntry | None:
        with self._lock:
            keys = [k for k in self._entries if k[0] == path]
            if not keys:
                return None
            return dataclasses.replace(self._entries[max(keys, key=self._order.__getitem__)])

    def claim(
        self,
        path: str,
        etag: str,
        now: str,
        lease_until: str,
        force: bool = False,
        holder: str | None = None,
    ) -> LedgerEntry | None:
        with self._lock:
            claimed = next_claim(
                self._entries.get((path, etag)), path, etag, now, lease_until, force, holder
            )
            if claimed is None:
                return None
            self._seq += 1
            self._entries[(path, etag)] = claimed
            self._awaiting.discard((path, etag))
            self._order[(path, etag)] = self._seq
            return dataclasses.replace(claimed)

    def renew(self, entry: LedgerEntry, lease_until: str) -> bool:
        with self._lock:
            old = self._entries.get((entry.path, entry.etag))
            old = dataclasses.replace(old) if old else None
            new = renewed(old, entry, lease_until)
            if new is not None:
                self._entries[(entry.path, entry.etag)] = new
            return new is not None

    def record(self, entry: LedgerEntry) -> None:
        with self._lock:
            key = (entry.path, entry.etag)
            if key not in self._order:
                self._seq += 1
                self._order[key] = self._seq
            self._entries[key] = dataclasses.replace(entry)
            if entry.awaits_metadata:
                self._awaiting.add(key)
            else:
                self._awaiting.discard(key)

    def entries(self, status: str | None = None) -> Iterator[LedgerEntry]:
        with self._lock:
            items = [dataclasses.replace(e) for e in self._entries.values()]
        items.sort(key=lambda e: (e.path, e.etag))
        return iter([e for e in items if status is None or e.status == status])

    def latest_entries(
        self, status: str | None, limit: int, after: str | None = None
    ) -> list[LedgerEntry]:
        with self._lock:
            latest: dict[str, tuple[str, str]] = {}
            for key in sorted(self._order, key=self._order.__getitem__):
                latest[key[0]] = key
            found = [
                dataclasses.replace(self._entries[latest[path]]) for path in sorted(latest)
                if (after is None or path > after)
                and (status is None or self._entries[latest[path]].status == status)
            ]  # fmt: skip
        return found[:limit]

    def awaiting_metadata(self, folder: str) -> Iterator[LedgerEntry]:
        with self._lock:
            keys = sorted(k for k in self._awaiting if k[0].startswith(folder))
            return iter([dataclasses.replace(self._entries[k]) for k in keys])
