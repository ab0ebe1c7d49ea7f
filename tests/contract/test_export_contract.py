"""The ExportSource contract: every store streams all of its customers and activities, each
as its reads elsewhere show it, once."""

from __future__ import annotations

from shared.core.model import activity_cells
from tests.builders import activity, customer, link


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
