"""The ExportSource contract: every store streams all of its customers and activities, each
as its reads elsewhere show it, once."""

from __future__ import annotations

from tests.builders import activity, customer


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


def test_an_empty_store_streams_nothing(store):  # type: ignore[no-untyped-def]
    assert list(store.iter_customers()) == [] and list(store.iter_activities()) == []
