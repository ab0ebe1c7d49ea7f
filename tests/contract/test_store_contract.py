"""The ProfileStore contract: every implementation must behave the same."""

from __future__ import annotations

import itertools

from shared.core.mapping import derived_customer_id
from shared.core.model import Reject, TimelineQuery
from tests.builders import activity, customer

CUSTOMER_R1 = derived_customer_id("Customers", "R-1")


def _ids(items):  # type: ignore[no-untyped-def]
    return [a.source_activity_id for a in items]


def test_written_activities_read_back_with_every_field(store):  # type: ignore[no-untyped-def]
    original = activity("k1", fk=None)
    assert store.write([original], [], []) == 1
    [stored] = store.list_activities(None, False, None)
    assert stored == original


def test_an_activity_waits_unmatched_until_its_customer_arrives(store):  # type: ignore[no-untyped-def]
    assert store.write([activity("k1")], [], []) == 1
    assert store.list_activities(None, True, None)[0].customer_id is None
    assert store.count_unmatched() == 1
    store.write([], [customer("R-1", FullName="Ada")], [])
    [linked] = store.list_activities(None, False, None)
    assert linked.customer_id == CUSTOMER_R1
    assert store.list_activities(None, True, None) == []
    assert store.count_unmatched() == 0


def test_unmatched_activities_are_counted_now_by_type(store):  # type: ignore[no-untyped-def]
    store.write([activity("k1"), activity("k2", fk="R-2"), activity("v1", kind="Views", fk=None),
                 activity("v2", kind="Views", fk="R-1")], [], [])  # fmt: skip
    assert store.count_unmatched_by_type() == {"Clicks": 2, "Views": 2}
    store.write([], [customer("R-1")], [])
    assert store.count_unmatched_by_type() == {"Clicks": 1, "Views": 1}
    store.write([], [customer("R-2")], [])
    assert store.count_unmatched_by_type() == {"Views": 1}
    assert sum(store.count_unmatched_by_type().values()) == store.count_unmatched()


def test_an_activity_whose_customer_is_known_is_linked_on_arrival(store):  # type: ignore[no-untyped-def]
    store.write([], [customer("R-1")], [])
    assert store.write([activity("k1"), activity("k2", fk="R-404")], [], []) == 1
    linked = {a.source_activity_id: a.customer_id for a in store.list_activities(None, False, None)}
    assert linked == {"k1": CUSTOMER_R1, "k2": None}


def test_a_customer_and_its_activities_in_one_batch_are_linked(store):  # type: ignore[no-untyped-def]
    assert store.write([activity("k1")], [customer("R-1")], []) == 0
    assert store.list_activities(None, False, None)[0].customer_id == CUSTOMER_R1


def test_the_greatest_file_and_row_wins_whatever_the_write_order(backend_factory):  # type: ignore[no-untyped-def]
    versions = [
        activity("k1", file="b.csv", row=2, name="winner"),
        activity("k1", file="a.csv", row=9, name="older file"),
        activity("k1", file="b.csv", row=1, name="earlier row"),
    ]
    for order in itertools.permutations(versions):
        store, _ = backend_factory()
        for version in order:
            store.write([version], [], [])
        [stored] = store.list_activities(None, False, None)
        assert stored.activity_name == "winner", order


def test_the_same_activity_twice_in_one_batch_is_stored_once(store):  # type: ignore[no-untyped-def]
    store.write([activity("k1", row=1, name="first"), activity("k1", row=2, name="second")], [], [])
    assert [a.activity_name for a in store.list_activities(None, False, None)] == ["second"]


def test_a_customer_row_from_a_later_file_wins(store):  # type: ignore[no-untyped-def]
    store.write([], [customer("R-1", file="c2.csv", City="Leeds")], [])
    store.write([], [customer("R-1", file="c1.csv", City="York")], [])
    assert store.get_customer(CUSTOMER_R1).attributes == {"City": "Leeds"}


def test_sources_sharing_a_unified_id_are_one_customer(store):  # type: ignore[no-untyped-def]
    store.write([], [
        customer("R-1", unified="U-7", Email="ada@example.com"),
        customer("W-9", unified="U-7", entity="WebAccounts", City="Seattle"),
    ], [])  # fmt: skip
    found = store.get_customer("U-7")
    assert found.attributes == {"Email": "ada@example.com", "City": "Seattle"}
    assert [(k.entity, k.key) for k in found.alternate_keys] == [
        ("Customers", "R-1"),
        ("WebAccounts", "W-9"),
    ]
    assert found.updated_at.endswith("Z")
    assert store.get_customer("U-404") is None


def test_forgetting_a_file_removes_what_its_other_versions_wrote(store):  # type: ignore[no-untyped-def]
    store.write(
        [activity("k1", etag="old"), activity("k2", etag="new")],
        [],
        [
            Reject("events/a.csv", "old", 3, "Events", "bad", "x"),
        ],
    )
    store.write([], [customer("R-1", etag="old"), customer("R-2", etag="new", row=2)], [])
    store.forget_file("events/a.csv", "new")
    store.forget_file("customers/c.csv", "new")
    assert _ids(store.list_activities(None, False, None)) == ["k2"]
    assert store.list_rejects(None) == []
    assert store.get_customer(CUSTOMER_R1) is None
    assert store.get_customer(derived_customer_id("Customers", "R-2")) is not None
    assert store.list_activities(None, False, None)[0].customer_id is None


def test_files_whose_copies_met_are_named_to_read_again_whatever_the_order(backend_factory):  # type: ignore[no-untyped-def]
    copies = [activity("k1", file="b.csv"), activity("k1", file="a.csv"), activity("k1", file="c.csv")]
    for order in itertools.permutations(copies):
        store, _ = backend_factory()
        for copy in order:
            store.write([copy], [], [])
        # c.csv holds the copy; b.csv's and a.csv's met it, or met each other on the way.
        assert sorted(store.overlapping_files("c.csv", "e2")) == ["a.csv", "b.csv"], order
        assert store.overlapping_files("c.csv", "e1") == [], "no other version: nothing to forget"


def test_copies_meeting_in_one_batch_and_customer_rows_are_noted_too(store):  # type: ignore[no-untyped-def]
    store.write([activity("k1", file="b.csv"), activity("k1", file="a.csv")], [], [])
    store.write([], [customer("R-1", file="c2.csv"), customer("R-1", file="c1.csv")], [])
    store.write([], [customer("R-2", file="c0.csv")], [])
    store.write([], [customer("R-2", file="c2.csv")], [])
    assert store.overlapping_files("b.csv", "e2") == ["a.csv"]
    assert sorted(store.overlapping_files("c2.csv", "c2")) == ["c0.csv", "c1.csv"]
    assert store.overlapping_files("a.csv", "e2") == []  # it won nothing
    # The same overlaps again (a file read twice) are noted once and break nothing.
    store.write([activity("k1", file="c.csv"), activity("k1", file="b.csv")], [], [])
    store.write([], [customer("R-2", file="c1.csv"), customer("R-2", file="c2.csv")], [])
    assert sorted(store.overlapping_files("c.csv", "e2")) == ["a.csv", "b.csv"]
    assert sorted(store.overlapping_files("c2.csv", "c2")) == ["c0.csv", "c1.csv"]
    # One file replacing another's copies in two batches meets it twice.
    store.write([activity("k2", file="a.csv"), activity("k3", file="a.csv")], [], [])
    store.write([], [customer("R-3", file="c0.csv"), customer("R-4", file="c0.csv")], [])
    for n in (2, 3):
        store.write([activity(f"k{n}", file="d.csv")], [customer(f"R-{n + 1}", file="c3.csv")], [])
    assert store.overlapping_files("d.csv", "e2") == ["a.csv"]
    assert store.overlapping_files("c3.csv", "c2") == ["c0.csv"]


def test_forgetting_a_version_drops_the_overlaps_it_won(store):  # type: ignore[no-untyped-def]
    store.write([activity("k1", file="a.csv"), activity("k1", file="b.csv")], [], [])
    store.forget_file("b.csv", "e2")
    store.write([activity("k2", file="b.csv", etag="e2")], [], [])
    assert store.overlapping_files("b.csv", "e3") == []
    # Forgetting nothing keeps them: a retry of the same version must still find them.
    store.write([activity("k3", file="a.csv"), activity("k3", file="b.csv", etag="e2")], [], [])
    store.forget_file("b.csv", "e2")
    assert store.overlapping_files("b.csv", "e3") == ["a.csv"]


def test_files_to_read_again_stay_noted_until_cleared(backend_factory):  # type: ignore[no-untyped-def]
    store, _ = backend_factory()
    assert store.note_rereads("b.csv", []) == []
    assert store.note_rereads("b.csv", ["a.csv", "c.csv"]) == ["a.csv", "c.csv"]
    # A later attempt at b.csv finds them, with what it notes itself, each once.
    assert store.note_rereads("b.csv", ["d.csv", "a.csv"]) == ["a.csv", "c.csv", "d.csv"]
    assert store.note_rereads("x.csv", []) == []
    store.clear_rereads("b.csv")
    assert store.note_rereads("b.csv", []) == []


def test_the_timeline_is_newest_first_and_only_shows_timeline_activities(store):  # type: ignore[no-untyped-def]
    store.write([
        activity("old", time="2021-01-01T00:00:00.000Z"),
        activity("new", time="2021-03-01T00:00:00.000Z"),
        activity("hidden", time="2021-02-01T00:00:00.000Z", show=False),
        activity("other", time="2021-02-01T00:00:00.000Z", fk="R-2"),
    ], [customer("R-1"), customer("R-2")], [])  # fmt: skip
    page = store.timeline(CUSTOMER_R1, TimelineQuery())
    assert _ids(page.items) == ["new", "old"]
    assert page.continuation is None


def test_the_timeline_filters_by_type_and_half_open_time_range(store):  # type: ignore[no-untyped-def]
    store.write([
        activity("a", time="2021-01-01T00:00:00.000Z"),
        activity("b", time="2021-02-01T00:00:00.000Z", kind="Purchases"),
        activity("c", time="2021-03-01T00:00:00.000Z"),
    ], [customer("R-1")], [])  # fmt: skip
    by_type = store.timeline(CUSTOMER_R1, TimelineQuery(types=("Purchases",)))
    assert _ids(by_type.items) == ["b"]
    ranged = store.timeline(
        CUSTOMER_R1,
        TimelineQuery(since="2021-01-01T00:00:00.000Z", until="2021-03-01T00:00:00.000Z"),
    )
    assert _ids(ranged.items) == ["b", "a"]


def _by_name_and_type(store):  # type: ignore[no-untyped-def]
    store.write([
        activity("a", time="2021-01-01T00:00:00.000Z"),
        activity("b", time="2021-02-01T00:00:00.000Z", kind="Purchases", display="Orders"),
        activity("c", time="2021-03-01T00:00:00.000Z"),
    ], [customer("R-1")], [])  # fmt: skip


def test_the_timeline_takes_an_activity_name_or_its_configured_type(store):  # type: ignore[no-untyped-def]
    _by_name_and_type(store)

    def shown(*types):  # type: ignore[no-untyped-def]
        return _ids(store.timeline(CUSTOMER_R1, TimelineQuery(types=types)).items)

    assert shown("WebLog") == ["c", "a"]  # the ActivityTypeDisplay
    assert shown("Clicks") == ["c", "a"]  # the ActivityType
    assert shown("Orders", "Clicks") == ["c", "b", "a"]
    assert shown("Nothing") == []


def test_the_preview_takes_an_activity_name_or_its_configured_type(store):  # type: ignore[no-untyped-def]
    _by_name_and_type(store)
    assert _ids(store.list_activities("WebLog", False, None)) == ["c", "a"]
    assert _ids(store.list_activities("Orders", False, None)) == ["b"]
    assert _ids(store.list_activities("Purchases", False, None)) == ["b"]


def test_timeline_pages_cover_every_activity_once(store):  # type: ignore[no-untyped-def]
    # Equal times on purpose: the page boundary must break ties by ActivityId.
    times = [f"2021-01-{1 + n % 5:02d}T00:00:00.000Z" for n in range(23)]
    store.write([activity(f"k{n}", time=t) for n, t in enumerate(times)], [customer("R-1")], [])
    seen, token, pages = [], None, 0
    while True:
        page = store.timeline(CUSTOMER_R1, TimelineQuery(limit=5, continuation=token))
        assert len(page.items) <= 5
        seen.extend(page.items)
        pages += 1
        token = page.continuation
        if token is None:
            break
    assert pages == 5
    assert sorted(_ids(seen)) == sorted(f"k{n}" for n in range(23))
    order = [(a.activity_time, a.activity_id) for a in seen]
    assert order == sorted(order, reverse=True)


def test_search_matches_keys_attributes_and_ids_without_wildcards(store):  # type: ignore[no-untyped-def]
    store.write([], [
        customer("R-1", FullName="Ada Moreno", Email="ada@example.com"),
        customer("R-2", FullName="Bram de Vries", City="Utrecht"),
    ], [])  # fmt: skip

    def found(text):  # type: ignore[no-untyped-def]
        return sorted(k.key for c in store.search_customers(text, 10) for k in c.alternate_keys)

    assert found("moreno") == ["R-1"]
    assert found("utrecht") == ["R-2"]
    assert found("R-") == ["R-1", "R-2"]
    assert found(CUSTOMER_R1) == ["R-1"]
    assert found("%") == []
    assert found("_") == []
    assert len(store.search_customers("R-", 1)) == 1


def test_rejects_are_kept_once_per_file_and_row(store):  # type: ignore[no-untyped-def]
    first = Reject("a.csv", "e1", 3, "Events", "missing primary key", "{}")
    again = first._replace(reason="unparseable timestamp")
    store.write([], [], [first])
    store.write([], [], [again, Reject("a.csv", "e1", 4, "Events", "x", "y")])
    assert [(r.row, r.reason) for r in store.list_rejects(None)] == [
        (3, "unparseable timestamp"),
        (4, "x"),
    ]


def test_activity_counts_are_per_type(store):  # type: ignore[no-untyped-def]
    store.write(
        [activity("a"), activity("b"), activity("c", kind="Purchases")], [customer("R-1")], []
    )
    assert store.activity_counts(CUSTOMER_R1) == {"Clicks": 2, "Purchases": 1}


def test_relink_links_nothing_twice(store):  # type: ignore[no-untyped-def]
    store.write([activity("a")], [customer("R-1")], [])
    assert store.relink() == 0
    assert store.list_activities(None, False, None)[0].customer_id == CUSTOMER_R1


def test_the_preview_filters_by_type_and_limit(store):  # type: ignore[no-untyped-def]
    store.write([
        activity("a", time="2021-01-01T00:00:00.000Z"),
        activity("b", time="2021-01-02T00:00:00.000Z", kind="Purchases"),
        activity("c", time="2021-01-03T00:00:00.000Z"),
    ], [], [])  # fmt: skip
    assert _ids(store.list_activities("Clicks", False, None)) == ["c", "a"]
    assert _ids(store.list_activities(None, False, 2)) == ["c", "b"]
