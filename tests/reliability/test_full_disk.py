"""Issue 15, item 9: the store's disk fills up mid-file. The file is failed for a retry (due
again, its claim let go), the run stops with one line and exit 1, and once there is room
again the next run loads everything."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.adapters.local_files import LocalFileSource
from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import IngestOptions, Ports, is_due, iso
from shared.core.model import DONE, FAILED, RUNNING
from shared.core.ports import Ledger
from tests.reliability import summary, workers
from tests.reliability.processes import BIG_FILE, DEADLINE_SECONDS, write_big_export
from tests.reliability.stores import CONFIG, Stopwatch, Store

SMALL_FILE = "EmailPromotion/small.csv"


def _export(root: Path, rows: int) -> Path:
    """The large file (more than the disk holds), then a small one the run must not try."""
    write_big_export(root, rows)
    lines = (root / BIG_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    (root / SMALL_FILE).write_text(
        "".join(lines[:1] + [line.replace("B-", "S-") for line in lines[1:11]])
    )
    return root


def _due_again(ledger: Ledger, root: Path) -> bool:
    """The file is due again: released at once, or, when even the release found no room on
    a real full disk, held only by its short lease (60 s), so the next run takes it soon."""
    entry = ledger.get(BIG_FILE, LocalFileSource(root).stat(BIG_FILE).etag)
    held = [e for e in ledger.entries() if e.status == RUNNING]
    now = datetime.now(UTC)
    if entry is not None and entry.status == RUNNING and held == [entry]:
        # The worker's lease was 3 s: wait it out (bounded), as the next worker would.
        deadline = time.monotonic() + 60
        while iso(datetime.now(UTC)) <= (entry.not_before or "") and time.monotonic() < deadline:
            time.sleep(0.2)
        return (entry.not_before or "") <= iso(now + timedelta(seconds=4))
    return (
        entry is not None and entry.status == FAILED and not entry.permanent
        and is_due(entry, iso(now)) and not held
    )  # fmt: skip


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of 2 MiB (tmpfs), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def test_a_full_disk_fails_the_file_for_a_retry_and_stops_with_one_line(
    small_disk: Path, tmp_path: Path
) -> None:
    case = "15.9 disk full (tmpfs 2 MiB): file due again, one line, exit 1 / sqlite"
    watch = Stopwatch()
    root = _export(tmp_path / "export", 60_000)
    store = Store("sqlite", {"FOOTPRINT_STORE": f"sqlite:///{small_disk / 'footprint.db'}"})
    worker = workers.start(store, root, [BIG_FILE, SMALL_FILE], FOOTPRINT_LEASE_SECONDS="3")
    _, err = worker.communicate(timeout=DEADLINE_SECONDS)
    said = [
        line for line in err.decode(errors="replace").splitlines() if line.startswith("footprint:")
    ]
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    profile, ledger = store.open()
    try:
        released = _due_again(ledger, root)
        again = workers.start(store, root, [BIG_FILE, SMALL_FILE])
        lines = workers.finish(again)
    finally:
        profile.close()
    one_line = len(said) == 1 and "full" in said[0] and "1 files not tried" in said[0]
    passed = worker.returncode == 1 and one_line and released
    passed = passed and [r["status"] for r in lines] == [DONE, DONE]
    summary.record(case, passed, seconds=watch.seconds)
    assert worker.returncode == 1, err.decode(errors="replace")
    assert b"Traceback" not in err
    assert one_line, said
    assert released
    assert [r["status"] for r in lines] == [DONE, DONE], lines


def test_a_full_store_fails_the_file_for_a_retry_and_stops_the_reconciler(tmp_path: Path) -> None:
    case = "15.9 store full (SQLite max_page_count): file due again, reconcile stops / sqlite"
    watch = Stopwatch()
    root = _export(tmp_path / "export", 20_000)
    db = SqliteDatabase(tmp_path / "store.db")
    # SQLite's own cap on the file's size: the same SQLITE_FULL a full disk gives.
    pages = db.query("PRAGMA page_count")[0][0]
    db.conn.execute(f"PRAGMA max_page_count = {pages + 40}")
    ports = Ports(LocalFileSource(root), SqliteStore(db), SqliteLedger(db))
    try:
        first = reconcile(ports, CONFIG, IngestOptions(batch_size=500))
        released = _due_again(ports.ledger, root)
        db.conn.execute("PRAGMA max_page_count = 1073741823")
        second = reconcile(ports, CONFIG, IngestOptions(batch_size=500))
    finally:
        db.close()
    stopped = (first.failed, first.remaining, first.done) == (1, 1, 0)
    passed = stopped and released and second.done == 2 and second.failed == 0
    summary.record(case, passed, seconds=watch.seconds)
    assert stopped, first.to_record()
    assert released
    assert (second.done, second.failed) == (2, 0), second.to_record()
