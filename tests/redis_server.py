"""Throwaway `redis-server` processes for tests: a free loopback port, a temp dir, stopped at the end.

Plain use (no pytest needed)::

    with RedisServer() as server:          # or server = RedisServer().start(); ...; server.stop()
        url = server.url                   # redis://127.0.0.1:<port>/0 (redis://:pw@... with password=)

As pytest fixtures, import them into a test module (or a conftest.py)::

    from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)

    def test_x(redis_server):                  # one server shared by the session
        ...
    def test_y(redis_server_factory):          # a fresh one, with options, stopped at session end
        server = redis_server_factory(password="s3cret", persistent=True)

Both skip the test when no redis-server binary is found (`$REDIS_SERVER`, /usr/bin/redis-server, PATH).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Optional

import pytest

DEFAULT_BINARY = "/usr/bin/redis-server"
HOST = "127.0.0.1"


def find_redis_server() -> Optional[str]:
    """The redis-server binary to use, or None."""
    for candidate in (os.environ.get("REDIS_SERVER"), DEFAULT_BINARY, shutil.which("redis-server")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class RedisServerError(RuntimeError):
    pass


class RedisServer:
    """One redis-server bound to loopback. `persistent=True` saves to its dir on stop, so a
    `restart()` (same port, same dir) keeps the data; otherwise nothing touches the disk."""

    def __init__(
        self,
        *,
        password: Optional[str] = None,
        persistent: bool = False,
        binary: Optional[str] = None,
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 10.0,
    ) -> None:
        self.binary = binary or find_redis_server()
        if self.binary is None:
            raise RedisServerError(f"redis-server not found (set $REDIS_SERVER or install it at {DEFAULT_BINARY})")
        self.host = HOST
        self.port: int = 0
        self.password = password
        self.persistent = persistent
        self.extra_args = extra_args
        self.start_timeout = start_timeout
        self.dir = tempfile.mkdtemp(prefix="dcsm-redis-")
        self.process: Optional[subprocess.Popen[bytes]] = None

    # -- addresses ------------------------------------------------------------------------------

    def url_for(self, db: int = 0, *, scheme: str = "redis", password: Optional[str] = None) -> str:
        pw = self.password if password is None else password
        auth = f":{pw}@" if pw else ""
        return f"{scheme}://{auth}{self.host}:{self.port}/{db}"

    @property
    def url(self) -> str:
        return self.url_for(0)

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, "redis.log")

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> RedisServer:
        if self.process is not None:
            return self
        # The port is free when picked but could be taken before redis binds it: try a few.
        attempts = 1 if self.port else 5
        last = ""
        for _ in range(attempts):
            port = self.port or free_port()
            try:
                self._spawn(port)
                self.port = port
                return self
            except RedisServerError as exc:
                last = str(exc)
        raise RedisServerError(last)

    def _spawn(self, port: int) -> None:
        args = [
            self.binary,
            "--port", str(port),
            "--bind", self.host,
            "--dir", self.dir,
            "--logfile", self.log_path,
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--appendonly", "no",
            "--save", "3600 1" if self.persistent else "",
            "--dbfilename", "dump.rdb",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += list(self.extra_args)
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RedisServerError(f"redis-server exited with {proc.returncode}: {err.strip()} {self._log_tail()}")
            if self._ping(port):
                self.process = proc
                return
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        raise RedisServerError(f"redis-server did not answer on port {port} within {self.start_timeout}s")

    def _ping(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
        except OSError:
            return False
        # Without AUTH a password-protected server answers NOAUTH: it is up all the same.
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "log: " + " | ".join(f.read().splitlines()[-5:])
        except OSError:
            return ""

    def stop(self, *, remove_dir: bool = True) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            proc.terminate()  # SIGTERM: a persistent server saves its RDB before exiting
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
        if remove_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> RedisServer:
        """Stop and start again on the same port and dir (data survives when `persistent`)."""
        self.stop(remove_dir=False)
        return self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer({self.host}:{self.port}, running={self.process is not None})"


@pytest.fixture(scope="session")
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    """`make(**RedisServer options) -> started RedisServer`; every server is stopped at session end."""
    servers: list[RedisServer] = []

    def make(**kwargs: object) -> RedisServer:
        if find_redis_server() is None and "binary" not in kwargs:
            pytest.skip(f"redis-server not installed (looked at $REDIS_SERVER, {DEFAULT_BINARY}, PATH)")
        server = RedisServer(**kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    """One plain redis-server for the whole session; isolate tests by key prefix or db number."""
    return redis_server_factory()
