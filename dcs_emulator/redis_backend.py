"""A real ``redis-server`` per instance, so that flush, restart, stop and start act on real data.

Persistence follows DCS: ``aof`` keeps data across a restart, ``none`` loses it (no AOF, no RDB snapshots).
Processes listen on 127.0.0.1 only, live in a private temporary folder, and are stopped on ``close()`` and at
interpreter exit, so a failing test does not leave servers behind.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backend import BackendError

HOST = "127.0.0.1"


@dataclass
class _Server:
    port: int
    directory: Path
    persistence: str
    process: subprocess.Popen[bytes] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # one action at a time per instance


class RedisBackend:
    def __init__(self, redis_server: str | None = None, startup_timeout: float = 5.0):
        self.binary = find_redis_server(redis_server)
        self.startup_timeout = startup_timeout
        self._root: Path | None = None
        self._servers: dict[str, _Server] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    # -- Backend interface -------------------------------------------------------------------------------------
    def provision(self, instance_id: str, persistence: str, running: bool) -> dict[str, Any]:
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="dcs-emulator-redis-"))
            directory = self._root / instance_id
            directory.mkdir(parents=True, exist_ok=True)
            server = _Server(_free_port(), directory, persistence)
            self._servers[instance_id] = server
        if running:
            with server.lock:
                self._start(server)
        return {"ip": HOST, "port": server.port}

    def apply(self, instance_id: str, action: str) -> None:
        server = self._servers.get(instance_id)
        if server is None:
            raise BackendError(f"no backing server for {instance_id}")
        with server.lock:
            if action in ("restart", "soft_restart"):
                self._stop(server)
                self._start(server)
            elif action == "flush":
                reply = _command(server.port, "FLUSHALL")
                if not reply.startswith(b"+OK"):
                    raise BackendError(f"FLUSHALL answered {reply!r}")
            elif action == "stop":
                self._stop(server)
            elif action == "start":
                self._start(server)
            else:
                raise BackendError(f"unknown action {action}")

    def remove(self, instance_id: str) -> None:
        with self._lock:
            server = self._servers.pop(instance_id, None)
        if server is not None:
            with server.lock:
                self._stop(server)
            shutil.rmtree(server.directory, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
            root, self._root = self._root, None
        for server in servers:
            with server.lock:
                self._stop(server)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    # -- processes ---------------------------------------------------------------------------------------------
    def _start(self, server: _Server) -> None:
        if server.process is not None and server.process.poll() is None:
            return
        args = [
            self.binary,
            "--port", str(server.port),
            "--bind", HOST,
            "--dir", str(server.directory),
            "--save", "",
            "--appendonly", "yes" if server.persistence == "aof" else "no",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", str(server.directory / "redis.log"),
        ]  # fmt: skip
        server.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise BackendError(f"redis-server exited with {server.process.returncode}: {_tail(server)}")
            try:
                if _command(server.port, "PING", timeout=0.5).startswith(b"+PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.01)
        self._stop(server)
        raise BackendError(f"redis-server on port {server.port} did not answer within {self.startup_timeout}s")

    @staticmethod
    def _stop(server: _Server) -> None:
        """SIGTERM: redis flushes its AOF and exits, as a graceful restart would."""
        process, server.process = server.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def find_redis_server(preferred: str | None = None) -> str:
    """The given binary, else ``$REDIS_SERVER``, ``redis-server`` on PATH, or /usr/bin/redis-server."""
    candidates = [preferred, os.environ.get("REDIS_SERVER"), "redis-server", "/usr/bin/redis-server"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError("redis-backed mode needs redis-server (set REDIS_SERVER or put it on PATH)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One RESP command on a fresh connection: enough for PING and FLUSHALL without a client library."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in args)
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


def _tail(server: _Server, lines: int = 5) -> str:
    try:
        return " | ".join((server.directory / "redis.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
