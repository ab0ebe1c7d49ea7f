"""The sample export `footprint demo` writes: a CDM folder of customers and web events."""

from __future__ import annotations

import argparse
import csv
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

EVENT_COLUMNS = (
    "Signal.Export.Id", "Signal.Timestamp", "Signal.Name", "Signal.Action.Name",
    "Signal.View.Uri", "Signal.View.Title", "Signal.User.Id", "Signal.User.AuthId",
    "Signal.Session.Id", "Signal.Device.Type",
)  # fmt: skip
CUSTOMER_COLUMNS = ("CustomerRetailId", "FullName", "Email", "City")
CUSTOMERS = (
    ("R-1001", "Ada Moreno", "ada.moreno@example.com", "Seattle"),
    ("R-1002", "Bram de Vries", "bram.devries@example.com", "Utrecht"),
    ("R-1003", "Chiara Rossi", "chiara.rossi@example.com", "Milan"),
    ("R-1004", "Dev Patel", "dev.patel@example.com", "Leeds"),
)
ACTIONS = ("Email promotion", "Add to cart", "Search", "Email promotion")
PAGES = ("/offers/autumn", "/offers/bundle", "/products/kettle", "/cart")


def _entity_document(name: str, columns: tuple[str, ...]) -> dict[str, object]:
    return {
        "jsonSchemaSemanticVersion": "1.0.0",
        "definitions": [{
            "entityName": name,
            "hasAttributes": [{"name": c, "dataFormat": "String"} for c in columns],
        }],
    }  # fmt: skip


def _manifest() -> dict[str, object]:
    csv_trait = {
        "traitReference": "is.partition.format.CSV",
        "arguments": [
            {"name": "columnHeaders", "value": "true"},
            {"name": "delimiter", "value": ","},
        ],
    }
    return {
        "jsonSchemaSemanticVersion": "1.0.0",
        "manifestName": "webevents",
        "entities": [
            {"type": "LocalEntity", "entityName": "RetailCustomers",
             "entityPath": "RetailCustomers.cdm.json/RetailCustomers",
             "dataPartitions": [{"location": "RetailCustomers/customers.csv",
                                 "exhibitsTraits": [csv_trait]}]},
            {"type": "LocalEntity", "entityName": "EmailPromotion",
             "entityPath": "EmailPromotion.cdm.json/EmailPromotion",
             "dataPartitionPatterns": [{"name": "hourly", "rootLocation": "EmailPromotion",
                                        "globPattern": "/**/*.csv", "exhibitsTraits": [csv_trait]}]},
        ],
    }  # fmt: skip


def write_demo_export(folder: Path, events: int = 120, seed: int = 7) -> Path:
    """Write the sample export under `folder`; returns the export root."""
    root = folder / "export"
    rng = random.Random(seed)
    (root / "RetailCustomers").mkdir(parents=True, exist_ok=True)
    (root / "webevents.manifest.cdm.json").write_bytes(
        orjson.dumps(_manifest(), option=orjson.OPT_INDENT_2)
    )
    for name, columns in (("RetailCustomers", CUSTOMER_COLUMNS), ("EmailPromotion", EVENT_COLUMNS)):
        doc = orjson.dumps(_entity_document(name, columns), option=orjson.OPT_INDENT_2)
        (root / f"{name}.cdm.json").write_bytes(doc)
    with (root / "RetailCustomers" / "customers.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CUSTOMER_COLUMNS)
        writer.writerows(CUSTOMERS)
    start = datetime(2021, 9, 28, 8, tzinfo=UTC)
    rows_by_hour: dict[int, list[tuple[str, ...]]] = {}
    for n in range(events):
        moment = start + timedelta(minutes=7 * n + rng.randrange(7))
        customer = rng.choice(CUSTOMERS)[0] if rng.random() < 0.9 else f"anon-{rng.randrange(50)}"
        signed_in = rng.random() < 0.6
        action = rng.choice(ACTIONS)
        rows_by_hour.setdefault(moment.hour, []).append((
            f"evt-{n:05d}", moment.isoformat().replace("+00:00", "Z"), "PageAction", action,
            f"https://shop.example.com{rng.choice(PAGES)}", action.title(),
            customer, customer if signed_in else "", f"s-{n // 5}", rng.choice(("mobile", "desktop")),
        ))  # fmt: skip
    for hour, rows in rows_by_hour.items():
        part = root / "EmailPromotion" / "2021" / "09" / "28" / f"{hour:02d}"
        part.mkdir(parents=True, exist_ok=True)
        with (part / "part-0001.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(EVENT_COLUMNS)
            writer.writerows(rows)
    return root


def run_demo(args) -> int:  # type: ignore[no-untyped-def]
    """Write the sample export, ingest it into SQLite, print the busiest customer's card."""
    from shared import bootstrap
    from shared.adapters.local_files import LocalFileSource
    from shared.cli_hints import timeline_command
    from shared.cli_output import emit, format_card
    from shared.core import queries
    from shared.core.ingest.reconciler import reconcile
    from shared.settings import Settings

    folder = Path(args.dir)
    root = write_demo_export(folder)
    settings = Settings.from_env()
    config = bootstrap.load_config(args.config)
    store_url = args.store or f"sqlite:///{folder / 'footprint.db'}"
    store, ledger = bootstrap.open_store(store_url, settings, config, create=True)
    made = bootstrap.ports(LocalFileSource(root), store, ledger, config, settings.erasure_salt)
    report = reconcile(made, config)
    print(f"sample export written to {root}; {report.done} files ingested", file=sys.stderr)
    busiest = max(
        (c for c in store.search_customers("R-", 100)),
        key=lambda c: sum(store.activity_counts(c.customer_id).values()),
    )
    card = queries.customer_card(store, busiest.customer_id, queries.timeline_query(limit=10))
    # The next page's command, whole: the same store, config and page size as this one.
    asked = argparse.Namespace(store=store_url, config=args.config, limit=10)
    emit(args.json, card, lambda c: format_card(c, timeline_command(busiest.customer_id, asked)))
    store.close()
    command = sys.argv[0] if Path(sys.argv[0]).name == "footprint" else "footprint"
    print(f"open the web UI: {command} serve --store sqlite:///{folder / 'footprint.db'} "
          f"--source {root}  (then http://127.0.0.1:7071/api/ui/)", file=sys.stderr)  # fmt: skip
    return 0
