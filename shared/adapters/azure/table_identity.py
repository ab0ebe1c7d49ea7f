"""Resolution on Azure Tables: customers of keys and winners of visitors, each read once per
request, in parallel where a request needs many."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from shared.adapters.azure.table_access import TableAccess
from shared.adapters.azure.table_keys import Entity
from shared.adapters.azure.table_links import links_of, links_of_many, visitors_of_many
from shared.core.identity.resolution import resolve
from shared.core.identity.winners import LATEST, VisitorLink, winner
from shared.core.model import Activity

CustomerKey = tuple[str, str]


class Resolver:
    """What one read needs to resolve activities. Its look-ups may run on the pool's threads;
    `prefetch` and `visitors_of_keys` use the pool themselves, so call them outside it."""

    def __init__(
        self,
        io: TableAccess,
        rules: Mapping[str, str],
        customer_row: Callable[[CustomerKey], Entity | None],
        customer_rows: Callable[[list[CustomerKey]], list[Entity | None]] | None = None,
    ) -> None:
        self.io, self.rules, self._customer_row = io, rules, customer_row
        self._customer_rows = customer_rows or (lambda keys: io.map(customer_row, keys))
        self.customers: dict[CustomerKey, str | None] = {}
        self.winners: dict[CustomerKey, VisitorLink | None] = {}

    def customer_of(self, entity: str, key: str) -> str | None:
        if (entity, key) not in self.customers:
            row = self._customer_row((entity, key))
            self.customers[(entity, key)] = row["CustomerId"] if row is not None else None
        return self.customers[(entity, key)]

    def winner_of(self, entity: str, visitor: str) -> VisitorLink | None:
        if (entity, visitor) not in self.winners:
            found = links_of(self.io, entity, visitor)
            self.winners[(entity, visitor)] = winner(found, self.rules.get(entity, LATEST))
        return self.winners[(entity, visitor)]

    def resolve(self, activity: Activity) -> Activity:
        return resolve(activity, self.customer_of, self.winner_of)

    def prefetch(self, activities: Iterable[Activity]) -> None:
        """Read in parallel what resolving `activities` will need."""
        items = list(activities)
        self._customers_of({
            (a.customer_entity, a.activity_foreign_key) for a in items
            if a.customer_entity is not None and a.activity_foreign_key is not None
        })  # fmt: skip
        visitors = {
            (a.customer_entity, a.visitor_id) for a in items
            if a.customer_entity is not None and a.visitor_id is not None
            and self.customers.get((a.customer_entity, a.activity_foreign_key or "")) is None
        }  # fmt: skip
        self._winners_of(visitors)
        self._customers_of({
            (entity, link.key) for (entity, _), link in self.winners.items() if link is not None
        })  # fmt: skip

    def _customers_of(self, keys: set[CustomerKey]) -> None:
        wanted = sorted(k for k in keys if k not in self.customers)
        for key, row in zip(wanted, self._customer_rows(wanted), strict=True):
            self.customers[key] = row["CustomerId"] if row is not None else None

    def _winners_of(self, visitors: set[CustomerKey]) -> None:
        wanted = sorted(v for v in visitors if v not in self.winners)
        for (entity, visitor), found in zip(wanted, links_of_many(self.io, wanted), strict=True):
            self.winners[(entity, visitor)] = winner(found, self.rules.get(entity, LATEST))

    def visitors_of_keys(self, keys: Iterable[CustomerKey]) -> list[tuple[str, VisitorLink]]:
        """(entity, winning link) of each visitor whose winner is one of `keys`."""
        keys = set(keys)
        ordered = sorted(keys)
        found = [[(k[0], v) for v in sorted(visitors)]
                 for k, visitors in zip(ordered, visitors_of_many(self.io, ordered), strict=True)]  # fmt: skip
        self._winners_of({pair for pairs in found for pair in pairs})
        chosen = [
            (entity, link) for pairs in found for entity, visitor in pairs
            if (link := self.winners.get((entity, visitor))) is not None
            and (entity, link.key) in keys
        ]  # fmt: skip
        unique = {(entity, link.visitor_id): (entity, link) for entity, link in chosen}
        return [unique[k] for k in sorted(unique)]
