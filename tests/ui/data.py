"""The export the browser tests read: a busy customer, hostile text, a failing file, rejects."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

COLUMNS = (
    "Signal.Export.Id", "Signal.Timestamp", "Signal.Name", "Signal.Action.Name",
    "Signal.View.Uri", "Signal.View.Title", "Signal.User.Id", "Signal.User.AuthId",
)  # fmt: skip
CUSTOMER_COLUMNS = ("CustomerRetailId", "FullName", "Email", "City")
CUSTOMERS = (
    ("R-1", "Ada Moreno", "ada@example.com", "Seattle"),
    ("R-2", "Bram de Vries", "bram@example.com", "Utrecht"),
    ("R-666", "Eve <b>Bold</b>", "eve@example.com", "Nowhere"),
)
SCRIPT_TITLE = "<script>window.__xss = 1</script>Autumn offer"
IMG_TITLE = '<img src=x onerror="window.__xss = 2">Bundle offer'
JS_URL = "javascript:window.__xss = 3"
# Ada's events: one a day from Sept 1st, every third an add to cart, the rest promotions.
BUSY_EVENTS = 120
START = datetime(2021, 6, 1, 9, tzinfo=UTC)
FAILING_FILE = "EmailPromotion/2021/10/01/00/part-broken.csv"
REJECTING_FILE = "EmailPromotion/2021/10/02/00/part-rejects.csv"
BAD_TIME = "not-a-time-at-all"

CONFIG = {
    "customerSources": [
        {"entity": "RetailCustomers", "key": "CustomerRetailId", "customerId": None,
         "attributes": ["FullName", "Email", "City"]},
    ],
    "activities": [
        {"name": name, "entity": "EmailPromotion", "primaryKey": "Signal.Export.Id",
         "timestamp": "Signal.Timestamp", "event": ["Signal.Action.Name"],
         "webAddress": ["Signal.View.Uri"], "details": "Signal.View.Title",
         "activityType": display, "showInTimeline": True,
         "filter": {"Signal.Action.Name": [action]},
         "relationship": {"name": f"{name}ToCustomer", "foreignKey": ["Signal.User.AuthId"],
                          "customerEntity": "RetailCustomers", "customerKey": "CustomerRetailId"}}
        for name, display, action in (
            ("EmailPromotionClicks", "WebLog", "Email promotion"),
            ("CartAdds", "Cart", "Add to cart"),
        )
    ],
    "measures": [{"name": "Carts", "activities": ["CartAdds"], "aggregate": "count"}],
    "segments": [{"name": "Shoppers", "description": "put something in the cart",
                  "rule": {"measure": "Carts", "op": ">=", "value": 1}}],
}  # fmt: skip


def busy_event(n: int) -> tuple[str, ...]:
    action = "Add to cart" if n % 3 == 0 else "Email promotion"
    moment = START + timedelta(days=n, minutes=n)
    return (f"ada-{n:04d}", moment.isoformat().replace("+00:00", "Z"), "PageAction", action,
            f"https://shop.example.com/p/{n}", f"Page {n}", "R-1", "R-1")  # fmt: skip


def busy_times() -> list[tuple[str, str]]:
    """(ActivityType, ActivityTime) of every event of Ada's, as the store holds them."""
    out = []
    for row in map(busy_event, range(BUSY_EVENTS)):
        name = "CartAdds" if row[3] == "Add to cart" else "EmailPromotionClicks"
        out.append((name, row[1]))
    return out


def _write(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_export(root: Path) -> Path:
    """A plain export (entity by folder, no manifest) and its config file beside it."""
    _write(root / "RetailCustomers" / "customers.csv", CUSTOMER_COLUMNS, list(CUSTOMERS))
    by_month: dict[str, list[tuple[str, ...]]] = {}
    for row in map(busy_event, range(BUSY_EVENTS)):
        by_month.setdefault(row[1][:7], []).append(row)
    for month, rows in by_month.items():
        _write(root / "EmailPromotion" / month.replace("-", "/") / "01/00/part.csv", COLUMNS, rows)
    hostile = [
        ("eve-1", "2021-09-20T10:00:00Z", "PageAction", "Email promotion", JS_URL, SCRIPT_TITLE, "R-666", "R-666"),
        ("eve-2", "2021-09-21T10:00:00Z", "PageAction", "Email promotion", "https://shop.example.com/ok", IMG_TITLE, "R-666", "R-666"),
        ("bram-1", "2021-09-21T11:00:00Z", "PageAction", "Email promotion", "https://shop.example.com/b", "Bram's page", "R-2", "R-2"),
        ("anon-1", "2021-09-22T11:00:00Z", "PageAction", "Add to cart", "https://shop.example.com/c", "Anonymous cart", "", "V-9"),
    ]  # fmt: skip
    _write(root / "EmailPromotion/2021/09/20/00/part-hostile.csv", COLUMNS, hostile)
    # No Signal.Export.Id column: the file fails, naming the missing primary key.
    _write(root / FAILING_FILE, COLUMNS[1:], [row[1:] for row in hostile[:1]])
    rejects = [("rej-1", BAD_TIME, "PageAction", "Email promotion", "https://x.example", "Bad time", "R-2", "R-2")]
    _write(root / REJECTING_FILE, COLUMNS, rejects)
    (root.parent / "config.json").write_bytes(orjson.dumps(CONFIG))
    return root


def derived_id(key: str) -> str:
    from shared.core.mapping import derived_customer_id

    return derived_customer_id("RetailCustomers", key)
