"""SqliteLedger: the ledger of the embedded store, in the same database file (see sqlite.py,
whose SCHEMA creates its table)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from shared.adapters.sqlite.store import SqliteDatabase
from shared.core.ingest.claims import next_claim, renewed
from shared.core.model import Counts, LedgerEntry

_LEDGER_COLUMNS = (
    "path, etag, status, attempts, rows, activities, unmatched, filtered, rejected, customers, "
    "entity, error, permanent, started_at, finished_at, duration_ms, not_before, holder, mapping, "
    "awaits_metadata, suppressed"
)
_WIDTH = _LEDGER_COLUMNS.count(",") + 1


def _entry(row: tuple) -> LedgerEntry:
    path, etag, status, attempts, *counts = row[:10]
    entity, error, permanent, started, finished, duration, not_before, holder, mapping, awaits = row[10:20]
    return LedgerEntry(
        path, etag, status, attempts, Counts(*(c or 0 for c in counts), row[20] or 0), entity, error,
        bool(permanent), started, finished, duration, not_before, holder, mapping, bool(awaits),
    )  # fmt: skip


def _entry_values(e: LedgerEntry) -> tuple:
    c = e.counts
    return (
        e.path, e.etag, e.status, e.attempts, c.rows, c.activities, c.unmatched, c.filtered,
        c.rejected, c.customers, e.entity, e.error, int(e.permanent), e.started_at,
        e.finished_at, e.duration_ms, e.not_before, e.holder, e.mapping, int(e.awaits_metadata),
        c.suppressed,
    )  # fmt: skip


class SqliteLedger:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def get(self, path: str, etag: str) -> LedgerEntry | None:
        rows = self.db.query(
            f"SELECT {_LEDGER_COLUMNS} FROM ledger WHERE path = ? AND etag = ?", (path, etag)
        )
        return _entry(rows[0]) if rows else None

    def latest(self, path: str) -> LedgerEntry | None:
        rows = self.db.query(
            f"SELECT {_LEDGER_COLUMNS} FROM ledger WHERE path = ? ORDER BY seq DESC LIMIT 1",
            (path,),
        )
        return _entry(rows[0]) if rows else None

    def claim(
        self,
        path: str,
        etag: str,
        now: str,
        lease_until: str,
        force: bool = False,
        holder: str | None = None,
    ) -> LedgerEntry | None:
        with self.db.transaction() as conn:
            old = self._read(conn, path, etag)
            entry = next_claim(old, path, etag, now, lease_until, force, holder)
            if entry is None:
                return None
            self._put(conn, entry)
            return entry

    def renew(self, entry: LedgerEntry, lease_until: str) -> bool:
        with self.db.transaction() as conn:
            new = renewed(self._read(conn, entry.path, entry.etag), entry, lease_until)
            if new is not None:
                conn.execute(
                    "UPDATE ledger SET not_before = ? WHERE path = ? AND etag = ?",
                    (new.not_before, entry.path, entry.etag),
                )
            return new is not None

    def _read(self, conn: sqlite3.Connection, path: str, etag: str) -> LedgerEntry | None:
        rows = conn.execute(
            f"SELECT {_LEDGER_COLUMNS} FROM ledger WHERE path = ? AND etag = ?", (path, etag)
        ).fetchall()
        return _entry(rows[0]) if rows else None

    def _put(self, conn: sqlite3.Connection, entry: LedgerEntry) -> None:
        conn.execute(
            f"INSERT OR REPLACE INTO ledger ({_LEDGER_COLUMNS}, seq) VALUES "
            f"({', '.join('?' * _WIDTH)}, (SELECT coalesce(max(seq), 0) + 1 FROM ledger))",
            _entry_values(entry),
        )

    def record(self, entry: LedgerEntry) -> None:
        with self.db.transaction() as conn:
            self._put(conn, entry)

    def entries(self, status: str | None = None) -> Iterator[LedgerEntry]:
        sql = f"SELECT {_LEDGER_COLUMNS} FROM ledger"
        rows = self.db.query(
            sql + (" WHERE status = ?" if status else "") + " ORDER BY path, etag",
            (status,) if status else (),
        )
        return iter([_entry(r) for r in rows])

    def latest_entries(
        self, status: str | None, limit: int, after: str | None = None
    ) -> list[LedgerEntry]:
        # One probe of the primary key per path for its greatest seq, as `latest` orders.
        rows = self.db.query(
            f"SELECT {_LEDGER_COLUMNS} FROM ledger AS l WHERE path > ? "
            "AND seq = (SELECT max(seq) FROM ledger WHERE path = l.path) "
            "AND (? IS NULL OR status = ?) ORDER BY path LIMIT ?",
            (after or "", status, status, limit),
        )
        return [_entry(r) for r in rows]

    def awaiting_metadata(self, folder: str) -> Iterator[LedgerEntry]:
        sql = f"SELECT {_LEDGER_COLUMNS} FROM ledger WHERE awaits_metadata = 1"
        if folder:  # paths under folder 'x/' sort from 'x/' to just before 'x0'
            sql += " AND path >= ? AND path < ?"
        high = folder[:-1] + chr(ord(folder[-1]) + 1) if folder else ""
        rows = self.db.query(sql + " ORDER BY path, etag", (folder, high) if folder else ())
        return iter([_entry(r) for r in rows])
