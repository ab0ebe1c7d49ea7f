"""`footprint dev`: the Functions app on a laptop, without Core Tools, against Azurite."""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func
import orjson
from azure.functions.timer import TimerRequest

from shared.core.ingest.events import BLOB_CREATED
from shared.core.ports import FileSource

log = logging.getLogger(__name__)


def blob_created_event(container: str, blob: str, etag: str, size: int) -> func.EventGridEvent:
    """The event Event Grid would deliver for a finished upload of `blob`."""
    return func.EventGridEvent(
        id=str(uuid.uuid4()),
        data={
            "api": "PutBlockList",
            "eTag": etag,
            "contentLength": size,
            "blobType": "BlockBlob",
            "url": f"http://127.0.0.1/{container}/{blob}",
        },
        topic="/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        subject=f"/blobServices/default/containers/{container}/blobs/{blob}",
        event_type=BLOB_CREATED,
        event_time=datetime.now(UTC),
        data_version="",
    )


def functions_by_name(app: func.FunctionApp) -> dict[str, Any]:
    # get_functions() may be called once per app: it registers the blueprints' functions again.
    return {f.get_function_name(): f for f in app.get_functions()}


def schedule_seconds(schedule: str) -> float:
    """The period of a simple NCRONTAB schedule ('0 */5 * * * *' -> 300); 300 if unsure."""
    match = re.fullmatch(r"(\S+) (\S+) \* \* \* \*", schedule.strip())
    if match:
        seconds, minutes = match.groups()
        if seconds == "0" and minutes.startswith("*/") and minutes[2:].isdigit():
            return 60.0 * int(minutes[2:])
        if seconds.startswith("*/") and seconds[2:].isdigit() and minutes == "*":
            return float(seconds[2:])
    return 300.0


class BlobWatcher:
    """Polls the export container and delivers a BlobCreated event for each new or changed file."""

    def __init__(self, source: FileSource, container: str, prefix: str,
                 deliver: Callable[[func.EventGridEvent], None]) -> None:  # fmt: skip
        self.source, self.container, self.prefix, self.deliver = source, container, prefix, deliver
        self.seen: dict[str, str] = {}

    def poll(self) -> int:
        delivered = 0
        for file in self.source.list():
            if self.seen.get(file.path) == file.etag:
                continue
            self.seen[file.path] = file.etag
            blob = f"{self.prefix}/{file.path}" if self.prefix else file.path
            try:
                self.deliver(blob_created_event(self.container, blob, file.etag, file.size))
            except Exception as exc:  # as Event Grid would: try again on the next poll
                log.warning("event for %s failed, will retry: %s", blob, exc)
                del self.seen[file.path]
            delivered += 1
        return delivered


def route_pattern(route: str) -> re.Pattern[str]:
    """The regex of a Functions route under /api/: `{name}`, `{name:constraint}`, optional
    `{name?}` (its segment may be absent) and catch-all `{*name}`, as the host matches them."""
    pattern = ""
    for segment in route.strip("/").split("/"):
        param = re.fullmatch(r"\{(\*?)(\w+)(?::[^}?]*)?(\??)\}", segment)
        if param is None:
            pattern += "/" + re.escape(segment)
        elif param.group(1):
            pattern += f"(?:/(?P<{param.group(2)}>.*))?"
        elif param.group(3):
            pattern += f"(?:/(?P<{param.group(2)}>[^/]+))?"
        else:
            pattern += f"/(?P<{param.group(2)}>[^/]+)"
    return re.compile(f"^/api{pattern}/?$")


def http_handler(functions: dict[str, Any], key: str | None = None) -> type[BaseHTTPRequestHandler]:
    """A request handler that routes /api/... to the app's HTTP functions, as the host does:
    path parameters percent-decoded, JSON errors (404, 405 with Allow), chunked bodies read,
    the function's own headers sent; with `key`, routes that are not anonymous want it in
    `x-functions-key` (or `?code=`)."""
    routes = []
    for f in functions.values():
        trigger = f.get_trigger()
        if trigger.get_binding_name() == "httpTrigger":
            methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods or ()}
            anonymous = str(getattr(trigger.auth_level, "value", trigger.auth_level)) == "anonymous"
            routes.append((route_pattern(trigger.route), methods, anonymous, f.get_user_function()))

    class Handler(BaseHTTPRequestHandler):
        def handle(self) -> None:
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                # The client went away mid-request (a browser that navigated on, cancelling a
                # fetch): nobody is left to answer, and it is no error of the server's.
                self.close_connection = True

        def _serve(self) -> None:
            url = urlsplit(self.path)
            allowed: set[str] = set()
            for pattern, methods, anonymous, user_function in routes:
                # Matched before decoding, so that an encoded '/' stays inside its parameter.
                match = pattern.match(url.path)
                if not match:
                    continue
                if methods and self.command not in methods:
                    allowed |= methods
                    continue
                if key and not anonymous and not self._has_key(url.query):
                    return self._error(401, "this route wants the function key in x-functions-key")
                body = request_body(self.headers, self.rfile)
                if body is None:
                    return self._error(400, "request body is not valid chunked or sized data")
                req = func.HttpRequest(
                    self.command, f"http://{self.headers.get('Host', 'localhost')}{self.path}",
                    headers=dict(self.headers), params=dict(parse_qsl(url.query)),
                    route_params={k: unquote(v) for k, v in match.groupdict().items() if v is not None},
                    body=body,
                )  # fmt: skip
                return self._send(user_function(req))
            if allowed:
                return self._error(405, f"{self.command} is not allowed here", sorted(allowed))
            self._error(404, "no such route")

        def _has_key(self, query: str) -> bool:
            given = self.headers.get("x-functions-key") or dict(parse_qsl(query)).get("code", "")
            return hmac.compare_digest(given.encode(), (key or "").encode())

        def _send(self, response: func.HttpResponse) -> None:
            body = response.get_body()
            self.send_response(response.status_code)
            headers = dict(response.headers)
            if not any(name.lower() == "content-type" for name in headers):
                mimetype = response.mimetype or "application/json"
                charset = f"; charset={response.charset}" if response.charset else ""
                headers["Content-Type"] = mimetype + charset
            for name, value in headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str, allow: list[str] | None = None) -> None:
            body = orjson.dumps({"error": message})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if allow:
                self.send_header("Allow", ", ".join(allow))
            self.end_headers()
            self.wfile.write(body)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # Malformed requests the base class refuses itself: JSON too, never its HTML page.
            self.close_connection = True
            self._error(code, message or HTTPStatus(code).phrase)

        def __getattr__(self, name: str) -> Any:
            # Every method reaches the router, which answers 405 for one a route does not take.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            log.info("http %s", format % args)

    return Handler


def request_body(headers: Any, stream: BinaryIO) -> bytes | None:
    """The body of a request, sized or chunked; None if it is neither."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            size_line = stream.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                return None
            if size == 0:
                while stream.readline(1024).strip():  # trailers, up to the blank line
                    pass
                return b"".join(chunks)
            chunks.append(stream.read(size))
            stream.readline(1024)  # the CRLF after the chunk
    raw = headers.get("Content-Length") or "0"
    if not (raw.isascii() and raw.isdigit()):
        return None
    length = int(raw)
    return stream.read(length) if length else b""


def serve_http(functions: dict[str, Any], port: int, key: str | None = None) -> ThreadingHTTPServer:
    """The app's HTTP functions on 127.0.0.1:`port`, served from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), http_handler(functions, key))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run(app: func.FunctionApp, source: FileSource, container: str, prefix: str, *, port: int,
        poll_seconds: float, reconcile_seconds: float, stop: threading.Event,
        key: str | None = None) -> None:  # fmt: skip
    """Serve HTTP, watch the container and run the reconciler until `stop` is set."""
    fns = functions_by_name(app)
    on_event = fns["on_blob_created"].get_user_function()
    on_timer = fns["reconcile"].get_user_function()
    server = serve_http(fns, port, key)
    log.info("footprint dev: watching container %r, reconciling every %g s, HTTP on "
             "http://127.0.0.1:%d/api/ (Ctrl+C stops)", container, reconcile_seconds,
             server.server_address[1])  # fmt: skip
    watcher = BlobWatcher(source, container, prefix, on_event)
    next_reconcile = time.monotonic()
    try:
        while not stop.is_set():
            if time.monotonic() >= next_reconcile:
                on_timer(TimerRequest(past_due=False))
                next_reconcile = time.monotonic() + reconcile_seconds
            watcher.poll()
            stop.wait(poll_seconds)
    finally:
        server.shutdown()
        server.server_close()
