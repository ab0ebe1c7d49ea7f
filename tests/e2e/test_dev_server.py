"""`footprint dev` as a newcomer meets it: uploads reach the HTTP API, which answers as the host does."""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import orjson
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.core.mapping import derived_customer_id
from tests.azurite import AzuriteNames, free_port
from tests.e2e import export

pytestmark = pytest.mark.azurite
R1 = derived_customer_id("RetailCustomers", "R-1")


def fetch(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def wait_for(check, timeout: float = 120.0):  # type: ignore[no-untyped-def]
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


class DevServer(NamedTuple):
    port: int
    container: ContainerClient
    process: subprocess.Popen


@contextlib.contextmanager
def dev_server(azurite, names: AzuriteNames, store: Path, *extra: str) -> Iterator[DevServer]:  # type: ignore[no-untyped-def]
    """`footprint dev` in a child process, serving once /api/status answers; its stderr checked
    for tracebacks when it stops."""
    container = BlobServiceClient.from_connection_string(azurite.connection_string).create_container(
        names.container
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    env["FOOTPRINT_TABLE_PREFIX"] = names.table_prefix
    command = [
        sys.executable, "-m", "shared", "dev", "--connection", azurite.connection_string,
        "--container", names.container, "--port", str(port), "--poll", "0.2",
        "--store", f"sqlite:///{store}", *extra,
    ]  # fmt: skip
    dev = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    server = DevServer(port, container, dev)
    try:
        wait_for(lambda: fetch(port, "/api/status")[0] == 200, timeout=120)
        yield server
    finally:
        dev.terminate()
        dev.stderr_text = dev.communicate(timeout=60)[1].decode()  # type: ignore[attr-defined]
    assert "Traceback" not in dev.stderr_text, dev.stderr_text  # type: ignore[attr-defined]


def test_an_uploaded_export_reaches_the_http_timeline(azurite, azurite_names, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with dev_server(azurite, azurite_names, tmp_path / "dev.db") as dev:
        root = export.write_cdm_export(tmp_path / "export")
        for path in sorted(root.rglob("*")):
            if path.is_file():
                dev.container.upload_blob(path.relative_to(root).as_posix(), path.read_bytes())
        card = wait_for(lambda: (lambda r: r[1] if r[0] == 200 and len(r[1]["activities"]) == 3 else None)(
            fetch(dev.port, f"/api/customers/{R1}/activities")
        ), timeout=120)  # fmt: skip
        assert [a["SourceActivityId"] for a in card["activities"]] == ["e7", "e1", "e11"]
        assert fetch(dev.port, "/api/customers/nobody")[0] == 404
        assert fetch(dev.port, "/api/nowhere")[0] == 404
    logged = dev.process.stderr_text  # type: ignore[attr-defined]
    # Without -v: the startup line and one line per file at INFO, none of the SDK's requests.
    assert "INFO shared.devserver: footprint dev: watching container" in logged
    assert f"INFO shared.core.ingest.service: done {export.FIRST_FILE} " in logged
    assert "Request URL" not in logged and "azure.core" not in logged


@pytest.fixture(scope="module")
def keyed_dev(azurite, tmp_path_factory) -> Iterator[DevServer]:  # type: ignore[no-untyped-def]
    """One dev server for the tests below: customers keyed by ids holding a space, a slash and
    a non-ASCII letter, from a customer source that takes its CustomerId from a column."""
    folder = tmp_path_factory.mktemp("keyed")
    config = folder / "config.json"
    config.write_bytes(orjson.dumps({"customerSources": [
        {"entity": "People", "key": "Key", "customerId": "Id", "attributes": ["Name"]},
    ]}))  # fmt: skip
    with dev_server(azurite, AzuriteNames.fresh(), folder / "dev.db", "--config", str(config),
                    "--reconcile-every", "3600") as dev:  # fmt: skip
        dev.container.upload_blob("People/people.csv", "Key,Id,Name\nk1,U 1,Uma\nk2,Ü/2,Ümit\n".encode())
        wait_for(lambda: fetch(dev.port, "/api/status")[1]["files"]["done"] == 1, timeout=120)
        yield dev


def test_path_parameters_are_percent_decoded_as_the_functions_host_does(keyed_dev) -> None:  # type: ignore[no-untyped-def]
    status, uma = fetch(keyed_dev.port, "/api/customers/U%201")
    assert status == 200 and uma["Attributes"]["Name"] == "Uma"
    status, umit = fetch(keyed_dev.port, "/api/customers/%C3%9C%2F2")
    assert status == 200 and umit["Attributes"]["Name"] == "Ümit"
    status, timeline = fetch(keyed_dev.port, "/api/customers/%C3%9C%2F2/activities")
    assert status == 200 and timeline["customer"]["CustomerId"] == "Ü/2"
    status, body = fetch(keyed_dev.port, "/api/customers/U%202")
    assert status == 404 and body["error"] == "no customer 'U 2'"


def send(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):  # type: ignore[no-untyped-def]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        chunked = (headers or {}).get("Transfer-Encoding") == "chunked"
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.getheader("Allow"), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("DELETE", "/api/status", 405, "GET"),
        ("PUT", "/api/customers/U%201", 405, "DELETE, GET"),  # GET reads, DELETE erases
        ("GET", "/api/reprocess", 405, "POST"),
        ("BREW", "/api/status", 405, "GET"),
        ("GET", "/api/nowhere", 404, None),
        ("DELETE", "/nowhere", 404, None),
    ],
)
def test_every_dev_server_response_is_json_with_the_right_status(keyed_dev, method, path, status, allow) -> None:  # type: ignore[no-untyped-def]
    got, content_type, allowed, body = send(keyed_dev.port, method, path)
    assert (got, allowed) == (status, allow)
    assert content_type == "application/json" and "error" in orjson.loads(body)


def test_a_chunked_post_with_valid_json_is_read(keyed_dev) -> None:  # type: ignore[no-untyped-def]
    chunks = iter([b'{"path": ', b'"People/people.csv"}'])
    status, _, _, body = send(keyed_dev.port, "POST", "/api/reprocess", chunks,
                              {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})  # fmt: skip
    assert status == 200, body
    assert orjson.loads(body)["status"] == "done"


def test_an_uploaded_file_of_an_unknown_kind_fails_at_once_as_local_ingest_does(keyed_dev) -> None:  # type: ignore[no-untyped-def]
    # The reconciler runs only at start: the ledger entry can come from the upload's event alone.
    keyed_dev.container.upload_blob("People/x.parquet", b"PAR1 not really")
    health = wait_for(lambda: (lambda r: r[1] if r[1]["files"]["failed"] == 1 else None)(
        fetch(keyed_dev.port, "/api/status")
    ), timeout=120)  # fmt: skip
    assert health["last_error"]["path"] == "People/x.parquet"
    assert "not a CSV or JSON lines file" in health["last_error"]["error"]
    status, _, _, body = send(keyed_dev.port, "POST", "/api/reprocess", b'{"path": "People/x.parquet"}')
    assert status == 422
    assert orjson.loads(body)["error"] == health["last_error"]["error"]
