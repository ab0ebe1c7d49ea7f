"""A worker that dies or is stopped inside a file, after its writes and before it evaluated
their customers again, leaves no measure or membership stale once the next worker has taken
the file over and the reconciler has run (SPEC §9 "kept current"; every store).

The hard case is a customer only the dead worker knew of: another file's copy of an event it
replaced moved the event to another customer, and the old one is named by nothing the file
holds. Its next attempt sees the file's own copy, so the dead worker's knowledge is gone."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared import bootstrap
from shared.adapters.local_files import LocalFileSource
from shared.core.audiences.touched import Touched
from shared.core.audiences.upkeep import SUSPECT, ByFile
from shared.core.ingest.claims import iso
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from shared.core.model import DONE, FAILED, RUNNING
from tests.contract.test_upkeep_property import AUDIENCES, CONFIG, NOW, _fresh
from tests.e2e.export import _write_csv, event


class Died(BaseException):
    """A death the worker cannot handle, as SIGKILL is: nothing after it runs."""


class DiesOnce(ByFile):
    """The upkeep of a worker stopped (`death`) the first time it evaluates a file's customers."""

    def __init__(self, *args, death: type[BaseException], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.death: type[BaseException] | None = death

    def evaluate(self, touched: Touched) -> None:
        if self.death is not None:
            death, self.death = self.death, None
            raise death()
        super().evaluate(touched)


def _ticking() -> object:
    """A clock a second on at each reading: every evaluation at an instant of its own."""
    seconds = itertools.count()
    return lambda: NOW + timedelta(seconds=next(seconds))


def _write(root: Path, path: str, rows: list[tuple[str, ...]], version: int) -> None:
    target = root / path
    if path.startswith("RetailCustomers/"):
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = ["CustomerRetailId,FullName,Email,City", *(f"{k},N {k},{k}@example.com,Oslo" for k in rows)]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        _write_csv(target, rows)
    os.utime(target, (1_600_000_000 + version, 1_600_000_000 + version))


@pytest.mark.parametrize("death", [Died, KeyboardInterrupt], ids=["killed", "interrupted"])
def test_a_worker_stopped_before_evaluating_leaves_no_customer_stale(store, ledger, tmp_path, death) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "export"
    audiences_store = bootstrap.open_audiences(store)
    clock = _ticking()
    healthy = Ports(LocalFileSource(root), store, ledger, upkeep=ByFile(store, audiences_store, AUDIENCES, clock))
    _write(root, "RetailCustomers/c.csv", ["R-1", "R-2"], 0)  # type: ignore[arg-type]
    _write(root, "EmailPromotion/a.csv", [event("e1", "2021-09-30T12:00:00Z", "v1", "R-1"),
                                          event("e2", "2021-09-30T13:00:00Z", "v1", "R-1")], 1)  # fmt: skip
    for path in ("RetailCustomers/c.csv", "EmailPromotion/a.csv"):
        assert ingest_file(healthy, CONFIG, path, IngestOptions()).status == DONE
    r1 = next(c for c, (m, _) in _fresh(store, audiences_store).items() if m["Clicks"] == 2)
    assert audiences_store.stored_audiences([r1])[r1].segments == ("Clickers", "OsloClickers")

    # b.csv's copy of e1 (a greater file name) moves it to R-2; the worker stops before R-1
    # is evaluated again.
    _write(root, "EmailPromotion/b.csv", [event("e1", "2021-09-30T12:00:00Z", "v2", "R-2")], 2)
    dying = Ports(LocalFileSource(root), store, ledger,
                  upkeep=DiesOnce(store, audiences_store, AUDIENCES, clock, death=death))  # fmt: skip
    with pytest.raises(death):
        ingest_file(dying, CONFIG, "EmailPromotion/b.csv", IngestOptions())
    left = [e for e in ledger.entries() if e.path == "EmailPromotion/b.csv"]
    assert [e.status for e in left] == [RUNNING if death is Died else FAILED]
    assert audiences_store.stored_audiences([r1])[r1].measures["Clicks"] == 2  # stale, for now

    # The next worker, once the dead one's lease ran out: the file again, then the reconciler.
    later = IngestOptions(clock=lambda: datetime.now(UTC) + timedelta(seconds=3600))
    assert ingest_file(healthy, CONFIG, "EmailPromotion/b.csv", later).status == DONE
    assert audiences_store.marks().get(SUSPECT)
    reconcile(healthy, CONFIG, later)
    fresh = _fresh(store, audiences_store)
    stored = audiences_store.stored_audiences(list(fresh))
    assert {c: (s.measures, s.segments) for c, s in stored.items()} == fresh
    assert stored[r1].measures["Clicks"] == 1 and stored[r1].segments == ()
    assert not audiences_store.marks().get(SUSPECT)  # answered: the next pass evaluates no one
    assert audiences_store.stale_customers(AUDIENCES.fingerprint, 10) == []


def test_a_live_workers_claim_is_no_death(store, ledger, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A redelivery meeting a file another worker is still on suspects nothing: no full pass
    for every duplicate event."""
    root = tmp_path / "export"
    audiences_store = bootstrap.open_audiences(store)
    ports = Ports(LocalFileSource(root), store, ledger, upkeep=ByFile(store, audiences_store, AUDIENCES, _ticking()))
    _write(root, "EmailPromotion/a.csv", [event("e1", "2021-09-30T12:00:00Z", "v1", "R-1")], 1)
    file, _ = LocalFileSource(root).open("EmailPromotion/a.csv")
    now = datetime.now(UTC)
    held = ledger.claim(file.path, file.etag, iso(now), iso(now + timedelta(minutes=5)), False, "elsewhere:1")
    assert held is not None
    assert ingest_file(ports, CONFIG, "EmailPromotion/a.csv", IngestOptions()).status == "skipped"
    assert not audiences_store.marks().get(SUSPECT)


def test_an_evaluation_read_before_anothers_write_is_not_stored_after_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two workers on one SQLite store (SPEC §9 kept current, order never matters): one reads a
    customer for an evaluation; another writes an activity of that customer and evaluates it.
    The first must not then store its older reading: its reads and save are one transaction,
    so the other's write waits for it (and is evaluated after it)."""
    import threading

    from shared.adapters.sqlite.ledger import SqliteLedger
    from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
    from shared.core.audiences.upkeep import evaluate_customers

    root = tmp_path / "export"
    first_db, second_db = SqliteDatabase(tmp_path / "store.db"), SqliteDatabase(tmp_path / "store.db")
    try:
        first, second = SqliteStore(first_db), SqliteStore(second_db)
        first_audiences, second_audiences = bootstrap.open_audiences(first), bootstrap.open_audiences(second)
        ports = Ports(LocalFileSource(root), second, SqliteLedger(second_db),
                      upkeep=ByFile(second, second_audiences, AUDIENCES, lambda: NOW))  # fmt: skip
        _write(root, "RetailCustomers/c.csv", ["R-1"], 0)  # type: ignore[arg-type]
        _write(root, "EmailPromotion/a.csv", [event("e1", "2021-09-30T12:00:00Z", "v1", "R-1")], 1)
        for path in ("RetailCustomers/c.csv", "EmailPromotion/a.csv"):
            assert ingest_file(ports, CONFIG, path, IngestOptions()).status == DONE
        (r1,) = first_audiences.customer_ids(None, 10)
        read, written = threading.Event(), threading.Event()

        class ReadsThenWaits(type(first_audiences)):  # type: ignore[misc]
            def evaluation_inputs_of(self, customer_ids, fields=None, apart=False):  # type: ignore[no-untyped-def]
                found = list(super().evaluation_inputs_of(customer_ids, fields, apart))
                read.set()
                written.wait(timeout=2)  # the other worker's write, if it can land now
                return iter(found)

        reader = threading.Thread(target=evaluate_customers,
                                  args=(first, ReadsThenWaits(first_db), AUDIENCES, [r1], NOW))  # fmt: skip
        reader.start()
        assert read.wait(timeout=60)
        _write(root, "EmailPromotion/b.csv", [event("e2", "2021-09-30T13:00:00Z", "v1", "R-1")], 2)
        assert ingest_file(ports, CONFIG, "EmailPromotion/b.csv", IngestOptions()).status == DONE
        written.set()
        reader.join(timeout=60)
        assert first_audiences.stored_audiences([r1])[r1].measures["Clicks"] == 2
    finally:
        first_db.close()
        second_db.close()


@pytest.mark.azurite
def test_an_evaluation_overtaken_by_a_later_one_on_azure_is_evaluated_again(request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Table Storage holds nothing between an evaluation's reads and its save. One worker reads
    a customer's activities; another writes an activity of that customer, evaluates it and
    saves, all before the first saves. The first's save finds a state saved since its reads
    began and evaluates the customer again, so its older reading is never what stays."""
    from shared.core.audiences.upkeep import evaluate_customers
    from tests.contract.conftest import _azure_tables

    store, ledger = _azure_tables(request)
    root = tmp_path / "export"
    try:
        audiences_store = bootstrap.open_audiences(store)
        ports = Ports(LocalFileSource(root), store, ledger, upkeep=ByFile(store, audiences_store, AUDIENCES, lambda: NOW))
        _write(root, "RetailCustomers/c.csv", ["R-1"], 0)  # type: ignore[arg-type]
        _write(root, "EmailPromotion/a.csv", [event("e1", "2021-09-30T12:00:00Z", "v1", "R-1")], 1)
        for path in ("RetailCustomers/c.csv", "EmailPromotion/a.csv"):
            assert ingest_file(ports, CONFIG, path, IngestOptions()).status == DONE
        (r1,) = audiences_store.customer_ids(None, 10)
        reads: list[int] = []

        class OvertakenOnce(type(audiences_store)):  # type: ignore[misc]
            def inputs_of(self, customer_ids):  # type: ignore[no-untyped-def]
                found = super().inputs_of(customer_ids)
                reads.append(len(customer_ids))
                if len(reads) == 1:  # after its first reading of the activities: the other worker
                    _write(root, "EmailPromotion/b.csv", [event("e2", "2021-09-30T13:00:00Z", "v1", "R-1")], 2)
                    assert ingest_file(ports, CONFIG, "EmailPromotion/b.csv", IngestOptions()).status == DONE
                    assert audiences_store.stored_audiences([r1])[r1].measures["Clicks"] == 2
                return found

        evaluate_customers(store, OvertakenOnce(store), AUDIENCES, [r1], NOW)
        assert reads == [1, 1]  # read again, once
        assert audiences_store.stored_audiences([r1])[r1].measures["Clicks"] == 2
        assert audiences_store.segment_members("Clickers", None, 10) == [r1]
    finally:
        store.close()


@pytest.mark.azurite
def test_a_files_customers_on_azure_are_evaluated_in_the_stores_chunks(request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The per-file upkeep evaluates and saves as many customers together as the store says
    (TableAudiences.evaluation_chunk, made 2 here): every one of them current, none saved
    twice, the last chunk a short one."""
    from tests.contract.conftest import _azure_tables

    store, ledger = _azure_tables(request)
    root = tmp_path / "export"
    keys = ["R-1", "R-2", "R-3", "R-4", "R-5"]
    try:
        saved: list[list[str]] = []

        class Chunked(type(bootstrap.open_audiences(store))):  # type: ignore[misc]
            evaluation_chunk = 2

            def save_audiences(self, results, fingerprint, at):  # type: ignore[no-untyped-def]
                saved.append([r.customer_id for r in results])
                return super().save_audiences(results, fingerprint, at)

        audiences_store = Chunked(store)
        ports = Ports(LocalFileSource(root), store, ledger, upkeep=ByFile(store, audiences_store, AUDIENCES, lambda: NOW))
        _write(root, "RetailCustomers/c.csv", keys, 0)  # type: ignore[arg-type]
        assert ingest_file(ports, CONFIG, "RetailCustomers/c.csv", IngestOptions()).status == DONE
        saved.clear()
        clicks = [event(f"e{i}", f"2021-09-30T1{i}:00:00Z", "v1", k) for i, k in enumerate(keys)]
        _write(root, "EmailPromotion/a.csv", clicks, 1)
        assert ingest_file(ports, CONFIG, "EmailPromotion/a.csv", IngestOptions()).status == DONE
        assert [len(ids) for ids in saved] == [2, 2, 1]
        assert sorted(c for ids in saved for c in ids) == sorted(audiences_store.customer_ids(None, 10))
        stored = audiences_store.stored_audiences(audiences_store.customer_ids(None, 10))
        fresh = _fresh(store, audiences_store)
        assert {c: (s.measures, s.segments) for c, s in stored.items()} == fresh
        assert all(m["Clicks"] == 1 for m, _ in fresh.values())
    finally:
        store.close()
