"""Continuation tokens continue the query they were given for, and no other."""

from __future__ import annotations

import pytest

from shared.adapters.memory import MemoryStore
from shared.core import queries
from shared.core.errors import BadRequest
from shared.core.mapping import derived_customer_id
from tests.builders import activity, customer

A, B = (derived_customer_id("Customers", k) for k in ("R-1", "R-2"))


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    times = [f"2021-01-{n + 1:02d}T00:00:00.000Z" for n in range(6)]
    store.write(
        [activity(f"a{n}", time=t) for n, t in enumerate(times)]
        + [activity(f"b{n}", time=t, fk="R-2") for n, t in enumerate(times)],
        [customer("R-1"), customer("R-2")], [],
    )  # fmt: skip
    return store


def _token(store: MemoryStore, **query) -> str:  # type: ignore[no-untyped-def]
    card = queries.customer_card(store, A, queries.timeline_query(limit=2, **query))
    assert card["continuation"]
    return card["continuation"]


def test_a_token_continues_its_own_query_whatever_the_page_size(store: MemoryStore) -> None:
    token = _token(store)
    rest = queries.customer_card(store, A, queries.timeline_query(limit=10, continuation=token))
    assert [a["SourceActivityId"] for a in rest["activities"]] == ["a3", "a2", "a1", "a0"]


def test_a_token_is_refused_for_another_customer(store: MemoryStore) -> None:
    with pytest.raises(BadRequest, match="another query"):
        queries.customer_card(store, B, queries.timeline_query(continuation=_token(store)))


@pytest.mark.parametrize(
    "other",
    [{"types": ["Clicks"]}, {"since": "2021-01-01"}, {"until": "2022-01-01"}],
)
def test_a_token_is_refused_under_other_filters(store: MemoryStore, other) -> None:  # type: ignore[no-untyped-def]
    token = _token(store)
    with pytest.raises(BadRequest, match="another query"):
        queries.customer_card(store, A, queries.timeline_query(continuation=token, **other))
    filtered = _token(store, **other)
    with pytest.raises(BadRequest, match="another query"):
        queries.customer_card(store, A, queries.timeline_query(continuation=filtered))
