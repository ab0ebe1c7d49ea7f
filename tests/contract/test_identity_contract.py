"""The identity contract (SPEC §8): links, winners, placeholders and onConflict, every store."""

from __future__ import annotations

import itertools

import pytest

from shared.core.mapping import derived_customer_id
from shared.core.model import TimelineQuery
from tests.builders import activity, customer, link

ADA = derived_customer_id("Customers", "R-1")
BOB = derived_customer_id("Customers", "R-2")
T1, T2, T3 = "2021-09-28T10:00:00.000Z", "2021-09-28T11:00:00.000Z", "2021-09-28T12:00:00.000Z"


def _anonymous(key: str, visitor: str = "v-1", time: str = T1, **kw):  # type: ignore[no-untyped-def]
    return activity(key, time=time, fk=visitor, visitor=visitor, **kw)


def _resolved(store):  # type: ignore[no-untyped-def]
    return {
        a.source_activity_id: (a.customer_id, a.identity_path)
        for a in store.list_activities(None, False, None)
    }


def test_an_anonymous_visit_reaches_the_customer_once_the_visitor_signs_in(store):  # type: ignore[no-untyped-def]
    store.write([], [customer("R-1")], [])
    assert store.write([_anonymous("browse")], [], []) == 1
    signed_in = activity("buy", time=T2, fk="R-1", visitor="v-1", file="events/b.csv")
    store.write([signed_in], [], [], [link("v-1", "R-1", T2, "events/b.csv")])
    assert _resolved(store) == {"browse": (ADA, "visitor"), "buy": (ADA, "key")}
    assert store.count_unmatched() == 0
    assert store.count_unmatched_by_type() == {}
    page = store.timeline(ADA, TimelineQuery())
    assert [a.source_activity_id for a in page.items] == ["buy", "browse"]
    assert store.activity_counts(ADA) == {"Clicks": 2}
    [seen] = store.get_customer(ADA).to_record()["Visitors"]
    assert seen == {"VisitorId": "v-1", "LinkedAt": T2,
                    "LinkSource": {"File": "events/b.csv", "Row": 1}}  # fmt: skip


def test_a_link_to_a_key_without_a_customer_waits_for_the_customer_row(store):  # type: ignore[no-untyped-def]
    store.write([_anonymous("browse")], [], [], [link("v-1", "R-1")])
    assert _resolved(store) == {"browse": (None, None)}
    assert store.count_unmatched_by_type() == {"Clicks": 1}
    assert store.visitor_links("v-1") == [link("v-1", "R-1")]
    store.write([], [customer("R-1")], [])
    assert _resolved(store) == {"browse": (ADA, "visitor")}


def test_the_foreign_key_wins_over_the_visitor(store):  # type: ignore[no-untyped-def]
    store.write([], [customer("R-1"), customer("R-2")], [])
    own = activity("own", fk="R-2", visitor="v-1")
    store.write([own], [], [], [link("v-1", "R-1")])
    assert _resolved(store) == {"own": (BOB, "key")}


@pytest.mark.parametrize(("rule", "expected"), [("latest", BOB), ("first", ADA), ("none", None)])
def test_a_shared_device_follows_on_conflict(store, rule, expected):  # type: ignore[no-untyped-def]
    store.use_conflict_rules({"Customers": rule})
    store.write([], [customer("R-1"), customer("R-2")], [])
    store.write([_anonymous("browse", time=T3)], [], [],
                [link("v-1", "R-1", T1), link("v-1", "R-2", T2, row=2)])  # fmt: skip
    [(customer_id, path)] = _resolved(store).values()
    assert customer_id == expected
    assert path == (None if expected is None else "visitor")
    [conflict] = store.conflicting_links(None)
    assert {c.key for c in conflict} == {"R-1", "R-2"}


def test_a_tie_in_time_goes_to_the_greater_file_and_row(store):  # type: ignore[no-untyped-def]
    store.write([], [customer("R-1"), customer("R-2")], [])
    store.write([_anonymous("browse")], [], [],
                [link("v-1", "R-2", T1, "a.csv", 9), link("v-1", "R-1", T1, "b.csv", 1)])  # fmt: skip
    assert _resolved(store) == {"browse": (ADA, "visitor")}


def test_links_of_one_file_version_merge_to_their_first_and_last_row(store):  # type: ignore[no-untyped-def]
    store.write([], [], [], [link("v-1", "R-1", T2, row=5)])
    store.write([], [], [], [link("v-1", "R-1", T1, row=2), link("v-1", "R-1", T3, row=9)])
    store.write([], [], [], [link("v-1", "R-1", T2, row=5)])
    assert store.visitor_links("v-1") == [link("v-1", "R-1", T1, row=2, last=(T3, 9))]


def test_the_winner_does_not_depend_on_the_order_links_arrive(backend_factory):  # type: ignore[no-untyped-def]
    links = [link("v-1", "R-1", T1, "a.csv"), link("v-1", "R-2", T2, "b.csv"),
             link("v-1", "R-1", T1, "c.csv", last=(T3, 4))]  # fmt: skip
    for order in itertools.permutations(links):
        store, _ = backend_factory()
        store.write([], [customer("R-1"), customer("R-2")], [])
        store.write([_anonymous("browse")], [], [])
        for one in order:
            store.write([], [], [], [one])
        assert _resolved(store) == {"browse": (ADA, "visitor")}, order


def test_a_rewritten_file_replaces_its_links(store):  # type: ignore[no-untyped-def]
    store.write([], [customer("R-1"), customer("R-2")], [])
    store.write([_anonymous("browse", file="events/a.csv")], [], [],
                [link("v-1", "R-2", T3, "events/b.csv")])  # fmt: skip
    assert _resolved(store) == {"browse": (BOB, "visitor")}
    store.forget_file("events/b.csv", "e2")
    store.write([], [], [], [link("v-1", "R-1", T2, "events/b.csv", etag="e2")])
    assert _resolved(store) == {"browse": (ADA, "visitor")}
    assert store.visitor_links("v-1") == [link("v-1", "R-1", T2, "events/b.csv", etag="e2")]
    assert store.conflicting_links(None) == []


def test_a_visitors_activities_page_newest_first(store):  # type: ignore[no-untyped-def]
    store.write([], [customer("R-1")], [])
    times = [f"2021-09-28T1{n}:00:00.000Z" for n in range(5)]
    visits = [_anonymous(f"k{n}", time=t, row=n) for n, t in enumerate(times)]
    store.write([*visits, _anonymous("other", visitor="v-2")], [], [], [link("v-1", "R-1")])
    first = store.visitor_activities("v-1", TimelineQuery(limit=3))
    assert [a.source_activity_id for a in first.items] == ["k4", "k3", "k2"]
    assert {a.customer_id for a in first.items} == {ADA}
    rest = store.visitor_activities("v-1", TimelineQuery(limit=3, continuation=first.continuation))
    assert [a.source_activity_id for a in rest.items] == ["k1", "k0"]
    assert rest.continuation is None


def test_a_customers_timeline_merges_every_linked_visitor(store):  # type: ignore[no-untyped-def]
    store.write([], [customer("R-1")], [])
    phone = [_anonymous(f"p{n}", "phone", f"2021-09-28T1{n}:00:00.000Z", row=n) for n in (0, 2, 4)]
    laptop = [_anonymous(f"l{n}", "laptop", f"2021-09-28T1{n}:00:00.000Z", row=n) for n in (1, 3)]
    own = activity("own", time="2021-09-28T15:00:00.000Z", fk="R-1")
    store.write([*phone, *laptop, own], [], [],
                [link("phone", "R-1"), link("laptop", "R-1", file="events/b.csv")])  # fmt: skip
    seen, token = [], None
    while True:
        page = store.timeline(ADA, TimelineQuery(limit=2, continuation=token))
        seen += [a.source_activity_id for a in page.items]
        token = page.continuation
        if token is None:
            break
    assert seen == ["own", "p4", "l3", "p2", "l1", "p0"]
    visitors = [v["VisitorId"] for v in store.get_customer(ADA).to_record()["Visitors"]]
    assert visitors == ["laptop", "phone"]
