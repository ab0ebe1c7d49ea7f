"""An export of a SQLite store read side by side by forked children is one snapshot, the one
its parts were cut from: a write that comes as the children are about to start, or while they
read, is in none of the parts."""

from __future__ import annotations

import csv
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared import bootstrap
from shared.adapters.local_files import LocalExportTarget
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from shared.core import forked
from shared.core.export import folder
from shared.core.export.folder import MANIFEST
from shared.core.export.profiles import AudienceExport, export_profiles
from tests.builders import activity, customer

pytestmark = pytest.mark.skipif(not forked.available(), reason="needs fork (Linux)")
ROWS = 36_000  # 12,000 a part: more than one fetch of a child's query, more than its pipe holds


def _rewrite_everything(db: Path) -> None:
    """Another connection deletes every activity and adds one: a rewrite or an erasure."""
    with sqlite3.connect(db, isolation_level=None) as other:
        other.execute("PRAGMA busy_timeout = 60000")
        other.execute("BEGIN IMMEDIATE")
        (row,) = other.execute("SELECT * FROM activities LIMIT 1").fetchall()
        other.execute("DELETE FROM activities")
        other.execute("INSERT INTO activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ("new", *row[1:]))
        other.execute("COMMIT")


def test_a_write_landing_while_the_parts_are_read_is_in_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folder, "PROCESSES", 3)
    monkeypatch.setattr(folder, "PARALLEL_MIN_ROWS", 1_000)
    path = tmp_path / "store.db"
    db = SqliteDatabase(path)
    store = SqliteStore(db)
    try:
        store.write([activity(f"k{n}", row=n) for n in range(ROWS)], [customer("R-1")], [])
        before = sorted(tuple(cells) for cells in store.iter_activity_cells())
        writer = threading.Thread(target=_rewrite_everything, args=(path,))
        start = forked.start

        def start_after_a_write(*args: Any) -> Any:
            # The ranges are cut; the write comes now, unless the store holds it off until
            # every part has begun reading (a second is ample for it to land if not held).
            if not writer.is_alive() and writer.ident is None:
                writer.start()
                writer.join(1.0)
            return start(*args)

        monkeypatch.setattr(forked, "start", start_after_a_write)
        target = LocalExportTarget(tmp_path / "out")
        receipts = export_profiles(store, AudienceExport(bootstrap.open_audiences(store), {}), target)
        writer.join()
        after = list(store.iter_activity_cells())
    finally:
        db.close()
    manifest = orjson.loads((tmp_path / "out" / MANIFEST).read_bytes())
    (parts,) = [[p["location"] for p in e["dataPartitions"]] for e in manifest["entities"] if e["entityName"] == "UnifiedActivity"]
    exported = []
    for location in parts:
        with (tmp_path / "out" / location).open(encoding="utf-8", newline="") as f:
            exported += [tuple(r) for r in list(csv.reader(f))[1:]]
    assert len(after) == 1  # the write landed, during the export
    assert len(parts) == 3
    assert sorted(exported) == before and len(exported) == ROWS
    assert {r.name: r.rows for r in receipts}["UnifiedActivity"] == ROWS
