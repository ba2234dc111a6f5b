"""Instances and their status machine: eligibility per action, transitional states settled lazily on read.

A transition is a (final status, due time) pair on the record rather than a timer: whoever reads the instance
after the due time sees the final status. This keeps the emulator deterministic and free of background threads.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .backend import Backend, BackendError, NullBackend

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

_DEFAULT_FIELDS: dict[str, Any] = {
    "engine": "Redis",
    "engine_version": "5.0",
    "status": "RUNNING",
    "spec_code": "redis.ha.xu1.large.r2.2",
    "capacity": 2,
    "max_memory": 1536,
    "used_memory": 2,
    "port": 6379,
    "maintain_begin": "18:00:00",
    "maintain_end": "19:00:00",
    "enterprise_project_id": "0",
    "charging_mode": 0,
    "description": "",
    "no_password_access": "true",
    "enable_ssl": False,
    "enable_publicip": False,
    "cpu_type": "x86_64",
    "az_codes": ["az1"],
    "created_at": "2024-01-01T00:00:00.000Z",
    "sub_status": "normal",
}


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version or ""))


def eligibility_problem(info: Mapping[str, Any], action: str) -> str | None:
    """Why ``action`` cannot run on an instance now, or None if it can (the user guide's rules)."""
    status = info.get("status")
    if action in ("restart", "soft_restart"):
        return None if status in ("RUNNING", "ERROR") else f"{action} needs RUNNING or ERROR, status is {status}"
    if action == "flush":
        if info.get("engine") != "Redis":
            return f"flush needs engine Redis, engine is {info.get('engine')}"
        if version_tuple(str(info.get("engine_version", ""))) < (4,):
            return f"flush needs Redis 4.0 or later, version is {info.get('engine_version')}"
        return None if status == "RUNNING" else f"flush needs RUNNING, status is {status}"
    if action == "stop":
        return None if status == "RUNNING" else f"stop needs RUNNING, status is {status}"
    if action == "start":
        return None if status == "CLOSED" else f"start needs CLOSED, status is {status}"
    return f"unknown action {action}"


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


@dataclass
class InstanceRecord:
    project_id: str
    info: dict[str, Any]
    persistence: str = "none"
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTER.values(), 0))
    pending: tuple[str, float] | None = None  # (settled status, due time on the state's clock)

    @property
    def instance_id(self) -> str:
        return self.info["instance_id"]

    def admin_view(self) -> dict[str, Any]:
        view = copy.deepcopy(self.info)
        view.update(project_id=self.project_id, persistence=self.persistence, counters=dict(self.counters))
        return view


class State:
    """All projects' instances behind one lock; every public method settles due transitions first."""

    def __init__(
        self,
        transition_delay: float = 0.2,
        backend: Backend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.transition_delay = transition_delay
        self.backend: Backend = backend or NullBackend()
        self.clock = clock
        self._lock = threading.RLock()
        self._projects: dict[str, dict[str, InstanceRecord]] = {}

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
        **fields: Any,
    ) -> dict[str, Any]:
        if persistence not in PERSISTENCE:
            raise ValueError(f"persistence must be one of {PERSISTENCE}, not {persistence!r}")
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
            info["tags"] = normalise_tags(tags)
            record = InstanceRecord(project_id, info, persistence)
            self._projects[project_id][instance_id] = record
        overrides = self.backend.provision(instance_id, persistence, info["status"] not in NOT_PROVISIONED)
        with self._lock:
            record.info.update(overrides)
            return record.admin_view()

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

    def _settle(self, record: InstanceRecord) -> None:
        if record.pending and self.clock() >= record.pending[1]:
            record.info["status"] = record.pending[0]
            record.pending = None

    def get_instance(self, project_id: str, instance_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._record(project_id, instance_id)
            if record is None:
                raise KeyError(f"no instance {instance_id!r} in project {project_id!r}")
            return record.admin_view()

    def instances(self, project_id: str) -> list[dict[str, Any]]:
        with self._lock:
            records = list(self._projects.get(project_id, {}).values())
            for record in records:
                self._settle(record)
            return [r.admin_view() for r in records]

    def set_status(self, project_id: str, instance_id: str, status: str) -> None:
        """Test lever: force a status (cancels a pending transition); the backing process is not touched."""
        with self._lock:
            record = self._record(project_id, instance_id)
            if record is None:
                raise KeyError(f"no instance {instance_id!r} in project {project_id!r}")
            record.info["status"] = status
            record.pending = None

    # -- the API's operations -----------------------------------------------------------------------------------
    def list_page(self, project_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GET /v2/{project_id}/instances: filters, then offset/limit over the filtered list."""
        offset = _int_param(query, "offset", 0, minimum=0)
        limit = _int_param(query, "limit", 10, minimum=1, maximum=1000)
        with self._lock:
            records = list(self._projects.get(project_id, {}).values())
            for record in records:
                self._settle(record)
            matched = [r.info for r in records if _matches(r.info, query)]
            page = copy.deepcopy(matched[offset : offset + limit])
        return {"instance_num": len(matched), "instances": page}

    def show(self, project_id: str, instance_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._record(project_id, instance_id)
            if record is None or record.info.get("status") == "DELETED":
                raise errors.ApiError(404, errors.NO_SUCH_INSTANCE, f"The instance {instance_id} does not exist.")
            return copy.deepcopy(record.info)

    def change_status(
        self, project_id: str, instance_ids: Iterable[str], action: str, force_failed: Iterable[str] = ()
    ) -> tuple[list[dict[str, str]], dict[str, str]]:
        """PUT /v2/{project_id}/instances/status: per-entry results and, for the log, why entries failed.

        ``force_failed`` ids are answered "failed" without acting (fault injection). Backend actions run after
        the lock is released so that slow process restarts do not stall other requests.
        """
        if action not in ACTIONS:
            raise errors.invalid(f"Invalid action {action!r}; expected one of {', '.join(ACTIONS)}.")
        forced = set(force_failed)
        results: list[dict[str, str]] = []
        reasons: dict[str, str] = {}
        accepted: list[InstanceRecord] = []
        accepted_ids: set[str] = set()
        with self._lock:
            now = self.clock()
            for instance_id in instance_ids:
                record = self._record(project_id, instance_id)
                if instance_id in forced:
                    problem: str | None = "failed by an injected fault"
                elif record is None:
                    problem = "no such instance in this project"
                elif instance_id in accepted_ids:
                    problem = "listed twice in one request"
                else:
                    problem = eligibility_problem(record.info, action)
                if problem is None and record is not None:
                    record.counters[COUNTER[action]] += 1
                    record.info["status"] = TRANSITIONAL[action]
                    record.pending = (SETTLED[action], now + self.transition_delay)
                    self._settle(record)
                    accepted.append(record)
                    accepted_ids.add(instance_id)
                    results.append({"instance": instance_id, "result": "success"})
                else:
                    reasons[instance_id] = problem or "failed"
                    results.append({"instance": instance_id, "result": "failed"})
        for record in accepted:
            try:
                self.backend.apply(record.instance_id, action)
            except BackendError as exc:
                with self._lock:
                    record.info["status"] = "ERROR"
                    record.pending = None
                reasons[record.instance_id] = f"accepted, then the backend failed: {exc}"
        return results, reasons


def _int_param(query: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid(f"Invalid {name} {raw!r}: an integer is expected.") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise errors.invalid(f"Invalid {name} {value}: it must be {bounds}.")
    return value


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
