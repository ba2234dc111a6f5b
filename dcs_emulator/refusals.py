"""Why DCS refuses an action on one instance, and with which documented code: pure decisions, no I/O.

A refusal's ``kind`` says which mode decides how it is answered: ``unsupported`` (stop/start on an instance that
cannot be stopped or started: ``stop_start_refusal``), ``state`` (a status, or a running backup, that DCS does not
accept for the action: ``batch_refusal``), ``engine`` (flush on a Memcached or pre-4.0 Redis: always per entry, DCS
documents no whole-request code for it). Sources: README.md, "Behaviours and their documents".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import errors
from .modes import Modes

RESTARTS = ("restart", "soft_restart")

# Status -> the code of the "busy" refusal the error code table documents for it (DCS.4026 where none is specific).
BUSY_CODES = {
    "RESTARTING": errors.RESTARTING,
    "CREATING": errors.CREATING,
    "EXTENDING": errors.EXTENDING,
    "UPGRADING": errors.UPGRADING,
    "ROLLBACKING": errors.ROLLING_BACK,
    "RESTORING": errors.RESTORING,
    "FREEZING": errors.FREEZING,
}


@dataclass(frozen=True)
class Refusal:
    kind: str  # "unsupported" | "state" | "engine"
    code: str  # the documented code a whole-request refusal carries
    reason: str  # plain English, for the request log and per-entry answers


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version or ""))


def supports_stop_start(info: Mapping[str, Any], explicit: bool | None, default: str) -> bool:
    """The instance's own ``stop_start_supported`` where set, else the ``stop_start_default`` mode's answer.

    User guide, "Starting an Instance": only old DCS Redis instances can be started or stopped; new instances cannot.
    ``redis3`` reads "old" as a Redis engine older than 4.0 (Redis 3.0 is the documented "discontinued" version).
    """
    if explicit is not None:
        return explicit
    if default == "redis3":
        return str(info.get("engine", "")).lower() == "redis" and version_tuple(str(info.get("engine_version"))) < (4,)
    return default == "all"


def engine_problem(info: Mapping[str, Any], action: str) -> str | None:
    """Why the instance's engine cannot do ``action`` at all: flush needs Redis 4.0 or later (API reference)."""
    if action != "flush":
        return None
    if info.get("engine") != "Redis":
        return f"flush needs engine Redis, engine is {info.get('engine')}"
    if version_tuple(str(info.get("engine_version", ""))) < (4,):
        return f"flush needs Redis 4.0 or later, version is {info.get('engine_version')}"
    return None


def status_problem(info: Mapping[str, Any], action: str) -> str | None:
    """Why ``action`` cannot run in the instance's status now (user guide: restart needs Running or Faulty)."""
    status = info.get("status")
    if action in RESTARTS:
        return None if status in ("RUNNING", "ERROR") else f"{action} needs RUNNING or ERROR, status is {status}"
    if action in ("flush", "stop"):
        return None if status == "RUNNING" else f"{action} needs RUNNING, status is {status}"
    if action == "start":
        return None if status == "CLOSED" else f"start needs CLOSED, status is {status}"
    return f"unknown action {action}"


def state_code(status: Any, action: str, modes: Modes) -> str:
    """The documented code for refusing ``action`` on an instance in ``status``.

    A specific "busy" code where the table has one (DCS.4111 restarting, 4113 extending, ...; DCS.4975 for
    CREATING/RESTARTING with ``restarting_code`` DCS.4975); DCS.4049 "not running" where the action needs a running
    instance and the status is a settled one; DCS.4026 "not allowed in the current state" otherwise.
    """
    if modes.restarting_code == errors.CREATING_OR_RESTARTING and status in ("CREATING", "RESTARTING"):
        return errors.CREATING_OR_RESTARTING
    if status in BUSY_CODES:
        return BUSY_CODES[str(status)]
    if action != "start" and status in ("ERROR", "CLOSED", "FROZEN", "CREATEFAILED", "DELETED"):
        return errors.NOT_RUNNING
    return errors.NOT_ALLOWED_IN_STATE


def refusal(
    info: Mapping[str, Any], action: str, *, stop_start_supported: bool, backup_in_progress: bool, modes: Modes
) -> Refusal | None:
    """Why DCS refuses ``action`` on this instance, or None when it accepts it.

    Order: stop/start support, then status and engine, then a running backup. A restart during a backup is accepted
    with ``restart_during_backup: cancel_backup`` (the caller then cancels the backup).
    """
    if action in ("stop", "start") and not stop_start_supported:
        return Refusal(
            "unsupported",
            errors.STOP_START_UNSUPPORTED,
            f"{action} is not supported by this instance: only old DCS Redis instances can be started or stopped",
        )
    problem = engine_problem(info, action)
    if problem is not None:
        return Refusal("engine", errors.INSTANCE_TYPE_NOT_SUPPORTED, problem)
    problem = status_problem(info, action)
    if problem is not None:
        return Refusal("state", state_code(info.get("status"), action, modes), problem)
    if backup_in_progress and not (action in RESTARTS and modes.restart_during_backup == "cancel_backup"):
        return Refusal("state", errors.BACKING_UP, f"{action} refused: a backup of this instance is in progress")
    return None


def whole_request(refused: Refusal, modes: Modes) -> bool:
    """Whether this refusal is answered for the whole request (400, nothing done) rather than per entry."""
    if refused.kind == "unsupported":
        return modes.stop_start_refusal == "request"
    if refused.kind == "state":
        return modes.batch_refusal == "request"
    return False
