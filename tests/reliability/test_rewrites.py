"""A file written again replaces what its earlier version wrote; what other files hold stays.

A store keeps one copy of a record several files hold; when the file holding that copy is
rewritten without it, the files whose copies it beat are read again, so their copy comes back.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import pytest

from shared.adapters.local_files import LocalFileSource
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from tests.reliability import summary
from tests.reliability.digest import Snapshot, compare
from tests.reliability.stores import CONFIG, Backend, Stopwatch, later

HEADER = "Signal.Export.Id,Signal.Timestamp,Signal.Action.Name,Signal.User.Id\n"
CUSTOMERS = "CustomerRetailId,FullName\n"


def _write(path: Path, text: str, version: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(version * 10**9, version * 10**9))  # a new ETag for each version


def _record(backend: Backend, want: list[str], got: list[str], ok: bool) -> None:
    lost = len(set(want) - set(got))
    summary.record(f"7 rewrites of overlapping files / {backend.name}", ok, lost, len(got) - len(set(got)))


def test_a_rewrite_dropping_a_shared_event_keeps_the_other_files_copy(backend: Backend, tmp_path: Path) -> None:
    event = "x,2021-09-29T10:00:00Z,Email promotion,R-001\n"
    _write(tmp_path / "EmailPromotion/a.csv", HEADER + event, 1)
    _write(tmp_path / "EmailPromotion/b.csv", HEADER + event + event.replace("x,", "y,"), 1)
    _write(tmp_path / "RetailCustomers/a.csv", CUSTOMERS + "R-001,Ada\n", 1)
    _write(tmp_path / "RetailCustomers/b.csv", CUSTOMERS + "R-001,Ada B\nR-002,Bram\n", 1)
    store, ledger = backend.fresh().open()
    ports = Ports(LocalFileSource(tmp_path), store, ledger)
    try:
        for path in ("EmailPromotion/a.csv", "EmailPromotion/b.csv", "RetailCustomers/a.csv", "RetailCustomers/b.csv"):
            assert ingest_file(ports, CONFIG, path).status == "done"
        _write(tmp_path / "EmailPromotion/b.csv", HEADER + event.replace("x,", "y,"), 2)
        _write(tmp_path / "RetailCustomers/b.csv", CUSTOMERS + "R-002,Bram\n", 2)
        for path in ("EmailPromotion/b.csv", "RetailCustomers/b.csv"):
            assert ingest_file(ports, CONFIG, path).status == "done"
        events = sorted(a.source_activity_id for a in store.list_activities(None, False, None))
        names = [c.attributes.get("FullName") for c in store.search_customers("R-001", 10)]
        # A clean run over a.csv and the new b.csv has x (from a.csv) and R-001 (from a.csv).
        _record(backend, ["x", "y"], events, (events, names) == (["x", "y"], ["Ada"]))
        assert (events, names) == (["x", "y"], ["Ada"])
    finally:
        store.close()


@pytest.mark.parametrize("dies", [False, True], ids=["lives", "dies after the forget"])
def test_a_rewrite_while_another_worker_reads_the_overlapping_file_keeps_its_copy(
    backend: Backend, tmp_path: Path, dies: bool
) -> None:
    event = "x,2021-09-29T10:00:00Z,Email promotion,R-001\n"
    _write(tmp_path / "EmailPromotion/a.csv", HEADER + event, 1)
    _write(tmp_path / "EmailPromotion/b.csv", HEADER + event, 1)
    store, ledger = backend.fresh().open()
    source = LocalFileSource(tmp_path)
    try:
        for path in ("EmailPromotion/a.csv", "EmailPromotion/b.csv"):
            assert ingest_file(Ports(source, store, ledger), CONFIG, path).status == "done"
        # Another worker holds a.csv now (forced again), its copy of x already written and
        # beaten by b.csv's; b.csv is rewritten without x meanwhile, by a worker that may die
        # right after forgetting b.csv's first version.
        [a_entry] = [e for e in ledger.entries() if e.path == "EmailPromotion/a.csv"]
        far = "2999-01-01T00:00:00.000Z"
        assert ledger.claim(a_entry.path, a_entry.etag, "2021-01-01T00:00:00.000Z", far, force=True)
        _write(tmp_path / "EmailPromotion/b.csv", HEADER, 2)
        rewriter = _DiesOnFirstWrite(store) if dies else store
        with contextlib.suppress(_Crash):
            ingest_file(Ports(source, rewriter, ledger), CONFIG, "EmailPromotion/b.csv")  # type: ignore[arg-type]
        if dies:
            assert store.list_activities(None, False, None) == []  # x is gone for now
            options = IngestOptions(clock=later(901), retry_base_seconds=0)
            reconcile(Ports(source, store, ledger), CONFIG, options)
        assert ledger.get("EmailPromotion/b.csv", _etag(source, "EmailPromotion/b.csv")).status == "done"  # type: ignore[union-attr]
        events = [(a.source_activity_id, a.source_file) for a in store.list_activities(None, False, None)]
        _record(backend, ["x"], [e for e, _ in events], events == [("x", "EmailPromotion/a.csv")])
        assert events == [("x", "EmailPromotion/a.csv")]
    finally:
        store.close()


def _etag(source: LocalFileSource, path: str) -> str:
    return source.stat(path).etag


# Case 7: files that hold copies of the same events and customer rows, rewritten over and over
# in any order, some rewrites dying right after the old version was forgotten; the reconciler
# then runs. The store must equal a clean run over the final files.
TRIALS = {"sqlite": 12, "azure-tables": 3}
EVENTS = [f"e{n}" for n in range(10)]
KEYS = [f"R-{n:03}" for n in range(1, 6)]


class _Crash(BaseException):
    """The worker dying: nothing after it runs, as with SIGKILL (except no lease is freed)."""


class _DiesOnFirstWrite:
    """The store, until the first write of a load: then the worker dies."""

    def __init__(self, store: object) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def write(self, *args: object) -> int:
        raise _Crash


def _version(rng: random.Random, n: int, path: str, number: int) -> str:
    if path.startswith("EmailPromotion/"):
        rows = [f"{e},2021-09-29T10:00:{n:02}Z,Promotion {n}.{number},{rng.choice(KEYS)}\n"
                for e in rng.sample(EVENTS, rng.randint(0, 6))]  # fmt: skip
        return HEADER + "".join(rows)
    rows = [f"{k},Name {n}.{number}\n" for k in rng.sample(KEYS, rng.randint(0, 4))]
    return CUSTOMERS + "".join(rows)


def _picture(store: object) -> Snapshot:
    ids = {c.customer_id for k in KEYS for c in store.search_customers(k, 10)}  # type: ignore[attr-defined]
    return Snapshot.of(store, ids)  # type: ignore[arg-type]


def test_overlapping_files_rewritten_in_any_order_match_a_clean_run(
    backend: Backend, tmp_path: Path
) -> None:
    case = f"7 rewrites of overlapping files / {backend.name}"
    paths = [f"{folder}/f{n}.csv" for folder in ("EmailPromotion", "RetailCustomers") for n in range(4)]
    failures = []
    for trial in range(TRIALS[backend.name]):
        watch = Stopwatch()
        rng = random.Random(f"rewrites-{trial}")
        root = tmp_path / f"trial-{trial}"
        for n, path in enumerate(paths):
            _write(root / path, _version(rng, n, path, 1), 1)
        store, ledger = backend.fresh().open()
        source = LocalFileSource(root)
        try:
            for path in rng.sample(paths, len(paths)):
                ingest_file(Ports(source, store, ledger), CONFIG, path)
            for number in range(2, 6):
                changed = rng.sample(paths, rng.randint(1, 4))
                for path in changed:
                    _write(root / path, _version(rng, paths.index(path), path, number), number)
                for path in changed:
                    dying = rng.random() < 0.25
                    ports = Ports(source, _DiesOnFirstWrite(store) if dying else store, ledger)  # type: ignore[arg-type]
                    with contextlib.suppress(_Crash):
                        ingest_file(ports, CONFIG, path)
            options = IngestOptions(clock=later(901), retry_base_seconds=0)
            reconcile(Ports(source, store, ledger), CONFIG, options)
            got = _picture(store)
        finally:
            store.close()
        clean_store, clean_ledger = backend.fresh().open()
        try:
            reconcile(Ports(source, clean_store, clean_ledger), CONFIG, IngestOptions())
            want = _picture(clean_store)
        finally:
            clean_store.close()
        diff = compare(want, got)
        summary.record(case, diff.ok, diff.lost, diff.duplicated, watch.seconds)
        if not diff.ok:
            failures.append((trial, diff))
    assert not failures, failures
