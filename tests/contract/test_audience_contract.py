"""The AudienceStore contract: every store keeps evaluations, memberships, the numbered
history of changes and the upkeep's marks the same way."""

from __future__ import annotations

import itertools

import pytest

from shared import bootstrap
from shared.core.audiences.records import AudienceResult
from tests.builders import activity, customer

T0, T1, T2 = "2026-06-01T00:00:00.000Z", "2026-06-02T00:00:00.000Z", "2026-06-03T00:00:00.000Z"


@pytest.fixture
def audiences(store):  # type: ignore[no-untyped-def]
    return bootstrap.open_audiences(store)


def _ids(customers):  # type: ignore[no-untyped-def]
    return [c.customer_id for c in customers]


def result(customer_id: str, *segments: str, next_change: str | None = None, **measures: object) -> AudienceResult:
    return AudienceResult(customer_id, dict(measures), tuple(sorted(segments)), next_change)


def test_saving_records_each_entry_and_exit_in_order(store, audiences) -> None:  # type: ignore[no-untyped-def]
    a, b = _ids([customer("R-1"), customer("R-2")])
    first = audiences.save_audiences([result(a, "S", "T", M=1), result(b, "S", M=2)], "fp", T0)
    # Within a segment, in the order of the results; segments apart, in any order.
    assert sorted((c.segment, c.seq, c.customer_id, c.change) for c in first)[0][2] == a
    assert sorted((c.segment, c.customer_id, c.change) for c in first) == sorted([
        ("S", a, "entered"), ("T", a, "entered"), ("S", b, "entered"),
    ])  # fmt: skip
    second = audiences.save_audiences([result(a, "T", M=0)], "fp", T1)
    assert [(c.segment, c.customer_id, c.change, c.at) for c in second] == [("S", a, "exited", T1)]
    assert audiences.segment_sizes() == {"S": 1, "T": 1}
    assert audiences.segment_members("S", None, 10) == [b]
    stored = audiences.stored_audiences([a, b, "nobody"])
    assert set(stored) == {a, b} and stored[a].measures == {"M": 0} and stored[a].segments == ("T",)
    history = audiences.membership_changes("S", 0, 10)
    assert [(c.customer_id, c.change) for c in history] == [(a, "entered"), (b, "entered"), (a, "exited")]
    assert all(x.seq < y.seq for x, y in itertools.pairwise(history))
    assert audiences.membership_changes("S", history[1].seq, 10) == history[2:]
    assert audiences.membership_changes("S", 0, 1) == history[:1]
    # What a save returns is what it recorded, numbers included.
    recorded = history + audiences.membership_changes("T", 0, 10)
    assert sorted(first + second) == sorted(recorded)


def test_saving_the_same_evaluation_again_records_nothing(audiences) -> None:  # type: ignore[no-untyped-def]
    audiences.save_audiences([result("c-1", "S", M=1)], "fp", T0)
    assert audiences.save_audiences([result("c-1", "S", M=1)], "fp", T1) == []
    assert len(audiences.membership_changes("S", 0, 10)) == 1


def test_a_gone_customer_leaves_every_segment_and_its_state(audiences) -> None:  # type: ignore[no-untyped-def]
    audiences.save_audiences([result("c-1", "S", "T", M=1)], "fp", T0)
    gone = audiences.save_audiences([AudienceResult("c-1", None, (), None)], "fp", T1)
    assert sorted((c.segment, c.change) for c in gone) == [("S", "exited"), ("T", "exited")]
    assert audiences.stored_audiences(["c-1"]) == {} and audiences.segment_sizes() == {}


def test_due_customers_are_those_whose_next_change_has_come(audiences) -> None:  # type: ignore[no-untyped-def]
    audiences.save_audiences(
        [result("c-1", next_change=T1), result("c-2", next_change=T0), result("c-3"), result("c-4", next_change=T2)],
        "fp", T0,
    )  # fmt: skip
    assert audiences.due_customers(T1, 10) == ["c-2", "c-1"]
    assert audiences.due_customers(T1, 1) == ["c-2"]
    audiences.save_audiences([result("c-2", next_change=None)], "fp", T1)
    assert audiences.due_customers(T2, 10) == ["c-1", "c-4"]


def test_stale_customers_are_new_differently_evaluated_or_gone(store, audiences) -> None:  # type: ignore[no-untyped-def]
    a, b, c = _ids([customer("R-1"), customer("R-2"), customer("R-3")])
    store.write([], [customer("R-1"), customer("R-2"), customer("R-3")], [])
    audiences.save_audiences([result(a), result(b), result("c-gone")], "fp-new", T0)
    audiences.save_audiences([result(c)], "fp-old", T0)
    assert audiences.stale_customers("fp-new", 10) == sorted([c, "c-gone"])
    assert len(audiences.stale_customers("fp-new", 1)) == 1
    assert audiences.customer_ids(None, 10) == sorted([a, b, c])
    assert audiences.customer_ids(sorted([a, b, c])[0], 1) == [sorted([a, b, c])[1]]


def test_a_customers_activities_are_all_that_reach_it_shown_on_the_timeline_or_not(store, audiences) -> None:  # type: ignore[no-untyped-def]
    store.write([activity("k1"), activity("k2", show=False), activity("k3", fk="R-2")], [customer("R-1")], [])
    [r1] = _ids([customer("R-1")])
    found = audiences.activities_by_customer([r1, "c-nobody"])
    assert sorted(a["SourceActivityId"] for a in found[r1]) == ["k1", "k2"] and found["c-nobody"] == []
    assert all(a["CustomerId"] == r1 and "ActivityTime" in a for a in found[r1])
    assert {a["SourceActivityId"]: a["ShowInTimeline"] for a in found[r1]} == {"k1": True, "k2": False}


def test_marks_are_kept_by_name(audiences) -> None:  # type: ignore[no-untyped-def]
    assert audiences.marks() == {}
    audiences.set_mark("evaluated", "fp1")
    audiences.set_mark("published:S", "12")
    audiences.set_mark("evaluated", "fp2")
    assert audiences.marks() == {"evaluated": "fp2", "published:S": "12"}


def test_the_current_measures_and_memberships_stream_for_an_export(audiences) -> None:  # type: ignore[no-untyped-def]
    audiences.save_audiences([result("c-1", "S", "T", M=1, Last=T0), result("c-2", "S", M=2, Last=None),
                              result("c-3", M=0, Last=None)], "fp", T0)  # fmt: skip
    audiences.save_audiences([result("c-1", "T", M=3, Last=T1), AudienceResult("c-3", None, (), None)], "fp", T1)
    assert sorted(audiences.iter_measures()) == [("c-1", {"M": 3, "Last": T1}), ("c-2", {"M": 2, "Last": None})]
    assert sorted(audiences.iter_memberships()) == [("S", "c-2", T0), ("T", "c-1", T0)]


def test_nothing_evaluated_streams_nothing(audiences) -> None:  # type: ignore[no-untyped-def]
    assert list(audiences.iter_measures()) == [] and list(audiences.iter_memberships()) == []


def test_customers_reached_by_keys_visitors_and_row_keys(store, audiences) -> None:  # type: ignore[no-untyped-def]
    from shared.core.audiences.touched import Touched
    from tests.builders import link

    ada, bob, cy = (customer(k) for k in ("R-1", "R-2", "R-3"))
    store.write([], [ada, bob, cy], [])
    # tv is linked to R-1 then R-2 (a shared device); ph signed in with R-4, which has no row yet
    store.write([activity("t1", fk="R-1", visitor="tv"), activity("t2", fk="R-2", visitor="tv"),
                 activity("p1", fk="R-4", visitor="ph")], [], [],
                [link("tv", "R-1"), link("tv", "R-2", "2021-09-28T15:00:00.000Z"), link("ph", "R-4"),
                 link("ph", "R-3", "2021-09-28T15:00:00.000Z")])  # fmt: skip
    ref = "Customers"
    assert audiences.customers_reached(Touched(keys={(ref, "R-1"), (ref, "R-9")})) == {ada.customer_id}
    # every key a visitor is linked to, the winner's and the others'
    assert audiences.customers_reached(Touched(visitors={(ref, "tv")})) == {ada.customer_id, bob.customer_id}
    # a key whose row changes: its customer, and those its activities' visitors reach
    assert audiences.customers_reached(Touched(row_keys={(ref, "R-4")})) == {cy.customer_id}
    assert audiences.customers_reached(Touched()) == set()


def test_forgetting_a_file_tells_what_it_removed(store) -> None:  # type: ignore[no-untyped-def]
    from tests.builders import link

    store.write([], [customer("R-1", file="c.csv", etag="v1")], [])
    store.write([activity("a1", fk="R-2", visitor="ph", file="e.csv", etag="v1")], [], [],
                [link("ph", "R-2", file="e.csv", etag="v1")])  # fmt: skip
    assert store.forget_file("e.csv", "v1").keys == set()  # the current version: nothing goes
    events = store.forget_file("e.csv", "v2")
    assert (events.keys, events.visitors, events.row_keys) == ({("Customers", "R-2")}, {("Customers", "ph")}, set())
    rows = store.forget_file("c.csv", "v2")
    assert rows.row_keys == {("Customers", "R-1")} and rows.customers == {customer("R-1").customer_id}


def test_a_write_tells_whom_the_copies_it_replaced_reached(store) -> None:  # type: ignore[no-untyped-def]
    from shared.core.audiences.touched import Touched

    store.write([activity("a1", fk="R-1", file="a.csv")], [customer("R-1", file="c.csv")], [])
    touched = Touched()
    store.write([activity("a1", fk="R-2", file="b.csv")], [customer("R-1", file="d.csv", unified="C-9")], [],
                touched=touched)  # fmt: skip
    assert ("Customers", "R-1") in touched.keys
    assert customer("R-1").customer_id in touched.customers  # the key's customer before the move


def test_marked_due_customers_are_due_at_once(audiences) -> None:  # type: ignore[no-untyped-def]
    audiences.save_audiences([result("c-1", "S", M=1, next_change=T2), result("c-2", M=0)], "fp", T0)
    audiences.mark_due(["c-1", "c-2", "c-3"], T1)
    assert audiences.due_customers(T1, 10) == ["c-1", "c-2", "c-3"]
    assert audiences.stored_audiences(["c-1"])["c-1"].segments == ("S",)  # what was stored stays
    audiences.save_audiences([result(c, next_change=None) for c in ("c-1", "c-2", "c-3")], "fp", T1)
    assert audiences.due_customers(T2, 10) == []


def test_a_save_overtaken_by_another_of_the_same_customer_leaves_members_as_the_state(audiences) -> None:  # type: ignore[no-untyped-def]
    """Two workers saving one customer at once, each from the state it read: whichever state
    lands last, the segment's members agree with it (every store)."""
    audiences.save_audiences([result("c-1", "Busy", M=1)], "fp", T1)
    cls = type(audiences)

    class Overtaken(cls):  # type: ignore[misc, valid-type]
        """Its first save's history lands, then another worker saves the customer as leaving."""

        overtake = True

        def _interleave(self) -> None:
            if self.overtake:
                self.overtake = False
                audiences.save_audiences([result("c-1", M=0)], "fp", T1)

    first = Overtaken.__new__(Overtaken)
    first.__dict__.update(audiences.__dict__)
    stored_before = first.stored_audiences
    first.stored_audiences = lambda ids: (first._interleave(), stored_before(ids))[1]  # type: ignore[method-assign]
    if hasattr(first, "io"):  # Azure: the save reads states through the table, not stored_audiences
        get = first.io.get

        class Reads:
            def __getattr__(self, name):  # type: ignore[no-untyped-def]
                return getattr(first.store.io, name)

            def get(self, *where):  # type: ignore[no-untyped-def]
                found = get(*where)
                first._interleave()
                return found

        first.io = Reads()
    first.save_audiences([result("c-1", "Busy", M=2)], "fp", T1)  # still Busy, read before the exit
    state = audiences.stored_audiences(["c-1"])["c-1"]
    assert ("c-1" in audiences.segment_members("Busy", None, 10)) == ("Busy" in state.segments)
