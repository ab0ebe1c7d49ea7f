"""Azure Table plumbing: one client and thread pool, tables made on first use, batched writes."""

from __future__ import annotations

import contextlib
import threading
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from shared.adapters.azure import table_batch
from shared.adapters.azure.errors import translated
from shared.adapters.azure.table_keys import Entity, pack, unpack, weight
from shared.core import interrupts
from shared.core.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")
RequestHook = Callable[[Any], None]  # called with the SDK's PipelineRequest
Op = tuple  # ("create" | "upsert" | "update" | "delete", entity[, options]) as the SDK takes them

WORKERS = 16
MAX_OPS = 100  # per transaction, all of one PartitionKey
MAX_BATCH_BYTES = 1_500_000  # a transaction's body: 4 MiB on Storage, 2 MB on Cosmos DB
# A few quick retries of throttling and faults; the ledger retries a failed file much later,
# and a worker stuck in the SDK's default back-off would overrun the function timeout.
CLIENT_OPTIONS = {
    "retry_total": 3,
    "retry_backoff_factor": 0.4,
    "retry_backoff_max": 4,
    "connection_timeout": 5,
    "read_timeout": 30,
}
# Comparisons one filter may hold (Table Storage's limit): a query reads this many rows by key
# of one partition, less one (the PartitionKey's), or half as many RowKey ranges.
MAX_COMPARISONS = 15
# An If-Match write that lost a race (412) or a create that met a row (409): read again.
CONFLICTS = frozenset({409, 412})


class InterruptSafePool(ThreadPoolExecutor):
    """A thread pool whose threads are started with Ctrl-C and SIGTERM held off.

    The pool starts threads as work comes, and `Thread.start` waits for each: an interrupt
    raised there (the CLI turns SIGTERM into one) left the new thread running but unknown to
    the pool, so nothing told it to end, and the interpreter's exit waited for it for ever. A
    signal held off arrives once the thread is the pool's. Threads started so inherit the
    held-off mask: the interrupt goes to the main thread, where Python handles it anyway."""

    def _adjust_thread_count(self) -> None:
        if threading.current_thread() is not threading.main_thread() or len(self._threads) >= self._max_workers:
            super()._adjust_thread_count()
            return
        with interrupts.held_off():
            super()._adjust_thread_count()


def _session() -> requests.Session:
    # Room for every worker thread: requests' default pool of 10 would drop connections.
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=WORKERS * 2, max_retries=Retry(total=False, redirect=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _settle_environment(session: requests.Session, url: str) -> None:
    """Read the proxy and CA bundle settings of the environment once, for the one endpoint:
    requests would read them again for every request, scanning the whole environment, which
    cost a quarter of a point read."""
    found = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.trust_env = False


class TableAccess:
    """One service client, thread pool and set of created tables, shared by a store and ledger."""

    def __init__(
        self, connection_string: str, table_prefix: str, on_request: RequestHook | None = None
    ) -> None:
        """`on_request` sees every HTTP attempt, retries included (tests count them)."""
        session = _session()
        transport = RequestsTransport(session=session, session_owner=True)
        hook = {} if on_request is None else {"raw_request_hook": on_request}
        try:
            self.service = TableServiceClient.from_connection_string(
                connection_string, transport=transport, **CLIENT_OPTIONS, **hook
            )
        except ValueError:
            raise ConfigError("the storage connection string is malformed") from None
        _settle_environment(session, self.service.url)
        self.prefix = table_prefix
        # Cosmos DB for Table returns query results in no particular order; Storage sorts them.
        self.sorts_results = "cosmos" not in self.service.url.lower()
        self.pool = InterruptSafePool(WORKERS, thread_name_prefix="tables")
        self._tables: dict[str, TableClient] = {}
        self._lock = threading.Lock()

    def table(self, name: str) -> TableClient:
        """The client of table `prefix + name`, created on first use by this process."""
        client = self._tables.get(name)
        if client is None:
            with self._lock, translated(f"creating table {self.prefix}{name}"):
                client = self._tables.get(name)
                if client is None:
                    client = self.service.create_table_if_not_exists(self.prefix + name)
                    self._tables[name] = client
        return client

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn` over `items` on the pool; never call it from inside a pooled function."""
        return list(self.pool.map(fn, items))

    def get(self, name: str, partition: str, row: str) -> Entity | None:
        with translated(f"reading table {self.prefix}{name}"):
            try:
                return unpack(self.table(name).get_entity(partition, row))
            except ResourceNotFoundError:
                return None

    def query(
        self,
        name: str,
        where: str,
        parameters: dict[str, Any] | None = None,
        select: list[str] | None = None,
        page: int | None = None,
    ) -> Iterator[Entity]:
        """Rows matching an OData filter; values only ever arrive through `parameters`."""
        table = self.table(name)
        with translated(f"reading table {self.prefix}{name}"):
            found = table.query_entities(
                where, parameters=parameters or {}, select=select, results_per_page=page
            )
            for entity in found:
                yield unpack(entity)

    def get_many(self, name: str, where: Sequence[tuple[str, str]]) -> list[Entity | None]:
        """The row at each (PartitionKey, RowKey), None where there is none: one query per
        partition and MAX_COMPARISONS - 1 keys, rather than a request per row."""
        wanted = list(dict.fromkeys(where))
        per_query = MAX_COMPARISONS - 1
        groups = [keys[i : i + per_query] for keys in _by_partition(wanted).values()
                  for i in range(0, len(keys), per_query)]  # fmt: skip

        def read(group: list[tuple[str, str]]) -> list[Entity]:
            if len(group) == 1:
                found = self.get(name, *group[0])
                return [] if found is None else [found]
            either = " or ".join(f"RowKey eq @r{i}" for i in range(len(group)))
            parameters = {"pk": group[0][0], **{f"r{i}": row for i, (_, row) in enumerate(group)}}
            return list(self.query(name, f"PartitionKey eq @pk and ( {either} )", parameters))

        rows = {(r["PartitionKey"], r["RowKey"]): r for found in self.map(read, groups) for r in found}
        return [rows.get(key) for key in where]

    def query_ranges(
        self, name: str, ranges: Sequence[tuple[str, str, str]], select: list[str] | None = None
    ) -> list[list[Entity]]:
        """The rows of each (PartitionKey, exclusive low RowKey, exclusive high RowKey) range,
        in RowKey order: one query per partition and MAX_COMPARISONS // 2 ranges."""
        wanted = list(dict.fromkeys(ranges))
        per_query = MAX_COMPARISONS // 2
        groups = [bounds[i : i + per_query] for bounds in _by_partition(wanted).values()
                  for i in range(0, len(bounds), per_query)]  # fmt: skip
        fields = None if select is None else [*select, "PartitionKey", "RowKey"]

        def read(group: list[tuple[str, str, str]]) -> list[Entity]:
            either = " or ".join(f"( RowKey gt @l{i} and RowKey lt @h{i} )" for i in range(len(group)))
            parameters: dict[str, Any] = {"pk": group[0][0]}
            for i, (_, low, high) in enumerate(group):
                parameters.update({f"l{i}": low, f"h{i}": high})
            return list(self.query(name, f"PartitionKey eq @pk and ( {either} )", parameters, select=fields))

        found: dict[str, list[Entity]] = defaultdict(list)
        for rows in self.map(read, groups):
            for row in rows:
                found[row["PartitionKey"]].append(row)
        keys: dict[str, list[str]] = {}
        for partition, rows in found.items():
            rows.sort(key=lambda r: r["RowKey"])
            keys[partition] = [r["RowKey"] for r in rows]
        return [
            found[partition][bisect_right(keys[partition], low) : bisect_left(keys[partition], high)]
            if partition in found else []
            for partition, low, high in ranges
        ]

    def query_by_row_key(
        self, name: str, where: str, parameters: dict[str, Any], select: list[str], page: int
    ) -> Iterator[Entity]:
        """Rows of one partition in RowKey order, sorted here when the service does not."""
        rows = self.query(name, where, parameters, select=[*select, "RowKey"], page=page)
        return rows if self.sorts_results else iter(sorted(rows, key=lambda r: r["RowKey"]))

    def scan(self, name: str) -> Iterator[Entity]:
        """Every row of a table."""
        table = self.table(name)
        with translated(f"reading table {self.prefix}{name}"):
            for entity in table.list_entities():
                yield unpack(entity)

    def submit(self, name: str, ops: Sequence[Op]) -> None:
        """One transaction; raises TableTransactionError for the caller to judge."""
        table_batch.submit(self.table(name), [(op[0], pack(op[1]), *op[2:]) for op in ops])

    def write_all(self, name: str, ops: Iterable[Op]) -> None:
        """Idempotent operations (upserts, deletes), batched per partition and run in parallel.

        A transaction may touch a row only once: the last operation on a row is kept.
        """
        last = {(op[1]["PartitionKey"], op[1]["RowKey"]): op for op in ops}
        batches = batched(last.values(), lambda op: op[1]["PartitionKey"], lambda op: [op[1]])
        with translated(f"writing table {self.prefix}{name}"):
            self.map(lambda batch: self.submit(name, batch), batches)

    def delete_if_unchanged(
        self, name: str, expected: Sequence[Entity], fields: Sequence[str]
    ) -> None:
        """Delete each row that still holds `expected`'s values of `fields`, and only then."""
        unique = list({(e["PartitionKey"], e["RowKey"]): e for e in expected}.values())
        found = self.map(lambda e: self.get(name, e["PartitionKey"], e["RowKey"]), unique)
        doomed = [
            row for row, wanted in zip(found, unique, strict=True)
            if row is not None and all(row.get(f) == wanted.get(f) for f in fields)
        ]  # fmt: skip
        batches = batched(doomed, lambda row: row["PartitionKey"], lambda row: [row])
        with translated(f"writing table {self.prefix}{name}"):
            self.map(lambda batch: self._delete_unchanged(name, batch), batches)

    def _delete_unchanged(self, name: str, rows: list[Entity]) -> None:
        try:
            self.submit(name, [("delete", row, if_unchanged(row)) for row in rows])
            return
        except TableTransactionError as exc:
            if not is_conflict(exc) and exc.status_code != 404:
                raise
        # One row was gone or rewritten meanwhile (then it is someone's current row, kept):
        # the others go one by one.
        for row in rows:
            with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
                self.table(name).delete_entity(
                    row["PartitionKey"], row["RowKey"], **if_unchanged(row)
                )

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.service.close()


def batched(
    items: Iterable[T],
    partition: Callable[[T], Hashable],
    entities: Callable[[T], list[Entity]],
    max_ops: int = MAX_OPS,
) -> list[list[T]]:
    """Items grouped into transactions: one partition (or a finer group `partition` names), at
    most `max_ops` entities, bounded bytes."""
    by_partition: dict[Hashable, list[T]] = defaultdict(list)
    for item in items:
        by_partition[partition(item)].append(item)
    batches: list[list[T]] = []
    for group in by_partition.values():
        batch: list[T] = []
        count = size = 0
        for item in group:
            parts = entities(item)
            item_size = sum(weight(e) for e in parts)
            if batch and (count + len(parts) > max_ops or size + item_size > MAX_BATCH_BYTES):
                batches.append(batch)
                batch, count, size = [], 0, 0
            batch.append(item)
            count += len(parts)
            size += item_size
        if batch:
            batches.append(batch)
    return batches


def _by_partition(keys: Iterable[tuple[str, ...]]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for key in keys:
        grouped[key[0]].append(key)
    return grouped


def if_unchanged(entity: Entity) -> dict[str, Any]:
    """Options making a delete or update conditional on the ETag `entity` was read with."""
    return {"etag": entity["@etag"], "match_condition": MatchConditions.IfNotModified}


def is_conflict(exc: TableTransactionError) -> bool:
    return exc.status_code in CONFLICTS
