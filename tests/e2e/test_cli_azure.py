"""`footprint reconcile` and the Table store from the command line, against Azurite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from azure.storage.blob import BlobServiceClient

from tests.e2e import export

pytestmark = pytest.mark.azurite


def test_reconcile_reads_a_blob_container_into_azure_tables(
    azurite, azurite_names, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    container = BlobServiceClient.from_connection_string(
        azurite.connection_string
    ).create_container(azurite_names.container)
    root = export.write_cdm_export(tmp_path / "export")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        container.upload_blob(f"web/{path.relative_to(root).as_posix()}", path.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env |= {
        "FOOTPRINT_STORAGE": azurite.connection_string,
        "FOOTPRINT_TABLE_PREFIX": azurite_names.table_prefix,
    }

    def footprint(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "shared", *args, "--store", "azure-tables:", "--json"]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    report = orjson.loads(
        footprint("reconcile", "--source", f"blob:{azurite_names.container}/web").stdout
    )
    assert (report["listed"], report["done"], report["failed"]) == (7, 4, 0)
    found = orjson.loads(footprint("activities").stdout)
    assert sorted(a["SourceActivityId"] for a in found) == [
        "e1",
        "e10",
        "e11",
        "e2",
        "e6",
        "e7",
        "e8",
    ]
    status = orjson.loads(footprint("status").stdout)
    assert status["files"]["done"] == 4 and status["unmatched_now"] == 2
    files = orjson.loads(footprint("files", "--status", "done", "--limit", "3").stdout)
    assert len(files["files"]) == 3 and files["continuation"]
    rest = orjson.loads(footprint("files", "--status", "done", "--continuation", files["continuation"]).stdout)
    assert [f["path"] for f in files["files"] + rest["files"]] == sorted(
        f["path"] for f in orjson.loads(footprint("files", "--status", "done").stdout)["files"]
    )
    rejects = orjson.loads(footprint("rejects").stdout)
    assert len(rejects["rejects"]) == 2 and rejects["continuation"] is None
    page = footprint("activities", "--limit", "4")
    token = orjson.loads(page.stderr)["continuation"]
    rest_of = orjson.loads(footprint("activities", "--limit", "4", "--continuation", token).stdout)
    assert sorted(a["SourceActivityId"] for a in orjson.loads(page.stdout) + rest_of) == sorted(
        a["SourceActivityId"] for a in found
    )
    assert azurite.connection_string.split("AccountKey=")[1][:20] not in footprint("status").stderr
