"""SqliteAudiences: measures and segment memberships kept in the store's database file, and
the history of membership changes numbered in the order they were recorded."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

import orjson

from shared.adapters.sqlite.activities import ALL_RESOLVED, CHUNK, MANY_RESOLVED, VISITOR
from shared.adapters.sqlite.store import (
    ACTIVITY_COLUMNS,
    REACHING,
    SqliteDatabase,
    SqliteStore,
    _activity,
    _customer,
)
from shared.core.audiences.measures import Columns
from shared.core.audiences.records import (
    ENTERED,
    AudienceResult,
    MembershipChange,
    StoredAudience,
    membership_diff,
)
from shared.core.audiences.touched import Ref, Touched
from shared.core.model import ACTIVITY_FIELDS, Activity

# Customers a query of evaluation_inputs_of: fewer queries, each holding their activities.
MANY_CHUNK = 1_000
# The page cache of its reads on a connection of their own (a forked child's): their index
# searches from many customers come back to the same pages. On the bench's 1.1M-event store, a
# child's share of an 11k-event file's customers is read in 0.66-0.73 s with 8-48 MiB, against
# 0.88-1.03 s with SQLite's default 2 MiB.
MANY_CACHE_KIB = 16 * 1024
# A JSON array of [entity, key] pairs (?) as a table j(entity, key).
_PAIRS = "(SELECT json_extract(value, '$[0]') AS entity, json_extract(value, '$[1]') AS key FROM json_each(?)) j"
_COLUMN_OF = {name: column for column, name in ACTIVITY_FIELDS.items()}  # record field -> view column
SCHEMA = """
CREATE TABLE IF NOT EXISTS audience_state (
    customer_id TEXT PRIMARY KEY, measures TEXT NOT NULL, segments TEXT NOT NULL,
    next_change TEXT, fingerprint TEXT NOT NULL, evaluated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audience_state_by_next_change
    ON audience_state (next_change) WHERE next_change IS NOT NULL;
CREATE TABLE IF NOT EXISTS segment_members (
    segment TEXT NOT NULL, customer_id TEXT NOT NULL, since TEXT NOT NULL,
    PRIMARY KEY (segment, customer_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS membership_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, segment TEXT NOT NULL, customer_id TEXT,
    change TEXT NOT NULL, at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS membership_changes_by_segment ON membership_changes (segment, seq);
CREATE TABLE IF NOT EXISTS audience_marks (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqliteAudiences:
    # Customers evaluated together (upkeep.chunk_of): one query of evaluation_inputs_of and one
    # write transaction each; 1,000 rather than 200 took a 1.1k-event file's upkeep onto the
    # bench's 1.1M-event store from 0.43-0.44 s to 0.38-0.39 s.
    evaluation_chunk = MANY_CHUNK

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        # Statement by statement in a transaction of the database's own: executescript would
        # commit a bulk load the same thread has open.
        with db.transaction() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[object]:
        """A write transaction of its own: an open bulk load is committed first, so that the
        ordered reads of evaluation_inputs (a connection of their own) see what it wrote."""
        with self.db.lock:
            self.db.commit_bulk()
            with self.db.transaction() as conn:
                yield conn

    def customer_count(self) -> int:
        return self.db.query("SELECT count(DISTINCT customer_id) FROM customer_rows")[0][0]

    def customer_splits(self, start: str | None, parts: int, at_least: int) -> list[str]:
        """Ids cutting the customers from `start` on into `parts` runs of about as many each,
        for as many forked children to read with `evaluation_inputs(apart=True)`; none if there
        are fewer than `at_least` or the database is :memory: (only this connection sees it).
        What this process wrote is committed first, for the children to read."""
        if self.db.path == ":memory:":
            return []
        self.db.commit_bulk()
        count = self.db.query("SELECT count(DISTINCT customer_id) FROM customer_rows WHERE customer_id >= ?",
                              (start or "",))[0][0]  # fmt: skip
        if count < max(at_least, parts):
            return []
        return [self.db.query(
            "SELECT DISTINCT customer_id FROM customer_rows WHERE customer_id >= ? "
            "ORDER BY customer_id LIMIT 1 OFFSET ?", (start or "", count * k // parts),
        )[0][0] for k in range(1, parts)]  # fmt: skip

    def customer_ids(self, after: str | None, limit: int) -> list[str]:
        rows = self.db.query(
            "SELECT DISTINCT customer_id FROM customer_rows WHERE customer_id > ? "
            "ORDER BY customer_id LIMIT ?", (after or "", limit),
        )  # fmt: skip
        return [r[0] for r in rows]

    def activities_by_customer(self, customer_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {c: [] for c in customer_ids}
        # One query a customer, through its keys and visitors, then checked against the view: a
        # filter on the view's resolved customer alone would read every activity.
        query = (f"{REACHING} SELECT {ACTIVITY_COLUMNS} FROM unified_activities "
                 "WHERE activity_id IN reaching AND customer_id = ?")  # fmt: skip
        for customer_id in found:
            for row in self.db.query(query, (customer_id, customer_id)):
                found[customer_id].append(_activity(row).to_record())
        return found

    def evaluation_inputs(
        self, start: str | None = None, fields: Sequence[str] | None = None, end: str | None = None,
        apart: bool = False,
    ) -> Iterator[tuple[str, Columns, dict[str, Any]]]:  # fmt: skip
        """Every customer from `start` on (before `end`, if given), in id order, with its
        activities (column by column, as the evaluator reads them) and attributes, for a full
        pass: two scans in customer order merged, not a query per customer. With `fields`,
        only those (what the measures read), the rows' values put into columns as they come,
        with no object made per activity: most of a full pass's time is Python making objects.
        `apart`: in a forked child (shared/core/audiences/side_by_side.py), on connections of
        its own only, what the parent committed before forking (customer_splits)."""
        bounds, params = "customer_id >= ?", [start or ""]
        if end is not None:
            bounds, params = bounds + " AND customer_id < ?", [*params, end]
        stream = self.db.stream_apart if apart else self.db.stream
        customers = itertools.chain.from_iterable(stream(
            "SELECT customer_id, entity, key, attributes, updated_at FROM customer_rows "
            f"WHERE {bounds} ORDER BY customer_id, entity, key", params))  # fmt: skip
        names, columns = _selected(fields)
        # Customer last, so that zip(names, row) stops before it: no slice per row.
        rows = itertools.chain.from_iterable(stream(
            f"{ALL_RESOLVED} SELECT {columns}, customer_id FROM resolved "
            f"WHERE {bounds} ORDER BY customer_id", params))  # fmt: skip
        yield from _merged_inputs(customers, rows, names)

    def evaluation_inputs_of(
        self, customer_ids: Sequence[str], fields: Sequence[str] | None = None, apart: bool = False
    ) -> Iterator[tuple[str, Columns, dict[str, Any]]]:
        """As evaluation_inputs, but of these customers only (in id order; those without a
        customer row are gone, and left out): their activities found through their keys and
        visitors, as activities_by_customer finds one's, MANY_CHUNK customers a query, rather
        than by a scan of every activity. The file's customers of a later file, most often a
        share of them, cost their own activities, not the store's. `apart`: on connections of
        its own (a forked child's)."""
        names, columns = _selected(fields)
        ordered = sorted(set(customer_ids))
        for i in range(0, len(ordered), MANY_CHUNK):
            wanted = (orjson.dumps(ordered[i : i + MANY_CHUNK]).decode(),)
            customers = self._rows(
                "SELECT customer_id, entity, key, attributes, updated_at FROM customer_rows "
                "WHERE customer_id IN (SELECT value FROM json_each(?)) ORDER BY customer_id, entity, key",
                wanted, apart,
            )  # fmt: skip
            rows = self._rows(
                f"{MANY_RESOLVED} SELECT {columns}, customer_id FROM resolved "
                "WHERE customer_id IN (SELECT customer_id FROM wanted) ORDER BY customer_id", wanted, apart,
            )  # fmt: skip
            yield from _merged_inputs(customers, rows, names)

    def _rows(self, sql: str, params: Sequence[object], apart: bool) -> Iterable[tuple]:
        """One query's rows: from a connection of its own (apart), else from the shared one,
        which sees what this process has not committed yet (its page cache CACHE_KIB)."""
        if apart:
            return itertools.chain.from_iterable(self.db.stream_apart(sql, params, cache_kib=MANY_CACHE_KIB))
        return self.db.query(sql, params)

    def attributes_of(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        profiles = SqliteStore(self.db)
        return {c: found.attributes if (found := profiles.get_customer(c)) else None for c in customer_ids}

    def stored_audiences(self, customer_ids: Sequence[str]) -> dict[str, StoredAudience]:
        found: dict[str, StoredAudience] = {}
        for i in range(0, len(customer_ids), 500):
            chunk = list(customer_ids[i : i + 500])
            marks = ", ".join("?" * len(chunk))
            for row in self.db.query(
                "SELECT customer_id, measures, segments, next_change, fingerprint, evaluated_at "
                f"FROM audience_state WHERE customer_id IN ({marks})", chunk,
            ):  # fmt: skip
                found[row[0]] = StoredAudience(
                    row[0], orjson.loads(row[1]), tuple(orjson.loads(row[2])), row[3], row[4], row[5]
                )
        return found

    def save_audiences(
        self, results: Sequence[AudienceResult], fingerprint: str, at: str
    ) -> list[MembershipChange]:
        diffs: list[tuple[str, str, str, str]] = []
        states, gone = [], []
        with self.db.transaction() as conn:
            # Read inside the write transaction: a concurrent evaluator cannot interleave.
            before = self.stored_audiences([r.customer_id for r in results])
            for result in results:
                old = before.get(result.customer_id)
                diffs += membership_diff(result.customer_id, old.segments if old else (), result.segments, at)
                if result.measures is None:
                    gone.append((result.customer_id,))
                else:
                    states.append((result.customer_id, orjson.dumps(result.measures).decode(),
                                   orjson.dumps(list(result.segments)).decode(), result.next_change,
                                   fingerprint, at))  # fmt: skip
            # A statement a kind, not one a row (a customer's changes all follow from one stored
            # state: none enters and leaves the same segment in one save).
            conn.executemany("INSERT OR REPLACE INTO segment_members VALUES (?, ?, ?)",
                             [(s, c, when) for s, c, change, when in diffs if change == ENTERED])  # fmt: skip
            conn.executemany("DELETE FROM segment_members WHERE segment = ? AND customer_id = ?",
                             [(s, c) for s, c, change, _ in diffs if change != ENTERED])  # fmt: skip
            conn.executemany("DELETE FROM audience_state WHERE customer_id = ?", gone)
            # Updated where it is (REPLACE would delete and insert each row and its index entries).
            conn.executemany(
                "INSERT INTO audience_state VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET "
                "measures = excluded.measures, segments = excluded.segments, next_change = excluded.next_change, "
                "fingerprint = excluded.fingerprint, evaluated_at = excluded.evaluated_at", states,
            )  # fmt: skip
            if not diffs:
                return []
            conn.executemany("INSERT INTO membership_changes (segment, customer_id, change, at) VALUES (?, ?, ?, ?)", diffs)
            # Numbered one after another: inside this write transaction, no one else inserts.
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        first = last - len(diffs) + 1
        return [MembershipChange(first + i, *d) for i, d in enumerate(diffs)]

    def due_customers(self, now: str, limit: int) -> list[str]:
        rows = self.db.query(
            "SELECT customer_id FROM audience_state WHERE next_change IS NOT NULL AND next_change <= ? "
            "ORDER BY next_change, customer_id LIMIT ?", (now, limit),
        )  # fmt: skip
        return [r[0] for r in rows]

    def mark_due(self, customer_ids: Sequence[str], at: str) -> None:
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO audience_state VALUES (?, '{}', '[]', ?, '', ?) "
                "ON CONFLICT (customer_id) DO UPDATE SET next_change = excluded.next_change",
                [(c, at, at) for c in customer_ids],
            )

    def customers_reached(self, touched: Touched) -> set[str]:
        visitors = set(touched.visitors) | touched.row_keys
        for entity, keys in _by_entity(touched.row_keys).items():  # their activities' visitors
            for i in range(0, len(keys), CHUNK):
                chunk = keys[i : i + CHUNK]
                visitors.update(self.db.query(
                    f"SELECT DISTINCT s.customer_entity, {VISITOR} FROM activities a "
                    "JOIN activity_sources s ON s.source_id = a.source_id "
                    f"WHERE a.activity_foreign_key IN ({', '.join('?' * len(chunk))}) "
                    f"AND s.customer_entity = ? AND {VISITOR} IS NOT NULL", [*chunk, entity],
                ))  # fmt: skip
        # Each kind in one query, the references a JSON array of pairs searched one by one
        # (16k of them in 0.03 s, where lists of 500 pairs took 0.17-0.19 s).
        found: set[str] = set()
        for refs, sql in (
            (touched.keys | touched.row_keys, f"SELECT c.customer_id FROM {_PAIRS} CROSS JOIN customer_rows c "
                                              "ON c.entity = j.entity AND c.key = j.key"),
            (visitors, f"SELECT c.customer_id FROM {_PAIRS} CROSS JOIN links l "
                       "ON l.entity = j.entity AND l.visitor = j.key "
                       "JOIN customer_rows c ON c.entity = l.entity AND c.key = l.key"),
        ):  # fmt: skip
            if refs:
                found.update(r[0] for r in self.db.query(sql, (orjson.dumps(sorted(refs)).decode(),)))
        return found

    def stale_customers(self, fingerprint: str, limit: int, before: str | None = None) -> list[str]:
        rows = self.db.query(
            "SELECT DISTINCT c.customer_id FROM customer_rows c "
            "LEFT JOIN audience_state a ON a.customer_id = c.customer_id "
            "WHERE a.customer_id IS NULL OR a.fingerprint != ? OR a.evaluated_at < ? "
            "UNION SELECT a.customer_id FROM audience_state a WHERE NOT EXISTS "
            "(SELECT 1 FROM customer_rows c WHERE c.customer_id = a.customer_id) "
            "ORDER BY 1 LIMIT ?", (fingerprint, before or "", limit),
        )  # fmt: skip
        return [r[0] for r in rows]

    def segment_sizes(self) -> dict[str, int]:
        return dict(self.db.query("SELECT segment, count(*) FROM segment_members GROUP BY segment"))

    def segment_members(self, segment: str, after: str | None, limit: int) -> list[str]:
        rows = self.db.query(
            "SELECT customer_id FROM segment_members WHERE segment = ? AND customer_id > ? "
            "ORDER BY customer_id LIMIT ?", (segment, after or "", limit),
        )  # fmt: skip
        return [r[0] for r in rows]

    def membership_changes(self, segment: str, after: int, limit: int) -> list[MembershipChange]:
        rows = self.db.query(
            "SELECT seq, segment, customer_id, change, at FROM membership_changes "
            "WHERE segment = ? AND seq > ? ORDER BY seq LIMIT ?", (segment, after, limit),
        )  # fmt: skip
        return [MembershipChange(*r) for r in rows]

    def anonymize_changes(self, customer_id: str) -> int:
        with self.db.transaction() as conn:
            return conn.execute(
                "UPDATE membership_changes SET customer_id = NULL WHERE customer_id = ?", (customer_id,)
            ).rowcount

    def iter_measures(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for rows in self.db.stream("SELECT customer_id, measures FROM audience_state ORDER BY customer_id"):
            for customer_id, measures in rows:
                yield customer_id, orjson.loads(measures)

    def iter_memberships(self) -> Iterator[tuple[str, str, str]]:
        for rows in self.db.stream("SELECT segment, customer_id, since FROM segment_members ORDER BY segment, customer_id"):
            yield from rows

    def marks(self) -> dict[str, str]:
        return dict(self.db.query("SELECT name, value FROM audience_marks"))

    def set_mark(self, name: str, value: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO audience_marks VALUES (?, ?)", (name, value))


def _by_entity(refs: set[Ref]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entity, key in sorted(refs):
        found.setdefault(entity, []).append(key)
    return found


def _selected(fields: Sequence[str] | None) -> tuple[tuple[str, ...], str]:
    """The record fields read (none: every one) and the view's columns holding them."""
    names = tuple(fields or ())
    return names, ", ".join(_COLUMN_OF[name] for name in names) if names else ACTIVITY_COLUMNS


def _merged_inputs(
    customers: Iterable[tuple], rows: Iterable[tuple], names: tuple[str, ...]
) -> Iterator[tuple[str, Columns, dict[str, Any]]]:
    """Customer rows (customer_id, entity, key, attributes, updated_at) and activity rows
    (`names`' columns, or every column, then customer_id), both in customer order, merged into
    each customer's (id, activities, attributes)."""
    width = len(names) if names else len(Activity._fields)
    groups = itertools.groupby(rows, key=itemgetter(width))
    pending = next(groups, None)
    for customer_id, found in itertools.groupby(customers, key=itemgetter(0)):
        while pending is not None and pending[0] < customer_id:
            pending = next(groups, None)
        activities = Columns({})
        if pending is not None and pending[0] == customer_id:
            if names:
                activities = Columns.of_rows(names, list(pending[1]))
            else:
                records = [_activity(row[:width]).to_record() for row in pending[1]]
                activities = Columns.of_records(records, records[0])
            pending = next(groups, None)
        yield customer_id, activities, _customer(customer_id, [r[1:] for r in found]).attributes
