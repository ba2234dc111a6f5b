"""``Emulator``: the one object tests and the CLI hold; it wires state, faults, the log and the HTTP server."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .admin import PREFIX, handle_admin
from .api import DcsApi
from .backend import Backend, NullBackend
from .faults import Fault, FaultBook
from .requestlog import RequestLog
from .server import EmulatorHTTPServer, Reply, Request
from .state import State


class Emulator:
    """A local DCS v2 (+ SMN publish) endpoint on loopback, for the official SDK via ``with_endpoints([emu.url])``.

    ``transition_delay`` is how long RESTARTING/FLUSHING/CLOSING/STARTING last (0: accepted actions settle at
    once). ``redis_backed`` runs a real ``redis-server`` per instance. ``clock`` (monotonic seconds) lets tests
    drive transitions without sleeping; ``fault_seed`` makes probabilistic faults repeatable.
    """

    def __init__(
        self,
        ak: str = "AK",
        sk: str = "SK",
        projects: Iterable[str] = ("p1",),
        transition_delay: float = 0.2,
        security_token: str | None = None,
        redis_backed: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        fault_seed: int | None = None,
        max_clock_skew: float = 900.0,
        redis_server: str | None = None,
    ):
        self.host = host
        self.port = port
        self._backend = _make_backend(redis_backed, redis_server)
        self._state = State(transition_delay, self._backend, clock)
        for project_id in projects:
            self._state.add_project(project_id)
        self._faults = FaultBook(fault_seed)
        self._log = RequestLog()
        self._api = DcsApi(self._state, self._faults, self._log, {ak: sk}, security_token, max_clock_skew)
        self._seeds: list[dict[str, Any]] = []
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._server = EmulatorHTTPServer((self.host, self.port), self._dispatch)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="dcs-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release every backing process; safe to call twice."""
        server, self._server = self._server, None
        try:
            if server is not None:
                server.close()
                if self._thread is not None:
                    self._thread.join(timeout=5)
        finally:
            self._backend.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def transition_delay(self) -> float:
        return self._state.transition_delay

    @transition_delay.setter
    def transition_delay(self, seconds: float) -> None:
        self._state.transition_delay = seconds

    def _dispatch(self, req: Request) -> Reply:
        if req.raw_path == PREFIX or req.raw_path.startswith(PREFIX + "/"):
            return handle_admin(self, req)
        return self._api.handle(req)

    # -- instances ---------------------------------------------------------------------------------------------
    def projects(self) -> list[str]:
        return self._state.projects()

    def add_project(self, project_id: str) -> None:
        self._state.add_project(project_id)

    def add_instance(
        self,
        project_id: str,
        instance_id: str | None = None,
        *,
        name: str | None = None,
        engine: str = "Redis",
        engine_version: str = "5.0",
        status: str = "RUNNING",
        tags: Any = None,
        persistence: str = "none",
        **fields: Any,
    ) -> dict[str, Any]:
        """Add an instance and return ``get_instance``'s view of it.

        ``tags`` is ``{"k": "v"}`` or ``[{"key", "value"}]``; ``persistence`` is "none" or "aof" (it matters with
        Redis backing); ``fields`` are any other InstanceListInfo fields (spec_code, maintain_begin, ip, ...).
        """
        return self._state.add_instance(
            project_id,
            instance_id,
            name=name,
            persistence=persistence,
            tags=tags,
            engine=engine,
            engine_version=engine_version,
            status=status,
            **fields,
        )

    def get_instance(self, project_id: str, instance_id: str) -> dict[str, Any]:
        """The API fields plus ``project_id``, ``persistence`` and ``counters`` (restarts, soft_restarts,
        flushes, stops, starts)."""
        return self._state.get_instance(project_id, instance_id)

    def instances(self, project_id: str) -> list[dict[str, Any]]:
        return self._state.instances(project_id)

    def set_status(self, project_id: str, instance_id: str, status: str) -> None:
        self._state.set_status(project_id, instance_id, status)

    def load_seed(self, path: str | Path) -> list[dict[str, Any]]:
        """Load ``{"projects": {"p1": [instance dicts, ...]}}``; its projects become known. ``reset()`` replays it."""
        seed = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(seed, dict) or not isinstance(seed.get("projects"), dict):
            raise ValueError(f"{path}: a seed is an object with a 'projects' mapping")
        self._seeds.append(seed)
        return self._apply_seed(seed)

    def _apply_seed(self, seed: dict[str, Any]) -> list[dict[str, Any]]:
        added = []
        for project_id, instances in seed["projects"].items():
            self._state.add_project(project_id)
            for fields in instances:
                fields = copy.deepcopy(fields)
                added.append(self._state.add_instance(project_id, fields.pop("instance_id", None), **fields))
        return added

    def reset(self) -> None:
        """Back to the loaded seeds: instances re-created, log, faults and SMN messages cleared."""
        self._state.remove_all()
        self.clear_log()
        self.clear_faults()
        self._api.smn.clear()
        self._api.ces.clear()
        for seed in self._seeds:
            self._apply_seed(seed)

    # -- log, faults, notifications ----------------------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every DCS/SMN request received (admin routes excluded), oldest first; a copy."""
        return self._log.entries()

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the authenticated ``PUT .../instances/status`` requests, optionally of one action."""
        return self._log.calls(action)

    def clear_log(self) -> None:
        self._log.clear()

    def inject(self, fault: Fault) -> Fault:
        self._faults.add(fault)
        return fault

    def faults(self) -> list[Fault]:
        """Faults not yet used up."""
        return self._faults.pending()

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def smn_messages(self) -> list[dict[str, Any]]:
        """Published SMN messages: the request body plus project_id, topic_urn, message_id and time."""
        return self._api.smn.messages()

    @property
    def metric_data(self) -> list[dict[str, Any]]:
        """Cloud Eye metric data points received: each item of the body plus project_id and received time."""
        return self._api.ces.metric_data()


def _make_backend(redis_backed: bool, redis_server: str | None) -> Backend:
    if not redis_backed:
        return NullBackend()
    from .redis_backend import RedisBackend

    return RedisBackend(redis_server)
