"""Measures and segments on the benchmark's data: a full evaluation of 10 measures and 5
segments by Footprint's one evaluator, beside DuckDB computing the same measures in SQL.

    python -m bench.audience_paths duckdb DUCKDB_FILE AS_OF   # prints customers and seconds
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import orjson

from bench import export
from bench.measure import child, footprint_ingest
from bench.table import Row

AS_OF = "2021-09-29T00:00:00.000Z"  # the generated events are all of 2021-09-28
MEASURES = [
    {"name": "Clicks", "aggregate": "count"},
    {"name": "Clicks6h", "aggregate": "count", "window": "PT6H"},
    {"name": "Clicks1h", "aggregate": "count", "window": "PT1H"},
    {"name": "Pages", "aggregate": "countDistinct", "of": "ExternalUrl"},
    {"name": "OfferPages1d", "aggregate": "countDistinct", "of": "ExternalUrl", "window": "P1D",
     "where": {"ExternalUrl": {"startsWith": "https://shop.example.com/p/1"}}},
    {"name": "LastVisit", "aggregate": "last", "of": "ActivityTime"},
    {"name": "FirstVisit", "aggregate": "first", "of": "ActivityTime"},
    {"name": "TopPage", "aggregate": "mostFrequent", "of": "ExternalUrl"},
    {"name": "LastPage", "aggregate": "last", "of": "ExternalUrl"},
    {"name": "Actions12h", "aggregate": "count", "window": "PT12H", "where": {"ActivityName": {"equals": "PageAction"}}},
]  # fmt: skip
SEGMENTS = [
    {"name": "Busy", "rule": {"measure": "Clicks6h", "op": ">=", "value": 12}},
    {"name": "BusyInLeeds", "rule": {"all": [{"segment": "Busy"}, {"attribute": "City", "op": "=", "value": "Leeds"}]}},
    {"name": "Recent", "rule": {"measure": "LastVisit", "op": "within", "value": "PT1H"}},
    {"name": "SteadyNotBusy", "rule": {"all": [{"not": {"segment": "Busy"}}, {"measure": "Clicks", "op": ">=", "value": 45}]}},
    {"name": "Explorers", "rule": {"any": [{"segment": "Recent"}, {"measure": "Pages", "op": ">=", "value": 45}]}},
]  # fmt: skip


def audience_rows(tmp: Path, events: int, customers: int) -> list[Row]:
    root = tmp / "audiences"
    store = tmp / "audiences.db"
    config = tmp / "audiences.json"
    defaults = json.loads((Path(__file__).parents[1] / "shared" / "default_config.json").read_text())
    config.write_text(json.dumps({**defaults, "measures": MEASURES, "segments": SEGMENTS}))
    people = export.write_customers(root, customers)
    events_file = export.write_events(root, events, customers, seed=7)
    footprint_ingest(root, store, people)
    plain = footprint_ingest(root, store, events_file)
    # The same files into a second store with the measures configured: kept current per file.
    kept = tmp / "audiences-kept.db"
    footprint_ingest(root, kept, people, FOOTPRINT_CONFIG=str(config))
    upkeep = footprint_ingest(root, kept, events_file, FOOTPRINT_CONFIG=str(config))
    slower = upkeep.seconds / plain.seconds - 1
    common = ("--json", "--config", str(config), "--store", f"sqlite:///{store}")
    replay = child("shared", "segments", "--as-of", AS_OF, *common)
    refresh = child("shared", "segments", "refresh", *common)
    evaluated = orjson.loads(refresh.output)["evaluated"]
    sizes = {s["Segment"]: s["Members"] for s in orjson.loads(replay.output)}
    duck = tmp / "audiences.duckdb"
    reference = child("bench.audience_paths", "duckdb", str(store), str(duck), AS_OF)
    measured = orjson.loads(reference.output)
    ratio = replay.seconds / measured["seconds"]
    # A later file a hundredth the size onto both stores (after the reads above, which it would
    # change): the upkeep reads again every activity of each customer the file touched.
    later = export.write_events(root, events // 100, customers, hour=15, seed=8)
    plain_later = footprint_ingest(root, store, later)
    kept_later = footprint_ingest(root, kept, later, FOOTPRINT_CONFIG=str(config))
    return [
        Row("footprint ingest, measures kept current after the file", events, "events",
            upkeep.seconds, upkeep.rss_mb, f"{slower:+.0%} against the same ingest without "
            "measures (target <= +15%)"),
        Row("  footprint ingest, no measures configured", events, "events", plain.seconds,
            plain.rss_mb, "the same file, the shipped default config"),
        Row("footprint segments --as-of: 10 measures, 5 segments, every customer", evaluated,
            "customers", replay.seconds, replay.rss_mb,
            f"{ratio:.1f}x DuckDB's time (target <= 10 s); members {sizes}"),
        Row("  footprint segments refresh: the same, stored as the current state", evaluated,
            "customers", refresh.seconds, refresh.rss_mb, "at now: windows of 2021 are empty"),
        Row("  DuckDB: the same 10 measures in SQL, GROUP BY customer", measured["customers"],
            "customers", measured["seconds"], reference.rss_mb,
            "the query alone (its copy of the activities not timed); no segments"),
        Row("footprint ingest of a later file, a hundredth the size, measures kept current",
            events // 100, "events", kept_later.seconds, kept_later.rss_mb,
            f"{kept_later.seconds / plain_later.seconds - 1:+.0%} against the same without measures "
            "(no target): every activity of each customer it touched is read again"),
        Row("  the same later file, no measures configured", events // 100, "events",
            plain_later.seconds, plain_later.rss_mb, "onto the store holding the first file"),
    ]  # fmt: skip


def with_duckdb(sqlite_store: Path, database: Path, as_of: str) -> int:
    """The activities copied out of the SQLite store (not timed), then the measures in SQL."""
    import sqlite3

    import duckdb

    copy = database.with_suffix(".csv")
    with sqlite3.connect(sqlite_store) as lite, copy.open("w", newline="") as out:
        rows = lite.execute("SELECT customer_id, activity_time, external_url, activity_name, activity_id "
                            "FROM unified_activities WHERE customer_id IS NOT NULL")  # fmt: skip
        writer = csv.writer(out)
        writer.writerow(("customer_id", "t", "url", "name", "id"))
        while chunk := rows.fetchmany(100_000):
            writer.writerows(chunk)
    con = duckdb.connect(str(database))
    con.execute(f"CREATE TABLE a AS SELECT * FROM read_csv('{copy}', all_varchar = true)")
    started = time.perf_counter()
    t = f"TIMESTAMP '{as_of[:-1].replace('T', ' ')}'"
    ts = "CAST(replace(replace(a.t, 'T', ' '), 'Z', '') AS TIMESTAMP)"
    count = con.execute(f"""
        WITH m AS (
            SELECT customer_id,
                count(*) FILTER (WHERE {ts} <= {t}) AS clicks,
                count(*) FILTER (WHERE {ts} <= {t} AND {ts} > {t} - INTERVAL 6 HOUR) AS clicks6h,
                count(*) FILTER (WHERE {ts} <= {t} AND {ts} > {t} - INTERVAL 1 HOUR) AS clicks1h,
                count(DISTINCT url) FILTER (WHERE {ts} <= {t}) AS pages,
                count(DISTINCT url) FILTER (WHERE {ts} <= {t} AND {ts} > {t} - INTERVAL 1 DAY
                                            AND starts_with(url, 'https://shop.example.com/p/1')) AS offers,
                max(a.t) FILTER (WHERE {ts} <= {t}) AS last_visit,
                min(a.t) FILTER (WHERE {ts} <= {t}) AS first_visit,
                arg_max(url, a.t || a.id) FILTER (WHERE {ts} <= {t}) AS last_page,
                count(*) FILTER (WHERE {ts} <= {t} AND {ts} > {t} - INTERVAL 12 HOUR AND name = 'PageAction') AS actions
            FROM a GROUP BY customer_id
        ), top AS (
            SELECT customer_id, arg_min(url, (-n, url)) AS top_page FROM (
                SELECT customer_id, url, count(*) AS n FROM a WHERE {ts} <= {t} AND url IS NOT NULL
                GROUP BY customer_id, url) GROUP BY customer_id
        )
        SELECT count(*) FROM (SELECT * FROM m LEFT JOIN top USING (customer_id))
    """).fetchone()[0]  # fmt: skip
    print(orjson.dumps({"customers": count, "seconds": time.perf_counter() - started}).decode())
    return count


def main() -> None:
    _, store, database, as_of = sys.argv[1:5]
    with_duckdb(Path(store), Path(database), as_of)


if __name__ == "__main__":
    main()
