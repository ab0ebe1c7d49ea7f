"""`footprint ingest` worker processes: started together, read back, or killed on purpose."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from tests.reliability.stores import ROOT, Store, python

# Bounds on waiting for a worker, generous for a loaded machine: progress, not speed, is waited for.
PATIENCE_SECONDS = 120.0


def interruptible() -> None:
    """In a child before it runs: Ctrl-C interrupts it, as from a terminal. A suite run in the
    background (by a script, or `make test &`) inherits SIGINT ignored, as a shell leaves it for
    its background jobs, and Python then never turns SIGINT into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(
    store: Store, root: Path, paths: Sequence[str], batch_size: int = 5000, **settings: str
) -> subprocess.Popen[bytes]:
    """A `python -m shared ingest` process over `paths` of the export at `root`."""
    env = {**store.process_env(), "FOOTPRINT_BATCH_SIZE": str(batch_size), **settings}
    command = [python(), "-m", "shared", "ingest", "--json", "--relative", "--root", str(root)]
    return subprocess.Popen(
        [*command, *(str(root / p) for p in paths)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=interruptible,
    )  # fmt: skip


def finish(process: subprocess.Popen[bytes], timeout: float = PATIENCE_SECONDS) -> list[dict]:
    """The JSON lines a worker printed, one per file; fails on a traceback."""
    out, err = process.communicate(timeout=timeout)
    assert b"Traceback" not in err, err.decode(errors="replace")
    assert process.returncode in (0, 1), (process.returncode, err.decode(errors="replace"))
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


class Progress:
    """The files a running worker reports done, read from its output as it prints them."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        # Each line with when it came, in seconds from the start of reading.
        self.reports: list[tuple[float, dict]] = []
        self._started = time.monotonic()
        self.ended = False
        self.errors = b""
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_lines, daemon=True),
            # Drained too, so a worker that logs much never blocks on a full pipe.
            threading.Thread(target=self._drain_errors, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_lines(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                break  # the line it was writing when killed
            with self._changed:
                self.reports.append((time.monotonic() - self._started, record))
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def _drain_errors(self) -> None:
        assert self.process.stderr is not None
        self.errors = self.process.stderr.read()

    def wait_for(self, files: int, timeout: float = PATIENCE_SECONDS) -> int:
        """Block until the worker has reported `files` files done or has ended: how many it has."""
        with self._changed:
            waited = self._changed.wait_for(lambda: len(self.reports) >= files or self.ended, timeout)
            assert waited, f"the worker reported {len(self.reports)} of {files} files in {timeout:.0f} s"
            return len(self.reports)

    def kill(self) -> list[dict]:
        """SIGKILL, then every JSON line the worker managed to print before it died."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=PATIENCE_SECONDS)
        for reader in self._readers:
            reader.join(timeout=PATIENCE_SECONDS)
            assert not reader.is_alive(), "the killed worker's output never ended"
        return [line for _, line in self.reports]
