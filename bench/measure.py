"""Running one measured step in a child process: wall seconds, peak RSS, and what it printed."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float
    output: str
    child_rss_mb: float = 0.0  # the largest child's peak, pages shared with the parent included


def child(module: str, *args: str) -> Run:
    """`python -m MODULE ARGS` from the repository root, with no FOOTPRINT_ settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        env["BENCH_PEAK_FILE"] = peak = str(Path(tmp) / "peak")
        command = [sys.executable, "-m", "bench.peak", module, *args]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, check=False)
        seconds = time.perf_counter() - started
        output = done.stdout.decode()
        if done.returncode != 0:
            raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{output}")
        own, children = (int(kib) / 1024 for kib in Path(peak).read_text().split())
        return Run(seconds, own, output, children)


def footprint_ingest(root: Path, store: Path, *paths: str) -> Run:
    """`footprint ingest` of files of an export into a SQLite store."""
    return child(
        "shared", "ingest", "--root", str(root), *(str(root / p) for p in paths),
        "--json", "--store", f"sqlite:///{store}",
    )  # fmt: skip
