"""Issue 15, items 1 and 2: a worker stopped in the middle of a large file. Killed, its reader
child ends with it and its file is taken over one short lease later; interrupted (Ctrl-C,
SIGTERM), it lets the file go at once; working, it keeps its claim however long the file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.adapters.local_files import LocalFileSource
from shared.core import queries
from shared.core.ingest.service import IngestOptions, Ports, ingest_file, is_due, iso
from shared.core.model import DONE, FAILED, RUNNING, SKIPPED, LedgerEntry
from shared.core.ports import Ledger
from tests.reliability import summary, workers
from tests.reliability.processes import (
    BIG_FILE,
    DEADLINE_SECONDS,
    children,
    ended,
    wait_for,
    write_big_export,
)
from tests.reliability.stores import CONFIG, Backend, Stopwatch, Store, later

# Every file through the forked reader (SQLite only); rows enough that it is mid-file when
# stopped, batches small enough that the worker writes many times.
READER = {"FOOTPRINT_READ_IN_CHILD_BYTES": "1"}
ROWS = {"sqlite": 200_000, "azure-tables": 5_000}
BATCH = {"sqlite": 500, "azure-tables": 20}


def _etag(root: Path) -> str:
    return LocalFileSource(root).stat(BIG_FILE).etag


def _running(ledger: Ledger, root: Path) -> LedgerEntry | None:
    entry = ledger.get(BIG_FILE, _etag(root))
    return entry if entry is not None and entry.status == RUNNING else None


def _start_mid_file(backend: Backend, store: Store, root: Path, ledger: Ledger):  # type: ignore[no-untyped-def]
    """A worker on the large file, once it holds the file (and, on SQLite, forked its reader)."""
    worker = workers.start(store, root, [BIG_FILE], BATCH[backend.name], **READER)
    wait_for(lambda: _running(ledger, root), "the worker claimed the file")
    reader = None
    if backend.name == "sqlite":
        reader = wait_for(lambda: children(worker.pid), "the reader child forked")[0]
    return worker, reader


def _end_reader(reader: int | None) -> bool:
    """Whether the reader ended by itself; it is killed either way, not to outlive the test."""
    if reader is None:
        return True
    try:
        wait_for(lambda: ended(reader), "the reader child ended", DEADLINE_SECONDS / 2)
        return True
    except AssertionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(reader, signal.SIGKILL)
        return False


def test_a_killed_ingest_leaves_no_reader_behind_and_its_output_ends(tmp_path: Path) -> None:
    case = "15.1 ingest killed mid-file: its reader ends, its output closes / sqlite"
    watch, backend = Stopwatch(), Backend("sqlite", tmp_path)
    root = write_big_export(tmp_path / "export", ROWS["sqlite"])
    store = backend.fresh()
    profile, ledger = store.open()
    try:
        worker, reader = _start_mid_file(backend, store, root, ledger)
        worker.send_signal(signal.SIGKILL)
        try:  # the command's stdout reaches its end: no child holds it open
            worker.communicate(timeout=DEADLINE_SECONDS)
            output_ended = True
        except Exception:
            output_ended = False
        reader_ended = _end_reader(reader)
        worker.communicate(timeout=DEADLINE_SECONDS)
    finally:
        profile.close()
    summary.record(case, output_ended and reader_ended, seconds=watch.seconds)
    assert output_ended, "the killed command's stdout stayed open"
    assert reader_ended, "the reader child outlived its parent"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_ingest_lets_its_file_go_at_once_and_ends_its_reader(
    signum: signal.Signals, backend: Backend, tmp_path: Path
) -> None:
    case = f"15.2 ingest stopped by {signum.name}: file due again at once / {backend.name}"
    watch = Stopwatch()
    root = write_big_export(tmp_path / "export", ROWS[backend.name])
    store = backend.fresh()
    profile, ledger = store.open()
    try:
        worker, reader = _start_mid_file(backend, store, root, ledger)
        worker.send_signal(signum)
        try:
            _, err = worker.communicate(timeout=DEADLINE_SECONDS)
        finally:
            reader_ended = _end_reader(reader)
        entry = ledger.get(BIG_FILE, _etag(root))
        now = datetime.now(UTC)
        # The next run, straight away, takes the file and finishes it.
        report = ingest_file(Ports(LocalFileSource(root), profile, ledger), CONFIG, BIG_FILE)
    finally:
        profile.close()
    released = entry is not None and (entry.status, entry.error) == (FAILED, "interrupted")
    due = released and is_due(entry, iso(now)) and not entry.permanent
    passed = worker.returncode == 128 + signum and reader_ended and due and report.status == DONE
    summary.record(case, passed, seconds=watch.seconds)
    assert worker.returncode == 128 + signum, err.decode(errors="replace")
    assert b"Traceback" not in err, err.decode(errors="replace")
    assert reader_ended, "the reader child outlived the interrupted command"
    assert due, entry
    assert report.status == DONE, report


def test_a_killed_workers_file_is_taken_over_once_its_short_lease_ends(
    backend: Backend, tmp_path: Path
) -> None:
    case = f"15.2 worker killed mid-file: taken over after one lease / {backend.name}"
    watch = Stopwatch()
    root = write_big_export(tmp_path / "export", ROWS[backend.name])
    store = backend.fresh()
    profile, ledger = store.open()
    try:
        worker, reader = _start_mid_file(backend, store, root, ledger)
        worker.send_signal(signal.SIGKILL)
        try:
            worker.communicate(timeout=DEADLINE_SECONDS)
        finally:
            _end_reader(reader)
        held = ledger.get(BIG_FILE, _etag(root))
        shown = queries.status(ledger, profile)["running"]
        ports = Ports(LocalFileSource(root), profile, ledger)
        now = ingest_file(ports, CONFIG, BIG_FILE)
        # A minute on (the default lease, which the dead worker no longer renews): taken over.
        after = ingest_file(ports, CONFIG, BIG_FILE, IngestOptions(clock=later(61)))
    finally:
        profile.close()
    says_when = now.status == SKIPPED and f"expires at {held.not_before}" in (now.reason or "")
    holder_known = held.status == RUNNING and (held.holder or "").endswith(f":{worker.pid}")
    holder_known = holder_known and shown == [
        {"path": BIG_FILE, "holder": held.holder, "lease_until": held.not_before}
    ]
    summary.record(case, says_when and holder_known and after.status == DONE, seconds=watch.seconds)
    assert holder_known, (held, shown)
    assert says_when, now
    assert after.status == DONE, after


class _Rival:
    """A store that lets the fake clock run between the worker's batches, and, at each,
    has another worker try to take the file: the worker must keep it while it works."""

    def __init__(self, inner, ledger: Ledger, path: str, etag: str, step: timedelta) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.ledger, self.path, self.etag, self.step = inner, ledger, path, etag, step
        self.now = datetime.now(UTC)
        self.won, self.tries = 0, 0

    def clock(self) -> datetime:
        return self.now

    def write(self, activities, customers, rejects, links=()) -> int:  # type: ignore[no-untyped-def]
        self.now += self.step
        self.tries += 1
        lease = iso(self.now + timedelta(seconds=60))
        self.won += self.ledger.claim(self.path, self.etag, iso(self.now), lease) is not None
        return self.inner.write(activities, customers, rejects, links)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_a_working_worker_keeps_its_claim_far_past_one_lease(
    backend: Backend, tmp_path: Path
) -> None:
    case = f"15.2 heartbeat: a long file keeps its claim (injected clock) / {backend.name}"
    watch = Stopwatch()
    root = write_big_export(tmp_path / "export", 2_000)
    profile, ledger = backend.fresh().open()
    try:
        rival = _Rival(profile, ledger, BIG_FILE, _etag(root), timedelta(seconds=25))
        options = IngestOptions(clock=rival.clock, batch_size=50)
        report = ingest_file(Ports(LocalFileSource(root), rival, ledger), CONFIG, BIG_FILE, options)  # type: ignore[arg-type]
    finally:
        profile.close()
    # 40 batches 25 s apart: 1,000 s of work against a lease of 60 s (900 s before).
    passed = report.status == DONE and rival.won == 0 and rival.tries >= 40
    summary.record(case, passed, seconds=watch.seconds)
    assert rival.tries >= 40, rival.tries
    assert rival.won == 0 and report.status == DONE, (rival.won, report)


# A process whose first pool thread is interrupted just after it started, before the pool
# knew of it: where SIGTERM found the Azure worker as its first table write began.
_INTERRUPTED_AS_A_THREAD_STARTS = """
import signal, threading
from shared.adapters.azure.table_access import InterruptSafePool

started = threading.Thread.start

def start(self):
    started(self)
    signal.raise_signal(signal.SIGINT)

threading.Thread.start = start
pool = InterruptSafePool(4)
try:
    pool.submit(print, "work done", flush=True).result()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_an_interrupt_as_a_pool_thread_starts_lets_the_process_end() -> None:
    """Issue 15.2: SIGTERM while the table pool started a thread left that thread unknown to
    the pool; the interrupted command printed its line and then hung at exit for ever."""
    case = "15.2 interrupt as a table pool thread starts: the process ends"
    watch = Stopwatch()
    child = subprocess.Popen([sys.executable, "-c", _INTERRUPTED_AS_A_THREAD_STARTS], cwd=workers.ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=workers.interruptible)  # fmt: skip
    try:
        out, err = child.communicate(timeout=DEADLINE_SECONDS)
        ended_by_itself = True
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        ended_by_itself = False
    summary.record(case, ended_by_itself and b"interrupted" in out, seconds=watch.seconds)
    assert ended_by_itself, "the interrupted process hung at exit, waiting for a pool thread"
    assert b"interrupted" in out and child.returncode == 0, (out, err)


# A reader child told to end (SIGTERM, as the parent ends it when interrupted) before its own
# signal handling is set: where Ctrl-C found the ingest as it forked its reader.
_ENDED_AS_THE_READER_STARTS = """
import os, signal
from multiprocessing import util
from shared import cli
from shared.core import forked
from shared.core.errors import TransientError

signal.signal(signal.SIGTERM, cli._terminate)  # the command's handler, inherited by the fork


class Parent:
    pass


parent = Parent()
util.register_after_fork(parent, lambda _: os.kill(os.getpid(), signal.SIGTERM))
try:
    for _ in forked.items_from(forked.start(lambda: iter([b"row"]), bytes), bytes, "reading"):
        pass
    print("read", flush=True)
except TransientError:
    print("reader ended", flush=True)
"""


def test_a_reader_ended_as_it_starts_ends_quietly() -> None:
    """Issue 15.2: SIGINT reached the ingest as it forked its reader; the reader, ended at
    once, still ran the command's SIGTERM handler and printed a traceback into its output."""
    case = "15.2 reader ended as it starts: it ends quietly, the parent says so"
    watch = Stopwatch()
    child = subprocess.run([sys.executable, "-c", _ENDED_AS_THE_READER_STARTS], cwd=workers.ROOT,
                           capture_output=True, timeout=DEADLINE_SECONDS)  # fmt: skip
    quiet = b"Traceback" not in child.stderr and child.returncode == 0
    summary.record(case, quiet and child.stdout == b"reader ended\n", seconds=watch.seconds)
    assert b"Traceback" not in child.stderr, child.stderr.decode()
    assert child.stdout == b"reader ended\n" and child.returncode == 0, (child.stdout, child.stderr)
