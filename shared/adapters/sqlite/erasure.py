"""SqliteErasures: suppressions, the salt and the erasure log in the store's database file,
and the removal of what reaches an erased customer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from shared.adapters.sqlite.store import SqliteDatabase
from shared.core.erasure.suppressions import holds_value

SCHEMA = """
CREATE TABLE IF NOT EXISTS erasure_salt (id INTEGER PRIMARY KEY CHECK (id = 1), salt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suppressions (hash TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS erasures (seq INTEGER PRIMARY KEY AUTOINCREMENT, receipt TEXT NOT NULL);
"""


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

    def erase_records(
        self, customer_id: str, keys: Sequence[tuple[str, str]], values: Sequence[str]
    ) -> dict[str, int]:
        removed = {"activities": 0, "rejects": 0, "customerRows": 0}
        with self.db.transaction() as conn:
            for entity, key in keys:
                removed["activities"] += conn.execute(
                    "DELETE FROM activities WHERE activity_foreign_key = ? AND source_id IN "
                    "(SELECT source_id FROM activity_sources WHERE customer_entity = ?)", (key, entity),
                ).rowcount  # fmt: skip
            doomed = [
                (file, row) for file, row, excerpt in conn.execute(
                    "SELECT file, row, excerpt FROM rejects WHERE "
                    + " OR ".join("instr(excerpt, ?) > 0" for _ in values), list(values),
                ) if holds_value(excerpt, list(values))
            ] if values else []  # fmt: skip
            conn.executemany("DELETE FROM rejects WHERE file = ? AND row = ?", doomed)
            removed["rejects"] = len(doomed)
            # Last: a retry after a crash still finds the customer, and through it the keys.
            removed["customerRows"] = conn.execute(
                "DELETE FROM customer_rows WHERE customer_id = ?", (customer_id,)
            ).rowcount
        return removed

    def record_erasure(self, receipt: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO erasures (receipt) VALUES (?)", (orjson.dumps(receipt).decode(),))

    def erasures(self) -> list[dict[str, Any]]:
        return [orjson.loads(r) for (r,) in self.db.query("SELECT receipt FROM erasures ORDER BY seq")]
