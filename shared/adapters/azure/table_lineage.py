"""Records with lineage in Azure Tables: the greatest (SourceFile, SourceRow) wins, whoever
writes at the same time, and what one version of a file wrote can be found and forgotten."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

from azure.data.tables import TableTransactionError, UpdateMode

from shared.adapters.azure.errors import translated
from shared.adapters.azure.table_access import (
    MAX_OPS,
    TableAccess,
    batched,
    if_unchanged,
    is_conflict,
)
from shared.adapters.azure.table_keys import BUCKETS, Entity, digest
from shared.adapters.azure.table_layout import OVERLAPS, overlap_record
from shared.core.errors import TransientError

MAX_ROUNDS = 8
_PARTITIONS = [format(n, "02x") for n in range(BUCKETS)]


def version(record: Entity) -> tuple[str, int]:
    return record["SourceFile"], record["SourceRow"]


def marker_prefix(file: str, etag: str | None = None) -> str:
    return "f" + digest(file) + ("" if etag is None else digest(etag))


@dataclasses.dataclass(frozen=True)
class Put:
    """A record to store unless a greater version is there."""

    record: Entity

    def entities(self) -> list[Entity]:
        return [self.record]

    def chunk(self) -> tuple[str, str, str]:
        """What the puts of one transaction share: partition and file version."""
        r = self.record
        return r["PartitionKey"], r["SourceFile"], r["SourceETag"]


def marker(puts: Sequence[Put]) -> Entity:
    """The lineage marker of puts of one chunk, written in their transaction: it lets
    `forget_version` find what a file version wrote. One marker names all of a transaction's
    records, as every entity written costs about as much as another. Record RowKeys start with
    a letter below '~', which keeps a file version's markers inside the range queries use.
    """
    first = puts[0].record
    return {
        "PartitionKey": first["PartitionKey"],
        "RowKey": marker_prefix(first["SourceFile"], first["SourceETag"]) + first["RowKey"],
        "Targets": "\n".join(put.record["RowKey"] for put in puts),
    }


def _targets(marker: Entity) -> list[str]:
    # Markers written before they named several records name one, as "Target".
    return marker["Targets"].split("\n") if "Targets" in marker else [marker["Target"]]


@dataclasses.dataclass(frozen=True)
class Outcome:
    put: Put
    won: bool
    old: Entity | None = None  # the record a winning put replaced
    current: Entity | None = None  # the greater record a losing put left in place


def put_greatest(access: TableAccess, name: str, puts: Sequence[Put]) -> list[Outcome]:
    """Store each record whose version is >= the stored one's, whatever the order of writers.

    Fast path: a transaction of creates per chunk of a partition. A chunk that meets existing
    rows is read again and written with If-Match on the ETags read, until no writer interferes.
    A put about to replace another file's record notes the overlap first (OVERLAPS): once
    replaced, nothing would tell; a losing put's overlap is for the caller to note (`losses`).
    """
    chunks = batched(puts, Put.chunk, Put.entities, max_ops=MAX_OPS - 1)  # room for the marker
    outcomes: list[Outcome] = []
    with translated(f"writing table {access.prefix}{name}"):
        results = access.map(lambda chunk: _create(access, name, chunk), chunks)
        pending = _collect(chunks, results, outcomes)
        for _ in range(MAX_ROUNDS):
            if not pending:
                return outcomes
            flat = [put for chunk in pending for put in chunk]
            stored = iter(access.map(lambda p: _stored(access, name, p), flat))
            reads = [(chunk, [next(stored) for _ in chunk]) for chunk in pending]
            results = access.map(lambda pair: _replace(access, name, *pair), reads)
            pending = _collect(pending, results, outcomes)
    if not pending:
        return outcomes
    raise TransientError(f"writing table {access.prefix}{name}: rows kept changing under us")


def _collect(
    chunks: list[list[Put]], results: list[list[Outcome] | None], outcomes: list[Outcome]
) -> list[list[Put]]:
    """Adds finished chunks' outcomes; returns the chunks to try again."""
    for result in results:
        if result is not None:
            outcomes.extend(result)
    return [chunk for chunk, result in zip(chunks, results, strict=True) if result is None]


def _same(record: Entity, stored: Entity) -> bool:
    """Whether the stored row already holds exactly `record` (the service drops None values)."""
    values = {name: value for name, value in record.items() if value is not None}
    return values == {name: value for name, value in stored.items() if not name.startswith("@")}


def _stored(access: TableAccess, name: str, put: Put) -> Entity | None:
    return access.get(name, put.record["PartitionKey"], put.record["RowKey"])


def _create(access: TableAccess, name: str, chunk: list[Put]) -> list[Outcome] | None:
    ops: list[tuple] = [("create", put.record) for put in chunk]
    ops.append(("upsert", marker(chunk)))
    if not _submitted(access, name, ops):
        return None
    return [Outcome(put, True) for put in chunk]


def _submitted(access: TableAccess, name: str, ops: list[tuple]) -> bool:
    """Submit one transaction; False when another writer got there first (a conflict)."""
    try:
        access.submit(name, ops)
    except TableTransactionError as exc:
        if is_conflict(exc):
            return False
        raise
    return True


def _replace(
    access: TableAccess, name: str, chunk: list[Put], stored: list[Entity | None]
) -> list[Outcome] | None:
    ops: list[tuple] = []
    written: list[Put] = []
    outcomes: list[Outcome] = []
    for put, old in zip(chunk, stored, strict=True):
        if old is None:
            ops.append(("create", put.record))
            written.append(put)
            outcomes.append(Outcome(put, True))
        elif _same(put.record, old):
            # A file processed again: nothing to write (its marker came with the record).
            outcomes.append(Outcome(put, True, old=old))
        elif version(put.record) >= version(old):
            only_if = {"mode": UpdateMode.REPLACE, **if_unchanged(old)}
            ops.append(("update", put.record, only_if))
            written.append(put)
            outcomes.append(Outcome(put, True, old=old))
        else:
            outcomes.append(Outcome(put, False, current=old))
    if ops:
        displaced = {
            (o.put.record["SourceFile"], o.old["SourceFile"]) for o in outcomes
            if o.old is not None and o.put in written and o.old["SourceFile"] != o.put.record["SourceFile"]
        }  # fmt: skip
        if displaced:  # one winner file: one partition, at most MAX_OPS - 1 losers
            access.submit(OVERLAPS, [("upsert", overlap_record(*pair)) for pair in displaced])
        ops.append(("upsert", marker(written)))
        if not _submitted(access, name, ops):
            return None
    return outcomes


def stale_index_rows(
    outcomes: Sequence[Outcome], index_of: Callable[[Entity], Entity | None]
) -> list[Entity]:
    """Index rows that no longer point at a stored record: the replaced one's, or a loser's."""
    stale = []
    for outcome in outcomes:
        mine = index_of(outcome.put.record)
        if outcome.won:
            gone, kept = (index_of(outcome.old) if outcome.old else None), mine
        else:
            gone, kept = mine, index_of(outcome.current)  # type: ignore[arg-type]
        if gone is not None and (kept is None or _where(gone) != _where(kept)):
            stale.append(gone)
    return stale


def losses(outcomes: Sequence[Outcome]) -> set[tuple[str, str]]:
    """(winner file, loser file) of each put that lost to another file's record."""
    return {
        (o.current["SourceFile"], o.put.record["SourceFile"]) for o in outcomes
        if o.current is not None and o.current["SourceFile"] != o.put.record["SourceFile"]
    }  # fmt: skip


def _stale_markers(
    access: TableAccess, name: str, path: str, keep_etag: str, partition: str, page: int | None
) -> Iterator[Entity]:
    """The markers other versions of `path` left in one partition."""
    prefix, kept = marker_prefix(path), marker_prefix(path, keep_etag)
    where = (
        "PartitionKey eq @pk and RowKey gt @prefix and RowKey lt @beyond "
        "and ( RowKey lt @kept or RowKey gt @kept_beyond )"
    )
    params = {"prefix": prefix, "beyond": prefix + "~", "kept": kept, "kept_beyond": kept + "~"}
    return access.query(name, where, {**params, "pk": partition}, page=page)


def has_other_version(access: TableAccess, name: str, path: str, keep_etag: str) -> bool:
    """Whether another version of `path` left records in `name`."""

    def any_in(partition: str) -> bool:
        return next(_stale_markers(access, name, path, keep_etag, partition, 1), None) is not None

    return any(access.map(any_in, _PARTITIONS))


def forget_version(access: TableAccess, name: str, path: str, keep_etag: str) -> list[Entity]:
    """Delete the records of `name` that other versions of `path` wrote; returns them."""

    def forget_partition(partition: str) -> list[Entity]:
        markers = list(_stale_markers(access, name, path, keep_etag, partition, None))
        gone: list[Entity] = []
        for group in _groups(markers):
            gone += _forget_markers(access, name, path, keep_etag, group)
        return gone

    return [r for found in access.map(forget_partition, _PARTITIONS) for r in found]


def _groups(markers: list[Entity]) -> Iterator[list[Entity]]:
    """Markers to forget a transaction at a time: with their records, at most MAX_OPS rows."""
    group: list[Entity] = []
    size = 0
    for m in markers:
        rows = 1 + len(_targets(m))
        if group and size + rows > MAX_OPS:
            yield group
            group, size = [], 0
        group.append(m)
        size += rows
    if group:
        yield group


def _forget_markers(
    access: TableAccess, name: str, path: str, keep_etag: str, markers: list[Entity]
) -> list[Entity]:
    """Markers and, where still theirs, their records, in one transaction per try."""
    for attempt in range(MAX_ROUNDS):
        if attempt:  # after a lost race: only the markers nobody else forgot meanwhile
            markers = [m for m in markers if access.get(name, *_where(m)) is not None]
        ops: list[tuple] = []
        gone = []
        for m in markers:
            ops.append(("delete", m))
            for row_key in _targets(m):
                target = access.get(name, m["PartitionKey"], row_key)
                if target and target["SourceFile"] == path and target["SourceETag"] != keep_etag:
                    ops.append(("delete", target, if_unchanged(target)))
                    gone.append(target)
        try:
            if ops:
                with translated(f"writing table {access.prefix}{name}"):
                    access.submit(name, ops)
            return gone
        except TableTransactionError as exc:
            if not is_conflict(exc) and exc.status_code != 404:
                raise
    raise TransientError(f"forgetting {path}: rows kept changing under us")


def _where(entity: Entity) -> tuple[str, str]:
    return entity["PartitionKey"], entity["RowKey"]
