"""The activities of the SQLite store, laid out for bulk loading.

An activity row holds only what differs from one event to the next; what every activity of one
file version and activity shares (file, ETag, entity, type, timeline flag) is stored once in
`activity_sources`, so a row is half as wide and a load writes half the pages. An activity's
customer is not stored: the `unified_activities` view finds it through the activity's customer
key, else through its visitor's winning link (sqlite/links.py), when read, so nothing needs
re-linking when customer rows or links arrive, change or go, and loading maintains two indexes
instead of four. A visitor id equal to the foreign key (an anonymous visit) is stored as ''.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from operator import itemgetter

from shared.core.audiences.touched import Touched
from shared.core.model import Activity, CustomerRow

# The visitor id of an activity row `a` as read: '' stands for "the same as the foreign key".
VISITOR = "CASE a.visitor_id WHEN '' THEN a.activity_foreign_key ELSE a.visitor_id END"
# An activity's columns as the unified_activities view names them, its visitor's customer
# (when its key has none) from the row aliased {V}.
_RESOLVED_COLUMNS = """a.activity_id, coalesce(c.customer_id, {V}.customer_id) AS customer_id, s.activity_type,
    s.activity_type_display, a.activity_name, a.activity_time, a.title, a.external_url,
    s.source_entity, a.source_activity_id, a.activity_foreign_key, s.show_in_timeline,
    s.source_file, s.source_etag, a.source_row, s.customer_entity,
    {VISITOR} AS visitor_id,
    CASE WHEN c.customer_id IS NOT NULL THEN 'key' WHEN {V}.customer_id IS NOT NULL THEN 'visitor'
    END AS identity_path""".replace("{VISITOR}", VISITOR)
# How the unified_activities view resolves an activity: by key, else by its visitor's winner.
UNIFIED = f"""
SELECT {_RESOLVED_COLUMNS.replace("{V}", "cv")}
FROM activities a JOIN activity_sources s ON s.source_id = a.source_id
LEFT JOIN customer_rows c ON c.entity = s.customer_entity AND c.key = a.activity_foreign_key
LEFT JOIN visitor_winners w ON c.customer_id IS NULL AND w.entity = s.customer_entity
    AND w.visitor = {VISITOR}
LEFT JOIN customer_rows cv ON cv.entity = w.entity AND cv.key = w.key
"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS activity_sources (
    source_id INTEGER PRIMARY KEY, source_file TEXT NOT NULL, source_etag TEXT NOT NULL,
    source_entity TEXT NOT NULL, activity_type TEXT NOT NULL, activity_type_display TEXT,
    show_in_timeline INTEGER NOT NULL, customer_entity TEXT
);
CREATE INDEX IF NOT EXISTS activity_sources_by_file
    ON activity_sources (source_file, source_etag);
CREATE TABLE IF NOT EXISTS activities (
    activity_id TEXT PRIMARY KEY, source_id INTEGER NOT NULL, source_row INTEGER NOT NULL,
    activity_name TEXT, activity_time TEXT NOT NULL, title TEXT, external_url TEXT,
    source_activity_id TEXT NOT NULL, activity_foreign_key TEXT, visitor_id TEXT
);
DROP INDEX IF EXISTS activities_by_foreign_key;
CREATE INDEX IF NOT EXISTS activities_by_customer_key
    ON activities (activity_foreign_key, source_id, visitor_id);
-- A visitor's activities are found by key: an anonymous visit's key is its visitor id, and a
-- signed-in one's is a key its visitor is linked to. Only where a relationship's foreign key
-- leaves the visitor's own id out, and a visit has no key, is the visitor indexed apart.
DROP INDEX IF EXISTS activities_by_visitor;
CREATE INDEX IF NOT EXISTS activities_by_keyless_visitor ON activities (visitor_id)
    WHERE activity_foreign_key IS NULL AND visitor_id IS NOT NULL;
-- No index by source: every row loaded would pay for it, and only a re-written file needs it.
DROP INDEX IF EXISTS activities_by_source;
-- A trigger noting overlaps made every load 60% slower, even firing never: see _settle.
DROP TRIGGER IF EXISTS activities_overlap;
DROP VIEW IF EXISTS unified_activities;
CREATE VIEW unified_activities AS
{UNIFIED};
""".replace("{UNIFIED}", UNIFIED.strip())
# Every activity as the view resolves it, for a scan of them all (the export): the same joins,
# but against the customer keys and the visitors' customers each materialized once, so that a
# row's customer is one lookup in a transient index rather than an index and a table search.
RESOLVED_TEMPLATE = """
WITH keyed AS MATERIALIZED (SELECT entity, key, customer_id FROM customer_rows),
visited AS MATERIALIZED (
    SELECT w.entity, w.visitor, cv.customer_id FROM visitor_winners w
    JOIN customer_rows cv ON cv.entity = w.entity AND cv.key = w.key),
resolved AS (
SELECT """ + _RESOLVED_COLUMNS.replace("{V}", "v") + """
FROM activities a JOIN activity_sources s ON s.source_id = a.source_id
LEFT JOIN keyed c ON c.entity = s.customer_entity AND c.key = a.activity_foreign_key
LEFT JOIN visited v ON c.customer_id IS NULL AND v.entity = s.customer_entity
    AND v.visitor = {VISITOR}{WHERE})
"""
ALL_RESOLVED = RESOLVED_TEMPLATE.replace("{VISITOR}", VISITOR).replace("{WHERE}", "")


def reaching(keys: str, column: str) -> str:
    """CTEs ending in `reaching(found)`: the `column` (activity_id or rowid) of every activity that
    may reach the customers whose (entity, key) rows `keys` selects: by their keys, and by
    their visitors (anonymous visits by the visitor's id as key, signed-in ones by the keys
    each visitor was linked to: every such visit made a link; keyless ones by the visitor
    index). Each step an index search from the customers, none a scan of every activity; an
    activity found may resolve to another customer (the view says)."""
    return f"""keys AS MATERIALIZED ({keys}),
visitors AS MATERIALIZED (SELECT w.entity, w.visitor FROM keys k CROSS JOIN visitor_winners w
                          ON w.entity = k.entity AND w.key = k.key),
linked AS MATERIALIZED (SELECT DISTINCT l.key, l.visitor FROM visitors v CROSS JOIN links l
                        ON l.entity = v.entity AND l.visitor = v.visitor),
reaching(found) AS (
    SELECT {column} FROM activities
    WHERE activity_foreign_key IN (SELECT key FROM keys UNION SELECT visitor FROM visitors)
    UNION SELECT a.{column} FROM linked l JOIN activities a
    ON a.activity_foreign_key = l.key AND a.visitor_id = l.visitor
    UNION SELECT {column} FROM activities INDEXED BY activities_by_keyless_visitor
    WHERE activity_foreign_key IS NULL AND visitor_id IS NOT NULL
        AND visitor_id IN (SELECT visitor FROM visitors)
)"""


# The activities of many customers (their ids a JSON array, ?) that may reach them, by rowid,
# then `resolved` as the view resolves them, for a query to keep those whose customer is one of
# `wanted`: each activity row read in rowid order.
MANY_RESOLVED = (
    "WITH wanted(customer_id) AS MATERIALIZED (SELECT value FROM json_each(?)),\n"
    + reaching("SELECT c.entity, c.key FROM wanted w CROSS JOIN customer_rows c ON c.customer_id = w.customer_id", "rowid")
    + ",\nresolved AS ("
    + UNIFIED.replace("FROM activities a JOIN", "FROM reaching x CROSS JOIN activities a ON a.rowid = x.found JOIN", 1)
    + ")\n"
)
# The same over the activities of a range of rowids (?, ?), both ends in: a part of an export.
RESOLVED_BETWEEN = RESOLVED_TEMPLATE.replace("{VISITOR}", VISITOR).replace(
    "{WHERE}", "\nWHERE a.rowid BETWEEN ? AND ?"
)
_FILE_OF = "(SELECT source_file FROM activity_sources WHERE source_id = {}.source_id)"
UPSERT = f"""
INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (activity_id) DO UPDATE SET
    source_id = excluded.source_id, source_row = excluded.source_row,
    activity_name = excluded.activity_name, activity_time = excluded.activity_time,
    title = excluded.title, external_url = excluded.external_url,
    source_activity_id = excluded.source_activity_id,
    activity_foreign_key = excluded.activity_foreign_key, visitor_id = excluded.visitor_id
WHERE ({_FILE_OF.format("excluded")}, excluded.source_row)
    >= ({_FILE_OF.format("activities")}, activities.source_row)
"""
INSERT_NEW = "INSERT OR IGNORE INTO activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SOURCE_COLUMNS = (
    "source_file, source_etag, source_entity, activity_type, activity_type_display, "
    "show_in_timeline, customer_entity"
)
_SOURCE_OF = itemgetter(12, 13, 8, 2, 3, 11, 15)  # an Activity's values of _SOURCE_COLUMNS
_CUSTOMER_KEY_OF = itemgetter(15, 10, 16)  # (customer entity, foreign key, visitor)
CHUNK = 500


class ActivityWriter:
    """Upserts activities and counts those without a customer. What it looks up (source ids,
    which customer keys have a customer row) it remembers for one transaction: inside one, only
    this writer changes them."""

    def __init__(self) -> None:
        self._sources: dict[tuple, int] = {}
        self._known: dict[tuple[str | None, str | None], bool] = {}
        # Visitors found to reach a customer, or not; links change that, so a write of links
        # forgets them (see links_changed).
        self._visitors: dict[tuple[str | None, str], bool] = {}
        self._transaction = -1

    def links_changed(self) -> None:
        self._visitors.clear()

    def write(
        self,
        conn: sqlite3.Connection,
        transaction: int,
        activities: Sequence[Activity],
        customers: Sequence[CustomerRow],
        touched: Touched | None = None,
    ) -> int:
        """Upsert `activities` (after `customers` were); returns how many have no customer.
        Given `touched`, the references of the stored copies they met are added to it."""
        if transaction != self._transaction:
            self._sources.clear()
            self._known.clear()
            self._visitors.clear()
            self._transaction = transaction
        self._known.update(((c.entity, c.key), True) for c in customers)
        source_of = _SOURCE_OF
        ids = self._sources
        sources = set(map(source_of, activities))
        for source in sources - ids.keys():
            ids[source] = _source_id(conn, source)
        if len(sources) == 1:  # the usual batch: one file, one activity
            [one] = [ids[source] for source in sources]
            rows = [
                (a[0], one, a[14], a[4], a[5], a[6], a[7], a[9], a[10],
                 "" if a[16] == a[10] and a[16] is not None else a[16])
                for a in activities
            ]  # fmt: skip
        else:
            rows = [
                (a[0], ids[source_of(a)], a[14], a[4], a[5], a[6], a[7], a[9], a[10],
                 "" if a[16] == a[10] and a[16] is not None else a[16])
                for a in activities
            ]  # fmt: skip
        if conn.executemany(INSERT_NEW, rows).rowcount < len(rows):
            _settle(conn, activities, rows, touched)
        return self._unmatched(conn, activities)

    def _unmatched(self, conn: sqlite3.Connection, activities: Sequence[Activity]) -> int:
        """How many of `activities` find no customer, by key or through their visitor."""
        keys = Counter(map(_CUSTOMER_KEY_OF, activities))
        known = self._known
        known.update(_look_up(conn, [key[:2] for key in keys if key[:2] not in known]))
        # Visitors are looked up only for activities their key leaves without a customer.
        seen = self._visitors
        wanted = {(e, v) for e, k, v in keys if not known[(e, k)] and v is not None} - seen.keys()
        if wanted:
            found = visitors_with_customers(conn, wanted)
            seen.update((pair, pair in found) for pair in wanted)
        return sum(
            n for (e, k, v), n in keys.items() if not known[(e, k)] and not seen.get((e, v), False)
        )


def _settle(
    conn: sqlite3.Connection, activities: Sequence[Activity], rows: list[tuple], touched: Touched | None
) -> None:
    """The rows the insert skipped, their id already stored (another file's copy, a file read
    again, or a copy earlier in the batch). A load of new events never gets here, so the
    look-up costs only the loads that meet stored rows."""
    stored: dict[Hashable, tuple[str, int, object]] = {}
    for i in range(0, len(rows), CHUNK):
        chunk = [row[0] for row in rows[i : i + CHUNK]]
        for activity_id, file, number, source, entity, key, visitor in conn.execute(
            "SELECT a.activity_id, s.source_file, a.source_row, a.source_id, s.customer_entity, "
            f"a.activity_foreign_key, {VISITOR} FROM activities a "
            "JOIN activity_sources s ON s.source_id = a.source_id "
            f"WHERE a.activity_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ):  # fmt: skip
            stored[activity_id] = (file, number, source)
            if touched is not None:  # whom the stored copy reached, should this one replace it
                touched.add_activity(entity, key, visitor)
    copies = (
        (row[0], a.source_file, a.source_row, row[1], row)
        for a, row in zip(activities, rows, strict=True)
    )
    settle(conn, UPSERT, copies, stored)


def settle(
    conn: sqlite3.Connection,
    upsert: str,
    copies: Iterable[tuple[Hashable, str, int, object, tuple]],
    stored: dict[Hashable, tuple[str, int, object]],
) -> None:
    """Copies (key, file, row, version, values) an insert skipped, against what is `stored`
    by key (file, row, version): the greater (file, row) is upserted, and each meeting of two
    files' copies noted in overlaps."""
    winners, met = [], set()
    for key, file, number, version, values in copies:
        their_file, their_number, their_version = stored[key]
        if (their_version, their_number) == (version, number):
            continue  # this very row: inserted just now, or the same file version again
        if (file, number) >= (their_file, their_number):
            winners.append(values)
            stored[key] = (file, number, version)
            met.add((file, their_file))
        else:
            met.add((their_file, file))
    conn.executemany(upsert, winners)
    conn.executemany(
        "INSERT OR IGNORE INTO overlaps VALUES (?, ?)", [m for m in met if m[0] != m[1]]
    )


def _source_id(conn: sqlite3.Connection, source: tuple) -> int:
    found = conn.execute(
        f"SELECT source_id FROM activity_sources WHERE ({_SOURCE_COLUMNS}) IS (?, ?, ?, ?, ?, ?, ?)",
        source,
    ).fetchone()
    if found is not None:
        return found[0]
    cursor = conn.execute(
        f"INSERT INTO activity_sources ({_SOURCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", source
    )
    return cursor.lastrowid  # type: ignore[return-value]


def visitors_with_customers(
    conn: sqlite3.Connection, visitors: set[tuple[str | None, str]]
) -> set[tuple[str | None, str]]:
    """Which (customer entity, visitor) resolve to a customer through their winning link."""
    found: set[tuple[str | None, str]] = set()
    by_entity: dict[str, list[str]] = {}
    for entity, visitor in visitors:
        if entity is not None:
            by_entity.setdefault(entity, []).append(visitor)
    for entity, names in by_entity.items():
        for i in range(0, len(names), CHUNK):
            chunk = names[i : i + CHUNK]
            found.update(conn.execute(
                "SELECT w.entity, w.visitor FROM visitor_winners w JOIN customer_rows c "
                "ON c.entity = w.entity AND c.key = w.key "
                f"WHERE w.entity = ? AND w.visitor IN ({', '.join('?' * len(chunk))})",
                [entity, *chunk],
            ))  # fmt: skip
    return found


def _look_up(
    conn: sqlite3.Connection, keys: list[tuple[str | None, str | None]]
) -> dict[tuple[str | None, str | None], bool]:
    """Whether a customer row holds each (customer entity, key)."""
    exists = dict.fromkeys(keys, False)
    by_entity: dict[str, list[str]] = {}
    for entity, key in keys:
        if entity is not None and key is not None:
            by_entity.setdefault(entity, []).append(key)
    for entity, entity_keys in by_entity.items():
        for i in range(0, len(entity_keys), CHUNK):
            chunk = entity_keys[i : i + CHUNK]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT entity, key FROM customer_rows WHERE entity = ? AND key IN ({marks})"
            exists.update((found, True) for found in conn.execute(sql, [entity, *chunk]))
    return exists


def forget(conn: sqlite3.Connection, path: str, keep_etag: str) -> None:
    """Delete the activities, and their sources, that other versions of `path` wrote."""
    stale = [
        source_id
        for (source_id,) in conn.execute(
            "SELECT source_id FROM activity_sources WHERE source_file = ? AND source_etag != ?",
            (path, keep_etag),
        )
    ]
    for i in range(0, len(stale), CHUNK):
        chunk = stale[i : i + CHUNK]
        marks = ", ".join("?" * len(chunk))
        # A scan of every activity, only when a file was re-written: see SCHEMA.
        conn.execute(f"DELETE FROM activities WHERE source_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM activity_sources WHERE source_id IN ({marks})", chunk)


# Every activity without a customer: counted per customer key and visitor, using the
# customer-key index, so customer rows and winners are looked up once per key, not per activity.
_UNMATCHED_GROUPS = f"""
FROM (
    SELECT s.customer_entity AS entity, s.activity_type AS type, a.activity_foreign_key AS key,
        {VISITOR} AS visitor, count(*) AS n
    FROM activities a JOIN activity_sources s ON s.source_id = a.source_id
    GROUP BY a.activity_foreign_key, a.source_id, a.visitor_id
) g WHERE g.entity IS NULL OR (
    (g.key IS NULL
     OR NOT EXISTS (SELECT 1 FROM customer_rows c WHERE c.entity = g.entity AND c.key = g.key))
    AND (g.visitor IS NULL OR NOT EXISTS (
        SELECT 1 FROM visitor_winners w JOIN customer_rows c
        ON c.entity = w.entity AND c.key = w.key
        WHERE w.entity = g.entity AND w.visitor = g.visitor)))
"""
COUNT_UNMATCHED = f"SELECT coalesce(sum(n), 0) {_UNMATCHED_GROUPS}"
COUNT_UNMATCHED_BY_TYPE = f"SELECT type, sum(n) {_UNMATCHED_GROUPS} GROUP BY type ORDER BY type"
# The first layout: one wide row per activity with its customer copied in, linked by UPDATEs.
_MIGRATION = f"""
ALTER TABLE activities RENAME TO activities_v1;
DROP INDEX IF EXISTS activities_by_customer;
DROP INDEX IF EXISTS activities_by_foreign_key;
DROP INDEX IF EXISTS activities_by_file;
{SCHEMA}
INSERT INTO activity_sources ({_SOURCE_COLUMNS})
    SELECT DISTINCT {_SOURCE_COLUMNS} FROM activities_v1;
INSERT INTO activities SELECT o.activity_id, s.source_id, o.source_row, o.activity_name,
    o.activity_time, o.title, o.external_url, o.source_activity_id, o.activity_foreign_key, NULL
FROM activities_v1 o JOIN activity_sources s
    ON ({", ".join(f"s.{c}" for c in _SOURCE_COLUMNS.split(", "))})
    IS ({", ".join(f"o.{c}" for c in _SOURCE_COLUMNS.split(", "))});
DROP TABLE activities_v1;
"""


def create(conn: sqlite3.Connection) -> None:
    """The tables, indexes and view, inside the caller's transaction; a store written by the
    first layout is brought over."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(activities)")}
    script = _MIGRATION if "customer_id" in columns else SCHEMA
    if columns and "customer_id" not in columns and "visitor_id" not in columns:
        # A store from before visitors: none of its activities has one.
        conn.execute("ALTER TABLE activities ADD COLUMN visitor_id TEXT")
    statement = ""
    for part in script.split(";"):  # a trigger's body holds several: join until complete
        statement += part + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip("\n ;"):
                conn.execute(statement)
            statement = ""
