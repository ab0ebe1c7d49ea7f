"""The ExportSource contract: every store streams all of its customers and activities, each
as its reads elsewhere show it, once; and an export holds the store's current measures and
memberships."""

from __future__ import annotations

import csv

import orjson

from shared import bootstrap
from shared.adapters.local_files import LocalExportTarget
from shared.adapters.sqlite.store import SqliteStore
from shared.core.audiences.records import AudienceResult
from shared.core.export.folder import MANIFEST
from shared.core.export.profiles import AudienceExport, export_profiles
from shared.core.model import activity_cells, split_cells
from tests.builders import activity, customer, link

T0, T1 = "2026-06-01T00:00:00.000Z", "2026-06-02T00:00:00.000Z"


def test_every_customer_streams_once_in_id_order_as_the_card_shows_it(store):  # type: ignore[no-untyped-def]
    rows = [customer(f"R-{i}", row=i, FullName=f"N{i}") for i in range(1, 8)]
    rows.append(customer("R-1", entity="Loyalty", unified=rows[0].customer_id, row=9, Tier="gold"))
    store.write([], rows, [])
    streamed = list(store.iter_customers())
    ids = [c.customer_id for c in streamed]
    assert ids == sorted({r.customer_id for r in rows})
    assert streamed == [store.get_customer(i) for i in ids]
    assert {k.entity for k in streamed[ids.index(rows[0].customer_id)].alternate_keys} == {"Customers", "Loyalty"}


def test_every_activity_streams_once_with_its_resolved_customer(store):  # type: ignore[no-untyped-def]
    acts = [activity(f"k{i}", fk="R-1" if i % 2 else "R-404", row=i) for i in range(12)]
    store.write(acts, [customer("R-1")], [])
    streamed = list(store.iter_activities())
    assert sorted(streamed) == sorted(store.list_activities(None, False, None))
    assert len({a.activity_id for a in streamed}) == 12
    assert sum(a.customer_id is None for a in streamed) == 6


def test_every_activity_streams_once_as_its_export_row(store):  # type: ignore[no-untyped-def]
    acts = [activity(f"k{i}", fk="R-1" if i % 2 else "R-404", row=i) for i in range(12)]
    acts.append(activity("quoted", fk="R-1", row=20)._replace(title='a "b", c\nd', external_url=None))
    anonymous = activity("browse", fk="v-1", visitor="v-1", row=21)  # reaches R-1 through its visitor
    store.write([*acts, anonymous], [customer("R-1")], [])
    store.write([activity("buy", fk="R-1", visitor="v-1", file="events/b.csv")], [], [], [link("v-1", "R-1", file="events/b.csv")])
    cells = list(store.iter_activity_cells())
    assert sorted(map(tuple, cells)) == sorted(map(activity_cells, store.iter_activities()))
    assert len(cells) == 15 and all(isinstance(c, str) for row in cells for c in row)
    paths = {row[9]: row[16] for row in cells}  # SourceActivityId: IdentityPath
    assert (paths["browse"], paths["buy"], paths["k0"], paths["k1"]) == ("visitor", "key", "", "key")
    quoted = next(row for row in cells if row[0] == next(a.activity_id for a in acts if a.source_row == 20))
    assert quoted[6:8] == ('a "b", c\nd', "") and quoted[11] in ("true", "false") and quoted[14] == "20"


def test_an_empty_store_streams_nothing(store):  # type: ignore[no-untyped-def]
    assert list(store.iter_customers()) == [] and list(store.iter_activities()) == []
    assert list(store.iter_activity_cells()) == []
    with store.activity_cell_parts(lambda n: 3) as parts:
        pass
    assert [row for part in parts for row in part()] == []


def test_the_parts_of_the_activities_hold_every_export_row_once(store):  # type: ignore[no-untyped-def]
    acts = [activity(f"k{i}", fk="R-1" if i % 3 else "R-404", row=i) for i in range(11)]
    # A cell holding the separator a store may join a row's cells by, and one to be quoted.
    acts[4] = acts[4]._replace(title="a\x1fb", external_url='c, "d"\x1f')
    store.write(acts, [customer("R-1")], [])
    store.write([activity("late", fk="R-1", file="events/b.csv")], [], [])
    whole = list(map(tuple, store.iter_activity_cells()))
    assert ("a\x1fb", 'c, "d"\x1f') in {row[6:8] for row in whole}
    asked = []
    with store.activity_cell_parts(lambda n: asked.append(n) or 4) as parts:
        split = [[tuple(split_cells(row)) for row in part()] for part in parts]
    assert sorted(r for rows in split for r in rows) == sorted(whole) and len(whole) == 12
    if isinstance(store, SqliteStore):  # it splits: as many parts as asked, in its order, even
        assert asked == [12] and [len(rows) for rows in split] == [3, 3, 3, 3]
        assert [r for rows in split for r in rows] == whole
    else:
        assert len(parts) == 1


def test_an_export_holds_the_current_measures_and_memberships_of_the_store(store, tmp_path):  # type: ignore[no-untyped-def]
    audiences = bootstrap.open_audiences(store)
    first = AudienceResult("c-1", {"Clicks": 3, "Last": T0, "Top": "https://x/p/1"}, ("A", "B"), None)
    audiences.save_audiences([first, AudienceResult("c-2", {"Clicks": 0, "Last": None, "Top": None}, (), None)], "fp", T0)
    audiences.save_audiences([AudienceResult("c-2", {"Clicks": 1, "Last": T1, "Top": "https://x/p/2"}, ("A",), None)], "fp", T1)
    kinds = {"Clicks": "number", "Last": "time", "Top": "text"}
    receipts = export_profiles(store, AudienceExport(audiences, kinds), LocalExportTarget(tmp_path), max_rows=2)
    manifest = orjson.loads((tmp_path / MANIFEST).read_bytes())
    partitions = {e["entityName"]: [p["location"] for p in e["dataPartitions"]] for e in manifest["entities"]}

    def rows(entity: str) -> list[tuple[str, ...]]:
        found = []
        for location in partitions[entity]:
            with (tmp_path / location).open(encoding="utf-8", newline="") as f:
                found += [tuple(r) for r in list(csv.reader(f))[1:]]
        return found

    assert sorted(rows("CustomerMeasure")) == [
        ("c-1", "Clicks", "number", "3", "", ""), ("c-1", "Last", "time", "", T0, ""),
        ("c-1", "Top", "text", "", "", "https://x/p/1"), ("c-2", "Clicks", "number", "1", "", ""),
        ("c-2", "Last", "time", "", T1, ""), ("c-2", "Top", "text", "", "", "https://x/p/2"),
    ]  # fmt: skip
    assert sorted(rows("SegmentMembership")) == [("c-1", "A", T0), ("c-1", "B", T0), ("c-2", "A", T1)]
    assert len(partitions["CustomerMeasure"]) == 3 and len(partitions["SegmentMembership"]) == 2
    assert {r.name: r.rows for r in receipts} == {"Customer": 0, "UnifiedActivity": 0, "CustomerMeasure": 6, "SegmentMembership": 3}
