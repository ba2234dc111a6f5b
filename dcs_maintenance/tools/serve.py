"""`python -m dcs_maintenance serve`: the HTTP routes on a local port, through `handler.handler`.

Each real HTTP request becomes the APIG event FunctionGraph would deliver (base64 body, headers, query
parameters, path, a fresh requestContext.requestId) and the APIG response is written back, so curl
works against exactly the code that runs in the cloud. For local use: plain HTTP, stdlib only.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dcs_maintenance.http_api import MAX_BODY_BYTES
from dcs_maintenance.settings import SettingsError, read_api_token
from dcs_maintenance.tools.local import LocalContext

CLIENT_TIMEOUT = 30.0  # a client that sends nothing for this long is disconnected: it cannot hold a thread for ever
MAX_REQUEST_BYTES = 2 * MAX_BODY_BYTES  # larger bodies are not read: the function answers 413 for > MAX_BODY_BYTES
DRAIN_LIMIT = 16 * 1024 * 1024  # a larger body is not even read away: the connection is closed
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _function() -> Callable[[dict, Any], Any]:
    """handler.handler, importable from the repository root whatever the working directory."""
    try:
        import handler
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        import handler
    return handler.handler


def to_event(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """An APIG event for one HTTP request, as FunctionGraph builds it (the body base64-encoded).

    A header sent more than once keeps every value (a list): the function decides (two Authorization headers
    are refused), rather than this bridge silently keeping the last one."""
    url = urlsplit(target)
    merged: dict[str, Any] = {}
    for name, value in headers:
        if name in merged:
            merged[name] = [*(merged[name] if isinstance(merged[name], list) else [merged[name]]), value]
        else:
            merged[name] = value
    return {
        "body": base64.b64encode(body).decode("ascii"),
        "requestContext": {"apiId": "local", "requestId": uuid.uuid4().hex, "stage": "RELEASE"},
        "queryStringParameters": dict(parse_qsl(url.query, keep_blank_values=True)),
        "httpMethod": method,
        "pathParameters": {},
        "headers": merged,
        "path": url.path or "/",
        "isBase64Encoded": True,
    }


class ApigBridge(BaseHTTPRequestHandler):
    """Turns each request into an APIG event for the function and writes its APIG response back."""

    server_version = "dcs-maintenance-local"
    protocol_version = "HTTP/1.1"
    timeout = CLIENT_TIMEOUT  # seconds a client may take to send a request (or stay idle between two)

    def do_GET(self) -> None:  # noqa: N802 - http.server's method names
        self._forward()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET  # the function answers 405 where it must

    def do_HEAD(self) -> None:  # noqa: N802
        """Answered as GET (same status and headers, Content-Length included), without the body."""
        self._forward(method="GET")

    def _forward(self, method: str = "") -> None:
        if self.headers.get("Transfer-Encoding"):
            return self._answer(411, {"Content-Type": "application/json"},
                                _error("DCSM.4110", "send the body with a Content-Length"), close=True)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return self._answer(400, {"Content-Type": "application/json"},
                                _error("DCSM.4000", "invalid Content-Length"), close=True)
        if length > MAX_REQUEST_BYTES:
            while 0 < length <= DRAIN_LIMIT:  # read it away, so the client sees the answer rather than a reset
                chunk = self.rfile.read(min(65536, length))
                length = length - len(chunk) if chunk else 0
            return self._answer(413, {"Content-Type": "application/json"},
                                _error("DCSM.4130", f"the body is larger than {MAX_BODY_BYTES} bytes"), close=True)
        body = self.rfile.read(length) if length else b""
        event = to_event(method or self.command, self.path, list(self.headers.items()), body)
        reply = self.server.function(event, LocalContext(request_id=event["requestContext"]["requestId"]))  # type: ignore[attr-defined]
        if not isinstance(reply, dict) or "statusCode" not in reply:
            return self._answer(502, {"Content-Type": "application/json"},
                                _error("DCSM.5020", "the function did not answer in the APIG shape"))
        payload = reply.get("body") or ""
        data = base64.b64decode(payload) if reply.get("isBase64Encoded") else str(payload).encode("utf-8")
        self._answer(int(reply["statusCode"]), reply.get("headers") or {}, data)

    def _answer(self, status: int, headers: dict[str, str], data: bytes, close: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the function logs each request
        pass


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error_code": code, "error_msg": message, "error_ext_msg": None}).encode()


def make_server(host: str = "127.0.0.1", port: int = 8080, function: Callable[[dict, Any], Any] | None = None,
                client_timeout: float = CLIENT_TIMEOUT) -> ThreadingHTTPServer:
    """A bound server (port 0: any free port; see `server.server_address`), not serving yet. OSError when the
    address cannot be bound (see dcs_emulator.__main__.listen_error for the words)."""
    handler = type("ApigBridgeWithTimeout", (ApigBridge,), {"timeout": client_timeout})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.function = function or _function()  # type: ignore[attr-defined]
    return server


def token_warning(env: Mapping[str, str]) -> str | None:
    """A warning for the start of `serve` when API_TOKEN makes every route but /health refuse requests."""
    try:
        token = read_api_token(env)
    except SettingsError as exc:
        return f"{exc}: every route but /health answers with an error"
    if token is None:
        return ("API_TOKEN is not set: every route but /health answers 503; export API_TOKEN=<16 or more "
                "characters> and send it as Authorization: Bearer <API_TOKEN>")
    return None


def serve(host: str = "127.0.0.1", port: int = 8080) -> int:
    from dcs_emulator.__main__ import listen_error

    try:
        server = make_server(host, port)
    except OSError as exc:
        print(f"error: {listen_error(exc, host, port)}", file=sys.stderr)
        return 2
    bound_host, bound_port = server.server_address[:2]
    print(f"serving the dcs-maintenance routes on http://{bound_host}:{bound_port} (Ctrl-C to stop)", file=sys.stderr)
    warning = token_warning(os.environ)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if host not in LOOPBACK:
        print("warning: plain HTTP on a non-loopback address: the bearer token crosses the network in clear",
              file=sys.stderr)
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
