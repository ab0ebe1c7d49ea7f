"""A database file made before the ledger counted suppressed rows opens, and reads them as 0."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase
from shared.core.model import DONE, Counts, LedgerEntry


def test_a_ledger_made_before_suppressed_counts_reads_them_as_zero(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    db = SqliteDatabase(path)
    SqliteLedger(db).record(LedgerEntry("a.csv", "e1", DONE, 1, Counts(3, 2, 0, 1, 0, 0, 5)))
    db.close()
    with sqlite3.connect(path) as conn:  # the file as an older release left it
        conn.execute("ALTER TABLE ledger DROP COLUMN suppressed")
    db = SqliteDatabase(path)
    try:
        assert SqliteLedger(db).get("a.csv", "e1").counts == Counts(3, 2, 0, 1, 0, 0, 0)
    finally:
        db.close()
