"""Instances and their status machine: refusals per action, transitional states settled lazily on read.

A transition is a (final status, due time) pair on the record rather than a timer: whoever reads the instance
after the due time sees the final status. This keeps the emulator deterministic and free of background threads.
Backup records settle the same way. What DCS refuses, and how, is decided in ``refusals`` under the current
``Modes``; this module applies the decisions.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import backups as backup_records
from . import errors, specs, statuses
from .backend import Backend, BackendError, NullBackend
from .backups import Backup
from .modes import Modes
from .params import int_param
from .refusals import Refusal, refusal, supports_stop_start, whole_request

ACTIONS = ("restart", "soft_restart", "flush", "stop", "start")
TRANSITIONAL = {
    "restart": "RESTARTING",
    "soft_restart": "RESTARTING",
    "flush": "FLUSHING",
    "stop": "CLOSING",
    "start": "STARTING",
}
SETTLED = {"restart": "RUNNING", "soft_restart": "RUNNING", "flush": "RUNNING", "stop": "CLOSED", "start": "RUNNING"}
COUNTER = {
    "restart": "restarts",
    "soft_restart": "soft_restarts",
    "flush": "flushes",
    "stop": "stops",
    "start": "starts",
}
# A backing process exists for instances in these states (CLOSED and failed creations have none).
NOT_PROVISIONED = frozenset({"CLOSED", "CREATING", "CREATEFAILED", "DELETED"})
PERSISTENCE = ("none", "aof")
NEVER_BACK = ("", "stuck", "error")
# Fields of the emulator's record that are not API fields (never sent in a response).
RECORD_FIELDS = ("persistence", "stop_start_supported", "restart_seconds", "never_back", "backups")
# ShowInstance fields that InstanceListInfo (the list entry) does not have.
SHOW_ONLY_FIELDS = ("cache_mode",)

_DEFAULT_FIELDS: dict[str, Any] = {
    "engine": "Redis",
    "engine_version": "5.0",
    "status": "RUNNING",
    "capacity": 2,
    "max_memory": 1536,
    "used_memory": 2,
    "port": 6379,
    "enterprise_project_id": "0",
    "charging_mode": 0,
    "description": "",
    "no_password_access": "true",
    "enable_ssl": False,
    "enable_publicip": False,
    "cpu_type": "x86_64",
    "az_codes": ["az1"],
    "created_at": "2024-01-01T00:00:00.000Z",
    "service_upgrade": False,
    "sub_status": "normal",
}


def normalise_tags(tags: Any) -> list[dict[str, str]]:
    """Accept ``{"k": "v"}`` or ``[{"key": "k", "value": "v"}]``; the API shape is the list."""
    if not tags:
        return []
    if isinstance(tags, Mapping):
        return [{"key": str(k), "value": str(v)} for k, v in tags.items()]
    return [{"key": str(t["key"]), "value": str(t.get("value", ""))} for t in tags]


def parse_tag_filter(text: str) -> list[tuple[str, str | None]]:
    """``k1=v1,k2=v2`` (what the SDK's ``tags`` string carries); a bare ``k`` matches any value."""
    pairs: list[tuple[str, str | None]] = []
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        pairs.append((key.strip(), value.strip() if sep else None))
    return pairs


def never_back_value(value: Any) -> str:
    """``never_back``: False/None (comes back), True or "stuck" (stays in the transitional state), "error"."""
    if value in (None, False, ""):
        return ""
    if value is True:
        return "stuck"
    if value in NEVER_BACK:
        return str(value)
    raise ValueError(f"never_back must be false, true, 'stuck' or 'error', not {value!r}")


def seconds_value(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0 (or None), not {value!r}")
    return float(value)


class RequestRefused(errors.ApiError):
    """A whole status request refused for one instance's sake (nothing done); carries what the log records."""

    def __init__(
        self, refused: Refusal, instance_id: str, reasons: dict[str, str], codes: dict[str, str], names_instance: bool
    ):
        message = errors.MESSAGES[refused.code]
        if refused.kind == "unsupported":
            message = f"{message} {refused.reason[0].upper()}{refused.reason[1:]}."
        if names_instance:
            message = f"{message} (instance {instance_id})"
        super().__init__(400, refused.code, message)
        self.instance_id = instance_id
        self.reasons = reasons
        self.codes = codes


@dataclass
class InstanceRecord:
    project_id: str
    info: dict[str, Any]
    persistence: str = "none"
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTER.values(), 0))
    pending: tuple[str, float] | None = None  # (settled status, due time on the state's clock)
    stop_start_supported: bool | None = None  # None: the stop_start_default mode decides
    restart_seconds: float | None = None  # None: the state's transition_delay
    never_back: str = ""  # "", "stuck" or "error"
    backups: list[Backup] = field(default_factory=list)

    @property
    def instance_id(self) -> str:
        return self.info["instance_id"]

    def backup_in_progress(self) -> bool:
        return any(b.in_progress for b in self.backups)

    def admin_view(self, modes: Modes) -> dict[str, Any]:
        view = copy.deepcopy(self.info)
        view.update(
            project_id=self.project_id,
            persistence=self.persistence,
            counters=dict(self.counters),
            stop_start_supported=supports_stop_start(self.info, self.stop_start_supported, modes.stop_start_default),
            restart_seconds=self.restart_seconds,
            never_back=self.never_back or False,
            backups=[b.view() for b in self.backups],
        )
        return view


class State:
    """All projects' instances behind one lock; every public method settles due transitions first."""

    def __init__(
        self,
        transition_delay: float = 0.2,
        backend: Backend | None = None,
        clock: Callable[[], float] = time.monotonic,
        modes: Modes | None = None,
    ):
        self.transition_delay = transition_delay
        self.backend: Backend = backend or NullBackend()
        self.clock = clock
        self.modes = modes or Modes()
        self._lock = threading.RLock()
        self._projects: dict[str, dict[str, InstanceRecord]] = {}
        self._ids_cache: dict[str, tuple[str, ...]] = {}

    # -- projects and instances -------------------------------------------------------------------------------
    def add_project(self, project_id: str) -> None:
        with self._lock:
            self._projects.setdefault(project_id, {})

    def has_project(self, project_id: str) -> bool:
        with self._lock:
            return project_id in self._projects

    def projects(self) -> list[str]:
        with self._lock:
            return list(self._projects)

    def add_instance(
        self,
        project_id: str,
        instance_id: str | None = None,
        *,
        name: str | None = None,
        persistence: str = "none",
        tags: Any = None,
        stop_start_supported: bool | None = None,
        restart_seconds: float | None = None,
        never_back: Any = False,
        backups: Iterable[Mapping[str, Any]] | None = None,
        allow_unknown_status: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        if persistence not in PERSISTENCE:
            raise ValueError(f"persistence must be one of {PERSISTENCE}, not {persistence!r}")
        if stop_start_supported is not None and not isinstance(stop_start_supported, bool):
            raise ValueError(f"stop_start_supported must be true, false or null, not {stop_start_supported!r}")
        if "service_upgrade" in fields and not isinstance(fields["service_upgrade"], bool):
            raise ValueError(f"service_upgrade must be true or false, not {fields['service_upgrade']!r}")
        instance_id = instance_id or str(uuid.uuid4())
        with self._lock:
            if project_id not in self._projects:
                raise ValueError(f"unknown project {project_id!r}; add it with add_project() first")
            if any(instance_id in recs for recs in self._projects.values()):
                raise ValueError(f"instance {instance_id!r} already exists")
            index = sum(len(recs) for recs in self._projects.values())
            info = copy.deepcopy(_DEFAULT_FIELDS)
            info.update(
                instance_id=instance_id,
                name=name or f"dcs-{instance_id[:8]}",
                ip=f"192.168.{index // 250 % 250}.{index % 250 + 2}",
                domain_name=f"redis-{instance_id}.dcs.example.internal",
                user_id="emulator-user",
                user_name="emulator",
            )
            info.update(copy.deepcopy(fields))
            statuses.check_status(info["status"], allow_unknown_status)
            specs.settle_type(info, persistence)
            specs.check_window(info, self.modes.maintain_window_rule)
            info["tags"] = normalise_tags(tags)
            record = InstanceRecord(
                project_id,
                info,
                persistence,
                stop_start_supported=stop_start_supported,
                restart_seconds=seconds_value("restart_seconds", restart_seconds),
                never_back=never_back_value(never_back),
            )
            now, wall = self.clock(), time.time()
            record.backups = [backup_records.from_seed(instance_id, b, now, wall) for b in backups or ()]
            self._projects[project_id][instance_id] = record
        overrides = self.backend.provision(instance_id, persistence, info["status"] not in NOT_PROVISIONED)
        with self._lock:
            record.info.update(overrides)
            return record.admin_view(self.modes)

    def update_instance(self, project_id: str, instance_id: str, **fields: Any) -> dict[str, Any]:
        """Test lever: change API fields (tags, service_upgrade, sub_status, maintain_begin/end, spec_code, ...) or
        the record's own (stop_start_supported, restart_seconds, never_back; persistence without Redis backing).
        ``status`` goes through ``set_status``; ``instance_id`` cannot change."""
        for forbidden in ("instance_id", "status", "backups"):
            if forbidden in fields:
                raise ValueError(f"update_instance cannot change {forbidden} (use set_status / start_backup)")
        with self._lock:
            record = self._require(project_id, instance_id)
            info = copy.deepcopy(record.info)
            persistence = fields.pop("persistence", record.persistence)
            if persistence != record.persistence and not isinstance(self.backend, NullBackend):
                raise ValueError("persistence is fixed at creation for Redis-backed instances")
            if persistence not in PERSISTENCE:
                raise ValueError(f"persistence must be one of {PERSISTENCE}, not {persistence!r}")
            own = {k: fields.pop(k) for k in ("stop_start_supported", "restart_seconds", "never_back") if k in fields}
            if "tags" in fields:
                info["tags"] = normalise_tags(fields.pop("tags"))
            if "spec_code" in fields and "cache_mode" not in fields:
                info.pop("cache_mode", None)  # re-derive it from the new spec
            if "cache_mode" in fields and "spec_code" not in fields:
                info.pop("spec_code", None)
            info.update(copy.deepcopy(fields))
            if "service_upgrade" in fields and not isinstance(info["service_upgrade"], bool):
                raise ValueError(f"service_upgrade must be true or false, not {info['service_upgrade']!r}")
            specs.settle_type(info, persistence)
            if "maintain_begin" in fields or "maintain_end" in fields:
                specs.check_window(info, self.modes.maintain_window_rule)
            supported = own.get("stop_start_supported")
            if supported is not None and not isinstance(supported, bool):
                raise ValueError(f"stop_start_supported must be true, false or null, not {supported!r}")
            restart_seconds = seconds_value("restart_seconds", own.get("restart_seconds", record.restart_seconds))
            never_back = never_back_value(own.get("never_back", record.never_back))
            record.info, record.persistence = info, persistence
            record.stop_start_supported = own.get("stop_start_supported", record.stop_start_supported)
            record.restart_seconds, record.never_back = restart_seconds, never_back
            return record.admin_view(self.modes)

    def remove_all(self) -> None:
        """Forget every instance (projects stay known) and release their backing resources."""
        with self._lock:
            for recs in self._projects.values():
                recs.clear()
        self.backend.close()

    def _record(self, project_id: str, instance_id: str) -> InstanceRecord | None:
        record = self._projects.get(project_id, {}).get(instance_id)
        if record is not None:
            self._settle(record)
        return record

    def _require(self, project_id: str, instance_id: str) -> InstanceRecord:
        record = self._record(project_id, instance_id)
        if record is None:
            raise KeyError(f"no instance {instance_id!r} in project {project_id!r}")
        return record

    def _api_record(self, project_id: str, instance_id: str) -> InstanceRecord:
        """The record an instance-scoped API route reads; 404 DCS.3022 for a missing (or DELETED) instance."""
        record = self._record(project_id, instance_id)
        if record is None or record.info.get("status") == "DELETED":
            raise errors.dcs_error(errors.NO_SUCH_INSTANCE, 404)
        return record

    def _settle(self, record: InstanceRecord, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if record.pending and now >= record.pending[1]:
            record.info["status"] = record.pending[0]
            record.pending = None
        if record.backups:
            wall = time.time()
            for backup in record.backups:
                backup.settle(now, wall)

    def _records(self, project_id: str) -> list[InstanceRecord]:
        records = list(self._projects.get(project_id, {}).values())
        now = self.clock()
        for record in records:
            if record.pending or record.backups:
                self._settle(record, now)
        return records

    def get_instance(self, project_id: str, instance_id: str) -> dict[str, Any]:
        with self._lock:
            return self._require(project_id, instance_id).admin_view(self.modes)

    def instances(self, project_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.admin_view(self.modes) for r in self._records(project_id)]

    def set_status(self, project_id: str, instance_id: str, status: str, allow_unknown: bool = False) -> None:
        """Test lever: force a status (cancels a pending transition); the backing process is not touched.

        Refuses a status DCS does not document (statuses.KNOWN) unless ``allow_unknown``.
        """
        statuses.check_status(status, allow_unknown)
        with self._lock:
            record = self._require(project_id, instance_id)
            record.info["status"] = status
            record.pending = None

    def status_snapshot(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Every project's (instance ids, statuses), settled now; id tuples are shared while unchanged."""
        with self._lock:
            snapshot = {}
            for project_id in self._projects:
                records = self._records(project_id)
                ids = tuple(r.instance_id for r in records)
                if self._ids_cache.get(project_id) == ids:
                    ids = self._ids_cache[project_id]
                else:
                    self._ids_cache[project_id] = ids
                snapshot[project_id] = (ids, tuple(str(r.info.get("status")) for r in records))
            return snapshot

    # -- backups -----------------------------------------------------------------------------------------------
    def start_backup(
        self, project_id: str, instance_id: str, seconds: float | None = 5.0, wait_seconds: float | None = 0.0,
        **fields: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """A manual backup: ``waiting`` for ``wait_seconds``, ``backuping`` for ``seconds``, then ``succeed``."""
        with self._lock:
            record = self._require(project_id, instance_id)
            backup = backup_records.new_backup(instance_id, self.clock(), time.time(), seconds, wait_seconds, **fields)
            record.backups.append(backup)
            return backup.view()

    # -- the API's operations -----------------------------------------------------------------------------------
    def list_page(self, project_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GET /v2/{project_id}/instances: filters, then offset/limit over the filtered list."""
        offset = int_param(query, "offset", 0, minimum=0)
        limit = int_param(query, "limit", 10, minimum=1, maximum=1000)
        with self._lock:
            matched = [r.info for r in self._records(project_id) if _matches(r.info, query)]
            page = copy.deepcopy(matched[offset : offset + limit])
        hidden = SHOW_ONLY_FIELDS + (() if self.modes.list_tags else ("tags",))
        for entry in page:
            for name in hidden:
                entry.pop(name, None)
        return {"instance_num": len(matched), "instances": page}

    def show(self, project_id: str, instance_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._api_record(project_id, instance_id).info)

    def tags(self, project_id: str, instance_id: str) -> dict[str, Any]:
        """GET /v2/{project_id}/instances/{instance_id}/tags (ShowTags): ``{"tags": [{"key", "value"}]}``."""
        with self._lock:
            return {"tags": copy.deepcopy(self._api_record(project_id, instance_id).info.get("tags", []))}

    def backup_page(self, project_id: str, instance_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GET /v2/{project_id}/instances/{instance_id}/backups (ListBackupRecords)."""
        with self._lock:
            record = self._api_record(project_id, instance_id)
            return backup_records.page(record.backups, query)

    def configs(self, project_id: str, instance_id: str) -> dict[str, Any]:
        """GET /v2/{project_id}/instances/{instance_id}/configs (ListConfigurations); appendonly from persistence."""
        with self._lock:
            record = self._api_record(project_id, instance_id)
            return {
                "config_time": record.info.get("created_at"),
                "instance_id": instance_id,
                "redis_config": specs.redis_config(record.info, record.persistence),
                "config_status": "SUCCESS",
                "status": record.info.get("status"),
            }

    def statistics(self, project_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GET /v2/{project_id}/instances/status (ListNumberOfInstancesInDifferentStatus)."""
        with self._lock:
            infos = [r.info for r in self._records(project_id)]
            return statuses.statistics(infos, query.get("include_failure") == "true")

    def change_status(
        self, project_id: str, instance_ids: list[str], action: str, force_failed: Iterable[str] = ()
    ) -> tuple[list[dict[str, str]], dict[str, str], dict[str, str]]:
        """PUT /v2/{project_id}/instances/status: per-entry results and, for the log, why entries failed and the
        DCS code each refusal carries.

        Decided in two passes: first every entry's refusal (nothing changes), so that a whole-request refusal
        (``RequestRefused``) leaves everything as it was; then the accepted entries start their transitions.
        ``force_failed`` ids are answered "failed" without acting (fault injection). Backend actions run after
        the lock is released so that slow process restarts do not stall other requests.
        """
        if action not in ACTIONS:
            detail = f"Got {action!r}; this emulator takes {', '.join(ACTIONS)}."
            raise errors.dcs_error(errors.INVALID_ACTION, detail=detail)
        modes = self.modes
        if modes.max_batch is not None and len(instance_ids) > modes.max_batch:
            raise errors.dcs_error(errors.TOO_MANY_INSTANCES)
        forced = set(force_failed)
        with self._lock:
            decisions: list[tuple[str, InstanceRecord | None, str | None]] = []
            reasons: dict[str, str] = {}
            codes: dict[str, str] = {}
            accepted_ids: set[str] = set()
            first_whole: tuple[str, Refusal] | None = None
            for instance_id in instance_ids:
                record = self._record(project_id, instance_id)
                problem: str | None = None
                if instance_id in forced:
                    problem = "failed by an injected fault"
                elif record is None:
                    problem = "no such instance in this project"
                elif instance_id in accepted_ids:
                    problem = "listed twice in one request"
                else:
                    refused = refusal(
                        record.info,
                        action,
                        stop_start_supported=supports_stop_start(
                            record.info, record.stop_start_supported, modes.stop_start_default
                        ),
                        backup_in_progress=record.backup_in_progress(),
                        modes=modes,
                    )
                    if refused is not None:
                        problem = refused.reason
                        codes[instance_id] = refused.code
                        if first_whole is None and whole_request(refused, modes):
                            first_whole = (instance_id, refused)
                if problem is None:
                    accepted_ids.add(instance_id)
                else:
                    reasons[instance_id] = problem
                decisions.append((instance_id, record, problem))
            if first_whole is not None:
                raise RequestRefused(first_whole[1], first_whole[0], reasons, codes, modes.refusal_names_instance)
            results: list[dict[str, str]] = []
            accepted: list[InstanceRecord] = []
            now, wall = self.clock(), time.time()
            for instance_id, record, problem in decisions:
                if problem is None and record is not None:
                    self._begin(record, action, now, wall)
                    accepted.append(record)
                    results.append({"instance": instance_id, "result": "success"})
                else:
                    results.append({"instance": instance_id, "result": "failed"})
        for record in accepted:
            try:
                self.backend.apply(record.instance_id, action)
            except BackendError as exc:
                with self._lock:
                    record.info["status"] = "ERROR"
                    record.pending = None
                reasons[record.instance_id] = f"accepted, then the backend failed: {exc}"
        return results, reasons, codes

    def _begin(self, record: InstanceRecord, action: str, now: float, wall: float) -> None:
        """Start ``action``'s transition: its transitional status for ``restart_seconds`` (default the state's
        ``transition_delay``), then the settled status, or ERROR / never for an instance that never comes back."""
        record.counters[COUNTER[action]] += 1
        if action in ("restart", "soft_restart"):
            for backup in record.backups:
                if backup.in_progress:  # only reached with restart_during_backup: cancel_backup
                    backup.cancel(wall)
        record.info["status"] = TRANSITIONAL[action]
        duration = record.restart_seconds if record.restart_seconds is not None else self.transition_delay
        if record.never_back == "stuck":
            record.pending = None
        elif record.never_back == "error":
            record.pending = ("ERROR", now + duration)
        else:
            record.pending = (SETTLED[action], now + duration)
        self._settle(record)


def _matches(info: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    status = info.get("status")
    if status == "CREATEFAILED" and query.get("include_failure") != "true" and query.get("status") != status:
        return False
    if status == "DELETED" and query.get("include_delete") != "true" and query.get("status") != status:
        return False
    if query.get("instance_id") and info.get("instance_id") != query["instance_id"]:
        return False
    if query.get("status") and status != query["status"]:
        return False
    if query.get("ip") and info.get("ip") != query["ip"]:
        return False
    name = query.get("name")
    if name:
        exact = query.get("name_equal") == "true"
        if (info.get("name") != name) if exact else (name not in str(info.get("name", ""))):
            return False
    if query.get("tags"):
        have = {t["key"]: t["value"] for t in info.get("tags", [])}
        for key, value in parse_tag_filter(query["tags"]):
            if key not in have or (value is not None and have[key] != value):
                return False
    return True
