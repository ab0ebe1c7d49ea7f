"""Visitors' links in the SQLite store, and each visitor's winner kept beside them.

`links` holds one row per (customer entity, visitor, key, file version), the earliest and
latest row of the file that made it. `visitor_winners` holds the key each visitor resolves to
under the entity's onConflict, worked out by shared/core/identity/winners.py whenever a
visitor's links change, so that the `unified_activities` view joins it like a customer key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from shared.core.identity.links import Link, merge_links
from shared.core.identity.winners import FIRST, LATEST, NONE, winner

SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    entity TEXT NOT NULL, visitor TEXT NOT NULL, key TEXT NOT NULL, source_file TEXT NOT NULL,
    source_etag TEXT NOT NULL, first_time TEXT NOT NULL, first_row INTEGER NOT NULL,
    last_time TEXT NOT NULL, last_row INTEGER NOT NULL,
    PRIMARY KEY (entity, visitor, key, source_file, source_etag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_by_file ON links (source_file, source_etag);
CREATE INDEX IF NOT EXISTS links_by_visitor ON links (visitor, key);
CREATE TABLE IF NOT EXISTS visitor_winners (
    entity TEXT NOT NULL, visitor TEXT NOT NULL, key TEXT NOT NULL, linked_at TEXT NOT NULL,
    source_file TEXT NOT NULL, source_row INTEGER NOT NULL, PRIMARY KEY (entity, visitor)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS visitor_winners_by_key ON visitor_winners (entity, key);
CREATE TABLE IF NOT EXISTS identity_rules (
    entity TEXT PRIMARY KEY, on_conflict TEXT NOT NULL
) WITHOUT ROWID;
"""
_UPSERT = """
INSERT INTO links VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (entity, visitor, key, source_file, source_etag) DO UPDATE SET
    first_time = min(first_time, excluded.first_time),
    first_row = CASE WHEN (excluded.first_time, excluded.first_row) < (first_time, first_row)
        THEN excluded.first_row ELSE first_row END,
    last_time = max(last_time, excluded.last_time),
    last_row = CASE WHEN (excluded.last_time, excluded.last_row) > (last_time, last_row)
        THEN excluded.last_row ELSE last_row END
"""
_WINNER = """
INSERT INTO visitor_winners VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (entity, visitor) DO UPDATE SET key = excluded.key, linked_at = excluded.linked_at,
    source_file = excluded.source_file, source_row = excluded.source_row
WHERE (excluded.linked_at, excluded.source_file, excluded.source_row) {}
    (visitor_winners.linked_at, visitor_winners.source_file, visitor_winners.source_row)
"""
_RAISE_LATEST = _WINNER.format(">")
_LOWER_FIRST = _WINNER.format("<")
COLUMNS = ("entity, visitor, key, source_file, source_etag, first_time, first_row, last_time, "
           "last_row")  # fmt: skip


def write(conn: sqlite3.Connection, links: Sequence[Link]) -> set[tuple[str, str]]:
    """Merge `links` into the stored ones; returns the visitors they touched, winners settled."""
    if not links:
        return set()
    merged = list(merge_links(links).values())
    # Every SET expression of the upsert reads the row as stored, so the CASEs compare with
    # the old times, whichever is assigned first.
    conn.executemany(_UPSERT, merged)
    rules = dict(conn.execute("SELECT entity, on_conflict FROM identity_rules"))
    by_rule: dict[str, list[Link]] = {}
    for link in merged:
        by_rule.setdefault(rules.get(link.customer_entity, LATEST), []).append(link)
    # More links only ever raise the latest and lower the first: one upsert each settles them.
    conn.executemany(_RAISE_LATEST, [(*link[:3], link.last_time, link.source_file, link.last_row)
                                     for link in by_rule.get(LATEST, ())])  # fmt: skip
    conn.executemany(_LOWER_FIRST, [(*link[:3], link.first_time, link.source_file, link.first_row)
                                    for link in by_rule.get(FIRST, ())])  # fmt: skip
    touched = {(link.customer_entity, link.visitor_id) for link in merged}
    settle(conn, {(link.customer_entity, link.visitor_id) for link in by_rule.get(NONE, ())})
    return touched


def forget(conn: sqlite3.Connection, path: str, keep_etag: str) -> set[tuple[str, str]]:
    """Delete the links other versions of `path` made; their visitors' winners settled again."""
    touched = set(conn.execute(
        "SELECT DISTINCT entity, visitor FROM links WHERE source_file = ? AND source_etag != ?",
        (path, keep_etag),
    ))  # fmt: skip
    if touched:
        conn.execute(
            "DELETE FROM links WHERE source_file = ? AND source_etag != ?", (path, keep_etag)
        )
        settle(conn, touched)
    return touched


def links_of(conn: sqlite3.Connection, entity: str, visitor: str) -> list[Link]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM links WHERE entity = ? AND visitor = ? "
        "ORDER BY key, source_file, source_etag",
        (entity, visitor),
    )
    return [Link(*row) for row in rows]


def settle(conn: sqlite3.Connection, visitors: Iterable[tuple[str, str]]) -> None:
    """Work out the winner of each visitor again from its links as they are now."""
    rules = dict(conn.execute("SELECT entity, on_conflict FROM identity_rules"))
    for entity, visitor in visitors:
        won = winner(links_of(conn, entity, visitor), rules.get(entity, LATEST))
        if won is None:
            conn.execute(
                "DELETE FROM visitor_winners WHERE entity = ? AND visitor = ?", (entity, visitor)
            )
        else:
            conn.execute(
                "INSERT OR REPLACE INTO visitor_winners VALUES (?, ?, ?, ?, ?, ?)",
                (entity, visitor, won.key, won.linked_at, won.file, won.row),
            )


def use_rules(conn: sqlite3.Connection, rules: Mapping[str, str]) -> None:
    """Store onConflict per entity; when it changed, every visitor's winner is worked out again."""
    stored = dict(conn.execute("SELECT entity, on_conflict FROM identity_rules"))
    wanted = {entity: rule for entity, rule in rules.items() if rule != LATEST}
    if {e: r for e, r in stored.items() if r != LATEST} == wanted:
        return
    conn.execute("DELETE FROM identity_rules")
    conn.executemany("INSERT INTO identity_rules VALUES (?, ?)", list(wanted.items()))
    settle(conn, list(conn.execute("SELECT DISTINCT entity, visitor FROM links")))
