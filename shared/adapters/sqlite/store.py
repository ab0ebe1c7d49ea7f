"""SqliteStore: the embedded default profile store, one database file (its ledger is in
sqlite/ledger.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from shared.adapters.sqlite import activities as activity_tables
from shared.adapters.sqlite import links as link_tables
from shared.core.audiences.touched import Touched
from shared.core.errors import StorageFull, TransientError
from shared.core.identity.links import Link
from shared.core.identity.winners import VisitorLink
from shared.core.ingest.claims import utc_now
from shared.core.ingest.overlaps import reachable
from shared.core.model import (
    ACTIVITY_FIELDS,
    CELL,
    Activity,
    AlternateKey,
    Customer,
    CustomerRow,
    Page,
    Reject,
    TimelineQuery,
)
from shared.core.paging import decode_cursor, encode_cursor

# The activities' tables are in activity_tables.
SCHEMA = """
CREATE TABLE IF NOT EXISTS customer_rows (
    entity TEXT NOT NULL, key TEXT NOT NULL, customer_id TEXT NOT NULL, attributes TEXT NOT NULL,
    search_text TEXT NOT NULL, source_file TEXT NOT NULL, source_etag TEXT NOT NULL,
    source_row INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (entity, key)
);
CREATE INDEX IF NOT EXISTS customer_rows_by_customer ON customer_rows (customer_id);
CREATE INDEX IF NOT EXISTS customer_rows_by_file ON customer_rows (source_file);
-- Files whose copies of a record met (see shared/core/ingest/overlaps.py), noted by the writers when
-- an insert meets a stored row. (Triggers noting them made every load 60% slower.)
CREATE TABLE IF NOT EXISTS overlaps (
    winner TEXT NOT NULL, loser TEXT NOT NULL, PRIMARY KEY (winner, loser)
) WITHOUT ROWID;
DROP TRIGGER IF EXISTS customer_rows_overlap;
-- Files to read again because a file (path) changes, until they were: see note_rereads.
CREATE TABLE IF NOT EXISTS rereads (
    path TEXT NOT NULL, file TEXT NOT NULL, noted INTEGER NOT NULL, PRIMARY KEY (path, file)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejects (
    file TEXT NOT NULL, row INTEGER NOT NULL, etag TEXT NOT NULL, entity TEXT,
    reason TEXT NOT NULL, excerpt TEXT NOT NULL, PRIMARY KEY (file, row)
);
CREATE TABLE IF NOT EXISTS ledger (
    path TEXT NOT NULL, etag TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    rows INTEGER, activities INTEGER, unmatched INTEGER, filtered INTEGER, rejected INTEGER,
    customers INTEGER, entity TEXT, error TEXT, permanent INTEGER NOT NULL, started_at TEXT,
    finished_at TEXT, duration_ms INTEGER, not_before TEXT, seq INTEGER NOT NULL,
    holder TEXT, mapping TEXT, PRIMARY KEY (path, etag)
);
CREATE INDEX IF NOT EXISTS ledger_by_seq ON ledger (seq);
CREATE INDEX IF NOT EXISTS ledger_by_status ON ledger (status);
"""
# Columns added to a table after its first release, for files made before them.
# Columns added since a database file was made (CREATE TABLE IF NOT EXISTS keeps old ones).
# Entries of older ledgers, without a mapping fingerprint, count as read under the current mapping.
_ADDED_COLUMNS = {"ledger": ["holder TEXT", "mapping TEXT", "awaits_metadata INTEGER NOT NULL DEFAULT 0",
                             "suppressed INTEGER"]}
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS ledger_awaiting_metadata ON ledger (path) WHERE awaits_metadata = 1;
"""

# A type filter names the activity (ActivityType) or its configured type (the display).
_OF_TYPE = "(activity_type IN ({0}) OR activity_type_display IN ({0}))"
ACTIVITY_COLUMNS = ", ".join(Activity._fields)  # as the unified_activities view names them
_INSERT_CUSTOMER = "INSERT OR IGNORE INTO customer_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_CUSTOMER = """
INSERT INTO customer_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (entity, key) DO UPDATE SET
    customer_id = excluded.customer_id, attributes = excluded.attributes,
    search_text = excluded.search_text, source_file = excluded.source_file,
    source_etag = excluded.source_etag, source_row = excluded.source_row,
    updated_at = excluded.updated_at
WHERE (excluded.source_file, excluded.source_row)
    >= (customer_rows.source_file, customer_rows.source_row)
"""
# A bulk load commits once its transaction holds this many rows or is this old: a commit
# writes out every page the transaction touched, and rows with random keys touch a page each,
# so committing each batch of a few thousand rows cost more than writing them. Other writers
# wait for the lock meanwhile (busy_timeout); readers do not.
BULK_ROWS = 250_000
BULK_SECONDS = 3.0
# Enough page cache for the indexes of a few million activities; the default 2 MiB makes
# every insert with a random key read a page back. 48 rather than 64 MiB: as fast within noise,
# and it keeps a large load and its forked file reader together under 150 MB.
CACHE_KIB = 48 * 1024


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch of rows is made: they are tuples of text and
    numbers, which hold no cycles, yet their allocation alone set off a tenth of a scan's time
    in collections."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _add_columns(conn: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in have:
                try:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
    conn.executescript(_ADDED_INDEXES)


class SqliteDatabase:
    """One connection to one database file, shared by the store and the ledger of a process."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.transactions = 0  # how many began: lets a cache know it is in a new one
        self._bulk: _Bulk | None = None
        self._lost: set[int] = set()  # threads whose bulk writes a failed commit undid
        self._depth = 0  # transactions open in the one thread holding the lock
        with self.translate():
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 30000")
            # For a new file only: 16 KiB pages made bulk loads 5% faster than 4 KiB ones.
            self.conn.execute("PRAGMA page_size = 16384")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            self.conn.executescript(SCHEMA + link_tables.SCHEMA)
            _add_columns(self.conn)
        with self.transaction() as conn:
            activity_tables.create(conn)

    @contextlib.contextmanager
    def translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            # Locked, busy, full disk, I/O: none of it is the input file's fault.
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise StorageFull(f"SQLite store {self.path}: {exc}") from None
            raise TransientError(f"SQLite store {self.path}: {exc}") from None

    @contextlib.contextmanager
    def transaction(self, bulk_rows: int = 0) -> Iterator[sqlite3.Connection]:
        """A write transaction. One of a bulk load (`bulk_rows` > 0) may stay open for the same
        thread's next one, until BULK_ROWS or BULK_SECONDS; any other write commits it."""
        with self.lock, self.translate():
            if self._depth:  # inside this thread's transaction (the lock is held): part of it
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            me = threading.get_ident()
            self._begin(me)
            try:
                self._depth = 1
                try:
                    yield self.conn
                finally:
                    self._depth = 0
            except BaseException:
                self._bulk = None
                if self.conn.in_transaction:  # some failures end it themselves
                    self.conn.execute("ROLLBACK")
                raise
            bulk = self._bulk or _Bulk(me, time.monotonic())
            bulk.rows += bulk_rows
            if bulk_rows and bulk.rows < BULK_ROWS and time.monotonic() - bulk.began < BULK_SECONDS:
                self._bulk = bulk
            else:
                self._commit()

    def commit_bulk(self) -> None:
        """Commit an open bulk load, unless inside a transaction of this thread's."""
        with self.lock, self.translate():
            if self._bulk is not None and not self._depth:
                self._commit()

    def _begin(self, me: int) -> None:
        """Begin, or carry on with this thread's open bulk load; another thread's is committed
        first, so a rollback here never undoes writes someone else was told were done."""
        if self._bulk is not None and not self.conn.in_transaction:
            # SQLite ended it itself after an error (full disk, I/O): its writes are gone.
            self._lost.add(self._bulk.thread)
            self._bulk = None
        if me in self._lost:
            self._lost.discard(me)
            raise sqlite3.OperationalError("a failed commit undid this thread's earlier writes")
        if self._bulk is not None and self._bulk.thread == me:
            return
        if self._bulk is not None:
            self._commit()
        try:
            if self.conn.in_transaction:
                # Nobody's: an interrupt (Ctrl-C, SIGTERM) came between its BEGIN and its end,
                # before anyone was told its writes were done.
                self.conn.execute("ROLLBACK")
            self.conn.execute("BEGIN IMMEDIATE")
            self.transactions += 1
        except BaseException:
            # A signal during BEGIN is raised just after it returns: what it began is ours.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def _commit(self) -> None:
        bulk, self._bulk = self._bulk, None
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            if bulk is not None and bulk.thread != threading.get_ident():
                self._lost.add(bulk.thread)
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self.lock, self.translate():
            return self.conn.execute(sql, params).fetchall()

    def stream(self, sql: str, params: Sequence[object] = (), batch: int = 10_000) -> Iterator[list[tuple]]:
        """The rows of one query, `batch` at a time, all from one snapshot. A file is read on a
        connection of its own, once an open bulk load is committed, so the shared connection and
        its lock stay free for writers while the rows are used; a :memory: database, which only
        the shared connection sees, at once."""
        if self.path == ":memory:":
            yield self.query(sql, params)
            return
        with self.lock, self.translate():
            if self._bulk is not None:  # what this process wrote is read too
                self._commit()
        yield from self.stream_apart(sql, params, batch)

    def stream_apart(
        self, sql: str, params: Sequence[object] = (), batch: int = 10_000,
        mend: Callable[[sqlite3.Connection, list[tuple]], list[Any]] | None = None,
        cache_kib: int | None = None,
    ) -> Iterator[list[Any]]:  # fmt: skip
        """As stream, touching nothing of this object's but its path: what a forked child may
        call (the shared connection and its lock belong to the parent). `mend` makes each
        batch what is yielded, reading from the same snapshot if it must. `cache_kib`: a page
        cache of that size, for a query whose index searches come back to the same pages."""
        with self.translate():
            conn = sqlite3.connect(self.path, check_same_thread=False)
        try:
            with self.translate():
                conn.execute("PRAGMA query_only = 1")
                conn.execute("PRAGMA busy_timeout = 30000")
                # SQLite's default page cache (2 MiB) unless told: a scan reads each page once,
                # and its lookups go to the keys it materialized. A larger one only grew the RSS.
                if cache_kib is not None:
                    conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
                cursor = conn.execute(sql, params)
            while True:
                with self.translate(), _collector_paused():
                    rows = cursor.fetchmany(batch)
                    if rows and mend is not None:
                        rows = mend(conn, rows)
                if not rows:
                    return
                yield rows
        finally:
            conn.close()

    def close(self) -> None:
        with self.lock:
            try:
                if self._bulk is not None:
                    with self.translate():
                        self._commit()
            finally:
                self.conn.close()


@dataclasses.dataclass
class _Bulk:
    """A write transaction left open between one thread's bulk writes."""

    thread: int
    began: float
    rows: int = 0


def _has_stale(conn: sqlite3.Connection, path: str, keep_etag: str) -> bool:
    """Whether another version of `path` left customer rows or activities."""
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM customer_rows WHERE source_file = ? AND source_etag != ?) "
        "OR EXISTS (SELECT 1 FROM activity_sources WHERE source_file = ? AND source_etag != ?)",
        (path, keep_etag, path, keep_etag),
    ).fetchone()[0]


def _forgotten(conn: sqlite3.Connection, path: str, keep_etag: str) -> Touched:
    """The references of what forgetting the other versions of `path` removes."""
    touched = Touched()
    for entity, key, customer_id in conn.execute(
        "SELECT entity, key, customer_id FROM customer_rows WHERE source_file = ? AND source_etag != ?",
        (path, keep_etag),
    ):  # fmt: skip
        touched.add_row(entity, key, customer_id)
    for link in conn.execute(
        "SELECT entity, visitor, key FROM links WHERE source_file = ? AND source_etag != ?", (path, keep_etag)
    ):  # fmt: skip
        touched.add_link(*link)
    sources = [r[0] for r in conn.execute(
        "SELECT source_id FROM activity_sources WHERE source_file = ? AND source_etag != ?", (path, keep_etag)
    )]  # fmt: skip
    for i in range(0, len(sources), activity_tables.CHUNK):  # a scan, as the forget's own
        chunk = sources[i : i + activity_tables.CHUNK]
        for found in conn.execute(
            f"SELECT DISTINCT s.customer_entity, a.activity_foreign_key, {activity_tables.VISITOR} "
            "FROM activities a JOIN activity_sources s ON s.source_id = a.source_id "
            f"WHERE a.source_id IN ({', '.join('?' * len(chunk))})", chunk,
        ):  # fmt: skip
            touched.add_activity(*found)
    return touched


def _settle_customers(
    conn: sqlite3.Connection, customers: Sequence[CustomerRow], rows: list[tuple], touched: Touched | None
) -> None:
    """As activity_tables._settle, for customer rows the insert skipped."""
    stored: dict[Hashable, tuple[str, int, object]] = {}
    for i in range(0, len(customers), activity_tables.CHUNK):
        chunk = customers[i : i + activity_tables.CHUNK]
        for entity, key, file, etag, number, customer_id in conn.execute(
            "SELECT entity, key, source_file, source_etag, source_row, customer_id FROM customer_rows "
            f"WHERE (entity, key) IN (VALUES {', '.join(['(?, ?)'] * len(chunk))})",
            [part for r in chunk for part in (r.entity, r.key)],
        ):  # fmt: skip
            stored[(entity, key)] = (file, number, (file, etag))
            if touched is not None:  # the customer the key had: a row may move it
                touched.add_row(entity, key, customer_id)
    copies = (
        ((r.entity, r.key), r.source_file, r.source_row, (r.source_file, r.source_etag), row)
        for r, row in zip(customers, rows, strict=True)
    )
    activity_tables.settle(conn, _UPSERT_CUSTOMER, copies, stored)


def _search_text(row: CustomerRow) -> str:
    values = [row.key, row.customer_id, *(str(v) for v in row.attributes.values() if v)]
    return "\x1f".join(values).casefold()


class SqliteStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self._activities = activity_tables.ActivityWriter()

    def write(
        self,
        activities: Sequence[Activity],
        customers: Sequence[CustomerRow],
        rejects: Sequence[Reject],
        links: Sequence[Link] = (),
        touched: Touched | None = None,
    ) -> int:
        rows = len(activities) + len(customers) + len(rejects) + len(links)
        with self.db.transaction(bulk_rows=rows) as conn:
            if customers:
                now = utc_now()
                rows = [
                    (r.entity, r.key, r.customer_id, orjson.dumps(r.attributes).decode(),
                     _search_text(r), r.source_file, r.source_etag, r.source_row, now)
                    for r in customers
                ]  # fmt: skip
                if conn.executemany(_INSERT_CUSTOMER, rows).rowcount < len(rows):
                    _settle_customers(conn, customers, rows, touched)
            if rejects:
                conn.executemany(
                    "INSERT OR REPLACE INTO rejects VALUES (?, ?, ?, ?, ?, ?)",
                    [(r.file, r.row, r.etag, r.entity, r.reason, r.excerpt) for r in rejects],
                )
            if links:
                link_tables.write(conn, links)
                self._activities.links_changed()
            return self._activities.write(conn, self.db.transactions, activities, customers, touched)

    def overlapping_files(self, path: str, keep_etag: str) -> list[str]:
        with self.db.lock, self.db.translate():
            conn = self.db.conn
            if not _has_stale(conn, path, keep_etag):
                return []
            return reachable(path, lambda winner: [loser for (loser,) in conn.execute(
                "SELECT loser FROM overlaps WHERE winner = ? ORDER BY loser", (winner,)
            )])  # fmt: skip

    def note_rereads(self, path: str, files: Sequence[str]) -> list[str]:
        if files:
            with self.db.transaction() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO rereads VALUES (?, ?, "
                    "(SELECT coalesce(max(noted), 0) + 1 FROM rereads WHERE path = ?))",
                    [(path, file, path) for file in files],
                )
        rows = self.db.query("SELECT file FROM rereads WHERE path = ? ORDER BY noted", (path,))
        return [file for (file,) in rows]

    def clear_rereads(self, path: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM rereads WHERE path = ?", (path,))

    def forget_file(self, path: str, keep_etag: str) -> Touched:
        with self.db.transaction() as conn:
            touched = _forgotten(conn, path, keep_etag)
            if _has_stale(conn, path, keep_etag):
                conn.execute("DELETE FROM overlaps WHERE winner = ?", (path,))
            conn.execute(
                "DELETE FROM customer_rows WHERE source_file = ? AND source_etag != ?",
                (path, keep_etag),
            )
            activity_tables.forget(conn, path, keep_etag)
            link_tables.forget(conn, path, keep_etag)
            self._activities.links_changed()
            conn.execute("DELETE FROM rejects WHERE file = ? AND etag != ?", (path, keep_etag))
        return touched

    def get_customer(self, customer_id: str) -> Customer | None:
        rows = self.db.query(
            "SELECT entity, key, attributes, updated_at FROM customer_rows WHERE customer_id = ? "
            "ORDER BY entity, key",
            (customer_id,),
        )
        if not rows:
            return None
        visitors = self.db.query(
            "SELECT w.visitor, w.key, w.linked_at, w.source_file, w.source_row "
            "FROM customer_rows c JOIN visitor_winners w ON w.entity = c.entity AND w.key = c.key "
            "WHERE c.customer_id = ? ORDER BY w.entity, w.visitor",
            (customer_id,),
        )
        return _customer(customer_id, rows, tuple(VisitorLink(*v) for v in visitors))

    def activity_counts(self, customer_id: str) -> dict[str, int]:
        rows = self.db.query(
            f"{REACHING} SELECT activity_type, count(*) FROM unified_activities "
            f"WHERE activity_id IN reaching AND customer_id = ? "
            "GROUP BY activity_type ORDER BY activity_type",
            (customer_id, customer_id),
        )
        return dict(rows)

    def timeline(self, customer_id: str, query: TimelineQuery) -> Page:
        where = ["activity_id IN reaching", "customer_id = ?", "show_in_timeline = 1"]
        return self._page(REACHING, [customer_id, customer_id], where, query)

    def visitor_activities(self, visitor_id: str, query: TimelineQuery) -> Page:
        where = ["activity_id IN reaching", "visitor_id = ?"]
        return self._page(_OF_VISITOR, [visitor_id] * 5, where, query)

    def _page(
        self, prefix: str, params: list[object], where: list[str], query: TimelineQuery
    ) -> Page:
        if query.types:
            where.append(_OF_TYPE.format(", ".join("?" * len(query.types))))
            params.extend([*query.types, *query.types])
        if query.since is not None:
            where.append("activity_time >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("activity_time < ?")
            params.append(query.until)
        if query.continuation:
            where.append("(activity_time, activity_id) < (?, ?)")
            params.extend(decode_cursor(query.continuation))
        rows = self.db.query(
            f"{prefix} SELECT {ACTIVITY_COLUMNS} FROM unified_activities "
            f"WHERE {' AND '.join(where)} ORDER BY activity_time DESC, activity_id DESC LIMIT ?",
            [*params, query.limit + 1],
        )
        items = [_activity(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        token = encode_cursor(items[-1].activity_time, items[-1].activity_id) if more else None
        return Page(items, token)

    def search_customers(self, text: str, limit: int, after: str | None = None) -> list[Customer]:
        pattern = (
            "%"
            + text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        ids = self.db.query(
            "SELECT DISTINCT customer_id FROM customer_rows WHERE customer_id > ? AND "
            "(customer_id = ? OR search_text LIKE ? ESCAPE '\\') ORDER BY customer_id LIMIT ?",
            (after or "", text, pattern, limit),
        )
        found = (self.get_customer(customer_id) for (customer_id,) in ids)
        return [c for c in found if c is not None]

    def list_activities(
        self,
        activity_type: str | None,
        unmatched: bool,
        limit: int | None,
        after: tuple[str, str] | None = None,
    ) -> list[Activity]:
        where, params = ["1"], []
        if activity_type is not None:
            where.append(_OF_TYPE.format("?"))
            params.extend([activity_type, activity_type])
        if unmatched:
            where.append("customer_id IS NULL")
        if after is not None:
            where.append("(activity_time, activity_id) < (?, ?)")
            params.extend(after)
        rows = self.db.query(
            f"SELECT {ACTIVITY_COLUMNS} FROM unified_activities WHERE {' AND '.join(where)} "
            "ORDER BY activity_time DESC, activity_id DESC LIMIT ?",
            [*params, -1 if limit is None else limit],
        )
        return [_activity(r) for r in rows]

    def list_rejects(
        self, limit: int | None, file: str | None = None, after: tuple[str, int] | None = None
    ) -> list[Reject]:
        where, params = ["(file, row) > (?, ?)"], list(after or ("", -1))
        if file is not None:
            where.append("file = ?")
            params.append(file)
        rows = self.db.query(
            f"SELECT file, etag, row, entity, reason, excerpt FROM rejects WHERE {' AND '.join(where)} "
            "ORDER BY file, row LIMIT ?",
            [*params, -1 if limit is None else limit],
        )
        return [Reject(*r) for r in rows]

    def count_unmatched(self) -> int:
        return self.db.query(activity_tables.COUNT_UNMATCHED)[0][0]

    def count_unmatched_by_type(self) -> dict[str, int]:
        return dict(self.db.query(activity_tables.COUNT_UNMATCHED_BY_TYPE))

    def relink(self) -> int:
        """Nothing waits to be linked: an activity finds its customer through its key when read."""
        return 0

    def iter_customers(self) -> Iterator[Customer]:
        """As get_customer builds them, a page of customer ids at a time: their rows and their
        visitors in one query each, in the order get_customer reads them."""
        after, page = "", 5000
        while ids := self.db.query(
            "SELECT DISTINCT customer_id FROM customer_rows WHERE customer_id > ? ORDER BY customer_id LIMIT ?",
            (after, page),
        ):
            span = (after, ids[-1][0])
            rows = self.db.query(
                "SELECT customer_id, entity, key, attributes, updated_at FROM customer_rows "
                "WHERE customer_id > ? AND customer_id <= ? ORDER BY customer_id, entity, key",
                span,
            )
            visitors = self.db.query(
                "SELECT c.customer_id, w.visitor, w.key, w.linked_at, w.source_file, w.source_row "
                "FROM customer_rows c JOIN visitor_winners w ON w.entity = c.entity AND w.key = c.key "
                "WHERE c.customer_id > ? AND c.customer_id <= ? ORDER BY c.customer_id, w.entity, w.visitor",
                span,
            )
            links = {cid: tuple(VisitorLink(*v[1:]) for v in vs) for cid, vs in itertools.groupby(visitors, key=itemgetter(0))}
            for cid, own in itertools.groupby(rows, key=itemgetter(0)):
                yield _customer(cid, [r[1:] for r in own], links.get(cid, ()))
            after = span[1]

    def iter_activities(self) -> Iterator[Activity]:
        columns = f"SELECT {ACTIVITY_COLUMNS} FROM unified_activities"
        return map(_activity, self._keyset(columns, "activity_id"))

    def iter_activity_cells(self) -> Iterator[Sequence[str]]:
        # One query in the table's own order, each row built as text by SQLite: no Activity,
        # no per-cell conversion in Python (the export of a million activities is this loop).
        for rows in self.db.stream(f"{activity_tables.ALL_RESOLVED} SELECT {_ACTIVITY_CELLS} FROM resolved"):
            yield from rows

    @contextlib.contextmanager
    def activity_cell_parts(self, parts_for: Callable[[int], int]) -> Iterator[list[Callable[[], Iterable[Sequence[str]]]]]:
        """Ranges of rowids, each holding as many of the activities as the others (to one),
        each read as iter_activity_cells reads them all, on a connection of its own. No write
        commits inside the block (its write transaction holds them off): parts whose reading
        began inside it read one snapshot, the one the ranges were cut from."""
        if self.db.path == ":memory:":  # only the shared connection sees it
            yield [self.iter_activity_cells]
            return
        with self.db.transaction():  # an open bulk load is part of it: the parts read it too
            (n,) = self.db.query("SELECT count(*) FROM activities")[0]
            parts = max(1, min(parts_for(n), n))
            if parts == 1:
                yield [self.iter_activity_cells]
                return
            size = -(-n // parts)
            lows = [self.db.query("SELECT rowid FROM activities ORDER BY rowid LIMIT 1 OFFSET ?", (k * size,))[0][0]
                    for k in range(parts)]  # fmt: skip
            last = self.db.query("SELECT max(rowid) FROM activities")[0][0]
            highs = [low - 1 for low in lows[1:]] + [last]
            yield [functools.partial(self._activity_cells_between, lo, hi) for lo, hi in zip(lows, highs, strict=True)]

    def _activity_cells_between(self, low: int, high: int) -> Iterator[Sequence[str]]:
        """A part's rows, each its cells joined by CELL into one str by SQLite's printf: one
        object a row rather than one a cell, which is most of what reading them costs."""
        sql = f"{activity_tables.RESOLVED_BETWEEN} SELECT {_ACTIVITY_LINE} FROM resolved"
        for lines in self.db.stream_apart(sql, (low, high), mend=_exact_lines):
            yield from lines

    def _keyset(self, select: str, key: str, chunk: int = 5000) -> Iterator[tuple]:
        """Every row of a query in `key` order, a chunk at a time: no read stays open between
        chunks, so a long export never holds back the writers."""
        rows = self.db.query(f"{select} ORDER BY {key} LIMIT ?", (chunk,))
        while rows:
            yield from rows
            last = rows[-1][0]
            rows = self.db.query(f"{select} WHERE {key} > ? ORDER BY {key} LIMIT ?", (last, chunk))

    # -- links (LinkStore) -----------------------------------------------------------------

    def use_conflict_rules(self, rules: Mapping[str, str]) -> None:
        with self.db.transaction() as conn:
            link_tables.use_rules(conn, rules)

    def visitor_links(self, visitor_id: str) -> list[Link]:
        rows = self.db.query(
            f"SELECT {link_tables.COLUMNS} FROM links WHERE visitor = ? "
            "ORDER BY entity, key, source_file, source_etag",
            (visitor_id,),
        )
        return [Link(*row) for row in rows]

    def conflicting_links(self, limit: int | None) -> list[list[Link]]:
        visitors = self.db.query(
            "SELECT entity, visitor FROM links GROUP BY entity, visitor "
            "HAVING count(DISTINCT key) > 1 ORDER BY entity, visitor LIMIT ?",
            (-1 if limit is None else limit,),
        )
        with self.db.lock, self.db.translate():
            return [link_tables.links_of(self.db.conn, e, v) for e, v in visitors]

    def close(self) -> None:
        self.db.close()


# The activities that may reach a customer (its keys' and its visitors'), for a query to check
# against the view: bounded by the customer's own data, through the indexes.
REACHING = "WITH " + activity_tables.reaching(
    "SELECT entity, key FROM customer_rows WHERE customer_id = ?", "activity_id"
)
# A visitor's activities: anonymous ones by its id as key, signed-in ones by the keys it was
# linked to (every such visit made a link), keyless ones by the visitor index.
VISITOR_ACTIVITY_IDS = """
    SELECT activity_id FROM activities WHERE activity_foreign_key = ? AND visitor_id = ''
    UNION SELECT a.activity_id FROM (SELECT DISTINCT key FROM links WHERE visitor = ?) l
    JOIN activities a ON a.activity_foreign_key = l.key WHERE a.visitor_id = ?
    UNION SELECT activity_id FROM activities INDEXED BY activities_by_keyless_visitor
    WHERE activity_foreign_key IS NULL AND visitor_id IS NOT NULL AND visitor_id = ?
"""
_OF_VISITOR = f"WITH reaching AS ({VISITOR_ACTIVITY_IDS})"


def _cell(column: str) -> str:
    if column == "show_in_timeline":
        return "CASE WHEN show_in_timeline THEN 'true' ELSE 'false' END"
    if column == "source_row":
        return "CAST(source_row AS TEXT)"
    return f"coalesce({column}, '')"


_ACTIVITY_CELLS = ", ".join(map(_cell, ACTIVITY_FIELDS))  # as model.activity_cells makes them
# The same joined by CELL: printf writes NULL as '' and an integer as its digits.
_ACTIVITY_LINE = "printf('{}', {})".format(
    CELL.join(["%s"] * len(ACTIVITY_FIELDS)),
    ", ".join(_cell(c) if c == "show_in_timeline" else c for c in ACTIVITY_FIELDS),
)
_SEPARATORS = len(ACTIVITY_FIELDS) - 1
_EXACT = f"SELECT {_ACTIVITY_CELLS} FROM unified_activities WHERE activity_id = ?"


def _exact_lines(conn: sqlite3.Connection, rows: list[tuple[str]]) -> list[Sequence[str]]:
    """A batch of joined lines, each one that holds a CELL of its own (a cell held one) read
    again as its cells: by its ActivityId, the first cell, a hash (hex, so never CELL)."""
    lines = [line for (line,) in rows]
    if "".join(lines).count(CELL) == len(lines) * _SEPARATORS:
        return lines
    return [line if line.count(CELL) == _SEPARATORS
            else conn.execute(_EXACT, (line.split(CELL, 1)[0],)).fetchone() for line in lines]  # fmt: skip


def _activity(row: tuple) -> Activity:
    values = list(row)
    values[11] = bool(values[11])
    return Activity(*values)


def _customer(
    customer_id: str, rows: list[tuple], visitors: tuple[VisitorLink, ...] = ()
) -> Customer:
    attributes: dict[str, object] = {}
    for _, _, raw, _ in rows:
        for name, value in orjson.loads(raw).items():
            if attributes.get(name) in (None, ""):
                attributes[name] = value
    keys = tuple(AlternateKey(entity, key) for entity, key, _, _ in rows)
    return Customer(customer_id, attributes, keys, max(r[3] for r in rows), visitors)
