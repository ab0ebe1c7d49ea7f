"""MemoryAudiences: the in-memory double of the audience store, beside a MemoryStore."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from shared.adapters.memory import MemoryStore
from shared.core.audiences.records import (
    ENTERED,
    AudienceResult,
    MembershipChange,
    StoredAudience,
    membership_diff,
)
from shared.core.audiences.touched import Touched


class MemoryAudiences:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._lock = threading.RLock()
        self.state: dict[str, StoredAudience] = {}
        self.members: dict[str, dict[str, str]] = {}  # segment -> customer -> since
        self.changes: list[MembershipChange] = []
        self._marks: dict[str, str] = {}

    def _customers(self) -> set[str]:
        with self.store._lock:
            return {row.customer_id for row, _ in self.store.customer_rows.values()}

    def evaluating(self) -> contextlib.AbstractContextManager[object]:
        """Nothing held: the memory store's writes take no lock of the evaluation's."""
        return contextlib.nullcontext()

    def customer_ids(self, after: str | None, limit: int) -> list[str]:
        return sorted(c for c in self._customers() if c > (after or ""))[:limit]

    def activities_by_customer(self, customer_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {c: [] for c in customer_ids}
        for activity in self.store._resolved_all(lambda a: a.customer_id in found):
            found[activity.customer_id].append(activity.to_record())  # type: ignore[index]
        return found

    def attributes_of(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        return {c: found.attributes if (found := self.store.get_customer(c)) else None for c in customer_ids}

    def stored_audiences(self, customer_ids: Sequence[str]) -> dict[str, StoredAudience]:
        with self._lock:
            return {c: self.state[c] for c in customer_ids if c in self.state}

    def save_audiences(
        self, results: Sequence[AudienceResult], fingerprint: str, at: str
    ) -> list[MembershipChange]:
        made = []
        with self._lock:
            for result in results:
                old = self.state.get(result.customer_id)
                for segment, customer_id, change, when in membership_diff(
                    result.customer_id, old.segments if old else (), result.segments, at
                ):
                    members = self.members.setdefault(segment, {})
                    if change == ENTERED:
                        members[customer_id] = when
                    else:
                        members.pop(customer_id, None)
                    made.append(MembershipChange(len(self.changes) + 1, segment, customer_id, change, when))
                    self.changes.append(made[-1])
                if result.measures is None:
                    self.state.pop(result.customer_id, None)
                else:
                    self.state[result.customer_id] = StoredAudience(
                        result.customer_id, result.measures, result.segments, result.next_change,
                        fingerprint, at,
                    )  # fmt: skip
        return made

    def due_customers(self, now: str, limit: int) -> list[str]:
        with self._lock:
            due = [(s.next_change, c) for c, s in self.state.items() if s.next_change and s.next_change <= now]
        return [c for _, c in sorted(due)[:limit]]

    def mark_due(self, customer_ids: Sequence[str], at: str) -> None:
        with self._lock:
            for c in customer_ids:
                old = self.state.get(c) or StoredAudience(c, {}, (), None, "", at)
                self.state[c] = dataclasses.replace(old, next_change=at)

    def customers_reached(self, touched: Touched) -> set[str]:
        return self.store.customers_reached(touched)

    def stale_customers(self, fingerprint: str, limit: int, before: str | None = None) -> list[str]:
        customers = self._customers()
        with self._lock:
            stale = {
                c for c in customers if c not in self.state or self.state[c].fingerprint != fingerprint
                or self.state[c].evaluated_at < (before or "")
            }  # fmt: skip
            stale |= set(self.state) - customers
        return sorted(stale)[:limit]

    def segment_sizes(self) -> dict[str, int]:
        with self._lock:
            return {s: len(m) for s, m in self.members.items() if m}

    def segment_members(self, segment: str, after: str | None, limit: int) -> list[str]:
        with self._lock:
            members = sorted(self.members.get(segment, {}))
        return [c for c in members if c > (after or "")][:limit]

    def membership_changes(self, segment: str, after: int, limit: int) -> list[MembershipChange]:
        with self._lock:
            found = [c for c in self.changes if c.seq > after and c.segment == segment]
        return found[:limit]

    def anonymize_changes(self, customer_id: str) -> int:
        with self._lock:
            mine = [i for i, c in enumerate(self.changes) if c.customer_id == customer_id]
            for i in mine:
                self.changes[i] = self.changes[i]._replace(customer_id=None)
        return len(mine)

    def iter_measures(self) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._lock:
            found = sorted((c, dict(s.measures)) for c, s in self.state.items())
        return iter(found)

    def iter_memberships(self) -> Iterator[tuple[str, str, str]]:
        with self._lock:
            found = sorted((s, c, since) for s, members in self.members.items() for c, since in members.items())
        return iter(found)

    def marks(self) -> dict[str, str]:
        with self._lock:
            return dict(self._marks)

    def set_mark(self, name: str, value: str) -> None:
        with self._lock:
            self._marks[name] = value
