"""A property of identity (SPEC §8): in any file order, with rewrites of files in between, every
store resolves every activity to the same customer, by the same path, with the same Visitors
and conflicts as one clean run of the final files."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.local_files import LocalFileSource
from shared.adapters.memory import MemoryLedger, MemoryStore
from shared.adapters.sqlite.ledger import SqliteLedger
from shared.adapters.sqlite.store import SqliteDatabase, SqliteStore
from shared.bootstrap import load_config
from shared.core.ingest.service import Ports, ingest_file
from shared.core.mapping import derived_customer_id

CONFIG = load_config(None)
COLUMNS = ("Signal.Export.Id", "Signal.Timestamp", "Signal.Action.Name", "Signal.User.Id",
           "Signal.User.AuthId")  # fmt: skip
KEYS = ["R-1", "R-2", "R-3"]
VISITORS = st.sampled_from(["v-1", "v-2", "v-3", "anonymous", "R-2"])
AUTH = st.sampled_from(["", "", "R-1", "R-2", "R-3", "guest"])
TIMES = st.sampled_from([f"2021-09-28T1{h}:00:00Z" for h in range(4)])
EVENT_FILES = [f"EmailPromotion/2021/09/28/1{n}/part.csv" for n in range(3)]
CUSTOMERS = "RetailCustomers/customers.csv"


def _csv(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([header, *rows])
    return buffer.getvalue().encode()


@st.composite
def _events(draw: st.DrawFn, file: int) -> bytes:
    # Event ids are shared between files now and then: the same event in two files.
    count = draw(st.integers(1, 6))
    rows = [(f"e{draw(st.integers(0, 9))}-{file if draw(st.booleans()) else 'x'}-{i}",
             draw(TIMES), "Email promotion", draw(VISITORS), draw(AUTH)) for i in range(count)]  # fmt: skip
    return _csv(COLUMNS, rows)


@st.composite
def _exports(draw: st.DrawFn) -> tuple[dict[str, bytes], list[tuple[str, bytes]]]:
    """The final files, and the order writes arrive in: earlier versions of some files first."""
    known = draw(st.lists(st.sampled_from(KEYS), unique=True))
    final = {path: draw(_events(n)) for n, path in enumerate(EVENT_FILES)}
    final[CUSTOMERS] = _csv(("CustomerRetailId", "FullName"), [(k, f"name {k}") for k in known])
    writes = [(path, data) for path, data in final.items()]
    for path in draw(st.lists(st.sampled_from(EVENT_FILES), unique=True)):
        writes.append((path, draw(_events(9))))  # an earlier version, written first
    order = draw(st.permutations(writes))
    # Each file ends at its final version: what comes after its last earlier version.
    finals = [(p, d) for p, d in order if d == final[p]]
    earlier = [(p, d) for p, d in order if d != final[p]]
    return final, earlier + finals


def _picture(store) -> tuple:  # type: ignore[no-untyped-def]
    activities = sorted((a.activity_id, a.customer_id, a.identity_path, a.visitor_id)
                        for a in store.list_activities(None, False, None))  # fmt: skip
    customers = [store.get_customer(derived_customer_id("RetailCustomers", k)) for k in KEYS]
    visitors = [c.to_record()["Visitors"] if c else None for c in customers]
    conflicts = [[link.key for link in group] for group in store.conflicting_links(None)]
    return activities, visitors, conflicts, store.count_unmatched()


def _load(store, ledger, writes: list[tuple[str, bytes]]) -> tuple:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as folder:
        ports = Ports(LocalFileSource(folder), store, ledger)
        for path, data in writes:
            (Path(folder) / path).parent.mkdir(parents=True, exist_ok=True)
            (Path(folder) / path).write_bytes(data)
            assert ingest_file(ports, CONFIG, path).status == "done"
        return _picture(store)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(export=_exports())
def test_resolution_is_the_same_in_any_order_and_after_rewrites(export) -> None:  # type: ignore[no-untyped-def]
    final, writes = export
    clean = _load(MemoryStore(), MemoryLedger(), sorted(final.items()))
    assert _load(MemoryStore(), MemoryLedger(), writes) == clean
    db = SqliteDatabase(":memory:")
    try:
        assert _load(SqliteStore(db), SqliteLedger(db), writes) == clean
    finally:
        db.close()
