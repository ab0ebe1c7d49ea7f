"""The browser tests' servers and browser: `footprint serve` over SQLite, `footprint dev` over
Azurite, each a real process; the system's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
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
from azure.storage.blob import BlobServiceClient
from playwright.sync_api import Page, expect

from tests.azurite import ROOT, free_port
from tests.ui import data

CHROMIUM = "/usr/lib/chromium/chromium"
WAIT = 120.0  # seconds any server or page may take on a slow, shared machine
SCREENSHOTS = ROOT / "build" / "ui-screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


class Server(NamedTuple):
    base: str  # the API root, http://127.0.0.1:PORT/api/
    process: subprocess.Popen[bytes]

    @property
    def ui(self) -> str:
        return self.base + "ui/"

    def get(self, path: str, key: str = "") -> tuple[int, object]:
        request = urllib.request.Request(self.base + path, headers={"x-functions-key": key})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            return error.code, orjson.loads(body) if body.startswith(b"{") else None


def chromium_path() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    if found is None:
        pytest.fail("no Chromium: install it (apt-get install chromium); make test does so as root")
    return found


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:  # type: ignore[type-arg]
    # The system's Chromium: Playwright's own browser download is never used. No outside host.
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path(),
        "args": ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    }


@pytest.fixture
def page(page: Page) -> Page:
    page.set_default_timeout(WAIT * 1000)
    expect.set_options(timeout=WAIT * 1000)
    return page


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTPRINT_")}
    return {**env, **extra}


def _wait(server: Server, ready, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"{what} exited: {server.process.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} was not ready within {WAIT:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    _, stderr = process.communicate(timeout=30)
    assert b"Traceback" not in stderr, stderr.decode()


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data.write_export(tmp_path_factory.mktemp("ui") / "export")


def _serve(export: Path, store: str, **env: str) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "shared", "serve", "--store", store, "--port", str(port),
               "--config", str(export.parent / "config.json"), "--source", str(export)]  # fmt: skip
    process = subprocess.Popen(command, env=_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(f"http://127.0.0.1:{port}/api/", process)
    try:
        _wait(server, lambda: server.get("status", env.get("FOOTPRINT_HTTP_KEY", ""))[0] == 200, "footprint serve")
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def sqlite_store(export: Path) -> str:
    store = f"sqlite:///{export.parent / 'ui.db'}"
    ingest = [sys.executable, "-m", "shared", "ingest", str(export), "--store", store,
              "--config", str(export.parent / "config.json")]  # fmt: skip
    result = subprocess.run(ingest, env=_env(), capture_output=True, check=False)
    assert result.returncode == 1, result.stderr.decode()  # one file fails on purpose
    refresh = [sys.executable, "-m", "shared", "segments", "refresh", "--store", store,
               "--config", str(export.parent / "config.json")]  # fmt: skip
    subprocess.run(refresh, env=_env(), capture_output=True, check=True)
    return store


@pytest.fixture(scope="session")
def sqlite_server(export: Path, sqlite_store: str) -> Iterator[Server]:
    """`footprint serve` over the SQLite store the export was ingested into."""
    yield from _serve(export, sqlite_store)


@pytest.fixture(scope="session")
def keyed_server(export: Path, sqlite_store: str) -> Iterator[Server]:
    """The same store served by a `footprint serve` that wants a function key."""
    yield from _serve(export, sqlite_store, FOOTPRINT_HTTP_KEY="right-key")


@pytest.fixture(scope="session")
def azure_server(azurite, export: Path) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """`footprint dev` over Azure Tables in Azurite, the export uploaded to its container."""
    from tests.azurite import AzuriteNames

    names = AzuriteNames.fresh()
    container = BlobServiceClient.from_connection_string(azurite.connection_string).create_container(names.container)
    port = free_port()
    command = [sys.executable, "-m", "shared", "dev", "--connection", azurite.connection_string,
               "--container", names.container, "--port", str(port), "--poll", "0.2",
               "--store", "azure-tables:", "--config", str(export.parent / "config.json")]  # fmt: skip
    process = subprocess.Popen(command, env=_env(FOOTPRINT_TABLE_PREFIX=names.table_prefix),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}/api/", process)
    try:
        _wait(server, lambda: server.get("status")[0] == 200, "footprint dev")
        for path in sorted(export.rglob("*")):
            if path.is_file():
                container.upload_blob(path.relative_to(export).as_posix(), path.read_bytes())
        ada = data.derived_id("R-1")
        _wait(server, lambda: sum((server.get(f"customers/{ada}")[1] or {}).get("ActivityCounts", {}).values())
              == data.BUSY_EVENTS, "Ada's activities in Azure Tables")  # fmt: skip
        # The upkeep after her last file: her measures and segments as the card shows them.
        carts = sum(1 for name, _ in data.busy_times() if name == "CartAdds")
        _wait(server, lambda: (server.get(f"customers/{ada}")[1] or {}).get("Measures", {}).get("Carts") == carts,
              "Ada's measures in Azure Tables")  # fmt: skip
        yield server
    finally:
        _stop(process)


def inject_axe(page: Page) -> list[dict]:  # type: ignore[type-arg]
    """axe-core's serious and critical violations on the page as it is now."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]  # fmt: skip
