"""`make bench`: every ingest path (and the export) measured on the same generated export, printed as one table.

python -m bench            # 1M events + 10k customers (a few minutes)
python -m bench --quick    # a smoke run on small files
BENCH_EVENTS=200000 python -m bench --skip-azure
python -m bench.metadata   # only the CDM metadata rows (--skip-metadata leaves them out)
python -m bench --only export   # only the export rows (the store they export ingested first)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

import orjson

from bench import export
from bench.audience_paths import audience_rows
from bench.export_paths import export_rows
from bench.measure import Run, child, footprint_ingest
from bench.table import Row, print_table
from shared.adapters.sqlite.store import CACHE_KIB


@dataclasses.dataclass(frozen=True)
class Sizes:
    events: int
    customers: int
    azure_events: int
    latency: tuple[int, int]
    rss: tuple[int, int]


FULL = Sizes(1_000_000, 10_000, 20_000, (1_000, 100_000), (200_000, 2_000_000))
QUICK = Sizes(50_000, 2_000, 2_000, (1_000, 10_000), (20_000, 200_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files: a smoke run")
    parser.add_argument("--events", type=int, help="events in the main file (BENCH_EVENTS)")
    parser.add_argument("--customers", type=int, help="customers (BENCH_CUSTOMERS)")
    parser.add_argument("--azure-events", type=int, help="events for the Azure Tables run")
    parser.add_argument("--skip-azure", action="store_true", help="no Azurite measurements")
    parser.add_argument("--skip-metadata", action="store_true",
                        help="no CDM metadata measurements (bench/metadata.py)")  # fmt: skip
    parser.add_argument("--only", choices=["export"],
                        help="only these rows: export (and what it needs: the store, DuckDB's table)")  # fmt: skip
    args = parser.parse_args()
    base = QUICK if args.quick else FULL
    sizes = dataclasses.replace(
        base,
        events=args.events or int(os.environ.get("BENCH_EVENTS", base.events)),
        customers=args.customers or int(os.environ.get("BENCH_CUSTOMERS", base.customers)),
        azure_events=args.azure_events or base.azure_events,
    )
    with tempfile.TemporaryDirectory(prefix="footprint-bench-") as tmp:
        if args.only == "export":
            print_table(run_export(Path(tmp), sizes), sizes.events, sizes.customers)
            return
        rows = run(Path(tmp), sizes, azure=not args.skip_azure)
        if not args.skip_metadata:
            from bench.metadata import metadata_rows

            rows += metadata_rows(Path(tmp) / "metadata", quick=args.quick)
    print_table(rows, sizes.events, sizes.customers)


def run(tmp: Path, sizes: Sizes, azure: bool) -> list[Row]:
    root = tmp / "export"
    customers = export.write_customers(root, sizes.customers)
    events = export.write_events(root, sizes.events, sizes.customers)
    print(f"export: {sizes.events:,} events ({export.size_mb(root, events):.0f} MB), "
          f"{sizes.customers:,} customers, in {root}", flush=True)  # fmt: skip
    rows = sqlite_rows(tmp, root, customers, events, sizes)
    rows += reference_rows(tmp, root, customers, events, rows[0])
    rows += stitching_rows(tmp, sizes)
    rows += export_rows(tmp, tmp / "footprint.db")
    rows += audience_rows(tmp, sizes.events * 10 // 9, sizes.customers * 2)
    if azure:
        from bench.azure_paths import azure_rows  # imports the Azure SDKs

        rows += azure_rows(tmp, sizes)
    rows += rss_rows(tmp, sizes)
    return rows


def run_export(tmp: Path, sizes: Sizes) -> list[Row]:
    """The export rows alone: the store ingested and DuckDB's table built as `run` does, unmeasured."""
    root = tmp / "export"
    customers = export.write_customers(root, sizes.customers)
    events = export.write_events(root, sizes.events, sizes.customers)
    store = tmp / "footprint.db"
    footprint_ingest(root, store, customers)
    footprint_ingest(root, store, events)
    (tmp / "duckdb").mkdir()
    child("bench.references", "duckdb", str(root), customers, events, str(tmp / "duckdb"))
    return export_rows(tmp, store)


def sqlite_rows(tmp: Path, root: Path, customers: str, events: str, sizes: Sizes) -> list[Row]:
    store = tmp / "footprint.db"
    footprint_ingest(root, store, customers)
    ours = footprint_ingest(root, store, events)
    report = orjson.loads(ours.output.splitlines()[-1])
    alone = tmp / "one-process.db"
    footprint_ingest(root, alone, customers)
    one_process = footprint_ingest(root, alone, events, FOOTPRINT_READ_IN_CHILD_BYTES="0")
    ceiling = orjson.loads(child("bench.sqlite_ceiling", str(root), events,
                                 str(tmp / "ceiling.db")).output)  # fmt: skip
    ratio = ceiling["seconds"] / ours.seconds
    return [
        Row("footprint ingest -> SQLite", sizes.events, "events", ours.seconds, ours.rss_mb,
            f"{report['activities']:,} activities, {report['unmatched']:,} unmatched; "
            f"{_reader(ours)}"),
        Row("  the same in one process (FOOTPRINT_READ_IN_CHILD_BYTES=0)", sizes.events,
            "events", one_process.seconds, one_process.rss_mb, "no file reader child"),
        Row("  raw ceiling: bare executemany upsert, same tables", ceiling["rows"], "rows",
            ceiling["seconds"], None, f"ours = {ratio:.0%} of it (target >= 90%)"),
    ]  # fmt: skip


def stitching_rows(tmp: Path, sizes: Sizes) -> list[Row]:
    """The same ingest of an export whose SDK ids are cookies, with visitors stitched (the
    shipped default) and with a config without visitorKey; each twice, alternating, the faster
    of each kept, so that a noisy neighbour hurts both alike."""
    root = tmp / "visitors"
    customers = export.write_customers(root, sizes.customers)
    events = export.write_events(root, sizes.events, sizes.customers, cookies=True)
    config = orjson.loads((Path(__file__).parent.parent / "shared/default_config.json").read_bytes())
    config["activities"][0]["relationship"].pop("visitorKey")
    plain = tmp / "no-visitor-key.json"
    plain.write_bytes(orjson.dumps(config))
    runs: dict[str, list[Run]] = {"on": [], "off": []}
    for attempt in range(2):
        for mode in ("off", "on"):
            store = tmp / f"stitch-{mode}-{attempt}.db"
            extra = {"FOOTPRINT_CONFIG": str(plain)} if mode == "off" else {}
            footprint_ingest(root, store, customers, **extra)
            runs[mode].append(footprint_ingest(root, store, events, **extra))
    on, off = (min(runs[m], key=lambda r: r.seconds) for m in ("on", "off"))
    report_on, report_off = (orjson.loads(r.output.splitlines()[-1]) for r in (on, off))
    return [
        Row("footprint ingest -> SQLite, visitors stitched (shipped default)", sizes.events,
            "events", on.seconds, on.rss_mb, f"{on.seconds / off.seconds:.0%} of the time "
            f"without (target <= 110%); {report_on['unmatched']:,} unmatched"),
        Row("  the same export, config without visitorKey", sizes.events, "events",
            off.seconds, off.rss_mb, f"{report_off['unmatched']:,} unmatched: anonymous "
            "events stay unknown"),
    ]  # fmt: skip


def _reader(run: Run) -> str:
    """The forked file reader's peak, which the peak RSS column (the writer's) leaves out."""
    if not run.child_rss_mb:
        return "read in the process (under 4 MB)"
    return (f"+ file reader child {run.child_rss_mb:.0f} MB (shared pages included); "
            f"both together {run.tree_pss_mb:.0f} MB (PSS, sampled)")  # fmt: skip


def reference_rows(tmp: Path, root: Path, customers: str, events: str, ours: Row) -> list[Row]:
    rows = []
    for tool, what in (("duckdb", "DuckDB: read_csv, filter, join, INSERT OR REPLACE (DuckDB table)"),
                       ("pandas", "pandas: read_csv, filter, merge, to_sql (SQLite)")):  # fmt: skip
        out = tmp / tool
        out.mkdir()
        run = child("bench.references", tool, str(root), customers, events, str(out))
        activities = orjson.loads(run.output)["rows"]
        speed = run.seconds / ours.seconds
        note = f"{activities:,} activities; ours is {speed:.2f}x its speed"
        note += " (target >= 2x)" if tool == "pandas" else ""
        rows.append(Row(what, ours.count, "events", run.seconds, run.rss_mb, note))
    return rows


def rss_rows(tmp: Path, sizes: Sizes) -> list[Row]:
    rows: list[Row] = []
    for count in sizes.rss:
        root = tmp / f"rss-{count}"
        events = export.write_events(root, count, sizes.customers)
        run = footprint_ingest(root, tmp / f"rss-{count}.db", events)
        note = f"{_reader(run)}; target <= 150 MB at any size"
        if rows:
            note = (f"{run.rss_mb - rows[0].rss_mb:+.0f} MB: SQLite's page cache filling up to "
                    f"its {CACHE_KIB // 1024} MiB cap; " + note)  # fmt: skip
        rows.append(Row(f"peak RSS: footprint ingest of {count:,} events", count, "events",
                        run.seconds, run.rss_mb, note))  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
