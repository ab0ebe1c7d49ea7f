"""Running one measured step in a child process: wall seconds, peak RSS, and what it printed."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float
    output: str
    child_rss_mb: float = 0.0  # the largest child's peak, pages shared with the parent included
    tree_pss_mb: float = 0.0  # the process and its children together, sampled every 100 ms


def child(module: str, *args: str, settings: dict[str, str] | None = None) -> Run:
    """`python -m MODULE ARGS` from the repository root, with no FOOTPRINT_ settings leaking in
    but `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env.update(settings or {})
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        env["BENCH_PEAK_FILE"] = peak = str(Path(tmp) / "peak")
        command = [sys.executable, "-m", "bench.peak", module, *args]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE)
        reader = ThreadPoolExecutor(1).submit(process.stdout.read)  # type: ignore[union-attr]
        tree_pss = 0
        while True:  # sampled lightly, so as not to slow what it measures; ended at once
            tree_pss = max(tree_pss, _tree_pss_kib(process.pid))
            try:
                process.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
        seconds = time.perf_counter() - started
        output = reader.result().decode()
        if process.returncode != 0:
            raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{output}")
        own, children = (int(kib) / 1024 for kib in Path(peak).read_text().split())
        return Run(seconds, own, output, children, tree_pss / 1024)


def _tree_pss_kib(pid: int) -> int:
    """The proportional set size of a process and its children now: shared pages counted once,
    shared out between them (Linux; 0 elsewhere)."""
    total = 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for each in (pid, *map(int, children)):
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    except OSError:  # not Linux, or the process ended meanwhile
        pass
    return total


def footprint_ingest(root: Path, store: Path, *paths: str, **settings: str) -> Run:
    """`footprint ingest` of files of an export into a SQLite store."""
    return child(
        "shared", "ingest", "--root", str(root), *(str(root / p) for p in paths),
        "--json", "--store", f"sqlite:///{store}", settings=settings,
    )  # fmt: skip
