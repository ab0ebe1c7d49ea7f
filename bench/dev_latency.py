"""Benchmark: seconds from uploading a file to Azurite until `footprint dev` serves it on the
HTTP timeline.

    python bench/dev_latency.py [--trials 5] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson
from azure.storage.blob import BlobServiceClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.core.mapping import derived_customer_id
from tests.azurite import Azurite, free_port

CUSTOMERS = b"CustomerRetailId,FullName,Email,City\nR-1,Ada Moreno,ada@example.com,Seattle\n"
HEADER = "Signal.Export.Id,Signal.Timestamp,Signal.Name,Signal.Action.Name,Signal.View.Uri,Signal.User.Id,Signal.User.AuthId\n"


def events(trial: int, rows: int) -> bytes:
    lines = [
        f"t{trial}-{n},2021-09-28T14:{n % 60:02d}:00Z,PageAction,Email promotion,https://shop.example.com/{n},R-1,R-1"
        for n in range(rows)
    ]
    return (HEADER + "\n".join(lines) + "\n").encode()


def timeline_count(port: int, customer: str) -> int:
    url = f"http://127.0.0.1:{port}/api/customers/{customer}/activities?limit=500"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return len(orjson.loads(response.read())["activities"])
    except OSError:
        return -1


def serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5):
            return True
    except OSError:
        return False


def wait(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for footprint dev")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--poll", type=float, default=0.5, help="footprint dev --poll")
    args = parser.parse_args()
    azurite = Azurite()
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container("exports")
    port = free_port()
    customer = derived_customer_id("RetailCustomers", "R-1")
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
        dev = subprocess.Popen(
            [sys.executable, "-m", "shared", "dev", "--connection", azurite.connection_string,
             "--port", str(port), "--poll", str(args.poll), "--store", f"sqlite:///{tmp}/dev.db"],
            env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait(lambda: serving(port))
            container.upload_blob("RetailCustomers/customers.csv", CUSTOMERS)
            wait(lambda: timeline_count(port, customer) == 0)
            seconds = []
            for trial in range(args.trials):
                expected = (trial + 1) * args.rows
                started = time.perf_counter()
                container.upload_blob(f"EmailPromotion/2021/09/28/{trial:02d}/part-0001.csv", events(trial, args.rows))
                wait(lambda e=expected: timeline_count(port, customer) >= min(e, 500))
                seconds.append(time.perf_counter() - started)
        finally:
            dev.terminate()
            dev.wait(10)
            azurite.close()
    print(f"footprint dev, upload -> HTTP timeline ({args.rows} rows, poll {args.poll} s, {args.trials} trials)")
    print(f"  median {statistics.median(seconds):.3f} s   max {max(seconds):.3f} s   "
          f"all: {' '.join(f'{s:.3f}' for s in seconds)}")  # fmt: skip


if __name__ == "__main__":
    main()
