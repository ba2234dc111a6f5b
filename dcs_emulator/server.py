"""HTTP layer: a ThreadingHTTPServer that parses requests, dispatches them and writes (or withholds) answers.

Everything the server decides is returned as a ``Reply``; faults that drop the connection or delay the answer are
flags on it, so the API and admin code never touch sockets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import errors

log = logging.getLogger("dcs_emulator")

MAX_BODY = 1 << 20


@dataclass
class Request:
    method: str
    raw_path: str  # as received, percent-encoded, without the query
    raw_query: str
    headers: dict[str, str]  # lower-case names, values decoded as UTF-8
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection (with a reset) instead of answering
    corrupt: bool = False  # write bytes that are no answer (not even a TLS record), then close
    delay: float = 0.0  # wait this long before answering
    refuse: bool = False  # stop listening before this answer is written (sent with Connection: close)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # sent as X-Request-Id

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
        body = json.dumps(data).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json;charset=UTF-8", **(headers or {})})


Dispatcher = Callable[[Request], Reply]


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Tracks open connections so that ``close()`` also ends idle keep-alive ones and sleeping slow answers."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], dispatch: Dispatcher, ssl_context: Any = None):
        super().__init__(address, _Handler)
        self.dispatch = dispatch
        self.ssl_context = ssl_context
        # Called (by a handler thread) to stop listening, sparing the connection given: a refuse_after fault.
        self.on_refuse: Callable[[socket.socket], None] | None = None
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._conn_lock:
            (self._connections.add if open_ else self._connections.discard)(conn)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        if self.ssl_context is not None:  # the handshake runs in the handler's thread, on first read
            conn = self.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def drop_connections(self, keep: socket.socket | None = None) -> None:
        """End every open connection (idle keep-alive ones included), but `keep`."""
        with self._conn_lock:
            conns = [conn for conn in self._connections if conn is not keep]
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self.drop_connections()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pooled session expects
    server_version = "DCS-Emulator/0.1"
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the client's delayed ACK
        # would add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._write(Reply.json(413, errors.error_body(errors.REQUEST_INVALID, "Request entity too large.")))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        raw_path, _, raw_query = self.path.partition("?")
        # http.client decodes header bytes as latin-1; the SDK sends (and signs) UTF-8.
        headers = {k.lower(): _utf8(v) for k, v in self.headers.items()}
        try:
            reply = self.server.dispatch(Request(self.command, raw_path, raw_query, headers, body))
        except Exception:  # the dispatcher already answers its own errors; this is a bug guard
            log.exception("unhandled error for %s %s", self.command, self.path)
            reply = Reply.json(500, errors.error_body(errors.INTERNAL_ERROR, errors.MESSAGES[errors.INTERNAL_ERROR]))
        if reply.drop:
            self._reset_connection()
            return
        if reply.corrupt:
            self._corrupt_connection()
            return
        if reply.delay > 0 and self.server.stopping.wait(reply.delay):
            self.close_connection = True
            return
        if reply.refuse:
            # Not listening any more BEFORE the client has its answer: its next request is certainly refused.
            if self.server.on_refuse is not None:
                self.server.on_refuse(self.connection)
            reply.headers["Connection"] = "close"  # and not sent on this (pooled) connection either
            self.close_connection = True
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            headers = {"X-Request-Id": reply.request_id, **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (read timeout): nothing to do
            self.close_connection = True

    def _corrupt_connection(self) -> None:
        """Bytes that are neither an HTTP answer nor a TLS record, written under any TLS layer, then close."""
        self.close_connection = True
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self.connection.fileno())) as raw:
            raw.sendall(b"\x00garbage-not-an-answer\r\n\r\n")
        self._reset_connection()

    def _reset_connection(self) -> None:
        """Close with an RST, as a crashed gateway or a network reset would: the client gets no answer at all."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


def _utf8(value: str) -> str:
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
