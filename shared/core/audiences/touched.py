"""What a file touched, for its customers to be evaluated again once it is loaded (SPEC §9
"kept current"): the customer keys and visitors its writes and forgets name, and the
customers its customer rows name.

Resolution is read, not stored (SPEC §8), so a write can move activities between customers it
never names. Every such move goes through a reference the write does name:

- an activity written or forgotten reaches the customer of its key, else its visitor's winner:
  `keys` and `visitors`;
- a link written or forgotten changes its visitor's winner: the customers of *every* key the
  visitor is linked to (the old winner among them) are reached through `visitors`, and a
  forgotten link's key through `keys`;
- a customer row written or forgotten (`row_keys`) changes who the key's activities, and the
  visitors whose winner is the key, reach; and where the key has no row, its activities fall
  back to their visitors: a store reaches those visitors' customers too.

A customer row may move a key from one customer to another: the customer the key had before
is read before the write (`WatchedStore`). A record replaced by another file's copy of it
(the same ActivityId, or customer key) is reported by the store's write. Every other reference
is read once, at the end.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from shared.core.identity.links import Link
from shared.core.model import Activity, CustomerRow, Reject

log = logging.getLogger(__name__)

Ref = tuple[str, str]  # (customer entity, key or visitor id)


@dataclasses.dataclass
class Touched:
    keys: set[Ref] = dataclasses.field(default_factory=set)
    visitors: set[Ref] = dataclasses.field(default_factory=set)
    row_keys: set[Ref] = dataclasses.field(default_factory=set)
    customers: set[str] = dataclasses.field(default_factory=set)
    # Every customer: the file's references reach most of them (FileUpkeep.covers_all); then
    # only `customers` matter beside it (named by customer rows: maybe gone, to leave segments).
    everyone: bool = False

    def __len__(self) -> int:
        return len(self.keys) + len(self.visitors) + len(self.row_keys) + len(self.customers)

    def __bool__(self) -> bool:
        return self.everyone or len(self) > 0

    def merge(self, other: Touched) -> None:
        self.everyone |= other.everyone
        self.keys |= other.keys
        self.visitors |= other.visitors
        self.row_keys |= other.row_keys
        self.customers |= other.customers

    def add_activity(self, entity: str | None, key: str | None, visitor: str | None) -> None:
        if entity is not None:
            if key is not None:
                self.keys.add((entity, key))
            if visitor is not None:
                self.visitors.add((entity, visitor))

    def add_activities(self, batch: Sequence[Activity]) -> None:
        """`add_activity` for each of a batch, as two set updates (a file's hot path)."""
        self.keys.update(
            (a.customer_entity, a.activity_foreign_key) for a in batch
            if a.customer_entity is not None and a.activity_foreign_key is not None
        )  # fmt: skip
        self.visitors.update(
            (a.customer_entity, a.visitor_id) for a in batch
            if a.customer_entity is not None and a.visitor_id is not None
        )  # fmt: skip

    def add_link(self, entity: str, visitor: str, key: str) -> None:
        self.visitors.add((entity, visitor))
        self.keys.add((entity, key))

    def add_row(self, entity: str, key: str, customer_id: str) -> None:
        self.row_keys.add((entity, key))
        self.customers.add(customer_id)


class FileUpkeep(Protocol):
    """What ingest calls, when measures or segments are configured, to evaluate again the
    customers a file touched (shared/core/audiences/upkeep.py ByFile)."""

    def reached(self, touched: Touched) -> set[str]:
        """The customers the references reach as the store is now."""
        ...

    def covers_all(self, references: int, partial: bool = False) -> bool:
        """Whether a file naming this many keys and visitors is best evaluated as every
        customer (Touched.everyone), rather than by reading whom they reach; `partial`: the
        first of a file's references only, asked in the middle of it (it names more). May
        raise for a fault of the store."""
        ...

    def evaluate(self, touched: Touched) -> None:
        """Evaluate now the customers named and reached (every customer, with `everyone`);
        never raises for a fault of the store: what it could not evaluate is left to the timer."""
        ...

    def catch_up(self, deadline: float | None) -> tuple[int, int]:
        """The reconciler's part, after the files (shared/core/audiences/upkeep.py
        keep_current): how many customers were evaluated for new definitions or after a
        worker died, and how many whose windows moved on."""
        ...

    def suspect(self) -> None:
        """Note that a worker died or was stopped inside a file, for the timer to evaluate
        everyone evaluated before now again; may raise for a fault of the store."""
        ...


class WatchedStore:
    """A profile store that notes what one file's load writes and forgets; everything else
    goes to the store it wraps. `settle` evaluates the customers touched. Memory stays flat
    whatever the file's size: every `MAX_REFERENCES` references are read into the customers
    they reach as the store is then (each later move of theirs names references of its own),
    and every `MAX_CUSTOMERS` customers are evaluated. A file that touches most customers
    is then one evaluation pass at its end, not one every few thousand rows; once its
    references are that many (`FileUpkeep.covers_all`), they are no longer noted or read at
    all: the pass at its end is of every customer (Touched.everyone)."""

    MAX_REFERENCES = 20_000
    MAX_CUSTOMERS = 200_000
    MAX_REMEMBERED = 100_000  # references read already, not read again for this file

    def __init__(self, store: Any, upkeep: FileUpkeep) -> None:
        self.store, self.upkeep = store, upkeep
        self.touched = Touched()
        self._before: set[Ref] = set()  # row keys whose earlier customer was read
        # Activity keys and visitors read into customers already: what they reach changes only
        # through a write naming references of its own (a customer row, a link's key), so
        # the same key on the file's next rows reaches no customer not found already.
        self._read_keys: set[Ref] = set()
        self._read_visitors: set[Ref] = set()
        # covers_all said no: asked once a file (each read is of as many references, and the
        # customers' count hardly moves within a file), not before every read.
        self._narrow = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def write(
        self,
        activities: Sequence[Activity],
        customers: Sequence[CustomerRow],
        rejects: Sequence[Reject],
        links: Sequence[Link] = (),
    ) -> int:
        touched = self.touched
        if customers:  # who each key reached before this write: a row may move the key
            fresh = {(r.entity, r.key) for r in customers} - self._before
            if fresh:
                try:
                    touched.customers |= self.upkeep.reached(Touched(row_keys=fresh))
                except Exception as exc:  # a read for the upkeep never fails the file
                    log.warning("customers of %d keys before their rows changed: %s", len(fresh), exc)
                self._before |= fresh
        unmatched = self.store.write(activities, customers, rejects, links, touched=touched)
        for r in customers:
            touched.add_row(r.entity, r.key, r.customer_id)
        if not touched.everyone:  # every customer is evaluated: whom these reach needs no noting
            touched.add_activities(activities)
            for link in links:
                touched.add_link(link.customer_entity, link.visitor_id, link.key)
        if len(touched) - len(touched.customers) >= self.MAX_REFERENCES:
            self._resolve()
        return unmatched

    def _resolve(self) -> None:
        """The references noted so far as the customers they reach now; none once they are
        so many that every customer is evaluated."""
        touched = self.touched
        if not touched.everyone and not self._narrow:
            try:
                touched.everyone = self.upkeep.covers_all(len(touched.keys) + len(touched.visitors), partial=True)
                self._narrow = not touched.everyone
            except Exception as exc:  # a read for the upkeep never fails the file
                log.warning("how many customers %d references reach: %s", len(touched), exc)
        if touched.everyone:  # only the customers rows named (maybe gone) matter now
            self.touched = Touched(customers=touched.customers, everyone=True)
            self._read_keys, self._read_visitors = set(), set()
            if len(self.touched.customers) >= self.MAX_CUSTOMERS:
                self.settle()
            return
        fresh = Touched(touched.keys - self._read_keys, touched.visitors - self._read_visitors, touched.row_keys)
        try:
            reached = self.upkeep.reached(fresh)
        except Exception as exc:  # a read for the upkeep never fails the file: evaluate now
            log.warning("customers of %d references: %s", len(fresh), exc)
            self.settle()
            return
        if len(self._read_keys) + len(self._read_visitors) >= self.MAX_REMEMBERED:
            self._read_keys, self._read_visitors = set(), set()
        self._read_keys |= fresh.keys
        self._read_visitors |= fresh.visitors
        self.touched = Touched(customers=touched.customers | reached)
        if len(self.touched.customers) >= self.MAX_CUSTOMERS:
            self.settle()

    def forget_file(self, path: str, keep_etag: str) -> Touched | None:
        forgotten = self.store.forget_file(path, keep_etag)
        if forgotten is not None:
            self.touched.merge(forgotten)
        return forgotten

    def settle(self) -> None:
        """Evaluate the customers touched so far, and start again."""
        touched, self.touched, self._before = self.touched, Touched(), set()
        self._read_keys, self._read_visitors = set(), set()
        if touched:
            self.upkeep.evaluate(touched)
