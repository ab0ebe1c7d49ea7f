"""The listing contract: every store pages activities, customers, rejects and ledger entries
the same way, from a position after the previous page."""

from __future__ import annotations

from shared.core.model import DONE, FAILED, QUARANTINED, SKIPPED, LedgerEntry, Reject
from tests.builders import activity, customer

NOW = "2021-09-28T14:00:00.000Z"
LEASE = "2021-09-28T14:15:00.000Z"


def _ids(items):  # type: ignore[no-untyped-def]
    return [a.source_activity_id for a in items]


def test_activities_continue_before_a_position_newest_first(store):  # type: ignore[no-untyped-def]
    store.write([
        activity("a", time="2021-01-01T00:00:00.000Z"),
        activity("b", time="2021-01-02T00:00:00.000Z", kind="Purchases"),
        activity("c", time="2021-01-02T00:00:00.000Z"),
        activity("d", time="2021-01-03T00:00:00.000Z", fk="R-404"),
    ], [customer("R-1")], [])  # fmt: skip
    every = store.list_activities(None, False, None)
    third = every[2]
    after = (third.activity_time, third.activity_id)
    assert store.list_activities(None, False, None, after) == every[3:]
    assert store.list_activities(None, False, 1, (every[0].activity_time, every[0].activity_id)) == every[1:2]
    assert _ids(store.list_activities("Clicks", False, None, (every[0].activity_time, every[0].activity_id))) == [
        a.source_activity_id for a in every[1:] if a.activity_type == "Clicks"
    ]
    assert store.list_activities(None, True, None, after) == []
    assert _ids(store.list_activities(None, True, None, ("2021-01-04T00:00:00.000Z", ""))) == ["d"]


def test_search_continues_after_a_customer_id_in_id_order(store):  # type: ignore[no-untyped-def]
    store.write([], [customer(f"R-{n}", FullName=f"Ada {n}") for n in range(5)], [])
    every = store.search_customers("ada", 10)
    ids = [c.customer_id for c in every]
    assert ids == sorted(ids) and len(ids) == 5
    assert [c.customer_id for c in store.search_customers("ada", 2, ids[1])] == ids[2:4]
    assert store.search_customers("ada", 10, ids[-1]) == []
    assert store.search_customers(ids[3], 10, ids[3]) == []


def test_rejects_list_by_file_and_row_and_continue_after_a_position(store):  # type: ignore[no-untyped-def]
    rejects = [
        Reject(file, "e1", row, "Events", f"reason {file} {row}", "{}")
        for file in ("b.csv", "a.csv", "a/c.csv") for row in (12, 3, 100)
    ]  # fmt: skip
    store.write([], [], rejects)
    every = store.list_rejects(None)
    assert [(r.file, r.row) for r in every] == sorted((r.file, r.row) for r in rejects)
    assert store.list_rejects(2, None, (every[3].file, every[3].row)) == every[4:6]
    assert [(r.file, r.row) for r in store.list_rejects(None, "b.csv")] == [("b.csv", 3), ("b.csv", 12), ("b.csv", 100)]
    assert [r.row for r in store.list_rejects(1, "b.csv", ("b.csv", 3))] == [12]
    assert store.list_rejects(None, "a.csv", ("b.csv", 3)) == []
    assert store.list_rejects(None, "nothing.csv") == []


def _entry(path: str, etag: str, status: str) -> LedgerEntry:
    return LedgerEntry(path, etag, status, 1, started_at=NOW, finished_at=NOW)


def test_latest_entries_list_each_path_once_at_its_latest_version(ledger):  # type: ignore[no-untyped-def]
    ledger.record(_entry("b.csv", "old", FAILED))
    ledger.claim("b.csv", "new", NOW, LEASE)
    ledger.record(_entry("b.csv", "new", DONE))
    ledger.record(_entry("a.csv", "e1", FAILED))
    ledger.record(_entry("c/d.csv", "e1", QUARANTINED))
    ledger.record(_entry("c.csv", "e1", SKIPPED))
    every = ledger.latest_entries(None, 10)
    assert [(e.path, e.etag, e.status) for e in every] == [
        ("a.csv", "e1", FAILED), ("b.csv", "new", DONE), ("c.csv", "e1", SKIPPED),
        ("c/d.csv", "e1", QUARANTINED),
    ]  # fmt: skip
    assert every[0] == ledger.get("a.csv", "e1")
    assert [e.path for e in ledger.latest_entries(None, 2, "a.csv")] == ["b.csv", "c.csv"]
    assert [e.path for e in ledger.latest_entries(FAILED, 10)] == ["a.csv"]  # b.csv failed before
    assert [e.path for e in ledger.latest_entries(QUARANTINED, 10, "c.csv")] == ["c/d.csv"]
    assert ledger.latest_entries(FAILED, 10, "a.csv") == []
