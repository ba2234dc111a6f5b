"""``Emulator``: the one object tests and the CLI hold; it wires state, faults, the log and the HTTP server."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .admin import PREFIX, handle_admin
from .api import DcsApi
from .backend import Backend, NullBackend
from .faults import Fault, FaultBook
from .holds import Hold
from .modes import Modes
from .requestlog import RequestLog
from .sampler import StatusSampler
from .server import EmulatorHTTPServer, Reply, Request
from .state import State
from .tls import TlsFiles


class Emulator:
    """A local DCS v2 (+ SMN publish) endpoint on loopback, for the official SDK via ``with_endpoints([emu.url])``.

    ``transition_delay`` is how long RESTARTING/FLUSHING/CLOSING/STARTING last (0: accepted actions settle at
    once; an instance's own ``restart_seconds`` overrides it). ``redis_backed`` runs a real ``redis-server`` per
    instance. ``clock`` (monotonic seconds) lets tests drive transitions without sleeping; ``fault_seed`` makes
    probabilistic faults repeatable. ``modes`` (a mapping) and keyword arguments named after a mode (see
    ``modes.SPECS``: stop_start_refusal, stop_start_default, batch_refusal, restarting_code,
    refusal_names_instance, restart_during_backup, list_tags, maintain_window_rule, max_batch) select how DCS's
    undocumented or disputed behaviours are answered; ``status_sample_limit`` bounds the status sampler (0: off).
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
        tls: bool = False,
        modes: Mapping[str, Any] | None = None,
        status_sample_limit: int = 1000,
        **mode_values: Any,
    ):
        self.host = host
        self.port = port
        explicit = {**(modes or {}), **mode_values}
        self._initial_modes = Modes().updated(explicit)
        self._pinned_modes = frozenset(explicit)  # explicit choices win over a seed's "modes"
        self._backend = _make_backend(redis_backed, redis_server)
        self._state = State(transition_delay, self._backend, clock, self._initial_modes)
        for project_id in projects:
            self._state.add_project(project_id)
        self._faults = FaultBook(fault_seed)
        self._log = RequestLog()
        self._sampler = StatusSampler(status_sample_limit)
        self._api = DcsApi(
            self._state, self._faults, self._log, {ak: sk}, security_token, max_clock_skew, self._sampler
        )
        self._seeds: list[dict[str, Any]] = []
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tls = TlsFiles(host) if tls else None
        self._refusing = False

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        context = self._tls.context if self._tls is not None else None
        self._server = EmulatorHTTPServer((self.host, self.port), self._dispatch, context)
        self._server.on_refuse = self._refuse_from_handler
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="dcs-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release every backing process; safe to call twice."""
        server, self._server = self._server, None
        self._refusing = False
        self._api.holds.release_all()
        try:
            if server is not None:
                server.close()
                if self._thread is not None:
                    self._thread.join(timeout=5)
        finally:
            self._backend.close()
            if self._tls is not None:
                self._tls.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None and not self._refusing:
            raise RuntimeError("the emulator is not started")
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> str | None:
        """With tls=True: the CA certificate a client must trust (e.g. REQUESTS_CA_BUNDLE for the SDK)."""
        return self._tls.ca_file if self._tls is not None else None

    # -- connection-level faults ------------------------------------------------------------------------------
    def hold(self, endpoint: str = "status", *, before: bool = False, instance_ids: Iterable[str] | None = None,
             timeout: float = 30.0) -> Hold:
        """Hold the next matching request until `.release()`: processed first and only the answer held, or with
        `before=True` held before anything happens. `.wait_reached()` tells when it arrived."""
        return self._api.holds.add(Hold(endpoint, before, instance_ids, timeout))

    def refuse_connections(self) -> None:
        """Stop listening and end open connections: new connections are refused (ECONNREFUSED) until
        `accept_connections()`, so a request fails before a byte of it was written."""
        server, self._server = self._server, None
        if server is not None:
            self._refusing = True
            server.close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def _refuse_from_handler(self, keep: Any) -> None:
        """A refuse_after fault, in the thread of the request it answers: stop listening and end every other
        connection; that request's own answer is still written (then its connection is closed)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._refusing = True
        server.shutdown()  # serve_forever runs in self._thread, not here
        server.server_close()
        server.drop_connections(keep=keep)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def accept_connections(self) -> None:
        """Listen again, on the same port, after `refuse_connections()`."""
        if self._refusing:
            self._refusing = False
            self.start()

    @property
    def transition_delay(self) -> float:
        return self._state.transition_delay

    @transition_delay.setter
    def transition_delay(self, seconds: float) -> None:
        self._state.transition_delay = seconds

    @property
    def modes(self) -> dict[str, Any]:
        """The current modes (a copy); change them with ``set_modes``."""
        return self._state.modes.to_dict()

    def set_modes(self, **changes: Any) -> dict[str, Any]:
        """Change modes at run time (validated; values may be strings as in a seed); returns all modes."""
        self._state.modes = self._state.modes.updated(changes)
        return self.modes

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
        Redis backing, and is ListConfigurations' ``appendonly``). ``fields`` are any other InstanceListInfo or
        ShowInstance fields (spec_code, cache_mode, maintain_begin/maintain_end, service_upgrade, sub_status, ip,
        ...) and the emulator's own: ``stop_start_supported`` (bool; default from the stop_start_default mode),
        ``restart_seconds`` (how long this instance's transitional states last), ``never_back`` (true/"stuck":
        stays in the transitional state; "error": goes to ERROR), ``backups`` (BackupRecordResponse dicts plus
        ``seconds``/``wait_seconds``) and ``allow_unknown_status`` (accept an undocumented ``status``).
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
        """The API fields plus the emulator's own: ``project_id``, ``persistence``, ``counters`` (restarts,
        soft_restarts, flushes, stops, starts), ``stop_start_supported`` (effective), ``restart_seconds``,
        ``never_back`` and ``backups``."""
        return self._state.get_instance(project_id, instance_id)

    def instances(self, project_id: str) -> list[dict[str, Any]]:
        return self._state.instances(project_id)

    def update_instance(self, project_id: str, instance_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of an existing instance at run time (tags, service_upgrade, maintain window,
        stop_start_supported, restart_seconds, never_back, ...); returns ``get_instance``'s view."""
        return self._state.update_instance(project_id, instance_id, **fields)

    def set_status(self, project_id: str, instance_id: str, status: str, allow_unknown: bool = False) -> None:
        """Force a status; one DCS does not document is refused unless ``allow_unknown``."""
        self._state.set_status(project_id, instance_id, status, allow_unknown)

    def start_backup(
        self, project_id: str, instance_id: str, seconds: float | None = 5.0, wait_seconds: float | None = 0.0,
        **fields: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """Start a backup record: ``waiting`` for ``wait_seconds``, ``backuping`` for ``seconds`` (None: for ever),
        then ``succeed``; ``fields`` are BackupRecordResponse fields (backup_type, remark, ...)."""
        return self._state.start_backup(project_id, instance_id, seconds, wait_seconds, **fields)

    def backups(self, project_id: str, instance_id: str) -> list[dict[str, Any]]:
        """The instance's backup records as ListBackupRecords returns them, oldest first."""
        return self.get_instance(project_id, instance_id)["backups"]

    def load_seed(self, path: str | Path) -> list[dict[str, Any]]:
        """Load ``{"modes": {...}, "projects": {"p1": [instance dicts, ...]}}``; its projects become known and its
        modes (optional) apply from now on, except those given to the constructor (explicit choices win).
        ``reset()`` replays it."""
        seed = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(seed, dict) or not isinstance(seed.get("projects"), dict):
            raise ValueError(f"{path}: a seed is an object with a 'projects' mapping")
        if not isinstance(seed.get("modes", {}), dict):
            raise ValueError(f"{path}: 'modes' must be an object of mode names and values")
        try:
            self._state.modes.updated(seed.get("modes", {}))
        except ValueError as exc:
            raise ValueError(f"{path}: modes: {exc}") from None
        self._seeds.append(seed)
        return self._apply_seed(seed)

    def _apply_seed(self, seed: dict[str, Any]) -> list[dict[str, Any]]:
        seed_modes = {k: v for k, v in seed.get("modes", {}).items() if k not in self._pinned_modes}
        if seed_modes:
            self._state.modes = self._state.modes.updated(seed_modes)
        added = []
        for project_id, instances in seed["projects"].items():
            self._state.add_project(project_id)
            for fields in instances:
                fields = copy.deepcopy(fields)
                added.append(self._state.add_instance(project_id, fields.pop("instance_id", None), **fields))
        return added

    def reset(self) -> None:
        """Back to the loaded seeds: modes as constructed (then the seeds'), instances re-created, log, faults,
        status samples and SMN messages cleared."""
        self._state.remove_all()
        self._state.modes = self._initial_modes
        self.clear_log()
        self.clear_faults()
        self._sampler.clear()
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

    # -- status sampler ----------------------------------------------------------------------------------------
    def status_samples(self, project_id: str | None = None) -> list[dict[str, Any]]:
        """After every DCS request, every instance's status: ``[{time, clock, seq, endpoint, method, statuses:
        {instance_id: status}}]``, oldest first, the newest ``status_sample_limit`` kept; one project or all."""
        return self._sampler.samples(project_id)

    def peak_not_running(self, project_id: str | None = None, instance_ids: Iterable[str] | None = None) -> int:
        """The most instances (of ``instance_ids``, default all) not RUNNING in any one sample."""
        return self._sampler.peak_not_running(project_id, instance_ids)

    def clear_status_samples(self) -> None:
        self._sampler.clear()

    @property
    def status_sample_limit(self) -> int:
        return self._sampler.limit

    @status_sample_limit.setter
    def status_sample_limit(self, limit: int) -> None:
        self._sampler.limit = limit

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
