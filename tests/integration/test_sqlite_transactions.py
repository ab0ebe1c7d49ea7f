"""SqliteDatabase keeps a bulk load's transaction open between writes: what that must not break."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from shared.core.model import DONE, LedgerEntry
from tests.builders import activity


def _stored_elsewhere(path: Path) -> list[str]:
    """What another connection, as in another process, reads from the file."""
    db = SqliteDatabase(path)
    try:
        return sorted(
            a.source_activity_id for a in SqliteStore(db).list_activities(None, False, None)
        )
    finally:
        db.close()


def test_a_file_recorded_in_the_ledger_has_its_activities_committed(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "store.db")
    SqliteStore(db).write([activity("k1"), activity("k2")], [], [])
    SqliteLedger(db).record(LedgerEntry("events/a.csv", "e1", DONE, 1))
    assert _stored_elsewhere(tmp_path / "store.db") == ["k1", "k2"]
    db.close()


def test_closing_the_store_commits_what_was_written(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "store.db")
    SqliteStore(db).write([activity("k1")], [], [])
    db.close()
    assert _stored_elsewhere(tmp_path / "store.db") == ["k1"]


def test_a_failed_write_on_another_thread_keeps_this_threads_writes(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "store.db")
    SqliteStore(db).write([activity("k1")], [], [])

    def fail() -> None:
        with pytest.raises(RuntimeError), db.transaction():
            raise RuntimeError("a write that goes wrong")

    other = threading.Thread(target=fail)
    other.start()
    other.join()
    assert _stored_elsewhere(tmp_path / "store.db") == ["k1"]
    db.close()


def test_a_ledger_made_before_mapping_fingerprints_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    SqliteDatabase(path).close()
    with sqlite3.connect(path) as conn:  # as the ledger was before fingerprints
        conn.execute("ALTER TABLE ledger DROP COLUMN mapping")
        conn.execute(
            "INSERT INTO ledger (path, etag, status, attempts, permanent, seq) "
            "VALUES ('a.csv', 'e1', 'done', 1, 0, 1)"
        )
    db = SqliteDatabase(path)
    ledger = SqliteLedger(db)
    assert ledger.get("a.csv", "e1").mapping is None
    ledger.record(LedgerEntry("b.csv", "e1", DONE, 1, entity="Events", mapping="m" * 32))
    assert ledger.get("b.csv", "e1").mapping == "m" * 32
    db.close()
