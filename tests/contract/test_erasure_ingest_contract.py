"""Erasure against later ingests and crashes, every store: reprocessing and rewriting bring
nothing of an erased customer back, and an erasure cut short anywhere is finished by a retry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters.local_files import LocalFileSource
from shared.core.audiences.evaluator import Audiences
from shared.core.erasure.service import erase_customer
from shared.core.erasure.suppressions import holds_value, load_suppression
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import Ports, ingest_file
from tests.e2e import visitors as export
from tests.e2e.export import _write_csv, event
from tests.reliability.digest import Snapshot

CONFIG = bootstrap.load_config(None)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ADA_VISITORS = ("ph-ada", "lp-ada")
OTHERS = (export.BOB, export.CY, export.DEE, None)  # None: the unmatched activities


def _loaded(store, ledger, root: Path) -> Ports:  # type: ignore[no-untyped-def]
    export.write_visitor_export(root)
    ports = Ports(LocalFileSource(root), store, ledger, bootstrap.open_erasures(store))
    assert reconcile(ports, CONFIG).failed == 0
    return ports


def _erase(store, customer_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return erase_customer(store, bootstrap.open_erasures(store), bootstrap.open_audiences(store),
                          Audiences([], []), customer_id, NOW)  # fmt: skip


def _digest_of(store, customer_id: str | None) -> str:  # type: ignore[no-untyped-def]
    """One customer's part of the reliability Snapshot: its activities, record and the links
    to its keys."""
    snap = Snapshot.of(store, [customer_id] if customer_id else [])
    mine = [a for a in snap.activities if a["CustomerId"] == customer_id]
    found = store.get_customer(customer_id) if customer_id else None
    keys = {k.key for k in found.alternate_keys} if found else set()
    visitors = {a["VisitorId"] for a in mine}
    links = [ln for ln in snap.links if ln["visitor_id"] in visitors and ln["key"] in keys]
    return dataclasses.replace(snap, activities=mine, rejects=[], links=links).digest


def _nothing_of_ada(store, extra_visitors: tuple[str, ...] = ()) -> None:  # type: ignore[no-untyped-def]
    assert store.get_customer(export.ADA) is None
    gone = {*ADA_VISITORS, *extra_visitors}
    for a in store.list_activities(None, False, None):
        assert a.customer_id != export.ADA and a.activity_foreign_key != "R-1", a
        assert a.visitor_id not in gone, a
    assert all(store.visitor_links(v) == [] for v in gone)
    assert all(link.key != "R-1" for link in store.visitor_links("tv-home"))
    assert not [r for r in store.list_rejects(None) if holds_value(r.excerpt, ["R-1", *gone])]


def test_reprocessing_and_rewriting_bring_nothing_of_an_erased_customer_back(backend, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, ledger = backend
    ports = _loaded(store, ledger, tmp_path / "export")
    before = {c: _digest_of(store, c) for c in OTHERS}
    receipt = _erase(store, export.ADA)
    assert receipt["Removed"]["visitors"] == 2 and receipt["Removed"]["activities"] == 6
    _nothing_of_ada(store)
    for name in (export.FIRST_FILE, export.SECOND_FILE, export.CUSTOMERS_FILE, export.LATE_FILE):
        assert ingest_file(ports, CONFIG, name, force=True).status == "done"
    _nothing_of_ada(store)
    assert {name: ledger.latest(name).counts.suppressed for name in
            (export.FIRST_FILE, export.SECOND_FILE, export.CUSTOMERS_FILE, export.LATE_FILE)} == {
        export.FIRST_FILE: 4, export.SECOND_FILE: 2, export.CUSTOMERS_FILE: 1, export.LATE_FILE: 0}  # fmt: skip
    # A new version of the first file, with more of Ada: by her phone, and signed in on a new one.
    more = [event("a4", "2021-09-28T14:58:00Z", "ph-ada"), event("a5", "2021-09-28T14:59:00Z", "ph-new", "R-1"),
            ("x9", "ph-ada", "R-1")]  # a broken row of hers: a reject holding her ids
    _write_csv(tmp_path / "export" / export.FIRST_FILE, export.FIRST + more)
    report = ingest_file(ports, CONFIG, export.FIRST_FILE)
    assert report.status == "done" and report.counts.suppressed == 7 and report.counts.rejected == 0
    assert report.to_record()["suppressed"] == 7
    _nothing_of_ada(store, ("ph-new",))
    assert {c: _digest_of(store, c) for c in OTHERS} == before


class Crash(BaseException):
    """A process dying mid-erasure: no `except Exception` catches it."""


# Every call by which an erasure changes a store, in the order the service makes them.
STEPS = ("suppress", "erase_activities", "erase_rejects", "erase_links", "save_audiences",
         "anonymize_changes", "record_erasure", "erase_customer_rows")  # fmt: skip


class _Dying:
    """A store whose `k`-th changing call (counted across the wrappers sharing `calls`) dies
    before it lands."""

    def __init__(self, inner: Any, calls: list[str], k: int) -> None:
        self.inner, self.calls, self.k = inner, calls, k

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if name not in STEPS:
            return found

        def step(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if len(self.calls) == self.k + 1:
                raise Crash(name)
            return found(*args, **kwargs)

        return step


def _everything(store) -> Snapshot:  # type: ignore[no-untyped-def]
    return Snapshot.of(store, [export.ADA, *OTHERS[:-1]])


@pytest.mark.parametrize("k", range(len(STEPS)))
def test_an_erasure_cut_short_at_any_step_is_finished_by_a_retry(backend_factory, tmp_path, k) -> None:  # type: ignore[no-untyped-def]
    clean_store, clean_ledger = backend_factory()
    _loaded(clean_store, clean_ledger, tmp_path / "clean")
    clean_receipt = _erase(clean_store, export.ADA)
    store, ledger = backend_factory()
    _loaded(store, ledger, tmp_path / "export")
    calls: list[str] = []
    erasures = _Dying(bootstrap.open_erasures(store), calls, k)
    audiences = _Dying(bootstrap.open_audiences(store), calls, k)
    with pytest.raises(Crash):
        erase_customer(store, erasures, audiences, Audiences([], []), export.ADA, NOW)  # type: ignore[arg-type]
    assert calls[-1] == STEPS[k]
    receipt = _erase(store, export.ADA)
    _nothing_of_ada(store)
    assert _everything(store) == _everything(clean_store)
    assert bootstrap.open_erasures(store).erasures() == [receipt]
    assert bootstrap.open_erasures(store).suppressions() != frozenset()
    assert receipt["Removed"]["customerRows"] == clean_receipt["Removed"]["customerRows"]


def test_a_store_nothing_was_erased_from_hashes_nothing(backend, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, ledger = backend
    _loaded(store, ledger, tmp_path / "export")
    erasures = bootstrap.open_erasures(store)
    assert load_suppression(erasures) is None  # no set to look rows up in: rows go by unhashed
    assert erasures.erasure_salt("ab" * 32) == "ab" * 32  # loading made no salt either
    assert all(e.counts.suppressed == 0 for e in ledger.entries())
    erasures.suppress(["h1"])
    assert load_suppression(erasures).salt == "ab" * 32


class _ErasesOnFirstWrite:
    """A store on which a customer is erased (by another process, say) just as an ingest's
    first batch is about to be written: after that ingest read the suppression."""

    def __init__(self, inner: Any, customer_id: str) -> None:
        self.inner, self.customer_id = inner, customer_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, *args: Any, **kwargs: Any) -> int:
        if self.customer_id:
            customer_id, self.customer_id = self.customer_id, ""
            _erase(self.inner, customer_id)
        return self.inner.write(*args, **kwargs)


def test_an_erasure_while_a_file_is_read_leaves_nothing_of_the_customer(backend, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, ledger = backend
    ports = _loaded(store, ledger, tmp_path / "export")
    before = {c: _digest_of(store, c) for c in OTHERS}
    racing = Ports(ports.source, _ErasesOnFirstWrite(store, export.ADA), ledger, bootstrap.open_erasures(store))
    report = ingest_file(racing, CONFIG, export.FIRST_FILE, force=True)
    assert report.status == "done"
    assert report.counts.suppressed == 4  # read anew under the grown suppression: Ada's 4 rows
    _nothing_of_ada(store)
    assert {c: _digest_of(store, c) for c in OTHERS} == before
