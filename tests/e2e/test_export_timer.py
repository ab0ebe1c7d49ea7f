"""The export timer on Azurite: each export lands in a new dated folder of the target
container, and `latest.json` names it only once it is complete."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared import bootstrap
from shared.adapters.local_files import LocalExportTarget
from shared.adapters.memory import MemoryStore
from shared.core.export.folder import MANIFEST
from shared.core.export.profiles import LATEST, AudienceExport, export_snapshot
from tests.builders import activity, customer
from tests.e2e.test_function_app import call, cdm_files, event, get, upload
from tests.e2e.test_function_app import container as container  # the Functions app fixture

pytestmark = pytest.mark.azurite


@pytest.fixture
def target(azurite, azurite_names, container) -> ContainerClient:  # type: ignore[no-untyped-def]
    name = f"{azurite_names.container}-out"
    settings = dataclasses.replace(bootstrap.runtime().settings, export_target=f"blob:{name}/snapshots")
    bootstrap.use_settings(settings)
    return BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(name)


def _read(client: ContainerClient, name: str) -> bytes:
    return client.get_blob_client(name).download_blob().readall()


def test_the_export_timer_writes_a_dated_folder_then_latest_json(container, target, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for path, data in cdm_files(tmp_path).items():
        call("on_blob_created", event(container, path, upload(container, path, data)))
    _, preview = get("activities", limit="1000")
    call("export", TimerRequest(past_due=False))
    latest = orjson.loads(_read(target, f"snapshots/{LATEST}"))
    assert latest["entities"] == {  # R-3 arrives late; the default config has no measures
        "Customer": 2, "UnifiedActivity": len(preview), "CustomerMeasure": 0, "SegmentMembership": 0,
    }
    manifest = orjson.loads(_read(target, f"snapshots/{latest['manifest']}"))
    [activities] = [e for e in manifest["entities"] if e["entityName"] == "UnifiedActivity"]
    [partition] = activities["dataPartitions"]
    lines = _read(target, f"snapshots/{latest['folder']}/{partition['location']}").decode().splitlines()
    assert len(lines) == len(preview) + 1
    assert {line.split(",")[0] for line in lines[1:]} == {a["ActivityId"] for a in preview}


def test_without_a_target_the_export_timer_writes_nothing(container, azurite) -> None:  # type: ignore[no-untyped-def]
    call("export", TimerRequest(past_due=False))
    names = [c.name for c in BlobServiceClient.from_connection_string(azurite.connection_string).list_containers()]
    assert not any(n.endswith("-out") for n in names if n.startswith(container.container_name))


class _FailingAt:
    """A target whose writes of one file fail, as a full disk or a lost connection would."""

    def __init__(self, target: LocalExportTarget, name: str) -> None:
        self.target, self.name = target, name

    def create(self, path: str) -> BinaryIO:
        if path.endswith(self.name):
            raise OSError(28, "No space left on device")
        return self.target.create(path)


def test_a_failed_export_leaves_latest_json_on_the_last_complete_one(tmp_path: Path) -> None:
    store = MemoryStore()
    store.write([activity("k1")], [customer("R-1")], [])
    local = LocalExportTarget(tmp_path)
    when = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    audiences = AudienceExport(bootstrap.open_audiences(store), {})
    first = export_snapshot(store, audiences, local, when)
    store.write([activity("k2")], [], [])
    with pytest.raises(OSError):
        export_snapshot(store, audiences, _FailingAt(local, MANIFEST), when + timedelta(days=1))
    latest: dict[str, Any] = orjson.loads((tmp_path / LATEST).read_bytes())
    assert latest["folder"] == first and latest["entities"]["UnifiedActivity"] == 1
    assert (tmp_path / first / MANIFEST).exists()
    second = export_snapshot(store, audiences, local, when + timedelta(days=2))
    assert orjson.loads((tmp_path / LATEST).read_bytes())["folder"] == second != first
