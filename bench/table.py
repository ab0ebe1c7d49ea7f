"""The one table `make bench` prints."""

from __future__ import annotations

import dataclasses
import os
import platform


@dataclasses.dataclass(frozen=True)
class Row:
    what: str
    count: int
    unit: str  # what `count` counts: events, rows, activities
    seconds: float
    rss_mb: float | None
    note: str = ""


def print_table(rows: list[Row], events: int, customers: int) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nfootprint bench: {events:,} events + {customers:,} customers, "
          f"{os.cpu_count()} CPUs (load {load}), Python {platform.python_version()}\n")  # fmt: skip
    width = max(len(r.what) for r in rows)
    print(f"{'measurement':<{width}}  {'N':>10}  {'seconds':>8}  {'per second':>18}  "
          f"{'peak RSS':>9}  notes")  # fmt: skip
    print("-" * (width + 62))
    for r in rows:
        rate = f"{r.count / r.seconds:,.0f} {r.unit}/s" if r.seconds else "-"
        rss = f"{r.rss_mb:,.0f} MB" if r.rss_mb is not None else "-"
        print(f"{r.what:<{width}}  {r.count:>10,}  {r.seconds:>8.2f}  {rate:>18}  {rss:>9}  "
              f"{r.note}")  # fmt: skip
