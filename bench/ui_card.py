"""Benchmark: the web UI opening the card of a customer with 5,000 activities on a store of
1M events; time to the first timeline row and to the next page ("Load more").

    python -m bench.ui_card [--events 1000000] [--busy 5000] [--runs 5] [--store PATH.db]

Runs `footprint serve` over a SQLite store and the system's Chromium through Playwright.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench import export
from shared.core.mapping import derived_customer_id
from tests.azurite import free_port

BUSY = "R-0"
# Set in the page before any of its scripts: when the first and the 51st timeline rows appear.
OBSERVER = """
new MutationObserver(() => {
  const rows = document.querySelectorAll("ol.timeline > li").length;
  if (rows && !window.__first) window.__first = performance.now();
  if (rows > 50 && !window.__next) window.__next = performance.now();
}).observe(document, {childList: true, subtree: true});
"""


def write_busy(root: Path, rows: int) -> None:
    """`rows` events of one signed-in customer, a second apart, in a file of their own."""
    path = root / export.EVENTS_FOLDER / "23" / "part-busy.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(export.COLUMNS)
        for n in range(rows):
            w.writerow((f"busy-{n:06d}", f"2021-09-{1 + n // 86400:02d}T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
                        "PageAction", export.PROMOTION, f"https://shop.example.com/b/{n}", f"Busy page {n}",
                        BUSY, BUSY, f"b-{n // 20}", "desktop", "Windows", "Edge"))  # fmt: skip


def build_store(folder: Path, events: int, busy: int) -> str:
    root = folder / "export"
    export.write_customers(root, 10_000)
    export.write_events(root, events - busy, 10_000)
    write_busy(root, busy)
    store = f"sqlite:///{folder / 'ui-bench.db'}"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "shared", "ingest", str(root), "--store", store],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    print(f"store of {events:,} events built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return store


def measure(url: str, runs: int) -> tuple[list[float], list[float]]:
    chromium = shutil.which("chromium") or "/usr/lib/chromium/chromium"
    first, more = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium,
                                     args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])  # fmt: skip
        for _ in range(runs):
            page = browser.new_page()
            page.add_init_script(OBSERVER)
            page.goto(url)
            page.wait_for_function("() => window.__first", timeout=120_000)
            first.append(page.evaluate("window.__first"))
            clicked = page.evaluate("performance.now()")
            page.get_by_role("button", name="Load more").click()
            page.wait_for_function("() => window.__next", timeout=120_000)
            more.append(page.evaluate("window.__next") - clicked)
            page.close()
        browser.close()
    return first, more


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--busy", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", help="an existing SQLite file built by an earlier run")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    store = f"sqlite:///{args.store}" if args.store else build_store(folder, args.events, args.busy)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "shared", "serve", "--store", store, "--port", str(port)],
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5).close()
                break
            except OSError:
                time.sleep(0.2)
        card = f"http://127.0.0.1:{port}/api/ui/#/customer/{derived_customer_id('RetailCustomers', BUSY)}"
        first, more = measure(card, args.runs)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"card of a customer with {args.busy:,} activities, store of {args.events:,} events, {args.runs} runs")
    print(f"first timeline row: median {statistics.median(first):.0f} ms (min {min(first):.0f}, max {max(first):.0f}); target <= 500 ms")
    print(f"next page (Load more): median {statistics.median(more):.0f} ms (min {min(more):.0f}, max {max(more):.0f})")
    if not args.store:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
