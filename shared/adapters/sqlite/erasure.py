"""SqliteErasures: suppressions, the salt and the erasure log in the store's database file,
and the removal of what reaches an erased customer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from shared.adapters.sqlite import links as link_tables
from shared.adapters.sqlite.store import VISITOR_ACTIVITY_IDS, SqliteDatabase
from shared.core.erasure.suppressions import holds_value

SCHEMA = """
CREATE TABLE IF NOT EXISTS erasure_salt (id INTEGER PRIMARY KEY CHECK (id = 1), salt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suppressions (hash TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erasures (seq INTEGER PRIMARY KEY AUTOINCREMENT, receipt TEXT NOT NULL);
"""
# Every activity of one visitor: anonymous ones by its id as key (visitor_id '' = the key),
# signed-in ones by the keys its links name, keyless ones by the visitor index.
_OF_VISITOR = f"DELETE FROM activities WHERE activity_id IN ({VISITOR_ACTIVITY_IDS})"


class SqliteErasures:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        # Statement by statement in a transaction of the database's own: executescript would
        # commit a bulk load the same thread has open.
        with db.transaction() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def erasure_salt(self, proposed: str) -> str:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO erasure_salt VALUES (1, ?)", (proposed,))
        return self.db.query("SELECT salt FROM erasure_salt")[0][0]

    def suppress(self, hashes: Sequence[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO suppressions VALUES (?)", [(h,) for h in hashes])

    def suppressions(self) -> frozenset[str]:
        return frozenset(h for (h,) in self.db.query("SELECT hash FROM suppressions"))

    def erase_activities(self, keys: Sequence[tuple[str, str]], visitors: Sequence[str]) -> int:
        removed = 0
        with self.db.transaction() as conn:
            for entity, key in keys:
                removed += conn.execute(
                    "DELETE FROM activities WHERE activity_foreign_key = ? AND source_id IN "
                    "(SELECT source_id FROM activity_sources WHERE customer_entity = ?)", (key, entity),
                ).rowcount  # fmt: skip
            for visitor in visitors:
                removed += conn.execute(_OF_VISITOR, (visitor,) * 4).rowcount
        return removed

    def erase_rejects(self, values: Sequence[str]) -> int:
        if not values:
            return 0
        with self.db.transaction() as conn:
            doomed = [
                (file, row) for file, row, excerpt in conn.execute(
                    "SELECT file, row, excerpt FROM rejects WHERE "
                    + " OR ".join("instr(excerpt, ?) > 0" for _ in values), list(values),
                ) if holds_value(excerpt, list(values))
            ]  # fmt: skip
            conn.executemany("DELETE FROM rejects WHERE file = ? AND row = ?", doomed)
        return len(doomed)

    def erase_links(self, keys: Sequence[tuple[str, str]], visitors: Sequence[str]) -> int:
        removed, touched = 0, set()
        with self.db.transaction() as conn:
            for visitor in visitors:
                touched |= set(conn.execute("SELECT entity, visitor FROM links WHERE visitor = ?", (visitor,)))
                removed += conn.execute("DELETE FROM links WHERE visitor = ?", (visitor,)).rowcount
            for entity, key in keys:
                where = "FROM links WHERE entity = ? AND key = ?"
                touched |= set(conn.execute(f"SELECT entity, visitor {where}", (entity, key)))
                removed += conn.execute(f"DELETE {where}", (entity, key)).rowcount
            link_tables.settle(conn, touched)  # the visitors' winners, worked out again
        return removed

    def erase_customer_rows(self, customer_id: str) -> int:
        with self.db.transaction() as conn:
            return conn.execute("DELETE FROM customer_rows WHERE customer_id = ?", (customer_id,)).rowcount

    def record_erasure(self, receipt: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO erasures (receipt) VALUES (?)", (orjson.dumps(receipt).decode(),))

    def erasures(self) -> list[dict[str, Any]]:
        return [orjson.loads(r) for (r,) in self.db.query("SELECT receipt FROM erasures ORDER BY seq")]
