"""TableErasures: the salt, suppressions and erasure log in one Azure table beside the store's,
and the removal of what reaches an erased customer from the store's tables.

Partitions of `erasure`: `salt` (one row, created once: the first writer's wins), `suppress`
(a row per hash), `log` (a receipt per erasure, by time).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.adapters.azure.errors import translated
from shared.adapters.azure.table_keys import Entity
from shared.adapters.azure.table_layout import (
    ACTIVITIES,
    CUSTOMER_ROWS,
    KEYED,
    MEMBERS,
    REJECTS,
    activity_where,
    customer_where,
    keyed_range,
    keyed_record,
    member_record,
    visitor_keyed_range,
    visitor_keyed_record,
)
from shared.adapters.azure.table_links import delete_links, links_of, visitors_of
from shared.adapters.azure.tables import TableStore
from shared.core.erasure.suppressions import holds_value

ERASURE = "erasure"


class TableErasures:
    def __init__(self, store: TableStore) -> None:
        self.store = store
        self.io = store.io

    def erasure_salt(self, proposed: str) -> str:
        with translated(f"writing table {self.io.prefix}{ERASURE}"), contextlib.suppress(ResourceExistsError):
            self.io.table(ERASURE).create_entity({"PartitionKey": "salt", "RowKey": "salt", "Salt": proposed})
        found = self.io.get(ERASURE, "salt", "salt")
        assert found is not None
        return found["Salt"]

    def suppress(self, hashes: Sequence[str]) -> None:
        self.io.write_all(ERASURE, [("upsert", {"PartitionKey": "suppress", "RowKey": h}) for h in hashes])

    def suppressions(self) -> frozenset[str]:
        rows = self.io.query(ERASURE, "PartitionKey eq 'suppress'", select=["RowKey"])
        return frozenset(r["RowKey"] for r in rows)

    def erase_activities(self, keys: Sequence[tuple[str, str]], visitors: Sequence[str]) -> int:
        entities = sorted({entity for entity, _ in keys})
        ranges = [keyed_range(entity, key) for entity, key in keys]
        ranges += [found for entity in entities for visitor in visitors
                   for found in (keyed_range(entity, visitor), visitor_keyed_range(entity, visitor))]  # fmt: skip
        index = [row for rows in self.io.map(lambda r: list(self._index(*r)), ranges) for row in rows]
        ids = sorted({row["ActivityId"] for row in index})
        records = self.io.map(lambda i: self.io.get(ACTIVITIES, *activity_where(i)), ids)
        wanted, seen = set(keys), set(visitors)
        # The index may be stale: the activity itself says whether it is the customer's.
        doomed = [r for r in records if r is not None and (
            (r.get("CustomerEntity"), r.get("ActivityForeignKey")) in wanted or r.get("VisitorId") in seen
        )]  # fmt: skip
        # A crash anywhere in between must leave a retry able to find the rest. The index rows
        # only the records name (under another visitor: a shared device) go first, as a retry
        # after the records are gone could not find them; then the truth; then the index rows
        # of the ranges read, which a retry reads again.
        found = {(r["PartitionKey"], r["RowKey"]) for r in index}
        named = {(k["PartitionKey"], k["RowKey"]) for r in doomed
                 for k in (keyed_record(r), visitor_keyed_record(r)) if k is not None}  # fmt: skip
        self._delete(KEYED, sorted(named - found))
        self._delete(ACTIVITIES, [(r["PartitionKey"], r["RowKey"]) for r in doomed])
        self._delete(KEYED, sorted(found))
        return len(doomed)

    def _index(self, partition: str, low: str, high: str) -> Iterable[Entity]:
        return self.io.query(
            KEYED, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
            {"pk": partition, "low": low, "high": high}, select=["PartitionKey", "RowKey", "ActivityId"],
        )  # fmt: skip

    def erase_rejects(self, values: Sequence[str]) -> int:
        # A scan of the rejects: they are kept by file, and any file may hold the customer.
        doomed = [r for r in self.io.scan(REJECTS) if holds_value(r.get("Excerpt") or "", list(values))]
        self._delete(REJECTS, [(r["PartitionKey"], r["RowKey"]) for r in doomed])
        return len(doomed)

    def erase_links(self, keys: Sequence[tuple[str, str]], visitors: Sequence[str]) -> int:
        entities = sorted({entity for entity, _ in keys})
        pairs = {(entity, visitor) for entity in entities for visitor in visitors}
        pairs |= {(entity, v) for entity, key in keys for v in visitors_of(self.io, entity, key)}
        wanted, seen = set(keys), set(visitors)
        found = self.io.map(lambda pair: links_of(self.io, *pair), sorted(pairs))
        doomed = [link for links in found for link in links
                  if link.visitor_id in seen or (link.customer_entity, link.key) in wanted]  # fmt: skip
        delete_links(self.io, doomed)
        return len(doomed)

    def erase_customer_rows(self, customer_id: str) -> int:
        rows = self.store._rows_of(customer_id)
        self._delete(MEMBERS, [(m["PartitionKey"], m["RowKey"]) for m in map(member_record, rows)])
        self._delete(CUSTOMER_ROWS, [customer_where(r["Entity"], r["Key"]) for r in rows])
        self.store._customer_keys.difference_update((r["Entity"], r["Key"]) for r in rows)
        return len(rows)

    def _delete(self, name: str, where: Sequence[tuple[str, str]]) -> None:
        table = self.io.table(name)
        with translated(f"writing table {self.io.prefix}{name}"):
            for partition, row in where:
                with contextlib.suppress(ResourceNotFoundError):
                    table.delete_entity(partition, row)

    def record_erasure(self, receipt: dict[str, Any]) -> None:
        row = f"{receipt['ErasedAt']}|{uuid.uuid4().hex}"
        self.io.write_all(ERASURE, [("upsert", {"PartitionKey": "log", "RowKey": row,
                                                 "Receipt": orjson.dumps(receipt).decode()})])  # fmt: skip

    def erasures(self) -> list[dict[str, Any]]:
        rows = self.io.query_by_row_key(ERASURE, "PartitionKey eq 'log'", {}, ["Receipt"], page=1000)
        return [orjson.loads(r["Receipt"]) for r in rows]
