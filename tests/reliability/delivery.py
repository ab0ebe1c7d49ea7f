"""Event Grid as the per-file function sees it: BlobCreated events for uploads to Azurite."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.eventgrid import EventGridEvent
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared import bootstrap
from shared.core.ingest.events import BLOB_CREATED
from shared.settings import Settings
from shared.triggers import build_app
from tests.azurite import Azurite, AzuriteNames
from tests.reliability.stores import Store

PREFIX = "webevents"
FUNCTIONS = {f.get_function_name(): f for f in build_app().get_functions()}
# Writes Event Grid reports that do not leave a finished blob, and others it may send.
IGNORED_APIS = ("PutBlock", "CreateFile", "AppendFile", "PutPage", "PutBlockFromUrl", None)


def call(name: str, *args: Any) -> Any:
    return FUNCTIONS[name].get_user_function()(*args)


@dataclasses.dataclass(frozen=True)
class Upload:
    path: str  # relative to the export prefix
    etag: str
    size: int


def event(container: str, upload: Upload, api: str | None = "PutBlockList",
          etag: str | None = None, blob: str | None = None) -> func.EventGridEvent:  # fmt: skip
    """The event Event Grid delivers, parsed by azure-eventgrid first as the host would."""
    name = blob or f"{PREFIX}/{upload.path}"
    raw = {
        "id": str(uuid.uuid4()), "eventType": BLOB_CREATED, "dataVersion": "", "metadataVersion": "1",
        "topic": "/subscriptions/0/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a",
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventTime": datetime.now(UTC).isoformat(),
        "data": {"api": api, "eTag": etag or upload.etag, "contentLength": upload.size,
                 "blobType": "BlockBlob", "url": f"https://a.blob.core.windows.net/{container}/{name}"},
    }  # fmt: skip
    parsed = EventGridEvent.from_dict(raw)
    return func.EventGridEvent(
        id=parsed.id, data=parsed.data, topic=parsed.topic or "", subject=parsed.subject,
        event_type=parsed.event_type, event_time=parsed.event_time, data_version=parsed.data_version,
    )  # fmt: skip


class Container:
    """A fresh export container on an Azurite, and the app's settings pointing at it."""

    def __init__(self, azurite: Azurite, store: Store) -> None:
        self.name = AzuriteNames.fresh().container
        self.connection = azurite.connection_string
        service = BlobServiceClient.from_connection_string(self.connection)
        self.client: ContainerClient = service.create_container(self.name)
        self.store = store

    def upload(self, path: str, data: bytes) -> Upload:
        blob = self.client.get_blob_client(f"{PREFIX}/{path}").upload_blob(data, overwrite=True)
        return Upload(path, blob["etag"].strip('"'), len(data))

    def settings(self) -> Settings:
        env = {**self.store.env, "FOOTPRINT_STORAGE": self.connection, "FOOTPRINT_CONTAINER": self.name,
               "FOOTPRINT_PREFIX": PREFIX, "FOOTPRINT_RETRY_BASE_SECONDS": "0"}  # fmt: skip
        return Settings.from_env(env)

    def etags(self) -> dict[str, str]:
        return {
            b.name.removeprefix(f"{PREFIX}/"): b.etag.strip('"')
            for b in self.client.list_blobs(name_starts_with=f"{PREFIX}/")
        }

    def activate(self) -> bootstrap.Runtime:
        """Point the app's functions at this container and store (other tests move them)."""
        bootstrap.use_settings(self.settings())
        runtime = bootstrap.runtime()
        self.runtimes.append(runtime)
        return runtime

    def __enter__(self) -> Container:
        self.runtimes: list[bootstrap.Runtime] = []
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        bootstrap.use_settings(None)
        for runtime in self.runtimes:
            runtime.ports.store.close()
