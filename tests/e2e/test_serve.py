"""`footprint serve`: the HTTP functions and the web UI over a SQLite store, without Azurite."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from tests.azurite import free_port
from tests.e2e.test_dev_server import wait_for


def request(url: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_serve_answers_the_api_and_the_ui_over_sqlite(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "shared", "serve", "--store", f"sqlite:///{tmp_path / 's.db'}",
               "--port", str(port)]  # fmt: skip
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/api/"
    try:
        wait_for(lambda: request(base + "status")[0] == 200, timeout=120)
        status, headers, body = request(base + "ui/")
        assert status == 200 and b"app.js" in body
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert request(base + "ui/render.js")[1]["Content-Type"] == "text/javascript; charset=utf-8"
        assert request(base + "ui/secrets.json")[0] == 404
        status, _, body = request(base + "reprocess", b'{"path": "E/part.csv"}')
        assert status == 400 and b"--source" in orjson.loads(body)["error"].encode()
    finally:
        serve.terminate()
        _, stderr = serve.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/api/ui/".encode() in stderr
    assert b"Traceback" not in stderr


def test_serve_with_a_source_that_is_no_folder_says_so_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared", "serve", "--store", f"sqlite:///{tmp_path / 's.db'}",
         "--source", str(tmp_path / "missing")], capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.decode().strip().count("\n") == 0
    assert "is not a folder" in result.stderr.decode()
