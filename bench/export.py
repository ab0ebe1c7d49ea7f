"""The generated export every benchmark reads: customers and refined web events, as CSV."""

from __future__ import annotations

import csv
import random
from pathlib import Path

COLUMNS = (
    "Signal.Export.Id", "Signal.Timestamp", "Signal.Name", "Signal.Action.Name",
    "Signal.View.Uri", "Signal.View.Title", "Signal.User.Id", "Signal.User.AuthId",
    "Signal.Session.Id", "Signal.Device.Type", "Signal.Device.OS", "Signal.Browser.Name",
)  # fmt: skip
CUSTOMERS_FILE = "RetailCustomers/customers.csv"
EVENTS_FOLDER = "EmailPromotion/2021/09/28"
PROMOTION = "Email promotion"


def write_customers(root: Path, count: int) -> str:
    """`count` customers R-0 ... as `RetailCustomers` exports them; returns the file's path."""
    path = root / CUSTOMERS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("CustomerRetailId", "FullName", "Email", "City"))
        w.writerows((f"R-{n}", f"Customer {n}", f"c{n}@example.com", "Leeds") for n in range(count))
    return CUSTOMERS_FILE


def write_events(
    root: Path, rows: int, customers: int, hour: int = 14, seed: int = 1, cookies: bool = False
) -> str:
    """One events file of `rows` rows in the folder of one hour, returning its path: 90% of the
    events inside the default activity's filter; users drawn from 10% more ids than there are
    customers, so some stay unmatched; one in three events without an authenticated id. With
    `cookies`, each user's SDK id is a cookie of its own rather than the customer key, so the
    anonymous events reach their customer only through the visitor's sign-ins (SPEC §8)."""
    rng = random.Random(seed)
    name = f"{EVENTS_FOLDER}/{hour:02d}/part-0001.csv"
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for n in range(rows):
            user = f"R-{rng.randrange(customers * 11 // 10)}"
            action = PROMOTION if rng.random() < 0.9 else "Search"
            w.writerow((
                f"{hour:02d}-evt-{n:09d}",
                f"2021-09-28T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
                "PageAction", action, f"https://shop.example.com/p/{n % 500}", "Offer page",
                f"ck-{user}" if cookies else user, user if n % 3 else "", f"s-{n // 20}",
                "mobile", "Android", "Chrome",
            ))  # fmt: skip
    return name


def size_mb(root: Path, name: str) -> float:
    return (root / name).stat().st_size / 1e6
