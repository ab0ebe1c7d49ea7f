"""MemoryErasures: the in-memory double of the erasure store, beside a MemoryStore."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from shared.adapters.memory import MemoryStore
from shared.core.erasure.suppressions import holds_value


class MemoryErasures:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.salt: str | None = None
        self.hashes: set[str] = set()
        self.receipts: list[dict[str, Any]] = []

    def erasure_salt(self, proposed: str) -> str:
        with self._lock:
            self.salt = self.salt or proposed
            return self.salt

    def suppress(self, hashes: Sequence[str]) -> None:
        with self._lock:
            self.hashes.update(hashes)

    def suppressions(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self.hashes)

    def erase_activities(self, keys: Sequence[tuple[str, str]], visitors: Sequence[str]) -> int:
        store, wanted, seen = self.store, set(keys), set(visitors)
        with store._lock:
            doomed = [
                i for i, a in store.activities.items()
                if (a.customer_entity, a.activity_foreign_key) in wanted or a.visitor_id in seen
            ]  # fmt: skip
            for activity_id in doomed:
                del store.activities[activity_id]
        return len(doomed)

    def erase_rejects(self, values: Sequence[str]) -> int:
        store = self.store
        with store._lock:
            doomed = [k for k, r in store.rejects.items() if holds_value(r.excerpt, list(values))]
            for key in doomed:
                del store.rejects[key]
        return len(doomed)

    def erase_links(self, keys: Sequence[tuple[str, str]], visitors: Sequence[str]) -> int:
        store, wanted, seen, removed = self.store, set(keys), set(visitors), 0
        with store._lock:
            for (entity, visitor), held in list(store.links.items()):
                for identity, link in list(held.items()):
                    if visitor in seen or (entity, link.key) in wanted:
                        del held[identity]
                        removed += 1
                if not held:
                    del store.links[(entity, visitor)]
        return removed

    def erase_customer_rows(self, customer_id: str) -> int:
        store = self.store
        with store._lock:
            rows = [k for k, (row, _) in store.customer_rows.items() if row.customer_id == customer_id]
            for key in rows:
                del store.customer_rows[key]
        return len(rows)

    def record_erasure(self, receipt: dict[str, Any]) -> None:
        with self._lock:
            self.receipts.append(receipt)

    def erasures(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.receipts)
