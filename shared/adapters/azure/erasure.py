"""TableErasures: the salt, suppressions and erasure log in one Azure table beside the store's,
and the removal of what reaches an erased customer from the store's tables.

Partitions of `erasure`: `salt` (one row, created once: the first writer's wins), `suppress`
(a row per hash), `log` (a receipt per erasure, by time).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.adapters.azure.errors import translated
from shared.adapters.azure.table_layout import (
    ACTIVITIES,
    CUSTOMER_ROWS,
    KEYED,
    MEMBERS,
    REJECTS,
    activity_where,
    customer_where,
    keyed_range,
    member_record,
)
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

    def erase_records(
        self, customer_id: str, keys: Sequence[tuple[str, str]], values: Sequence[str]
    ) -> dict[str, int]:
        activities = 0
        for entity, key in keys:
            partition, low, high = keyed_range(entity, key)
            index = list(self.io.query(
                KEYED, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
                {"pk": partition, "low": low, "high": high}, select=["PartitionKey", "RowKey", "ActivityId"],
            ))  # fmt: skip
            ids = {row["ActivityId"] for row in index}
            activities += len(ids)
            self._delete(ACTIVITIES, [activity_where(a) for a in ids])
            self._delete(KEYED, [(r["PartitionKey"], r["RowKey"]) for r in index])
        # A scan of the rejects: they are kept by file, and any file may hold the customer.
        doomed = [r for r in self.io.scan(REJECTS) if holds_value(r.get("Excerpt") or "", list(values))]
        self._delete(REJECTS, [(r["PartitionKey"], r["RowKey"]) for r in doomed])
        # Last: a retry after a crash still finds the customer, and through it the keys.
        rows = self.store._rows_of(customer_id)
        self._delete(MEMBERS, [(m["PartitionKey"], m["RowKey"]) for m in map(member_record, rows)])
        self._delete(CUSTOMER_ROWS, [customer_where(r["Entity"], r["Key"]) for r in rows])
        self.store._customer_keys.difference_update((r["Entity"], r["Key"]) for r in rows)
        return {"activities": activities, "rejects": len(doomed), "customerRows": len(rows)}

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
