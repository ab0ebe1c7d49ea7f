"""The raw SQLite ceiling: the activity rows of an events file, mapped beforehand, written with
one bare executemany upsert into the store's own tables (same schema, indexes and pragmas).

    python -m bench.sqlite_ceiling ROOT EVENTS_FILE STORE.db   # prints rows and seconds
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

from shared.adapters.sqlite.activities import UPSERT, _source_id
from shared.adapters.sqlite.store import SqliteDatabase
from shared.bootstrap import load_config
from shared.core.mapping import EntityMapping
from shared.core.model import SourceFile
from shared.core.reading.rows import iter_rows


def main() -> None:
    root, name, store = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    file = SourceFile(name, "etag-1", (root / name).stat().st_size)
    mapping = EntityMapping(load_config(None), "EmailPromotion")
    with (root / name).open("rb") as stream:
        activities = mapping.map_rows(iter_rows(stream, name), file).activities
    db = SqliteDatabase(store)
    with db.transaction() as conn:
        source = _source_id(conn, (name, "etag-1", "EmailPromotion", activities[0].activity_type,
                                   "WebLog", True, "RetailCustomers"))  # fmt: skip
    rows = [(a[0], source, a[14], a[4], a[5], a[6], a[7], a[9], a[10],
             "" if a[16] == a[10] and a[16] is not None else a[16]) for a in activities]  # fmt: skip
    del activities
    started = time.perf_counter()
    db.conn.execute("BEGIN")
    db.conn.executemany(UPSERT, rows)
    db.conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    print(orjson.dumps({"rows": len(rows), "seconds": seconds}).decode())


if __name__ == "__main__":
    main()
