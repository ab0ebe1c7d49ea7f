"""`footprint ingest` worker processes: started together, read back, or killed on purpose."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import orjson

from tests.reliability.stores import ROOT, Store, python


def start(
    store: Store, root: Path, paths: Sequence[str], batch_size: int = 5000, **settings: str
) -> subprocess.Popen[bytes]:
    """A `python -m shared ingest` process over `paths` of the export at `root`."""
    env = {**store.process_env(), "FOOTPRINT_BATCH_SIZE": str(batch_size), **settings}
    command = [python(), "-m", "shared", "ingest", "--json", "--relative", "--root", str(root)]
    return subprocess.Popen(
        [*command, *(str(root / p) for p in paths)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(process: subprocess.Popen[bytes], timeout: float = 120) -> list[dict]:
    """The JSON lines a worker printed, one per file; fails on a traceback."""
    out, err = process.communicate(timeout=timeout)
    assert b"Traceback" not in err, err.decode(errors="replace")
    assert process.returncode in (0, 1), (process.returncode, err.decode(errors="replace"))
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


def kill(process: subprocess.Popen[bytes]) -> list[dict]:
    """SIGKILL, then whatever JSON lines the worker managed to print before it died."""
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate(timeout=30)
    lines = []
    for line in out.splitlines():
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            break  # the line it was writing when killed
    return lines
