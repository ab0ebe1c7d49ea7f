"""Property (SPEC §9 kept current): after any order of files and rewrites, each loaded through
the one ingest path with its upkeep, the stored measures and memberships are a fresh
evaluation at now, with no timer run and no refresh between."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared import bootstrap
from shared.adapters.local_files import LocalFileSource
from shared.adapters.memory import MemoryLedger, MemoryStore
from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from shared.core.audiences import side_by_side, upkeep
from shared.core.audiences.measures import Columns
from shared.core.audiences.touched import WatchedStore
from shared.core.audiences.upkeep import ByFile
from shared.core.config import parse_config
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from tests.e2e.export import _write_csv, event

NOW = datetime(2021, 10, 1, tzinfo=UTC)
DEFAULTS = Path(__file__).parents[2] / "shared" / "default_config.json"
CONFIG = parse_config(json.dumps({
    **json.loads(DEFAULTS.read_text()),
    "measures": [
        {"name": "Clicks", "activities": ["EmailPromotionClicks"], "aggregate": "count"},
        {"name": "Recent", "aggregate": "count", "window": "P3D"},
        {"name": "LastVisit", "aggregate": "last", "of": "ActivityTime"},
        {"name": "Pages", "aggregate": "countDistinct", "of": "ExternalUrl"},
    ],
    "segments": [
        {"name": "Clickers", "rule": {"measure": "Clicks", "op": ">=", "value": 2}},
        {"name": "OsloClickers", "rule": {"all": [{"segment": "Clickers"},
                                                   {"attribute": "City", "op": "=", "value": "Oslo"}]}},
        {"name": "Lapsed", "rule": {"not": {"measure": "LastVisit", "op": "within", "value": "P3D"}}},
    ],
}))  # fmt: skip
AUDIENCES = bootstrap.audiences_of(CONFIG)
EVENT_FILES = ["EmailPromotion/a.csv", "EmailPromotion/b.csv"]
CUSTOMER_FILES = ["RetailCustomers/c.csv", "RetailCustomers/d.csv"]
KEYS = ["R-1", "R-2", "R-3"]

events = st.builds(
    lambda eid, day, visitor, key, page: event(
        eid, f"2021-09-{day:02d}T12:00:00Z", visitor, key, uri=f"https://shop.example.com/{page}"
    ),
    st.sampled_from([f"e{n}" for n in range(4)]),
    st.sampled_from([20, 29, 30]),
    st.sampled_from(["v1", "v2", "v3"]),
    st.sampled_from(["", *KEYS]),
    st.sampled_from(["a", "b"]),
)
event_file = st.tuples(st.sampled_from(EVENT_FILES), st.lists(events, max_size=6))
customer_file = st.tuples(
    st.sampled_from(CUSTOMER_FILES),
    st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(["Oslo", "Leeds"])), max_size=3),
)
histories = st.lists(st.one_of(event_file, customer_file), min_size=1, max_size=10)


def _open(kind: str, folder: Path):  # type: ignore[no-untyped-def]
    if kind == "memory":
        return MemoryStore(), MemoryLedger(), None
    db = SqliteDatabase(folder / "store.db")
    return SqliteStore(db), SqliteLedger(db), db


def _write(root: Path, path: str, rows: list, version: int) -> None:  # type: ignore[type-arg]
    target = root / path
    if path.startswith("RetailCustomers/"):
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = ["CustomerRetailId,FullName,Email,City", *(f"{k},N {k},{k}@example.com,{c}" for k, c in rows)]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        _write_csv(target, rows)
    os.utime(target, (1_600_000_000 + version, 1_600_000_000 + version))  # every version is new


@contextlib.contextmanager
def _upkeep_bound(name: str, value: int) -> Iterator[None]:
    """One of upkeep.py's bounds (ORDERED_MIN, EVERYONE_MIN) set for a block."""
    old = getattr(upkeep, name)
    setattr(upkeep, name, value)
    try:
        yield
    finally:
        setattr(upkeep, name, old)


@contextlib.contextmanager
def _side_by_side(on: bool) -> Iterator[None]:
    """Full passes split between two forked children however few the customers (on), or
    never (off)."""
    old = side_by_side.PROCESSES, side_by_side.MIN_CUSTOMERS
    side_by_side.PROCESSES, side_by_side.MIN_CUSTOMERS = (2, 1) if on else (1, old[1])
    try:
        yield
    finally:
        side_by_side.PROCESSES, side_by_side.MIN_CUSTOMERS = old


def _by_id(record: dict) -> str:  # type: ignore[type-arg]
    return str(record["ActivityId"])


def _records(found: Columns) -> list[dict]:  # type: ignore[type-arg]
    """A full pass's activities of a customer as records by id, once seen in the evaluator's
    order: (ActivityTime, ActivityId)."""
    records = found.records()
    assert [(a["ActivityTime"], a["ActivityId"]) for a in records] == sorted(
        (a["ActivityTime"], a["ActivityId"]) for a in records
    )
    return sorted(records, key=_by_id)


def _fresh(profiles, audiences_store):  # type: ignore[no-untyped-def]
    """Every customer's evaluation at NOW, from the store as it is."""
    ids = audiences_store.customer_ids(None, 10_000)
    activities = audiences_store.activities_by_customer(ids)
    fresh = {}
    for customer_id in ids:
        found = AUDIENCES.evaluate(activities[customer_id], profiles.get_customer(customer_id).attributes, NOW)
        fresh[customer_id] = (found.measures, found.segments)
    return fresh


@contextlib.contextmanager
def _bounds(small: bool) -> Iterator[None]:
    """WatchedStore's bounds made tiny: references read into customers after almost every
    batch, those read remembered and forgotten, the customers evaluated in the middle of a file."""
    old = WatchedStore.MAX_REFERENCES, WatchedStore.MAX_CUSTOMERS, WatchedStore.MAX_REMEMBERED
    if small:
        WatchedStore.MAX_REFERENCES, WatchedStore.MAX_CUSTOMERS, WatchedStore.MAX_REMEMBERED = 2, 3, 4
    try:
        yield
    finally:
        WatchedStore.MAX_REFERENCES, WatchedStore.MAX_CUSTOMERS, WatchedStore.MAX_REMEMBERED = old


@pytest.mark.parametrize("kind", ["memory", "sqlite", "sqlite-one-pass", "sqlite-side-by-side", "memory-small-bounds",
                                  "sqlite-small-bounds", "sqlite-everyone", "sqlite-everyone-small-bounds"])  # fmt: skip
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories)
@example(history=[  # v1 signs in as R-1, then visits anonymously: that visit reaches R-1 by its link
    ("RetailCustomers/c.csv", [("R-1", "Oslo")]),
    ("EmailPromotion/a.csv", [event("e1", "2021-09-30T12:00:00Z", "v1", "R-1")]),
    ("EmailPromotion/b.csv", [event("e2", "2021-09-30T13:00:00Z", "v1", "")]),
])
@example(history=[  # another file's copy of e1 moves it from; a rewrite drops it
    ("RetailCustomers/c.csv", [("R-1", "Oslo"), ("R-2", "Oslo")]),
    ("EmailPromotion/a.csv", [event("e1", "2021-09-30T12:00:00Z", "v1", "R-1"),
                              event("e2", "2021-09-30T12:00:00Z", "v1", "R-1")]),
    ("EmailPromotion/b.csv", [event("e1", "2021-09-30T12:00:00Z", "v2", "R-2")]),
    ("EmailPromotion/b.csv", []),
])  # fmt: skip
def test_stored_audiences_equal_a_fresh_evaluation_after_any_files(kind: str, history: list) -> None:  # type: ignore[type-arg]
    # sqlite-one-pass: every file's customers evaluated by the one ordered pass that a file
    # touching many of them (ORDERED_MIN, ORDERED_SHARE) gets, instead of a query each.
    # sqlite-side-by-side: that pass split between two forked children.
    # sqlite-everyone: every file naming a reference evaluated as every customer in one pass
    # (EVERYONE_MIN), its references not read; with small bounds, decided in the middle of a file.
    # -small-bounds: files loaded two rows a batch, with WatchedStore's bounds tiny.
    small = kind.endswith("-small-bounds")
    options = IngestOptions(batch_size=2) if small else IngestOptions()
    one_pass = kind in ("sqlite-one-pass", "sqlite-side-by-side")
    everyone = kind.startswith("sqlite-everyone")
    with tempfile.TemporaryDirectory() as folder, _upkeep_bound("ORDERED_MIN", 1 if one_pass else upkeep.ORDERED_MIN), \
            _bounds(small), _side_by_side(kind == "sqlite-side-by-side"), \
            _upkeep_bound("EVERYONE_MIN", 1 if everyone else upkeep.EVERYONE_MIN):  # fmt: skip
        root = Path(folder) / "export"
        profiles, ledger, db = _open(kind.split("-")[0], Path(folder))
        audiences_store = bootstrap.open_audiences(profiles)
        ports = Ports(LocalFileSource(root), profiles, ledger, upkeep=ByFile(profiles, audiences_store, AUDIENCES, lambda: NOW))
        for version, (path, rows) in enumerate(history):
            _write(root, path, rows, version)
            assert ingest_file(ports, CONFIG, path, options).status == "done"
        fresh = _fresh(profiles, audiences_store)
        stored = audiences_store.stored_audiences(list(fresh))
        assert {c: (s.measures, s.segments) for c, s in stored.items()} == fresh
        assert audiences_store.stale_customers(AUDIENCES.fingerprint, 100) == []  # none gone, none left out
        if hasattr(audiences_store, "evaluation_inputs"):  # the full pass's one ordered read agrees
            ids = list(fresh)
            by_chunk = audiences_store.activities_by_customer(ids)
            attributes = audiences_store.attributes_of(ids)
            want = [(c, sorted(by_chunk[c], key=_by_id), attributes[c]) for c in ids]
            got = [(c, _records(found), attrs) for c, found, attrs in audiences_store.evaluation_inputs()]
            assert got == want
            start = ids[len(ids) // 2] if ids else None  # and from a customer on (a pass resumed)
            got = [(c, _records(found), attrs) for c, found, attrs in audiences_store.evaluation_inputs(start)]
            assert got == want[len(ids) // 2 :]
            fields = AUDIENCES.fields  # and read as only the fields the measures read
            only = [(c, [{f: a[f] for f in fields} for a in found], attrs) for c, found, attrs in want]
            got = [(c, _records(found), attrs) for c, found, attrs in audiences_store.evaluation_inputs(None, fields)]
            assert got == only
            # and a run of customers, read on connections of its own (a forked child's)
            low, high = (ids[len(ids) // 3], ids[2 * len(ids) // 3]) if ids else (None, None)
            got = [(c, _records(found), attrs)
                   for c, found, attrs in audiences_store.evaluation_inputs(low, fields, high, apart=True)]  # fmt: skip
            assert got == [x for x in only if low is None or low <= x[0] < high]
        if hasattr(audiences_store, "evaluation_inputs_of"):  # and the read of chosen customers
            ids = list(fresh)
            by_chunk = audiences_store.activities_by_customer(ids)
            attributes = audiences_store.attributes_of(ids)
            want = [(c, sorted(by_chunk[c], key=_by_id), attributes[c]) for c in ids]
            chosen = [*ids[::2], "c-gone"]  # every other one, in no order, and one that is gone
            got = [(c, _records(found), attrs) for c, found, attrs in audiences_store.evaluation_inputs_of(chosen[::-1])]
            assert got == want[::2]
            fields = AUDIENCES.fields
            only = [(c, [{f: a[f] for f in fields} for a in found], attrs) for c, found, attrs in want]
            got = [(c, _records(found), attrs)
                   for c, found, attrs in audiences_store.evaluation_inputs_of(chosen, fields, apart=True)]  # fmt: skip
            assert got == only[::2]
        for segment in AUDIENCES.segment_configs:
            members = [c for c, (_, segments) in fresh.items() if segment.name in segments]
            assert audiences_store.segment_members(segment.name, None, 10_000) == sorted(members)
        if db is not None:
            db.close()


def test_a_failed_evaluation_leaves_the_file_done_and_its_customers_due(tmp_path: Path) -> None:
    from shared.adapters.memory_audiences import MemoryAudiences
    from shared.core.audiences.upkeep import evaluate_due
    from shared.core.errors import TransientError

    class Down(MemoryAudiences):
        down = True

        def save_audiences(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.down:
                raise TransientError("the store is down")
            return super().save_audiences(*args, **kwargs)

    profiles, ledger = MemoryStore(), MemoryLedger()
    audiences_store = Down(profiles)
    ports = Ports(LocalFileSource(tmp_path), profiles, ledger, upkeep=ByFile(profiles, audiences_store, AUDIENCES, lambda: NOW))
    _write(tmp_path, "RetailCustomers/c.csv", [("R-1", "Oslo")], 0)
    _write(tmp_path, "EmailPromotion/a.csv", [event(f"e{n}", "2021-09-30T12:00:00Z", "v1", "R-1") for n in range(2)], 1)
    for path in ("RetailCustomers/c.csv", "EmailPromotion/a.csv"):
        assert ingest_file(ports, CONFIG, path, IngestOptions()).status == "done"
    [customer_id] = audiences_store.customer_ids(None, 10)
    assert audiences_store.due_customers("2021-10-01T00:00:00.000Z", 10) == [customer_id]
    audiences_store.down = False
    assert evaluate_due(profiles, audiences_store, AUDIENCES, NOW) == 1  # the timer's next run
    assert audiences_store.segment_members("Clickers", None, 10) == [customer_id]


def test_a_file_reaching_most_customers_evaluates_everyone_without_reading_whom_it_reaches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a file's keys and visitors are many (EVERYONE_MIN) and a quarter of the customers
    or more, they are not read into customers: every customer is evaluated in one pass at the
    file's end, and those a customers file dropped leave their segments."""
    root = tmp_path / "export"
    db = SqliteDatabase(tmp_path / "store.db")
    profiles = SqliteStore(db)
    audiences_store = bootstrap.open_audiences(profiles)
    reads: list[int] = []

    class Counting(ByFile):
        def reached(self, touched):  # type: ignore[no-untyped-def]
            reads.append(len(touched))
            return super().reached(touched)

    ports = Ports(LocalFileSource(root), profiles, SqliteLedger(db),
                  upkeep=Counting(profiles, audiences_store, AUDIENCES, lambda: NOW))  # fmt: skip
    monkeypatch.setattr(WatchedStore, "MAX_REFERENCES", 12)  # decided after three batches of two
    monkeypatch.setattr(upkeep, "EVERYONE_MIN", 10)
    keys = [f"R-{n}" for n in range(40)]

    def load(path: str, rows: list, version: int) -> int:  # type: ignore[type-arg]
        _write(root, path, rows, version)
        reads.clear()
        assert ingest_file(ports, CONFIG, path, IngestOptions(batch_size=2)).status == "done"
        return len(reads)

    load("RetailCustomers/c.csv", [(k, "Oslo") for k in keys], 0)
    clicks = [event(f"e{n}", "2021-09-30T12:00:00Z", f"v{n}", keys[n % 40]) for n in range(200)]
    assert load("EmailPromotion/a.csv", clicks, 1) == 0  # no reference read into customers
    fresh = _fresh(profiles, audiences_store)
    assert len(fresh) == 40 and all("Clickers" in segments for _, segments in fresh.values())
    stored = audiences_store.stored_audiences(list(fresh))
    assert {c: (s.measures, s.segments) for c, s in stored.items()} == fresh
    # The customers file rewritten without R-0 .. R-19, then more clicks: those are gone and
    # leave Clickers; the clicks' file reads no reference either.
    load("RetailCustomers/c.csv", [(k, "Oslo") for k in keys[20:]], 2)
    more = [event(f"f{n}", "2021-09-30T13:00:00Z", f"v{n}", keys[n % 40]) for n in range(200)]
    assert load("EmailPromotion/b.csv", more, 3) == 0
    fresh = _fresh(profiles, audiences_store)
    assert len(fresh) == 20
    assert audiences_store.segment_members("Clickers", None, 100) == sorted(fresh)
    assert audiences_store.stale_customers(AUDIENCES.fingerprint, 100) == []  # none gone, none left out
    db.close()


def test_a_failed_pass_of_everyone_leaves_everyone_to_the_timer(tmp_path: Path) -> None:
    """A pass of every customer after a file that fails part way marks everyone evaluated
    before then for the timer (the suspect mark): its next refresh makes them current."""
    from shared.core.errors import TransientError

    root = tmp_path / "export"
    db = SqliteDatabase(tmp_path / "store.db")
    profiles = SqliteStore(db)
    audiences_store = bootstrap.open_audiences(profiles)
    down = [True]
    real_save = audiences_store.save_audiences

    def save(*args, **kwargs):  # type: ignore[no-untyped-def]
        if down[0]:
            raise TransientError("the store is down")
        return real_save(*args, **kwargs)

    audiences_store.save_audiences = save  # type: ignore[method-assign]
    ports = Ports(LocalFileSource(root), profiles, SqliteLedger(db),
                  upkeep=ByFile(profiles, audiences_store, AUDIENCES, lambda: NOW))  # fmt: skip
    keys = [f"R-{n}" for n in range(12)]
    _write(root, "RetailCustomers/c.csv", [(k, "Oslo") for k in keys], 0)
    _write(root, "EmailPromotion/a.csv", [
        event(f"e{n}", "2021-09-30T12:00:00Z", f"v{n}", keys[n % 12]) for n in range(24)
    ], 1)  # fmt: skip
    with _upkeep_bound("EVERYONE_MIN", 1):
        for path in ("RetailCustomers/c.csv", "EmailPromotion/a.csv"):
            assert ingest_file(ports, CONFIG, path, IngestOptions()).status == "done"
    assert audiences_store.segment_members("Clickers", None, 100) == []
    assert audiences_store.marks().get(upkeep.SUSPECT)  # everyone evaluated before now, again
    down[0] = False
    assert upkeep.refresh(profiles, audiences_store, AUDIENCES, NOW) == 12  # the timer's next run
    assert audiences_store.segment_members("Clickers", None, 100) == sorted(_fresh(profiles, audiences_store))
    db.close()


def test_a_full_pass_side_by_side_is_the_pass_in_one_process(tmp_path: Path) -> None:
    """Evaluations worked out in two forked children, a run of customers each, are those of
    one process: every customer once, the same measures and segments, members in id order;
    a refresh stores them; a pass stopped early leaves no child behind."""
    root = tmp_path / "export"
    db = SqliteDatabase(tmp_path / "store.db")
    profiles = SqliteStore(db)
    audiences_store = bootstrap.open_audiences(profiles)
    keys = [f"R-{n}" for n in range(40)]
    _write(root, "RetailCustomers/c.csv", [(k, "Oslo" if n % 3 else "Leeds") for n, k in enumerate(keys)], 0)
    _write(root, "EmailPromotion/a.csv", [
        event(f"e{n}", f"2021-09-{20 + n % 11:02d}T12:00:00Z", f"v{n % 7}", keys[n * 7 % 40] if n % 5 else "",
              uri=f"https://shop.example.com/{n % 4}")
        for n in range(300)
    ], 1)  # fmt: skip
    ports = Ports(LocalFileSource(root), profiles, SqliteLedger(db))
    for path in ("RetailCustomers/c.csv", "EmailPromotion/a.csv"):
        assert ingest_file(ports, CONFIG, path, IngestOptions()).status == "done"
    with _side_by_side(False):
        assert side_by_side.evaluations(audiences_store, AUDIENCES, NOW) is None
        alone = upkeep.segments_as_of(profiles, audiences_store, AUDIENCES, NOW)
    fresh = _fresh(profiles, audiences_store)
    assert len(fresh) == 40 and any(alone.values())
    with _side_by_side(True):
        found = side_by_side.evaluations(audiences_store, AUDIENCES, NOW)
        assert found is not None
        got = [(c, e.measures, e.segments) for c, e in found]
        assert sorted(got) == sorted((c, *fresh[c]) for c in fresh)  # each once, as one process has it
        wanted = sorted(fresh)[5:30:2]
        some = side_by_side.evaluations(audiences_store, AUDIENCES, NOW, wanted=wanted)
        assert some is not None and sorted(c for c, _ in some) == wanted
        assert upkeep.segments_as_of(profiles, audiences_store, AUDIENCES, NOW) == alone
        assert upkeep.refresh_all(profiles, audiences_store, AUDIENCES, NOW) == 40
        stopped = side_by_side.evaluations(audiences_store, AUDIENCES, NOW)
        assert stopped is not None and next(stopped)
        stopped.close()  # the children are ended and reaped
    stored = audiences_store.stored_audiences(list(fresh))
    assert {c: (s.measures, s.segments) for c, s in stored.items()} == fresh
    import multiprocessing

    assert multiprocessing.active_children() == []
    db.close()
