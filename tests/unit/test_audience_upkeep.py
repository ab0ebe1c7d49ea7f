"""Keeping measures and segments current, on the in-memory store with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from shared import bootstrap
from shared.adapters.memory import MemoryStore
from shared.core.audiences import upkeep, views
from shared.core.audiences.evaluator import Audiences
from shared.core.audiences.touched import Touched
from shared.core.config import parse_config
from tests.builders import activity, customer

NOW = datetime(2021, 10, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CONFIG = {
    "customerSources": [{"entity": "Customers", "key": "K", "attributes": ["City"]}],
    "activities": [{"name": "Clicks", "entity": "Events", "primaryKey": "id", "timestamp": "ts",
                    "event": "ev", "activityType": "WebLog"}],
    "measures": [{"name": "Clicks30d", "activities": ["Clicks"], "aggregate": "count", "window": "P30D"}],
    "segments": [{"name": "Engaged", "rule": {"measure": "Clicks30d", "op": ">=", "value": 2}}],
}


def _audiences(**changes: object) -> Audiences:
    config = parse_config(orjson.dumps({**CONFIG, **changes}))
    return bootstrap.audiences_of(config)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _store() -> tuple[MemoryStore, object, str]:
    store = MemoryStore()
    r1 = customer("R-1", City="Oslo")
    store.write([activity("k1", time=_iso(NOW - 5 * DAY)), activity("k2", time=_iso(NOW - 2 * DAY))], [r1], [])
    return store, bootstrap.open_audiences(store), r1.customer_id


def test_a_customer_leaves_a_30_day_segment_when_the_timer_runs_after_the_window_passed() -> None:
    store, kept, r1 = _store()
    audiences = _audiences()
    assert upkeep.refresh(store, kept, audiences, NOW) == 1
    assert kept.segment_members("Engaged", None, 10) == [r1]
    # Nothing happens before the oldest click is 30 days old ...
    assert upkeep.evaluate_due(store, kept, audiences, NOW + 24 * DAY) == 0
    # ... and once it is, only that customer is read again, with no new event.
    assert upkeep.evaluate_due(store, kept, audiences, NOW + 25 * DAY + timedelta(hours=1)) == 1
    assert kept.segment_members("Engaged", None, 10) == []
    feed = views.segment_changes(kept, audiences, "Engaged", None)
    assert [(c["Change"], c["CustomerId"]) for c in feed["changes"]] == [("entered", r1), ("exited", r1)]
    assert views.segment_changes(kept, audiences, "Engaged", feed["cursor"])["changes"] == []
    stored = kept.stored_audiences([r1])[r1]
    assert stored.measures == {"Clicks30d": 1} and stored.next_change is not None


def test_changed_definitions_re_evaluate_everyone_once() -> None:
    store, kept, _ = _store()
    assert upkeep.refresh(store, kept, _audiences(), NOW) == 1
    assert upkeep.refresh(store, kept, _audiences(), NOW) == 0  # nothing changed: nothing read
    stricter = _audiences(segments=[{"name": "Engaged", "rule": {"measure": "Clicks30d", "op": ">=", "value": 3}}])
    assert upkeep.refresh(store, kept, stricter, NOW) == 1
    assert kept.segment_sizes() == {}
    assert upkeep.refresh(store, kept, stricter, NOW) == 0


def test_as_of_replays_any_time_from_the_store_as_it_is() -> None:
    store, kept, r1 = _store()
    audiences = _audiences()
    upkeep.refresh(store, kept, audiences, NOW)
    past = views.customer_measures(store, kept, audiences, r1, NOW - 3 * DAY)
    assert past["Measures"] == {"Clicks30d": 1} and past["Segments"] == []
    assert views.customer_measures(store, kept, audiences, r1, NOW)["Segments"] == ["Engaged"]
    then = views.segment_members(store, kept, audiences, "Engaged", NOW - 3 * DAY, now=False)
    assert then["members"] == [] and then["asOf"] == "2021-09-28T00:00:00.000Z"
    assert kept.segment_members("Engaged", None, 10) == [r1]  # replaying changed nothing kept


def test_a_batch_of_activities_notes_what_each_one_would() -> None:
    batch = [activity("a1"), activity("a2", fk=None, visitor="v-1"), activity("a3", fk="R-2", visitor="v-2"),
             activity("a4", fk=None), activity("a5", fk="R-1")]  # fmt: skip
    one, each = Touched(), Touched()
    one.add_activities(batch)
    for a in batch:
        each.add_activity(a.customer_entity, a.activity_foreign_key, a.visitor_id)
    assert (one.keys, one.visitors) == (each.keys, each.visitors)
    assert one.keys == {("Customers", "R-1"), ("Customers", "R-2")}
    assert one.visitors == {("Customers", "v-1"), ("Customers", "v-2")}


def test_once_everyone_is_evaluated_a_file_notes_only_the_customers_its_rows_name() -> None:
    """WatchedStore, told the references reach most customers (covers_all), stops noting and
    reading them; the customers its rows named, before and after (maybe gone), still reach
    the evaluation, which is of everyone."""
    from shared.core.audiences.touched import WatchedStore

    class Wide:
        def __init__(self) -> None:
            self.reads: list[Touched] = []
            self.evaluated: list[Touched] = []

        def covers_all(self, references: int, partial: bool = False) -> bool:
            return references >= 2

        def reached(self, touched: Touched) -> set[str]:
            self.reads.append(touched)
            return set()

        def evaluate(self, touched: Touched) -> None:
            self.evaluated.append(touched)

    wide = Wide()
    watched = WatchedStore(MemoryStore(), wide)
    watched.MAX_REFERENCES = 2
    r1, r2 = customer("R-1"), customer("R-2", row=2)
    watched.write([], [r1], [])
    watched.write([activity("a1"), activity("a2", fk="R-2", visitor="v-2")], [], [])  # now everyone
    assert watched.touched.everyone and not watched.touched.keys and not watched.touched.visitors
    watched.write([activity("a3", fk="R-3", visitor="v-3")], [r2], [])
    assert not watched.touched.keys and not watched.touched.visitors  # no longer noted
    watched.settle()
    [touched] = wide.evaluated
    assert touched.everyone and touched.customers == {r1.customer_id, r2.customer_id}
    assert all(read.row_keys and not read.keys and not read.visitors for read in wide.reads)


def test_a_file_told_its_references_are_few_is_not_asked_again() -> None:
    """covers_all (a count of the customers) is asked once a file: after a no, each later lot
    of references is read into customers without asking."""
    from shared.core.audiences.touched import WatchedStore

    class Narrow:
        def __init__(self) -> None:
            self.asked, self.reads = 0, 0

        def covers_all(self, references: int, partial: bool = False) -> bool:
            self.asked += 1
            return False

        def reached(self, touched: Touched) -> set[str]:
            self.reads += 1
            return set()

    narrow = Narrow()
    watched = WatchedStore(MemoryStore(), narrow)
    watched.MAX_REFERENCES = 2
    for n in range(4):
        watched.write([activity(f"a{n}", fk=f"R-{n}", visitor=f"v-{n}")], [], [])
    assert (narrow.asked, narrow.reads) == (1, 4)
