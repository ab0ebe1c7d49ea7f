"""The ErasureStore contract: every store removes what reaches an erased customer, and only
that, keeps one salt, its suppressions and receipts; the erasure service on top of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared import bootstrap
from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.records import AudienceResult
from shared.core.erasure.service import erase_customer
from shared.core.errors import NotFound
from shared.core.model import Reject
from tests.builders import activity, customer

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def erasures(store):  # type: ignore[no-untyped-def]
    return bootstrap.open_erasures(store)


def _fill(store) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    r1, r10 = customer("R-1", FullName="Ada"), customer("R-10", FullName="Bo")
    store.write(
        [activity("k1"), activity("k2", show=False), activity("k3", fk="R-10"), activity("k4", fk=None)],
        [r1, r10, customer("R-1", entity="Loyalty", unified=r1.customer_id, row=2)],
        [Reject("events/a.csv", "e1", 7, "Events", "bad timestamp", "k9,R-1,not a time"),
         Reject("events/a.csv", "e1", 8, "Events", "bad timestamp", "k8,R-10,not a time")],
    )  # fmt: skip
    return r1.customer_id, r10.customer_id


def test_erasing_removes_what_reaches_the_customer_and_nothing_of_another(store, erasures) -> None:  # type: ignore[no-untyped-def]
    r1, r10 = _fill(store)
    removed = erasures.erase_records(r1, [("Customers", "R-1"), ("Loyalty", "R-1")], ["R-1"])
    assert removed == {"activities": 2, "rejects": 1, "customerRows": 2}
    assert store.get_customer(r1) is None and store.get_customer(r10) is not None
    left = {a.source_activity_id for a in store.list_activities(None, False, None)}
    assert left == {"k3", "k4"}
    assert [r.row for r in store.list_rejects(None)] == [8]  # R-10's stays: R-1 is no token of it
    assert erasures.erase_records(r1, [("Customers", "R-1")], ["R-1"]) == {"activities": 0, "rejects": 0, "customerRows": 0}


def test_one_salt_suppressions_and_receipts_are_kept(erasures) -> None:  # type: ignore[no-untyped-def]
    assert erasures.erasure_salt("aa" * 32) == "aa" * 32
    assert erasures.erasure_salt("bb" * 32) == "aa" * 32  # the first one stays
    erasures.suppress(["h1", "h2"])
    erasures.suppress(["h2", "h3"])
    assert erasures.suppressions() == {"h1", "h2", "h3"}
    erasures.record_erasure({"CustomerId": "c-1", "ErasedAt": "2026-12-01T00:00:00.000Z", "Removed": {}})
    erasures.record_erasure({"CustomerId": "c-2", "ErasedAt": "2026-12-02T00:00:00.000Z", "Removed": {}})
    assert [r["CustomerId"] for r in erasures.erasures()] == ["c-1", "c-2"]


def test_the_service_suppresses_removes_leaves_segments_and_gives_a_receipt(store, erasures) -> None:  # type: ignore[no-untyped-def]
    r1, r10 = _fill(store)
    kept = bootstrap.open_audiences(store)
    kept.save_audiences([AudienceResult(r1, {"M": 1}, ("S",), None), AudienceResult(r10, {"M": 1}, ("S",), None)], "fp", "2026-11-01T00:00:00.000Z")
    audiences = Audiences([], [])
    receipt = erase_customer(store, erasures, kept, audiences, r1, NOW)
    assert receipt == {"CustomerId": r1, "ErasedAt": "2026-12-01T00:00:00.000Z", "Removed": {
        "activities": 2, "rejects": 1, "customerRows": 2, "memberships": 1, "changes": 2}}
    assert kept.segment_members("S", None, 10) == [r10]
    assert [(c.customer_id, c.change) for c in kept.membership_changes("S", 0, 10)] == [(None, "entered"), (r10, "entered"), (None, "exited")]
    assert len(erasures.suppressions()) == 1  # one key value, R-1, in two sources: one hash
    assert "R-1" not in str(erasures.suppressions()) and "R-1" not in str(erasures.erasures())
    assert erase_customer(store, erasures, kept, audiences, r1, NOW) == receipt  # again: the receipt
    with pytest.raises(NotFound):
        erase_customer(store, erasures, kept, audiences, "c-never", NOW)
