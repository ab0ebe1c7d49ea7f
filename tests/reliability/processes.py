"""Watching worker processes by progress: their children, whether they ended, a large file."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.reliability.corpus import COLUMNS, PROMO

T = TypeVar("T")
# Generous: a machine five times slower than this one still gets there.
DEADLINE_SECONDS = 120.0
BIG_FILE = "EmailPromotion/big.csv"


def wait_for(condition: Callable[[], T], what: str, deadline: float = DEADLINE_SECONDS) -> T:
    """Poll `condition` until it is truthy; fail, naming `what`, past the deadline."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not reached within {deadline:.0f} s: {what}")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[1] == str(pid) and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def ended(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (it runs no more)."""
    fields = _stat(pid)
    return fields is None or fields[0] in ("Z", "X")


def write_big_export(root: Path, rows: int) -> Path:
    """An export of one large plain CSV of promotion clicks (no manifest: the folder names
    the entity), so a worker is surely in the middle of it when a test stops it."""
    target = root / BIG_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for n in range(rows):
            stamp = f"2021-09-28T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
            writer.writerow((f"B-{n}", stamp, "click", PROMO, f"https://shop.example/{n}",
                             "Offer", f"U-{n % 997}", f"R-{n % 301}"))  # fmt: skip
    return root
