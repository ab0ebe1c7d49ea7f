"""Files read and mapped in a forked child (shared/core/forked.py) land exactly as files read in
the process do, broken ones included; a child or parent that fails leaves no process behind."""

from __future__ import annotations

import gzip
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from shared import bootstrap, cli
from shared.adapters.local_files import LocalFileSource
from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from shared.core import forked
from shared.core.errors import ConfigError
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from shared.core.model import FAILED, SourceFile
from shared.settings import Settings
from tests.e2e import export
from tests.reliability.digest import Snapshot

pytestmark = pytest.mark.skipif(not forked.available(), reason="needs fork (Linux)")

CONFIG = bootstrap.load_config(None)
HEADER = "Signal.Export.Id,Signal.Timestamp,Signal.Action.Name,Signal.User.Id\n"
CHILD = IngestOptions(read_in_child_from=0, batch_size=100)
IN_PROCESS = IngestOptions(batch_size=100)


def _events(n: int) -> str:
    return HEADER + "".join(
        f"e{i},2021-09-29T10:{i % 60:02}:00Z,Email promotion,R-{i % 7:03}\n" for i in range(n)
    )


def _open(path: Path) -> tuple[SqliteStore, SqliteLedger]:
    db = SqliteDatabase(path)
    return SqliteStore(db), SqliteLedger(db)


def _picture(store: SqliteStore, ledger: SqliteLedger) -> tuple[Snapshot, dict]:
    ids = {a.customer_id for a in store.list_activities(None, False, None) if a.customer_id}
    counts = {e.path: (e.status, e.counts.to_record(), e.error) for e in ledger.entries()}
    return Snapshot.of(store, ids), counts


def _load_both_ways(root: Path, tmp_path: Path) -> list[tuple[Snapshot, dict]]:
    pictures = []
    for name, options in (("child", CHILD), ("in-process", IN_PROCESS)):
        store, ledger = _open(tmp_path / f"{name}.db")
        try:
            reconcile(Ports(LocalFileSource(root), store, ledger), CONFIG, options)
            pictures.append(_picture(store, ledger))
        finally:
            store.close()
    return pictures


@pytest.mark.parametrize("write", [export.write_cdm_export, export.write_plain_export])
def test_an_export_with_every_tricky_case_lands_the_same_either_way(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "export"
    root.mkdir()
    write(root)
    child, in_process = _load_both_ways(root, tmp_path)
    assert child == in_process
    assert len(child[0].activities) >= 2 and child[0].rejects


def test_a_truncated_gzip_keeps_the_rows_before_the_break_either_way(tmp_path: Path) -> None:
    data = gzip.compress(_events(3000).encode())
    path = tmp_path / "export/EmailPromotion/cut.csv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(data[: len(data) * 2 // 3])
    child, in_process = _load_both_ways(tmp_path / "export", tmp_path)
    assert child == in_process
    [(status, counts, error)] = child[1].values()
    assert status == FAILED and counts["activities"] > 100 and "gzip" in error.lower()


def test_a_file_whose_header_fits_nothing_fails_the_same_either_way(tmp_path: Path) -> None:
    path = tmp_path / "export/EmailPromotion/semicolons.csv"
    path.parent.mkdir(parents=True)
    path.write_text(_events(50).replace(",", ";"))
    child, in_process = _load_both_ways(tmp_path / "export", tmp_path)
    assert child == in_process
    assert [status for status, _, _ in child[1].values()] == [FAILED]


class _DyingStream:
    """A file that ends the process reading it, once it is the forked child reading."""

    def __init__(self, stream: BinaryIO, parent: int) -> None:
        self.stream, self.parent = stream, parent

    def read(self, size: int = -1) -> bytes:
        if os.getpid() != self.parent:
            os._exit(3)
        return self.stream.read(size)

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)


class _DyingSource(LocalFileSource):
    def open(self, path: str) -> tuple[SourceFile, BinaryIO]:
        file, stream = super().open(path)
        return file, _DyingStream(stream, os.getpid())  # type: ignore[return-value]


def test_a_child_that_dies_fails_the_file_for_a_retry_and_leaves_no_process(tmp_path: Path) -> None:
    (tmp_path / "export/EmailPromotion").mkdir(parents=True)
    (tmp_path / "export/EmailPromotion/a.csv").write_text(_events(500))
    store, ledger = _open(tmp_path / "s.db")
    try:
        ports = Ports(_DyingSource(tmp_path / "export"), store, ledger)
        report = ingest_file(ports, CONFIG, "EmailPromotion/a.csv", CHILD)
        assert (report.status, report.retryable) == (FAILED, True)
        assert "ended before" in (report.error or "")
        assert multiprocessing.active_children() == []
        # Read again in the process, the file lands whole.
        ports = Ports(LocalFileSource(tmp_path / "export"), store, ledger)
        assert (
            ingest_file(ports, CONFIG, "EmailPromotion/a.csv", IN_PROCESS).counts.activities == 500
        )
    finally:
        store.close()


class _FailsOnSecondWrite(SqliteStore):
    """The store, until its second batch: then its disk is full, say."""

    writes = 0

    def write(self, *args: object) -> int:  # type: ignore[override]
        self.writes += 1
        if self.writes == 2:
            raise OSError("no space left on device")
        return super().write(*args)  # type: ignore[arg-type]


def test_a_store_that_fails_mid_file_stops_the_child(tmp_path: Path) -> None:
    (tmp_path / "export/EmailPromotion").mkdir(parents=True)
    (tmp_path / "export/EmailPromotion/a.csv").write_text(_events(20_000))
    db = SqliteDatabase(tmp_path / "s.db")
    store, ledger = _FailsOnSecondWrite(db), SqliteLedger(db)
    try:
        ports = Ports(LocalFileSource(tmp_path / "export"), store, ledger)
        report = ingest_file(ports, CONFIG, "EmailPromotion/a.csv", CHILD)
        assert (report.status, report.retryable) == (FAILED, True)
        assert "no space left" in (report.error or "")
        assert multiprocessing.active_children() == []
    finally:
        store.close()


def _writing_to_a_full_pipe(pid: int) -> bool:
    with open(f"/proc/{pid}/wchan") as wchan:  # where the kernel has it wait (Linux)
        return "pipe_write" in wchan.read()


class _FailsOnceThePipeIsFull(SqliteStore):
    """The store fails at its second batch, once the child waits on a full pipe (bounded)."""

    writes = 0

    def write(self, *args: object) -> int:  # type: ignore[override]
        self.writes += 1
        if self.writes == 2:
            (child,) = multiprocessing.active_children()
            for _ in range(600):
                if _writing_to_a_full_pipe(child.pid):  # type: ignore[arg-type]
                    break
                time.sleep(0.1)
            raise OSError("no space left on device")
        return super().write(*args)  # type: ignore[arg-type]


def test_a_store_that_fails_mid_file_stops_the_child_under_the_commands_sigterm_handler(
    tmp_path: Path,
) -> None:
    """As `footprint ingest` runs it: SIGTERM raises in the parent (cli._terminate), and the
    child, forked with that handler, must still end when told to, though its pipe is full."""
    (tmp_path / "export/EmailPromotion").mkdir(parents=True)
    (tmp_path / "export/EmailPromotion/a.csv").write_text(_events(100_000))
    db = SqliteDatabase(tmp_path / "s.db")
    store, ledger = _FailsOnceThePipeIsFull(db), SqliteLedger(db)

    def hung(signum: int, frame: object) -> None:
        raise AssertionError("the child did not end when the parent stopped reading")

    before = signal.signal(signal.SIGTERM, cli._terminate)
    signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)  # a bound for a slow machine; it ends in well under a second
    try:
        ports = Ports(LocalFileSource(tmp_path / "export"), store, ledger)
        report = ingest_file(ports, CONFIG, "EmailPromotion/a.csv", CHILD)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, before)
        store.close()
    assert (report.status, report.retryable) == (FAILED, True)
    assert multiprocessing.active_children() == []


def test_the_setting_turns_the_child_on_only_for_local_files_into_sqlite(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "s.db")
    local = Ports(LocalFileSource(tmp_path), SqliteStore(db), SqliteLedger(db))
    memory, memory_ledger = bootstrap.open_store("memory:", Settings.from_env({}))
    elsewhere = Ports(LocalFileSource(tmp_path), memory, memory_ledger)
    try:
        chosen = {
            (value, name): bootstrap.ingest_options(
                Settings.from_env({"FOOTPRINT_READ_IN_CHILD_BYTES": value} if value else {}),
                ports=ports,
            ).read_in_child_from
            for value in ("", "0", "1")
            for name, ports in (("sqlite", local), ("memory", elsewhere), ("none", None))
        }
    finally:
        db.close()
    assert chosen == {
        ("", "sqlite"): 4 * 1024 * 1024, ("", "memory"): None, ("", "none"): None,
        ("0", "sqlite"): None, ("0", "memory"): None, ("0", "none"): None,
        ("1", "sqlite"): 1, ("1", "memory"): None, ("1", "none"): None,
    }  # fmt: skip
    with pytest.raises(ConfigError, match="FOOTPRINT_READ_IN_CHILD_BYTES"):
        Settings.from_env({"FOOTPRINT_READ_IN_CHILD_BYTES": "-1"})
