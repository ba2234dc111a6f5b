"""Unsigned ``/_emulator/`` routes, so a CLI or a demo in another process can seed, inspect and break the emulator.

Admin requests are not written to the request log: the log is what the DCS saw.
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import parse_qsl

from .faults import Fault
from .server import Reply, Request

PREFIX = "/_emulator"


class Controls(Protocol):
    """What the admin routes drive: the Emulator's public methods (typed here, so admin does not import it)."""

    url: str
    transition_delay: float
    requests: list[dict[str, Any]]
    smn_messages: list[dict[str, Any]]
    modes: dict[str, Any]
    status_sample_limit: int
    metric_data: list[dict[str, Any]]

    def projects(self) -> list[str]: ...
    def clear_log(self) -> None: ...
    def calls(self, action: Any = None) -> list[dict[str, Any]]: ...
    def reset(self) -> None: ...
    def instances(self, project_id: str) -> list[dict[str, Any]]: ...
    def add_instance(self, project_id: str, **fields: Any) -> dict[str, Any]: ...
    def set_status(self, project_id: str, instance_id: str, status: str, allow_unknown: bool = False) -> None: ...
    def update_instance(self, project_id: str, instance_id: str, **fields: Any) -> dict[str, Any]: ...
    def set_modes(self, **changes: Any) -> dict[str, Any]: ...
    def start_backup(
        self, project_id: str, instance_id: str, seconds: float | None = 5.0, wait_seconds: float | None = 0.0,
        **fields: Any,
    ) -> dict[str, Any]: ...  # fmt: skip
    def backups(self, project_id: str, instance_id: str) -> list[dict[str, Any]]: ...
    def status_samples(self, project_id: str | None = None) -> list[dict[str, Any]]: ...
    def clear_status_samples(self) -> None: ...
    def get_instance(self, project_id: str, instance_id: str) -> dict[str, Any]: ...
    def faults(self) -> list[Fault]: ...
    def inject(self, fault: Fault) -> None: ...
    def clear_faults(self) -> None: ...


def handle_admin(emulator: Controls, req: Request) -> Reply:
    path = req.raw_path[len(PREFIX) :].rstrip("/") or "/"
    query = dict(parse_qsl(req.raw_query, keep_blank_values=True))
    try:
        body = json.loads(req.body) if req.body else {}
    except ValueError:
        return _error(400, "the body is not JSON")
    try:
        return _route(emulator, req.method, path, query, body)
    except (KeyError, ValueError, TypeError) as exc:
        return _error(400, str(exc))


def _route(emu: Controls, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
    if (method, path) == ("GET", "/"):
        return Reply.json(
            200,
            {"url": emu.url, "projects": emu.projects(), "transition_delay": emu.transition_delay, "modes": emu.modes},
        )
    if (method, path) == ("GET", "/modes"):
        return Reply.json(200, emu.modes)
    if (method, path) == ("POST", "/modes"):
        return Reply.json(200, emu.set_modes(**_object(body)))
    if (method, path) == ("POST", "/instance"):
        fields = dict(_object(body))
        return Reply.json(200, emu.update_instance(fields.pop("project_id"), fields.pop("instance_id"), **fields))
    if (method, path) == ("GET", "/backups"):
        return Reply.json(200, {"backups": emu.backups(query["project_id"], query["instance_id"])})
    if (method, path) == ("POST", "/backups"):
        fields = dict(_object(body))
        backup = emu.start_backup(fields.pop("project_id"), fields.pop("instance_id"), **fields)
        return Reply.json(201, backup)
    if (method, path) == ("GET", "/samples"):
        return Reply.json(
            200, {"limit": emu.status_sample_limit, "samples": emu.status_samples(query.get("project_id") or None)}
        )
    if (method, path) == ("DELETE", "/samples"):
        emu.clear_status_samples()
        return Reply.json(200, {"ok": True})
    if (method, path) == ("GET", "/requests"):
        return Reply.json(200, {"requests": emu.requests})
    if (method, path) == ("DELETE", "/requests"):
        emu.clear_log()
        return Reply.json(200, {"ok": True})
    if (method, path) == ("GET", "/calls"):
        return Reply.json(200, {"calls": emu.calls(query.get("action"))})
    if (method, path) == ("POST", "/reset"):
        emu.reset()
        return Reply.json(200, {"ok": True})
    if (method, path) == ("GET", "/instances"):
        projects = [query["project_id"]] if query.get("project_id") else emu.projects()
        return Reply.json(200, {"instances": [i for p in projects for i in emu.instances(p)]})
    if (method, path) == ("POST", "/instances"):
        fields = dict(_object(body))
        project_id = fields.pop("project_id")
        return Reply.json(201, emu.add_instance(project_id, **fields))
    if (method, path) == ("POST", "/status"):
        fields = _object(body)
        emu.set_status(
            fields["project_id"], fields["instance_id"], fields["status"], bool(fields.get("allow_unknown", False))
        )
        return Reply.json(200, emu.get_instance(fields["project_id"], fields["instance_id"]))
    if (method, path) == ("GET", "/faults"):
        return Reply.json(200, {"faults": [f.to_dict() for f in emu.faults()]})
    if (method, path) == ("POST", "/faults"):
        fault = Fault.from_dict(dict(_object(body)))
        emu.inject(fault)
        return Reply.json(201, fault.to_dict())
    if (method, path) == ("DELETE", "/faults"):
        emu.clear_faults()
        return Reply.json(200, {"ok": True})
    if (method, path) == ("GET", "/smn"):
        return Reply.json(200, {"messages": emu.smn_messages})
    if (method, path) == ("GET", "/metrics"):
        return Reply.json(200, {"metric_data": emu.metric_data})
    return _error(404, f"no admin route {method} {PREFIX}{path}")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _error(status: int, msg: str) -> Reply:
    """Admin routes are not DCS: their errors carry the emulator's own ``EMU.<status>`` codes."""
    return Reply.json(status, {"error_code": f"EMU.{status}", "error_msg": msg, "error_ext_msg": None})
