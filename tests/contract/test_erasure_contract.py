"""The ErasureStore contract: every store removes what reaches an erased customer, and only
that, keeps one salt, its suppressions and receipts; the erasure service on top of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared import bootstrap
from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.records import AudienceResult
from shared.core.erasure.service import erase_customer
from shared.core.erasure.suppressions import suppression_hash
from shared.core.errors import NotFound
from shared.core.identity.links import links_of_spans, spans_of
from shared.core.model import Reject
from tests.builders import activity, customer

NOW = datetime(2026, 12, 1, tzinfo=UTC)
LATER = "2021-09-28T15:00:00.000Z"


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
    keys = [("Customers", "R-1"), ("Loyalty", "R-1")]
    removed = (erasures.erase_activities(keys, []), erasures.erase_rejects(["R-1"]),
               erasures.erase_links(keys, []), erasures.erase_customer_rows(r1))  # fmt: skip
    assert removed == (2, 1, 0, 2)
    assert store.get_customer(r1) is None and store.get_customer(r10) is not None
    left = {a.source_activity_id for a in store.list_activities(None, False, None)}
    assert left == {"k3", "k4"}
    assert [r.row for r in store.list_rejects(None)] == [8]  # R-10's stays: R-1 is no token of it
    again = (erasures.erase_activities(keys, []), erasures.erase_rejects(["R-1"]),
             erasures.erase_links(keys, []), erasures.erase_customer_rows(r1))  # fmt: skip
    assert again == (0, 0, 0, 0)


def test_a_customer_reached_through_visitors_goes_with_their_activities_links_and_rejects(store, erasures) -> None:  # type: ignore[no-untyped-def]
    ada, bob = customer("R-1", FullName="Ada"), customer("R-2", FullName="Bob")
    seen = [activity("a1", fk="ph-ada", visitor="ph-ada", row=1),  # anonymous browsing
            activity("a2", time=LATER, fk="R-1", visitor="ph-ada", row=2),  # she signs in
            activity("a3", time=LATER, fk="ph-ada", visitor="ph-ada", row=3),  # and browses on
            activity("a4", fk="R-9", visitor="ph-ada", row=4),  # under another key, earlier
            activity("b1", fk="ph-bob", visitor="ph-bob", row=5),
            activity("b2", time=LATER, fk="R-2", visitor="ph-bob", row=6)]  # fmt: skip
    links = links_of_spans(spans_of(seen), "events/a.csv", "e1")
    rejects = [Reject("events/a.csv", "e1", 7, "Events", "bad timestamp", "x1,ph-ada,not a time"),
               Reject("events/a.csv", "e1", 8, "Events", "bad timestamp", "x2,ph-bob,not a time")]  # fmt: skip
    store.write(seen, [ada, bob], rejects, links)
    assert [v.visitor_id for v in store.get_customer(ada.customer_id).visitors] == ["ph-ada"]
    bob_before = store.get_customer(bob.customer_id)
    receipt = erase_customer(store, erasures, bootstrap.open_audiences(store), Audiences([], []), ada.customer_id, NOW)
    assert {a.source_activity_id for a in store.list_activities(None, False, None)} == {"b1", "b2"}
    assert store.visitor_links("ph-ada") == [] and len(store.visitor_links("ph-bob")) == 1
    assert [r.row for r in store.list_rejects(None)] == [8]
    assert store.get_customer(ada.customer_id) is None and store.get_customer(bob.customer_id) == bob_before
    salt = erasures.erasure_salt("00" * 32)
    assert erasures.suppressions() == {suppression_hash(salt, "R-1"), suppression_hash(salt, "ph-ada")}
    assert receipt["Removed"] | {"memberships": 0, "changes": 0} == {
        "activities": 4, "rejects": 1, "links": 2, "visitors": 1, "customerRows": 1, "memberships": 0, "changes": 0}
    assert "ph-ada" not in str(erasures.erasures())


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
        "activities": 2, "rejects": 1, "links": 0, "visitors": 0, "customerRows": 2, "memberships": 1, "changes": 2}}
    assert kept.segment_members("S", None, 10) == [r10]
    assert [(c.customer_id, c.change) for c in kept.membership_changes("S", 0, 10)] == [(None, "entered"), (r10, "entered"), (None, "exited")]
    assert len(erasures.suppressions()) == 1  # one key value, R-1, in two sources: one hash
    assert "R-1" not in str(erasures.suppressions()) and "R-1" not in str(erasures.erasures())
    assert erase_customer(store, erasures, kept, audiences, r1, NOW) == receipt  # again: the receipt
    with pytest.raises(NotFound):
        erase_customer(store, erasures, kept, audiences, "c-never", NOW)
