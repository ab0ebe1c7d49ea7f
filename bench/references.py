"""What the same job costs without Footprint, on the same files: DuckDB, near the machine's
limit, and the pandas pipeline a user would write by hand. Each maps the events of the default
configuration (filter, first non-empty columns, UTC times, ids, customer join) and stores them.

    python -m bench.references duckdb|pandas ROOT CUSTOMERS_FILE EVENTS_FILE OUT_DIR
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import time
from pathlib import Path

import orjson

ACTIVITY = "EmailPromotionClicks"
ENTITY = "EmailPromotion"


def with_duckdb(customers: Path, events: Path, out: Path) -> int:
    """read_csv, filter, join, INSERT OR REPLACE into a DuckDB table keyed by activity id.
    DuckDB has no BLAKE2: md5 stands in for the ids, which changes nothing in the work done."""
    import duckdb

    con = duckdb.connect(str(out / "bench.duckdb"))
    con.execute("""
        CREATE TABLE activities (
            activity_id VARCHAR PRIMARY KEY, customer_id VARCHAR, activity_type VARCHAR,
            activity_type_display VARCHAR, activity_name VARCHAR, activity_time VARCHAR,
            title VARCHAR, external_url VARCHAR, source_entity VARCHAR,
            source_activity_id VARCHAR, activity_foreign_key VARCHAR, show_in_timeline BOOLEAN,
            source_file VARCHAR, source_etag VARCHAR, source_row BIGINT, customer_entity VARCHAR)
    """)
    con.execute(f"""
        INSERT OR REPLACE INTO activities
        WITH c AS (
            SELECT CustomerRetailId AS key,
                'c-' || substr(md5('RetailCustomers' || chr(31) || CustomerRetailId), 1, 24) AS id
            FROM read_csv('{customers}', all_varchar = true)
        ), e AS (
            SELECT *, row_number() OVER () AS source_row,
                coalesce(nullif(trim("Signal.User.AuthId"), ''),
                         nullif(trim("Signal.User.Id"), '')) AS fk,
                try_cast("Signal.Timestamp" AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS moment
            FROM read_csv('{events}', all_varchar = true)
        )
        SELECT md5('{ACTIVITY}' || chr(31) || '{ENTITY}' || chr(31) || "Signal.Export.Id"),
            c.id, '{ACTIVITY}', 'WebLog',
            coalesce(nullif(trim("Signal.Name"), ''), nullif(trim("Signal.Action.Name"), '')),
            strftime(moment, '%Y-%m-%dT%H:%M:%S.%gZ'), "Signal.Action.Name",
            nullif(trim("Signal.View.Uri"), ''),  -- the generated files have no other
            '{ENTITY}', "Signal.Export.Id", fk, true, '{events.name}', 'etag-1', source_row,
            'RetailCustomers'
        FROM e LEFT JOIN c ON c.key = e.fk
        WHERE "Signal.Action.Name" = 'Email promotion'
            AND nullif(trim("Signal.Export.Id"), '') IS NOT NULL AND moment IS NOT NULL
    """)
    return con.execute("SELECT count(*) FROM activities").fetchone()[0]


def with_pandas(customers: Path, events: Path, out: Path) -> int:
    """read_csv, filter, merge, to_sql into a new SQLite table, as a user would write it."""
    import pandas as pd

    cust = pd.read_csv(customers, dtype=str, keep_default_na=False)
    cust["customer_id"] = [
        "c-" + hashlib.blake2b(f"RetailCustomers\x1f{k}".encode(), digest_size=12).hexdigest()
        for k in cust["CustomerRetailId"]
    ]
    ev = pd.read_csv(events, dtype=str, keep_default_na=False)
    ev["source_row"] = range(1, len(ev) + 1)
    ev = ev[ev["Signal.Action.Name"] == "Email promotion"]

    def first(*columns: str) -> pd.Series:
        values = ev[columns[0]].where(ev[columns[0]].str.strip() != "")
        for column in columns[1:]:
            if column in ev:
                values = values.fillna(ev[column].where(ev[column].str.strip() != ""))
        return values

    moment = pd.to_datetime(ev["Signal.Timestamp"], utc=True, format="ISO8601", errors="coerce")
    prefix = f"{ACTIVITY}\x1f{ENTITY}\x1f".encode()
    frame = pd.DataFrame({
        "activity_id": [hashlib.blake2b(prefix + k.encode(), digest_size=16).hexdigest()
                        for k in ev["Signal.Export.Id"]],
        "activity_type": ACTIVITY, "activity_type_display": "WebLog",
        "activity_name": first("Signal.Name", "Signal.Action.Name"),
        "activity_time": moment.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:23] + "Z",
        "title": ev["Signal.Action.Name"],
        "external_url": first("Signal.View.Uri", "Signal.Action.View.Uri"),
        "source_entity": ENTITY, "source_activity_id": ev["Signal.Export.Id"],
        "activity_foreign_key": first("Signal.User.AuthId", "Signal.User.Id"),
        "show_in_timeline": True, "source_file": events.name, "source_etag": "etag-1",
        "source_row": ev["source_row"], "customer_entity": "RetailCustomers",
    })  # fmt: skip
    frame = frame[moment.notna().to_numpy()]
    frame = frame.merge(
        cust[["CustomerRetailId", "customer_id"]], how="left",
        left_on="activity_foreign_key", right_on="CustomerRetailId",
    ).drop(columns="CustomerRetailId")  # fmt: skip
    with sqlite3.connect(out / "pandas.db") as conn:
        frame.to_sql("activities", conn, index=False, if_exists="append", chunksize=50_000)
    return len(frame)


def main() -> None:
    tool, root, customers, events, out = sys.argv[1:6]
    run = with_duckdb if tool == "duckdb" else with_pandas
    started = time.perf_counter()
    rows = run(Path(root) / customers, Path(root) / events, Path(out))
    print(orjson.dumps({"rows": rows, "seconds": time.perf_counter() - started}).decode())


if __name__ == "__main__":
    main()
