"""`footprint dev`: a file uploaded to Azurite shows up on the HTTP timeline."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from azure.storage.blob import BlobServiceClient

from shared.core.mapping import derived_customer_id
from tests.azurite import free_port
from tests.e2e import export

pytestmark = pytest.mark.azurite
R1 = derived_customer_id("RetailCustomers", "R-1")


def fetch(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def wait_for(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_an_uploaded_export_reaches_the_http_timeline(azurite, azurite_names, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    container = BlobServiceClient.from_connection_string(azurite.connection_string).create_container(
        azurite_names.container
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env["FOOTPRINT_TABLE_PREFIX"] = azurite_names.table_prefix
    command = [
        sys.executable, "-m", "shared", "dev", "--connection", azurite.connection_string,
        "--container", azurite_names.container, "--port", str(port), "--poll", "0.2",
        "--store", f"sqlite:///{tmp_path / 'dev.db'}",
    ]  # fmt: skip
    dev = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: fetch(port, "/api/status")[0] == 200)
        root = export.write_cdm_export(tmp_path / "export")
        for path in sorted(root.rglob("*")):
            if path.is_file():
                container.upload_blob(path.relative_to(root).as_posix(), path.read_bytes())
        card = wait_for(lambda: (lambda r: r[1] if r[0] == 200 and len(r[1]["activities"]) == 3 else None)(
            fetch(port, f"/api/customers/{R1}/activities")
        ))  # fmt: skip
        assert [a["SourceActivityId"] for a in card["activities"]] == ["e7", "e1", "e11"]
        assert fetch(port, "/api/customers/nobody")[0] == 404
        assert fetch(port, "/api/nowhere")[0] == 404
    finally:
        dev.terminate()
        _, stderr = dev.communicate(timeout=10)
    assert b"Traceback" not in stderr, stderr.decode()
