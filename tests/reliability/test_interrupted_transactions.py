"""Issue 15, item 2, on SQLite: Ctrl-C at any of a run's transaction boundaries lets the file
in hand go at once. The interrupt is raised where Python delivers a signal that came during a
statement: just after `BEGIN` returned, or just before `COMMIT` runs. Found as a flaky
`test_interruptions` trial under load, where a SIGINT during `BEGIN IMMEDIATE` left that
transaction open with nobody owning it, so the claim's release failed and the file stayed
`running` for a whole lease."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters.local_files import LocalFileSource
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import IngestOptions
from shared.core.model import RUNNING
from tests.reliability import summary
from tests.reliability.corpus import CORPUS
from tests.reliability.digest import Snapshot
from tests.reliability.stores import CONFIG, Backend, Stopwatch, load_clean

BOUNDARIES = ("after BEGIN", "before COMMIT")


class _Interrupting:
    """The store's connection, raising KeyboardInterrupt at the n-th boundary of one kind."""

    def __init__(self, conn: sqlite3.Connection, boundary: str, at: int) -> None:
        self._conn, self._boundary, self._at = conn, boundary, at
        self.seen = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        mine = sql == ("BEGIN IMMEDIATE" if self._boundary == "after BEGIN" else "COMMIT")
        if mine:
            self.seen += 1
        if mine and self.seen == self._at and self._boundary == "before COMMIT":
            raise KeyboardInterrupt
        cursor = self._conn.execute(sql, *args)
        if mine and self.seen == self._at:
            raise KeyboardInterrupt
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _run(store, root: Path, boundary: str, at: int) -> tuple[bool, int, list[str]]:  # type: ignore[no-untyped-def]
    """One interrupted reconcile: whether it was interrupted, the boundaries it passed, and
    the files it left running."""
    profile, ledger = store.open()
    db = ledger.db  # type: ignore[attr-defined]
    conn, db.conn = db.conn, _Interrupting(db.conn, boundary, at)
    interrupted = False
    try:
        reconcile(bootstrap.ports(LocalFileSource(root), profile, ledger, CONFIG), CONFIG, IngestOptions())
    except KeyboardInterrupt:
        interrupted = True
    finally:
        seen, db.conn = db.conn.seen, conn
    try:
        running = [e.path for e in ledger.entries() if e.status == RUNNING]
    finally:
        profile.close()
    return interrupted, seen, running


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_an_interrupt_at_any_transaction_boundary_lets_the_file_go_and_loses_nothing(
    boundary: str, tmp_path: Path
) -> None:
    case = f"15.2 Ctrl-C {boundary} of any transaction: file due again at once / sqlite"
    watch, backend = Stopwatch(), Backend("sqlite", tmp_path)
    reference = load_clean(backend.fresh(), CORPUS, tmp_path / "clean")
    root = CORPUS.write(tmp_path / "export")
    _, total, _ = _run(backend.fresh(), root, boundary, 0)  # counts the boundaries of a run
    problems = []
    for at in range(1, total + 1):  # every one of them
        store = backend.fresh()
        interrupted, _, running = _run(store, root, boundary, at)
        # The next run, straight away and with no lease run out, finishes everything.
        profile, ledger = store.open()
        try:
            reconcile(bootstrap.ports(LocalFileSource(root), profile, ledger, CONFIG), CONFIG, IngestOptions())
            same = Snapshot.of(profile, CORPUS.customer_ids) == reference.snapshot
        finally:
            profile.close()
        passed = interrupted and not running and same
        summary.record(case, passed, seconds=watch.seconds)
        watch = Stopwatch()
        if not passed:
            problems.append((at, interrupted, running, same))
    assert total > 20, total  # the run's files, claims, batches and evaluations
    assert not problems, f"of {total} boundaries, (which, interrupted, left running, same): {problems}"
