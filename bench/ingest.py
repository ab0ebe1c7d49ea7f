"""Benchmark: `footprint ingest` of a generated export into SQLite; prints events/s and peak RSS.

    python bench/ingest.py                 # 100k and 1M rows
    python bench/ingest.py --rows 200000   # one size
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = (
    "Signal.Export.Id", "Signal.Timestamp", "Signal.Name", "Signal.Action.Name",
    "Signal.View.Uri", "Signal.View.Title", "Signal.User.Id", "Signal.User.AuthId",
    "Signal.Session.Id", "Signal.Device.Type", "Signal.Device.OS", "Signal.Browser.Name",
)  # fmt: skip
CUSTOMERS = 10_000


def write_export(root: Path, rows: int, seed: int = 1) -> Path:
    """One customers file and one events file of `rows` rows (90% inside the default filter)."""
    rng = random.Random(seed)
    (root / "RetailCustomers").mkdir(parents=True, exist_ok=True)
    with (root / "RetailCustomers" / "customers.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("CustomerRetailId", "FullName", "Email", "City"))
        w.writerows((f"R-{n}", f"Customer {n}", f"c{n}@example.com", "Leeds") for n in range(CUSTOMERS))
    events = root / "EmailPromotion" / "2021" / "09" / "28" / "14" / "part-0001.csv"
    events.parent.mkdir(parents=True, exist_ok=True)
    with events.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for n in range(rows):
            user = f"R-{rng.randrange(CUSTOMERS * 11 // 10)}"
            action = "Email promotion" if rng.random() < 0.9 else "Search"
            w.writerow((
                f"evt-{n:09d}", f"2021-09-28T14:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
                "PageAction", action, f"https://shop.example.com/p/{n % 500}", "Offer page",
                user, user if n % 3 else "", f"s-{n // 20}", "mobile", "Android", "Chrome",
            ))  # fmt: skip
    return root


def run_ingest(root: Path, store: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) of the ingest process, and its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    command = [sys.executable, "-m", "shared", "ingest", str(root), "--json", "--store", f"sqlite:///{store}"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ingest failed:\n{out}")
    return elapsed, usage.ru_maxrss, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="rows of events (repeatable)")
    args = parser.parse_args()
    sizes = args.rows or [100_000, 1_000_000]
    print(f"{'rows':>10} {'file MB':>8} {'seconds':>8} {'events/s':>10} {'peak RSS MB':>12}")
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="footprint-bench-") as tmp:
            root = write_export(Path(tmp) / "export", rows)
            size = sum(p.stat().st_size for p in root.rglob("*.csv")) / 1e6
            seconds, rss_kib, _ = run_ingest(root, Path(tmp) / "bench.db")
            total = rows + CUSTOMERS
            print(f"{rows:>10} {size:>8.1f} {seconds:>8.2f} {total / seconds:>10.0f} {rss_kib / 1024:>12.1f}")


if __name__ == "__main__":
    main()
