"""The reliability summary: one line per case and store, printed after the session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SUMMARY_FILE = ROOT / ".reliability-summary.txt"


@dataclasses.dataclass
class Line:
    case: str
    trials: int = 0
    passed: int = 0
    lost: int = 0
    duplicated: int = 0
    seconds: float = 0.0


LINES: dict[str, Line] = {}


def line(case: str) -> Line:
    """The line of `case`, created on first use; trials add to it."""
    return LINES.setdefault(case, Line(case))


def record(case: str, passed: bool, lost: int = 0, duplicated: int = 0, seconds: float = 0.0) -> None:
    entry = line(case)
    entry.trials += 1
    entry.passed += int(passed)
    entry.lost += lost
    entry.duplicated += duplicated
    entry.seconds += seconds


def table() -> str:
    header = ("case", "trials", "passed", "activities lost", "activities duplicated", "seconds")
    rows = [
        (e.case, str(e.trials), str(e.passed), str(e.lost), str(e.duplicated), f"{e.seconds:.1f}")
        for e in sorted(LINES.values(), key=lambda e: e.case)
    ]
    total = (
        "total", str(sum(e.trials for e in LINES.values())),
        str(sum(e.passed for e in LINES.values())), str(sum(e.lost for e in LINES.values())),
        str(sum(e.duplicated for e in LINES.values())), f"{sum(e.seconds for e in LINES.values()):.1f}",
    )  # fmt: skip
    widths = [max(len(r[i]) for r in (header, *rows, total)) for i in range(len(header))]

    def fmt(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(header), rule, *map(fmt, rows), rule, fmt(total)])
