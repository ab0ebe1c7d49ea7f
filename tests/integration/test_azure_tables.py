"""TableStore and TableLedger against a real Azurite: races, awkward keys, volume, paging."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from shared.adapters.azure.table_layout import KEYED, activity_record, keyed_record
from shared.adapters.azure.tables import TableStore, open_tables
from shared.bootstrap import open_store
from shared.core.errors import BadRequest, ConfigError, TransientError
from shared.core.mapping import derived_customer_id
from shared.core.model import DONE, Activity, Reject, TimelineQuery
from shared.settings import Settings
from tests.azurite import ACCOUNT_KEY, Azurite
from tests.builders import activity, customer

pytestmark = pytest.mark.azurite

NOW = "2021-09-28T14:00:00.000Z"
LEASE = "2021-09-28T14:15:00.000Z"
AWKWARD = [
    "plain", "quote's", "two''quotes", "a/b", "back\\slash", "hash#tag", "what?", "per%cent",
    "' or 1 eq 1 or '", "x' or PartitionKey ne 'x", "ünïcødé ✓ 日本", "tab\there", "~tilde",
    " spaced out ", "a" * 300,
]  # fmt: skip


@pytest.fixture
def tables(azurite, azurite_names) -> Iterator[Callable[[], tuple]]:  # type: ignore[no-untyped-def]
    """Opens store+ledger pairs on one set of tables, as separate workers would."""
    opened: list[TableStore] = []

    def open_pair() -> tuple:
        store, ledger = open_tables(azurite.connection_string, azurite_names.table_prefix)
        opened.append(store)
        return store, ledger

    yield open_pair
    for store in opened:
        store.close()


def _in_threads(count: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(i)` in `count` threads released at the same moment."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        start.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_exactly_one_of_four_simultaneous_claimers_wins(tables):  # type: ignore[no-untyped-def]
    ledgers = [tables()[1] for _ in range(4)]
    for n in range(5):
        path = f"events/part-{n}.csv"
        won = _in_threads(4, lambda i, path=path: ledgers[i].claim(path, "0x8D1", NOW, LEASE))
        assert sum(entry is not None for entry in won) == 1, won
        assert ledgers[0].get(path, "0x8D1").attempts == 1


def test_awkward_ids_paths_and_keys_work_and_stay_apart(tables):  # type: ignore[no-untyped-def]
    store, ledger = tables()
    for n, text in enumerate(AWKWARD):
        act = activity(f"k{n}", fk=text, file=f"events/{text}.csv", etag=text)
        store.write([act._replace(activity_id=text)], [customer(text, Name=text)], [
            Reject(f"events/{text}.csv", text, 1, "Events", "bad", text),
        ])  # fmt: skip
        ledger.record(ledger.claim(f"events/{text}.csv", text, NOW, LEASE))
    stored = {a.activity_id: a for a in store.list_activities(None, False, None)}
    assert set(stored) == set(AWKWARD)
    for text in AWKWARD:
        assert stored[text].customer_id == derived_customer_id("Customers", text)
        assert stored[text].source_file == f"events/{text}.csv"
        [found] = store.search_customers(text, 10)
        assert [k.key for k in found.alternate_keys] == [text]
        page = store.timeline(found.customer_id, TimelineQuery())
        assert [a.activity_id for a in page.items] == [text]
        assert (
            ledger.get(f"events/{text}.csv", text).etag,
            ledger.latest(f"events/{text}.csv").etag,
        ) == (text, text)
    injected = TimelineQuery(types=(AWKWARD[8],))
    assert store.timeline(derived_customer_id("Customers", "plain"), injected).items == []
    store.forget_file(f"events/{AWKWARD[9]}.csv", AWKWARD[9])
    store.forget_file(f"events/{AWKWARD[8]}.csv", "another etag")
    assert len(store.list_activities(None, False, None)) == len(AWKWARD) - 1
    assert {r.etag for r in store.list_rejects(None)} == set(AWKWARD) - {AWKWARD[8]}


def test_hundreds_of_activities_across_partitions_read_back_whole(tables):  # type: ignore[no-untyped-def]
    store, _ = tables()
    written = [
        activity(f"k{n}", time=f"2021-09-{1 + n % 28:02d}T{n % 24:02d}:00:00.000Z", fk=f"R-{n % 40}",
                 row=n, kind=("Clicks", "Views")[n % 2], show=n % 7 != 0)
        for n in range(600)
    ]  # fmt: skip
    customers = [customer(f"R-{n}") for n in range(30)]
    assert store.write(written, customers, []) == 600 // 40 * 10
    linked = {a.activity_id: a for a in store.list_activities(None, False, None)}
    assert len(linked) == 600
    for a in written:
        expected = (
            derived_customer_id("Customers", a.activity_foreign_key)
            if int(a.activity_foreign_key[2:]) < 30
            else None
        )
        path = "key" if expected else None
        assert linked[a.activity_id] == a._replace(customer_id=expected, identity_path=path)
    assert store.count_unmatched() == 150
    assert len(store.list_activities(None, True, 1000)) == 150
    assert sum(store.activity_counts(derived_customer_id("Customers", "R-3")).values()) == 15


def test_the_timeline_pages_through_more_than_one_page_newest_first(tables):  # type: ignore[no-untyped-def]
    store, _ = tables()
    mine = [
        activity(f"k{n}", time=f"2021-01-{1 + n % 20:02d}T00:00:00.000Z", fk=("R-1", "W-1")[n % 2])
        for n in range(130)
    ]
    store.write(
        mine,
        [customer("R-1", unified="U-1"), customer("W-1", unified="U-1", entity="Customers")],
        [],
    )
    store.write([activity("other", fk="R-2")], [customer("R-2")], [])
    seen, token, pages = [], None, 0
    while True:
        page = store.timeline("U-1", TimelineQuery(limit=50, continuation=token))
        seen += page.items
        pages, token = pages + 1, page.continuation
        if token is None:
            break
    assert pages == 3 and len(seen) == 130 == len({a.activity_id for a in seen})
    order = [(a.activity_time, a.activity_id) for a in seen]
    assert order == sorted(order, reverse=True)
    ranged = store.timeline(
        "U-1", TimelineQuery(since="2021-01-05T00:00:00.000Z", until="2021-01-07T00:00:00.000Z")
    )
    assert {a.activity_time[:10] for a in ranged.items} == {"2021-01-05", "2021-01-06"} and len(
        ranged.items
    ) == 14


def test_a_garbage_continuation_token_is_a_bad_request(tables):  # type: ignore[no-untyped-def]
    store, _ = tables()
    store.write([activity("k1")], [customer("R-1")], [])
    for token in ("garbage!", "e30", "W10", "x" * 300):
        with pytest.raises(BadRequest):
            store.timeline(
                derived_customer_id("Customers", "R-1"), TimelineQuery(continuation=token)
            )


def test_simultaneous_writers_of_the_same_activities_keep_the_greatest_version(tables):  # type: ignore[no-untyped-def]
    stores = [tables()[0] for _ in range(4)]

    # Each writer's version also moves the activity in time and to another customer key.
    def versions(i: int) -> list:  # type: ignore[type-arg]
        return [activity(f"k{n}", time=f"2021-01-0{i + 1}T00:00:00.000Z", fk=f"R-{i}",
                         file=f"events/{i}.csv", name=f"v{i}") for n in range(60)]  # fmt: skip

    stores[0].write([], [customer(f"R-{i}") for i in range(4)], [])
    _in_threads(4, lambda i: stores[i].write(versions(i), [], []))
    final = stores[0].list_activities(None, False, None)
    assert len(final) == 60 and {a.activity_name for a in final} == {"v3"}
    for i in range(4):
        cid = derived_customer_id("Customers", f"R-{i}")
        items = stores[0].timeline(cid, TimelineQuery(limit=500)).items
        assert len(items) == (60 if i == 3 else 0)
        assert sum(stores[0].activity_counts(cid).values()) == (60 if i == 3 else 0)


def test_customers_arriving_while_their_activities_are_written_are_linked(tables):  # type: ignore[no-untyped-def]
    first, second = tables()[0], tables()[0]
    acts = [activity(f"k{n}", fk=f"R-{n % 50}") for n in range(400)]
    _in_threads(
        2,
        lambda i: (
            first.write(acts, [], [])
            if i == 0
            else second.write([], [customer(f"R-{n}") for n in range(50)], [])
        ),
    )
    assert first.count_unmatched() == 0 and first.relink() == 0


def test_a_key_moving_to_another_customer_takes_its_activities_along(tables):  # type: ignore[no-untyped-def]
    store, _ = tables()
    store.write([activity("k1")], [customer("R-1", file="c1.csv", unified="U-1")], [])
    store.write([], [customer("R-1", file="c2.csv", unified="U-2")], [])
    assert store.get_customer("U-1") is None
    assert store.timeline("U-1", TimelineQuery()).items == []
    assert [a.customer_id for a in store.timeline("U-2", TimelineQuery()).items] == ["U-2"]
    store.forget_file("c2.csv", "gone")
    assert store.count_unmatched() == 1


def test_a_rewritten_file_replaces_its_rows_in_every_partition(tables):  # type: ignore[no-untyped-def]
    store, _ = tables()
    store.write([activity(f"k{n}", etag="old", row=n) for n in range(300)], [customer("R-1")], [])
    store.write([activity(f"k{n}", etag="new", row=n) for n in range(0, 300, 2)], [], [])
    store.forget_file("events/a.csv", "new")
    left = store.list_activities(None, False, None)
    assert len(left) == 150 and {a.source_etag for a in left} == {"new"}
    assert sum(store.activity_counts(derived_customer_id("Customers", "R-1")).values()) == 150


def test_a_done_file_is_listed_with_its_counts(tables):  # type: ignore[no-untyped-def]
    _, ledger = tables()
    entry = ledger.claim("a/b c.csv", "e1", NOW, LEASE)
    entry.status, entry.counts.rows = DONE, 3_000_000_000
    ledger.record(entry)
    assert [(e.path, e.counts.rows) for e in ledger.entries(DONE)] == [("a/b c.csv", 3_000_000_000)]


def test_a_stopped_emulator_is_a_transient_error_after_a_few_tries_without_secrets() -> None:
    emulator = Azurite()
    tries: list[object] = []  # every HTTP attempt, retries included
    try:
        store, ledger = open_tables(
            emulator.connection_string, "down", on_request=lambda r: tries.append(r.http_request)
        )
        store.write([activity("k1")], [], [])
        emulator.stop()
        for attempt in (
            lambda: store.write([activity("k2")], [], []),
            lambda: ledger.get("a", "b"),
        ):
            tries.clear()
            with pytest.raises(TransientError) as caught:
                attempt()
            # A few quick retries, not the SDK's default back-off: the ledger retries later.
            most = max(Counter(map(id, tries)).values(), default=0)  # the same request, resent
            assert 1 <= most <= 4, len(tries)
            assert "AccountKey" not in str(caught.value) and ACCOUNT_KEY not in str(caught.value)
        store.close()
    finally:
        emulator.close()


def test_the_store_url_azure_tables_uses_the_storage_setting(azurite, azurite_names):  # type: ignore[no-untyped-def]
    env = {
        "FOOTPRINT_STORAGE": azurite.connection_string,
        "FOOTPRINT_TABLE_PREFIX": azurite_names.table_prefix,
    }
    store, _ = open_store("azure-tables:", Settings.from_env(env))
    store.write([activity("k1")], [], [])
    assert len(store.list_activities(None, False, None)) == 1
    store.close()
    with pytest.raises(ConfigError, match="FOOTPRINT_STORAGE"):
        open_store("azure-tables:", Settings.from_env({}))
    with pytest.raises(ConfigError) as caught:
        open_store(f"azure-tables:{azurite.connection_string}", Settings.from_env({}))
    assert ACCOUNT_KEY not in str(caught.value)


def _stray_index_row(store: TableStore, record: Activity) -> None:
    """What a worker that died between index and truth leaves: the index row of a version
    that is not (or no longer) the stored one."""
    store.io.write_all(KEYED, [("upsert", keyed_record(activity_record(record)))])


def test_a_stray_older_index_row_does_not_hide_the_activity_from_its_evaluation(tables):  # type: ignore[no-untyped-def]
    store, _ = tables()
    older = activity("k1", time="2021-09-28T10:00:00.000Z", file="events/a.csv")
    truth = activity("k1", time="2021-09-28T14:00:00.000Z", file="events/b.csv")
    store.write([older], [customer("R-1")], [])
    store.write([truth], [], [])
    _stray_index_row(store, older)  # sorts after the activity's own row (newest first)
    who = customer("R-1").customer_id
    found = store.activities_of_customers([who])[who]
    assert [(a.activity_id, a.activity_time) for a in found] == [(truth.activity_id, truth.activity_time)]


def test_a_stray_newer_index_row_does_not_hide_the_activity_from_the_timeline(tables):  # type: ignore[no-untyped-def]
    store, _ = tables()
    older = activity("k1", time="2021-09-28T14:00:00.000Z", file="events/a.csv")
    truth = activity("k1", time="2021-09-28T10:00:00.000Z", file="events/b.csv")
    store.write([older, activity("k2", time="2021-09-28T09:00:00.000Z")], [customer("R-1")], [])
    store.write([truth], [], [])
    _stray_index_row(store, older)  # sorts before the activity's own row
    who = customer("R-1").customer_id
    for limit in (1, 2, 10):
        items = store.timeline(who, TimelineQuery(limit=limit)).items
        assert [(a.activity_id, a.activity_time) for a in items][:1] == [(truth.activity_id, truth.activity_time)]
    items = store.timeline(who, TimelineQuery(limit=10)).items
    assert [a.activity_time for a in items] == [truth.activity_time, "2021-09-28T09:00:00.000Z"]


def test_an_evaluations_inputs_read_at_once_are_those_read_apart(tables):  # type: ignore[no-untyped-def]
    """inputs_of (what an evaluation reads) gives each customer's activities and attributes as
    activities_by_customer and attributes_of do, from one read of the customers' members."""
    from shared.adapters.azure.audiences import TableAudiences

    store, _ = tables()
    both = customer("R-1", unified="u1", City="Leeds")
    other = customer("X-9", unified="u1", entity="Shoppers", City="York", Email="a@b.c")
    store.write([activity("k1"), activity("k2", show=False), activity("k3", fk="R-2")],
                [both, other, customer("R-2")], [])  # fmt: skip
    audiences = TableAudiences(store)
    ids = ["u1", customer("R-2").customer_id, "c-gone"]
    members_reads = Counter[int]()
    read_members = store._members_of_many

    def counted(customer_ids):  # type: ignore[no-untyped-def]
        members_reads[len(customer_ids)] += 1
        return read_members(customer_ids)

    store._members_of_many = counted  # type: ignore[method-assign]
    activities, attributes = audiences.inputs_of(ids)
    assert members_reads == Counter({3: 1})
    assert activities == audiences.activities_by_customer(ids)
    assert attributes == audiences.attributes_of(ids)
    # The attributes as a customer's record merges them: the first entity's value wins.
    assert attributes == {"u1": {"City": "Leeds", "Email": "a@b.c"}, ids[1]: {}, "c-gone": None}
    assert sorted(a["SourceActivityId"] for a in activities["u1"]) == ["k1", "k2"]
    assert [a["SourceActivityId"] for a in activities[ids[1]]] == ["k3"] and activities["c-gone"] == []
