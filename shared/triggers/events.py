"""The per-file function: a BlobCreated event from Event Grid ingests one export file."""

from __future__ import annotations

import logging

import azure.functions as func
from azure.eventgrid import SystemEventNames

from shared import bootstrap
from shared.core.errors import TransientError
from shared.core.ingest.events import BLOB_CREATED, route_event
from shared.core.ingest.service import ingest_file

log = logging.getLogger(__name__)
bp = func.Blueprint()

# The SDK's name for the event must agree with ours; a rename would silently skip everything.
assert SystemEventNames.StorageBlobCreatedEventName.value == BLOB_CREATED


@bp.function_name("on_blob_created")
@bp.event_grid_trigger(arg_name="event")
def on_blob_created(event: func.EventGridEvent) -> None:
    rt = bootstrap.runtime()
    routing = route_event(
        event.event_type, event.subject, event.get_json(), rt.settings.container, rt.settings.prefix
    )
    if routing.path is None:
        log.info("skipped event %s: %s", event.id, routing.reason)
        return
    report = ingest_file(rt.ports, rt.config, routing.path, rt.options)
    if report.retryable:
        # Let Event Grid deliver again; the ledger has counted this attempt.
        raise TransientError(f"{routing.path}: {report.error}")
