"""The dev and serve HTTP server, when the client goes away before its answer is written (a
browser that navigates on, cancelling a fetch): the request ends quietly, with no traceback
and nothing raised into the server's thread."""

from __future__ import annotations

import socket
import types

from shared.devserver import http_handler


def test_a_client_gone_before_the_answer_ends_the_request_quietly() -> None:
    server_side, client_side = socket.socketpair()
    client_side.sendall(b"GET /api/no-such-route HTTP/1.1\r\nHost: localhost\r\n\r\n")
    client_side.close()  # gone: the answer's write meets a broken pipe
    try:
        handler = http_handler({})(server_side, ("127.0.0.1", 1), types.SimpleNamespace())
    finally:
        server_side.close()
    assert handler.close_connection
