"""TableAudiences: measures and segment memberships in one Azure table beside the store's.

Partitions: `s<bucket>` each customer's evaluation; `due` an index of next changes by time;
`m-<segment>` members by CustomerId; `c-<segment>` the numbered history of changes with its
counter, written in one transaction so no reader sees a later change before an earlier one;
`mark` the upkeep's marks. A save writes history, then members, then state (If-Match the
state its changes were worked out from): a crash in between records a change again on the
next evaluation (at least once), never loses one; a concurrent save of the same customer
makes one of them work its changes out again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.adapters.azure.errors import translated
from shared.adapters.azure.table_access import MAX_OPS, batched, if_unchanged, is_conflict
from shared.adapters.azure.table_keys import Entity, bucket, digest, pack, plain_key
from shared.adapters.azure.table_layout import CUSTOMER_ROWS
from shared.adapters.azure.tables import TableStore
from shared.core.audiences.records import (
    ENTERED,
    AudienceResult,
    MembershipChange,
    Overtaken,
    StoredAudience,
    membership_diff,
)
from shared.core.audiences.touched import Touched
from shared.core.errors import TransientError

AUDIENCES = "audiences"
_MAX_SAVES = 20  # rounds of a save whose customers others keep saving at the same moment
_COUNTER = "counter"  # sorts after every 16-digit sequence number
_ORDERED_KEY_BYTES = 120


def _ordered(customer_id: str) -> str:
    """A RowKey that sorts as the id does (its UTF-8 in hex); very long ids sort last."""
    raw = customer_id.encode()
    return raw.hex() if len(raw) <= _ORDERED_KEY_BYTES else "~" + digest(customer_id)


def _etag(state: Entity | None) -> str | None:
    return None if state is None else state["@etag"]


def _state_where(customer_id: str) -> tuple[str, str]:
    return "s" + bucket(digest(customer_id)), plain_key(customer_id)


class TableAudiences:
    # Customers evaluated together (upkeep.chunk_of): each read and write is grouped by partition
    # (32 buckets, <= 14 keys a query, <= 100 operations a transaction), so 1,000 at once make
    # about a third fewer requests than 200; a 1k-row file's upkeep is one chunk.
    evaluation_chunk = 1_000

    def __init__(self, store: TableStore) -> None:
        self.store = store
        self.io = store.io
        self._ids: list[str] = []  # the last scan of customer ids, served a page at a time
        self._stale: tuple[str, list[str]] | None = None
        self._fence = threading.local()  # .states: customer id -> state read in evaluating()

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[object]:
        """Nothing can be held (Table Storage has no transaction across partitions), so the
        block fences instead: activities_by_customer (and inputs_of) reads each customer's
        state before its activities, and a save finding a state other than that one (another
        evaluation saved meanwhile, maybe having seen a write this one did not) refuses that
        customer: Overtaken.
        The last save of a customer is then one whose reads began after every earlier save."""
        outer = getattr(self._fence, "states", None)
        self._fence.states = {} if outer is None else outer
        try:
            yield self._fence.states
        finally:
            self._fence.states = outer

    def customer_ids(self, after: str | None, limit: int) -> list[str]:
        if after is None or not self._ids or after != self._ids[0]:
            # A scan of the customer rows' ids, once per pass rather than once per page.
            rows = self.io.query(CUSTOMER_ROWS, "RowKey gt @low and RowKey lt @high",
                                 {"low": "c", "high": "d"}, select=["CustomerId"])  # fmt: skip
            self._ids = sorted({r["CustomerId"] for r in rows})
            self._ids = [""] + [c for c in self._ids if after is None or c > after]
        page = self._ids[1 : limit + 1]
        self._ids = [page[-1], *self._ids[limit + 1 :]] if page else []
        return page

    def activities_by_customer(self, customer_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        self._fence_states(customer_ids)
        found = self.store.activities_of_customers(customer_ids)
        return {c: [a.to_record() for a in found[c]] for c in customer_ids}

    def inputs_of(
        self, customer_ids: Sequence[str]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any] | None]]:
        """activities_by_customer and attributes_of at once: the customers' members and rows
        are read once for both (two round trips a customer fewer than apart)."""
        self._fence_states(customer_ids)
        found, attributes = self.store.inputs_of_customers(customer_ids)
        return {c: [a.to_record() for a in found[c]] for c in customer_ids}, attributes

    def _fence_states(self, customer_ids: Sequence[str]) -> None:
        """Inside evaluating(): each state as it was before the reads that follow."""
        fence = getattr(self._fence, "states", None)
        if fence is not None:
            unread = [c for c in customer_ids if c not in fence]
            fence.update(zip(unread, self._states(unread), strict=True))

    def attributes_of(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        return self.store.customer_attributes(customer_ids)

    def stored_audiences(self, customer_ids: Sequence[str]) -> dict[str, StoredAudience]:
        rows = self._states(customer_ids)
        return {r["CustomerId"]: _stored(r) for r in rows if r is not None}

    def _states(self, customer_ids: Sequence[str]) -> list[Entity | None]:
        return self.io.get_many(AUDIENCES, [_state_where(c) for c in customer_ids])

    def save_audiences(
        self, results: Sequence[AudienceResult], fingerprint: str, at: str
    ) -> list[MembershipChange]:
        """History, then members, then each state written only over the state the changes
        were worked out from (If-Match). A concurrent save of the same customer makes that
        write lose: the customer's changes are worked out again from the state now stored, and
        what they correct is recorded too, so members always end as the stored state says."""
        pending = list({r.customer_id: r for r in results}.values())
        made: list[MembershipChange] = []
        fence, overtaken = getattr(self._fence, "states", None) or {}, []
        for _ in range(_MAX_SAVES):
            ids = [r.customer_id for r in pending]
            states = dict(zip(ids, self._states(ids), strict=True))
            late = {c for c in ids if c in fence and _etag(states[c]) != _etag(fence[c])}
            if late:  # read again by the next evaluation of them, fenced anew
                overtaken += sorted(late)
                pending = [r for r in pending if r.customer_id not in late]
                for c in late:
                    del fence[c]
            diffs: dict[str, list[tuple[str, str, str, str]]] = {}
            for result in pending:
                old = states[result.customer_id]
                before = tuple(orjson.loads(old["Segments"])) if old else ()
                for diff in membership_diff(result.customer_id, before, result.segments, at):
                    diffs.setdefault(diff[0], []).append(diff)
            made += [c for segment, items in sorted(diffs.items()) for c in self._record(segment, items)]
            self._apply([_member_op(*d) for items in diffs.values() for d in items])
            self._apply([op for r in pending for op in _due_ops(r, states[r.customer_id])])
            written = self._put_states(pending, states, fingerprint, at)
            pending = [r for r, ok in zip(pending, written, strict=True) if not ok]
            if not pending:
                if overtaken:
                    raise Overtaken(overtaken, made)
                return made
        raise TransientError("measures and segments: the same customers kept being saved by others")

    def _put_states(
        self, results: Sequence[AudienceResult], states: dict[str, Entity | None], fingerprint: str, at: str
    ) -> list[bool]:
        """_put_state of each result: a transaction per partition, each write If-Match the
        state read (or a create where none was); a transaction refused because another save
        came first is done one state at a time, to tell which lost."""
        ops: list[tuple[AudienceResult, tuple[Any, ...]]] = []
        for result in results:
            old = states[result.customer_id]
            if result.measures is None:
                if old is not None:
                    ops.append((result, ("delete", old, if_unchanged(old))))
            elif old is None:
                ops.append((result, ("create", _state_row(result, fingerprint, at))))
            else:
                options = {"mode": UpdateMode.REPLACE, **if_unchanged(old)}
                ops.append((result, ("update", _state_row(result, fingerprint, at), options)))
        batches = batched(ops, lambda pair: pair[1][1]["PartitionKey"], lambda pair: [pair[1][1]])

        def put(batch: list[tuple[AudienceResult, tuple[Any, ...]]]) -> list[str]:
            """The customers whose state this batch could not write."""
            try:
                self.io.submit(AUDIENCES, [op for _, op in batch])
                return []
            except TableTransactionError as exc:
                if not is_conflict(exc) and exc.status_code != 404:
                    raise
            return [r.customer_id for r, _ in batch
                    if not self._put_state(r, states[r.customer_id], fingerprint, at)]  # fmt: skip

        lost = {c for found in self.io.map(put, batches) for c in found}
        return [r.customer_id not in lost for r in results]

    def _put_state(self, result: AudienceResult, old: Entity | None, fingerprint: str, at: str) -> bool:
        """Write one customer's state where `old` was read; False when another save came first."""
        table = self.io.table(AUDIENCES)
        partition, row = _state_where(result.customer_id)
        with translated(f"writing table {self.io.prefix}{AUDIENCES}"):
            try:
                if result.measures is None:
                    if old is not None:
                        table.delete_entity(partition, row, **if_unchanged(old))
                elif old is None:
                    table.create_entity(pack(_state_row(result, fingerprint, at)))
                else:
                    table.update_entity(pack(_state_row(result, fingerprint, at)), UpdateMode.REPLACE, **if_unchanged(old))
            except (ResourceExistsError, ResourceModifiedError):
                return False
            except ResourceNotFoundError:
                return old is None or result.measures is None  # gone already / deleted meanwhile
        return True

    def _apply(self, ops: list[tuple[Any, ...]]) -> None:
        """Upserts in batches; deletes one by one, a row already gone being no error (a save
        that died half-way is done again)."""
        self.io.write_all(AUDIENCES, [op for op in ops if op[0] != "delete"])
        deletes = list({(op[1]["PartitionKey"], op[1]["RowKey"]): op for op in ops if op[0] == "delete"}.values())
        self.io.map(self._delete_all, batched(deletes, lambda op: op[1]["PartitionKey"], lambda op: [op[1]]))

    def _delete_all(self, ops: list[tuple[Any, ...]]) -> None:
        """One transaction of deletes; should a row be gone, one by one."""
        with translated(f"writing table {self.io.prefix}{AUDIENCES}"):
            try:
                self.io.submit(AUDIENCES, ops)
                return
            except TableTransactionError as exc:
                if exc.status_code != 404:
                    raise
            table = self.io.table(AUDIENCES)
            for op in ops:
                with contextlib.suppress(ResourceNotFoundError):
                    table.delete_entity(op[1]["PartitionKey"], op[1]["RowKey"])

    def _record(self, segment: str, items: list[tuple[str, str, str, str]]) -> list[MembershipChange]:
        """Number and append a segment's changes with its counter, in one transaction each."""
        made = []
        for i in range(0, len(items), MAX_OPS - 1):
            made += self._append(segment, items[i : i + MAX_OPS - 1])
        return made

    def _append(self, segment: str, items: list[tuple[str, str, str, str]]) -> list[MembershipChange]:
        partition = "c-" + plain_key(segment)
        for _ in range(50):  # others appending to the same segment: take the next numbers
            counter = self.io.get(AUDIENCES, partition, _COUNTER)
            first = (counter["Seq"] if counter else 0) + 1
            rows = [{"PartitionKey": partition, "RowKey": f"{first + i:016d}", "Segment": s,
                     "CustomerId": c, "Change": change, "At": when}
                    for i, (s, c, change, when) in enumerate(items)]  # fmt: skip
            head = {"PartitionKey": partition, "RowKey": _COUNTER, "Seq": first + len(items) - 1}
            ops = [("create", head)] if counter is None else [("update", head, if_unchanged(counter))]
            try:
                self.io.submit(AUDIENCES, [*ops, *(("create", r) for r in rows)])
            except TableTransactionError as exc:
                if is_conflict(exc):
                    continue
                raise
            return [MembershipChange(first + i, *d) for i, d in enumerate(items)]
        raise TransientError(f"segment {segment!r}: too many concurrent writers of its history")

    def due_customers(self, now: str, limit: int) -> list[str]:
        rows = self.io.query_by_row_key(AUDIENCES, "PartitionKey eq 'due' and RowKey le @high",
                                        {"high": now + "~"}, ["CustomerId"], page=limit)  # fmt: skip
        found: list[str] = []
        for row in rows:
            if len(found) >= limit:
                break
            if row["CustomerId"] not in found:
                found.append(row["CustomerId"])
        return found

    def mark_due(self, customer_ids: Sequence[str], at: str) -> None:
        ops: list[tuple[Any, ...]] = []
        for customer_id, old in zip(customer_ids, self._states(customer_ids), strict=True):
            partition, row = _state_where(customer_id)
            if old is not None and old.get("NextChange") and old["NextChange"] > at:
                ops.append(("delete", _due(old["NextChange"], customer_id)))
            if old is None or not old.get("NextChange") or old["NextChange"] > at:
                ops.append(("upsert", {**_due(at, customer_id), "CustomerId": customer_id}))
                state = old or {"CustomerId": customer_id, "Measures": "{}", "Segments": "[]",
                                "Fingerprint": "", "EvaluatedAt": at}  # fmt: skip
                ops.append(("upsert", {**state, "PartitionKey": partition, "RowKey": row, "NextChange": at}))
        # The due row before the state that names it, as a save writes them.
        self._apply(sorted(ops, key=lambda op: op[1]["PartitionKey"] != "due"))

    def customers_reached(self, touched: Touched) -> set[str]:
        return self.store.customers_reached(touched)

    def stale_customers(self, fingerprint: str, limit: int, before: str | None = None) -> list[str]:
        wanted = f"{fingerprint} {before or ''}"
        if self._stale is None or self._stale[0] != wanted or not self._stale[1]:
            # One scan of customers and evaluations per pass, served a chunk at a time: what a
            # pass evaluates stops being stale, and the pass ends with a fresh scan.
            customers = set(self.customer_ids(None, 10**9))
            states = self.io.query(AUDIENCES, "PartitionKey ge 's' and PartitionKey lt 't'",
                                   select=["CustomerId", "Fingerprint", "EvaluatedAt"])  # fmt: skip
            current = {
                r["CustomerId"]: r["Fingerprint"] == fingerprint and (r.get("EvaluatedAt") or "") >= (before or "")
                for r in states
            }  # fmt: skip
            stale = {c for c in customers if not current.get(c)} | (set(current) - customers)
            self._stale = (wanted, sorted(stale))
        page, rest = self._stale[1][:limit], self._stale[1][limit:]
        self._stale = (wanted, rest)
        return page

    def segment_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for row in self.io.query(AUDIENCES, "PartitionKey ge 'm-' and PartitionKey lt 'm.'",
                                 select=["Segment"]):  # fmt: skip
            sizes[row["Segment"]] = sizes.get(row["Segment"], 0) + 1
        return sizes

    def segment_members(self, segment: str, after: str | None, limit: int) -> list[str]:
        low = _ordered(after) if after else ""
        rows = self.io.query_by_row_key(
            AUDIENCES, "PartitionKey eq @pk and RowKey gt @low",
            {"pk": "m-" + plain_key(segment), "low": low}, ["CustomerId"], page=min(limit, 1000),
        )  # fmt: skip
        return [r["CustomerId"] for _, r in zip(range(limit), rows, strict=False)]

    def membership_changes(self, segment: str, after: int, limit: int) -> list[MembershipChange]:
        rows = self.io.query_by_row_key(
            AUDIENCES, "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
            {"pk": "c-" + plain_key(segment), "low": f"{after:016d}", "high": _COUNTER},
            ["Segment", "CustomerId", "Change", "At"], page=min(limit, 1000),
        )  # fmt: skip
        return [MembershipChange(int(r["RowKey"]), r["Segment"], r["CustomerId"] or None, r["Change"], r["At"])
                for _, r in zip(range(limit), rows, strict=False)]  # fmt: skip

    def anonymize_changes(self, customer_id: str) -> int:
        # A scan of the history partitions for the customer's entries.
        rows = list(self.io.query(AUDIENCES, "PartitionKey ge 'c-' and PartitionKey lt 'c.' and CustomerId eq @c",
                                  {"c": customer_id}))  # fmt: skip
        # Emptied rather than removed: an upsert merges, and "" reads back as None.
        self.io.write_all(AUDIENCES, [("upsert", {**r, "CustomerId": ""}) for r in rows])
        return len(rows)

    def iter_measures(self) -> Iterator[tuple[str, dict[str, Any]]]:
        # A scan of the evaluations in the table's order (by bucket), a page at a time.
        rows = self.io.query(AUDIENCES, "PartitionKey ge 's' and PartitionKey lt 't'",
                             select=["CustomerId", "Measures"])  # fmt: skip
        for row in rows:
            yield row["CustomerId"], orjson.loads(row["Measures"])

    def iter_memberships(self) -> Iterator[tuple[str, str, str]]:
        rows = self.io.query(AUDIENCES, "PartitionKey ge 'm-' and PartitionKey lt 'm.'",
                             select=["Segment", "CustomerId", "Since"])  # fmt: skip
        for row in rows:
            yield row["Segment"], row["CustomerId"], row["Since"]

    def marks(self) -> dict[str, str]:
        return {r["Name"]: r["Value"] for r in self.io.query(AUDIENCES, "PartitionKey eq 'mark'")}

    def set_mark(self, name: str, value: str) -> None:
        self.io.write_all(AUDIENCES, [("upsert", {"PartitionKey": "mark", "RowKey": plain_key(name),
                                                   "Name": name, "Value": value})])  # fmt: skip


def _member_op(segment: str, customer_id: str, change: str, at: str) -> tuple[Any, ...]:
    row: Entity = {"PartitionKey": "m-" + plain_key(segment), "RowKey": _ordered(customer_id)}
    if change == ENTERED:
        return ("upsert", {**row, "Segment": segment, "CustomerId": customer_id, "Since": at})
    return ("delete", row)


def _due_ops(result: AudienceResult, old: Entity | None) -> list[tuple[Any, ...]]:
    """The due index rows of a save: the new moment's, before the state that names it."""
    ops: list[tuple[Any, ...]] = []
    if old is not None and old.get("NextChange") and old["NextChange"] != result.next_change:
        ops.append(("delete", _due(old["NextChange"], result.customer_id)))
    if result.measures is not None and result.next_change:
        ops.append(("upsert", {**_due(result.next_change, result.customer_id), "CustomerId": result.customer_id}))
    return ops


def _state_row(result: AudienceResult, fingerprint: str, at: str) -> Entity:
    partition, row = _state_where(result.customer_id)
    return {
        "PartitionKey": partition, "RowKey": row, "CustomerId": result.customer_id,
        "Measures": orjson.dumps(result.measures).decode(), "Segments": orjson.dumps(list(result.segments)).decode(),
        "NextChange": result.next_change, "Fingerprint": fingerprint, "EvaluatedAt": at,
    }  # fmt: skip


def _due(next_change: str, customer_id: str) -> Entity:
    return {"PartitionKey": "due", "RowKey": f"{next_change}|{plain_key(customer_id)}"}


def _stored(row: Entity) -> StoredAudience:
    return StoredAudience(row["CustomerId"], orjson.loads(row["Measures"]), tuple(orjson.loads(row["Segments"])),
                          row.get("NextChange"), row["Fingerprint"], row["EvaluatedAt"])  # fmt: skip


__all__ = ["TableAudiences"]
