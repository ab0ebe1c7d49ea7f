"""The Azure paths on Azurite: the Table store against the bare SDK ceiling, and the per-file
function from BlobCreated event to activities, and to the membership changes they cause,
readable over HTTP."""

from __future__ import annotations

import copy
import csv
import dataclasses
import functools
import json
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
from azure.data.tables import TableClient, TableServiceClient
from azure.eventgrid import EventGridEvent
from azure.storage.blob import BlobServiceClient

from bench import export
from bench.measure import ROOT
from bench.table import Row
from shared import bootstrap
from shared.adapters.azure import table_batch
from shared.adapters.azure.table_access import MAX_OPS
from shared.adapters.azure.table_keys import pack
from shared.adapters.azure.table_layout import activity_record
from shared.adapters.azure.tables import open_tables
from shared.adapters.local_files import LocalFileSource
from shared.core.ingest.service import IngestOptions, Ports, ingest_file
from shared.core.mapping import EntityMapping, derived_customer_id
from shared.core.model import SourceFile
from shared.core.reading.rows import iter_rows
from shared.settings import Settings
from tests.azurite import Azurite

EVENT_FIXTURE = ROOT / "tests" / "fixtures" / "eventgrid" / "blob-created.eventgrid.json"
CEILING_WORKERS = 8
READABLE_TIMEOUT = 600.0
# For the membership latency: a customer's first click puts them in the segment.
FIRST_CLICK = {
    "measures": [{"name": "Clicks", "aggregate": "count"}],
    "segments": [{"name": "Clickers", "rule": {"measure": "Clicks", "op": ">=", "value": 1}}],
}


@dataclasses.dataclass(frozen=True)
class Throughput:
    activities: int
    ours_seconds: float
    bare_seconds: float  # the SDK's submit_transaction
    encoder_seconds: float  # the same transactions through Footprint's encoder


def table_throughput(azurite: Azurite, root: Path, customers: str, events: str) -> Throughput:
    """`ingest_file` of the events into a TableStore (customers loaded first), against the same
    activities written as bare 100-row upsert transactions, partitions in parallel: sent by the
    SDK's submit_transaction, and by the transaction encoder the store uses."""
    config = bootstrap.load_config(None)
    store, ledger = open_tables(azurite.connection_string, "b" + uuid.uuid4().hex[:12])
    ports = Ports(LocalFileSource(root), store, ledger)
    ingest_file(ports, config, customers, IngestOptions())
    started = time.perf_counter()
    report = ingest_file(ports, config, events, IngestOptions())
    ours = time.perf_counter() - started
    store.close()
    sdk = _bare_upserts(azurite, root, events, TableClient.submit_transaction)
    encoder = _bare_upserts(azurite, root, events, table_batch.submit)
    return Throughput(report.counts.activities, ours, sdk, encoder)


def _bare_upserts(azurite: Azurite, root: Path, events: str, send: Any) -> float:
    file = SourceFile(events, "etag-1", 0)
    with (root / events).open("rb") as stream:
        batch = EntityMapping(bootstrap.load_config(None), "EmailPromotion").map_rows(
            iter_rows(stream, events), file
        )
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for a in batch.activities:
        entity = pack(activity_record(a))
        by_partition.setdefault(entity["PartitionKey"], []).append(entity)
    transactions = [
        [("upsert", e) for e in rows[i : i + MAX_OPS]]
        for rows in by_partition.values()
        for i in range(0, len(rows), MAX_OPS)
    ]
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    table = service.create_table("bare" + uuid.uuid4().hex[:12])
    started = time.perf_counter()
    with ThreadPoolExecutor(CEILING_WORKERS) as pool:
        list(pool.map(lambda ops: send(table, ops), transactions))
    return time.perf_counter() - started


def _function_app_on(azurite: Azurite, prefix: str, **settings: Any) -> Any:
    """The app's functions pinned to fresh tables and a fresh container on Azurite; the
    container's client."""
    container = "bench" + uuid.uuid4().hex[:10]
    bootstrap.use_settings(dataclasses.replace(
        Settings.from_env({}), store="azure-tables:", storage_connection=azurite.connection_string,
        container=container, table_prefix=prefix + uuid.uuid4().hex[:12], **settings,
    ))  # fmt: skip
    return BlobServiceClient.from_connection_string(azurite.connection_string).create_container(container)


def function_latency(
    azurite: Azurite, root: Path, customers: tuple[str, int], events: dict[int, list[str]]
) -> dict[int, float]:
    """Median seconds from a BlobCreated event to its file's activities on the HTTP timeline,
    for files of each size (`events`: rows -> files), on a warm worker."""
    blobs = _function_app_on(azurite, "f")
    try:
        _deliver(blobs, root, customers[0], customers[1])
        return {
            rows: statistics.median(_deliver(blobs, root, path, customers[1]) for path in paths)
            for rows, paths in events.items()
        }
    finally:
        bootstrap.use_settings(None)


def membership_latency(azurite: Azurite, root: Path, customers: tuple[str, int], paths: list[str]) -> float:
    """Median seconds from a BlobCreated event to every membership change its file causes
    (each customer clicking for the first time enters Clickers) read from the HTTP feed."""
    config = root / "first-click.json"
    defaults = json.loads((ROOT / "shared" / "default_config.json").read_text())
    config.write_text(json.dumps({**defaults, **FIRST_CLICK}))
    blobs = _function_app_on(azurite, "m", config_path=str(config))
    try:
        _deliver(blobs, root, customers[0], customers[1])
        clicked: set[str] = set()
        seconds = []
        for path in paths:
            entering = _clicking(root / path, customers[1]) - clicked
            clicked |= entering
            cursor = _changes("")[1]
            started = time.perf_counter()
            _send_event(blobs, root, path)
            seen: set[str] = set()
            while not entering <= seen:
                if time.perf_counter() - started > READABLE_TIMEOUT:
                    raise SystemExit(f"{path}: its membership changes were not readable after the event")
                found, cursor = _changes(cursor)
                seen |= {c["CustomerId"] for c in found if c["Change"] == "entered"}
            seconds.append(time.perf_counter() - started)
        return statistics.median(seconds)
    finally:
        bootstrap.use_settings(None)


def _clicking(path: Path, customers: int) -> set[str]:
    """The known customers with a promotion event in the file."""
    with path.open(newline="") as f:
        return {
            derived_customer_id("RetailCustomers", user)
            for row in csv.DictReader(f)
            if row["Signal.Action.Name"] == export.PROMOTION
            and (user := row["Signal.User.AuthId"] or row["Signal.User.Id"]).startswith("R-")
            and int(user[2:]) < customers
        }


def _changes(since: str) -> tuple[list[dict[str, Any]], str]:
    request = func.HttpRequest(
        "GET", "http://localhost/api/segments/Clickers/changes", params={"since": since, "limit": "1000"},
        route_params={"name": "Clickers"}, body=b"",
    )  # fmt: skip
    body = orjson.loads(_function("segment_changes")(request).get_body())
    return body["changes"], body["cursor"]


def _send_event(blobs: Any, root: Path, path: str) -> None:
    """Upload a file and run the per-file function on its BlobCreated event."""
    data = (root / path).read_bytes()
    blob = blobs.get_blob_client(path).upload_blob(data, overwrite=True)
    raw = copy.deepcopy(orjson.loads(EVENT_FIXTURE.read_bytes())[0])
    raw["subject"] = f"/blobServices/default/containers/{blobs.container_name}/blobs/{path}"
    raw["data"].update({"api": "PutBlockList", "eTag": blob["etag"], "contentLength": len(data)})
    parsed = EventGridEvent.from_dict(raw)
    event = func.EventGridEvent(
        id=parsed.id, data=parsed.data, topic=parsed.topic or "", subject=parsed.subject,
        event_type=parsed.event_type, event_time=parsed.event_time,
        data_version=parsed.data_version,
    )  # fmt: skip
    _function("on_blob_created")(event)


def _deliver(blobs: Any, root: Path, path: str, customers: int) -> float:
    """Upload a file, then time its BlobCreated event until the timeline shows its last event."""
    last = _last_matched_event(root / path, customers)
    started = time.perf_counter()
    _send_event(blobs, root, path)
    if last is not None:
        customer, event_id = last
        while event_id not in _timeline(customer):
            if time.perf_counter() - started > READABLE_TIMEOUT:
                raise SystemExit(f"{path}: its activities were not readable after the event")
            time.sleep(0.005)
    return time.perf_counter() - started


def _last_matched_event(path: Path, customers: int) -> tuple[str, str] | None:
    """(customer id, event id) of the file's last promotion event by a known customer."""
    if "EmailPromotion" not in path.as_posix():
        return None
    found = None
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            user = row["Signal.User.AuthId"] or row["Signal.User.Id"]
            known = user.startswith("R-") and int(user[2:]) < customers
            if row["Signal.Action.Name"] == export.PROMOTION and known:
                found = derived_customer_id("RetailCustomers", user), row["Signal.Export.Id"]
    return found


def _timeline(customer: str) -> set[str]:
    request = func.HttpRequest(
        "GET", f"http://localhost/api/customers/{customer}/activities",
        params={"limit": "500"}, route_params={"id": customer}, body=b"",
    )  # fmt: skip
    response = _function("get_timeline")(request)
    return {a["SourceActivityId"] for a in orjson.loads(response.get_body())["activities"]}


def _function(name: str) -> Any:
    return _functions()[name].get_user_function()


@functools.cache
def _functions() -> dict[str, Any]:
    """The app's functions by name; the host asks for them once, and so must we."""
    from function_app import app

    return {f.get_function_name(): f for f in app.get_functions()}


def azure_rows(tmp: Path, sizes: Any) -> list[Row]:
    """The Azure rows of the table, on one Azurite started for them."""
    root = tmp / "azure"
    customers = export.write_customers(root, sizes.customers)
    events = export.write_events(root, sizes.azure_events, sizes.customers, hour=1)
    small, large = sizes.latency
    files = {
        small: [
            export.write_events(root, small, sizes.customers, hour=h, seed=h, cookies=True)
            for h in (2, 3, 4)
        ],
        large: [export.write_events(root, large, sizes.customers, hour=5)],
    }
    azurite = Azurite()
    try:
        print("Azure Tables on Azurite: store and bare ceiling ...", flush=True)
        t = table_throughput(azurite, root, customers, events)
        print("Azure Functions per-file function on Azurite ...", flush=True)
        latency = function_latency(azurite, root, (customers, sizes.customers), files)
        print("Membership changes of the per-file function on Azurite ...", flush=True)
        clicks = [export.write_events(root, small, sizes.customers, hour=h, seed=h) for h in (6, 7, 8)]
        changes = membership_latency(azurite, root, (customers, sizes.customers), clicks)
    finally:
        azurite.close()
    ratio = t.bare_seconds / t.ours_seconds
    encoder_ratio = t.encoder_seconds / t.ours_seconds
    return [
        Row("Azure Tables (Azurite): ingest_file -> TableStore", t.activities, "activities",
            t.ours_seconds, None, f"ours = {ratio:.0%} of the SDK ceiling (target >= 80%), "
            f"{encoder_ratio:.0%} of the encoder's"),
        Row("  ceiling: bare azure-data-tables upserts, 100/txn, 8 threads", t.activities,
            "activities", t.bare_seconds, None, "one entity per activity, SDK submit_transaction"),
        Row("  ceiling: the same through Footprint's transaction encoder", t.activities,
            "activities", t.encoder_seconds, None, "one entity per activity"),
        Row(f"per-file function, {small:,} rows: BlobCreated -> readable", small, "rows",
            latency[small], None, "median of 3, warm worker, visitors stitched (shipped "
            "default; SDK ids are cookies) (target <= 1 s)"),
        Row(f"per-file function, {large:,} rows: BlobCreated -> readable", large, "rows",
            latency[large], None, "warm worker"),
        Row(f"per-file function, {small:,} rows: BlobCreated -> membership changes readable",
            small, "rows", changes, None, "median of 3, warm worker, each file's first clickers "
            "enter a segment, read from GET /api/segments/{name}/changes (target <= 1.5 s)"),
    ]  # fmt: skip
