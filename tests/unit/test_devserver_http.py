"""The dev server's HTTP part, as `footprint dev` and `footprint serve` run it: a response's
headers and charset reach the client, and routes match as the Functions host matches them."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import azure.functions as func
import pytest

from shared import devserver
from shared.triggers import ui


def _app() -> func.FunctionApp:
    bp = func.Blueprint()

    @bp.function_name("page")
    @bp.route(route="pages/{name?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def page(req: func.HttpRequest) -> func.HttpResponse:
        name = req.route_params.get("name", "(none)")
        return func.HttpResponse(name, mimetype="text/html", charset="utf-8",
                                 headers={"Content-Security-Policy": "default-src 'self'"})  # fmt: skip

    @bp.function_name("rest")
    @bp.route(route="files/{*path}", methods=["GET"])
    def rest(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(req.route_params.get("path", ""))

    app = func.FunctionApp()
    app.register_functions(bp)
    return app


@pytest.fixture
def server() -> Iterator[str]:
    http = devserver.serve_http(devserver.functions_by_name(_app()), 0, key="k1")
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}/api/"
    finally:
        http.shutdown()
        http.server_close()


def get(url: str, key: str = "") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers={"x-functions-key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_a_functions_response_headers_and_charset_reach_the_client(server: str) -> None:
    status, headers, body = get(server + "pages/home")
    assert (status, body) == (200, "home")
    assert headers["Content-Security-Policy"] == "default-src 'self'"
    assert headers["Content-Type"] == "text/html; charset=utf-8"


def test_an_optional_route_parameter_may_be_left_out(server: str) -> None:
    assert get(server + "pages")[2] == "(none)"
    assert get(server + "pages/")[2] == "(none)"
    assert get(server + "pages/a/b")[0] == 404


def test_a_catch_all_parameter_takes_the_rest_of_the_path_and_wants_the_key(server: str) -> None:
    assert get(server + "files/a/b.csv")[0] == 401
    assert get(server + "files/a/b.csv", key="wrong")[0] == 401
    assert get(server + "files/a/b.csv", key="k1")[2] == "a/b.csv"


def test_the_ui_serves_only_its_fixed_files_with_their_types_and_headers() -> None:
    index = ui.static_file("index.html")
    assert (index.status_code, index.mimetype, index.charset) == (200, "text/html", "utf-8")
    assert ui.static_file("app.js").mimetype == "text/javascript"
    assert ui.static_file("style.css").mimetype == "text/css"
    for name in ("../bootstrap.py", "default_config.json", "", "APP.JS"):
        assert ui.static_file(name).status_code == 404
    headers = index.headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert b"<script type=\"module\" src=\"app.js\">" in index.get_body()
