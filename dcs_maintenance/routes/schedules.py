"""Schedule routes: list them, validate a posted document, run one now."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from dcs_maintenance import clock
from dcs_maintenance.http_api import (
    CONFLICT,
    INVALID_PARAMETER,
    INVALID_SCHEDULE,
    NO_SCHEDULE,
    HttpError,
    Request,
    Response,
)
from dcs_maintenance.loader import Catalog, parse_document
from dcs_maintenance.model import Problem, Schedule
from dcs_maintenance.planner import iso
from dcs_maintenance.routes import common
from dcs_maintenance.runner import TickRequest, run_tick
from dcs_maintenance.schedule_info import describe_schedule, upcoming

NEXT_COUNT = 5
RUN_OPTIONS = {"dry_run": bool}
_SOURCE_RE = re.compile(r"[\w.\-/ ]{1,200}")


# -- GET /schedules ---------------------------------------------------------------------------------
def list_schedules(request: Request) -> Response:
    """Every schedule with its validation result, a plain-language description and its next occurrences."""
    settings = common.settings()
    catalog = common.catalog(settings)
    now = clock.now()
    entries = [_valid_entry(s, now) for s in catalog.schedules]
    by_name: dict[tuple[str, str], list[Problem]] = defaultdict(list)
    by_file: dict[str, list[Problem]] = defaultdict(list)
    for problem in catalog.problems:
        by_file[problem.file].append(problem)
        if problem.schedule:
            by_name[(problem.file, problem.schedule)].append(problem)
    entries += [{"name": name, "file": file, "valid": False, "problems": [p.to_dict() for p in problems]}
                for (file, name), problems in by_name.items()]
    files = [{"file": f, "valid": not by_file.get(f), "problems": [p.to_dict() for p in by_file.get(f, [])]}
             for f in catalog.files]
    files += [{"file": f, "valid": False, "problems": [p.to_dict() for p in ps]}
              for f, ps in by_file.items() if f not in catalog.files]  # e.g. a missing schedules directory
    return Response(200, {"valid": catalog.ok, "at": iso(now),
                          "schedules": entries, "files": files,
                          "problems": [p.to_dict() for p in catalog.problems]})


def _valid_entry(schedule: Schedule, now: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": schedule.name,
        "file": schedule.source,
        "valid": True,
        "enabled": schedule.enabled,
        "kind": "window" if schedule.is_window else "one_shot",
        "description": schedule.description,
        "explanation": describe_schedule(schedule),
        "timezone": schedule.timezone,
        "dry_run": schedule.dry_run,
        "next": upcoming(schedule, now, NEXT_COUNT),
        "problems": [],
    }
    if schedule.window is not None:
        entry["window"] = {"stop": schedule.window.stop, "start": schedule.window.start}
        entry["enforce"] = schedule.enforce
    else:
        entry["action"], entry["cron"] = schedule.action, schedule.cron
    return entry


# -- POST /schedules/validate -----------------------------------------------------------------------
def validate(request: Request) -> Response:
    """A posted schedule document (YAML or JSON): always 200 with the result; the body decoded already.

    The format is `?format=yaml|json`, else JSON for a JSON Content-Type, else YAML (which reads JSON too).
    `?file=<name>` names the document in the problems (default `request-body`).
    """
    fmt = request.query.get("format")
    if fmt is not None and fmt.lower() not in ("yaml", "yml", "json"):
        raise HttpError(400, INVALID_PARAMETER, f"format: expected yaml or json, got {fmt[:40]!r}")
    if fmt is None:
        fmt = "json" if "json" in request.header("content-type").lower() else "yaml"
    source = request.query.get("file", "request-body")
    if not _SOURCE_RE.fullmatch(source):
        raise HttpError(400, INVALID_PARAMETER, "file: 1-200 letters, digits, '.', '-', '_', '/' or spaces")
    schedules, problems = parse_document(request.body, source, fmt)
    return Response(200, {"valid": not problems, "schedules": [s.name for s in schedules],
                          "problems": [p.to_dict() for p in problems]})


# -- POST /schedules/{name}/run ----------------------------------------------------------------------
def run(request: Request) -> Response:
    """Run one schedule now: its action (or a window's current state) on its instances, once per minute.

    The ledger, eligibility, protection and dry_run apply as on a tick. The schedule runs alone: the
    other schedules' problems do not make this run's summary fail.
    """
    options = request.json_object(RUN_OPTIONS, required=False)
    name = request.params["name"]
    settings = common.settings()
    catalog = common.catalog(settings)
    schedule = catalog.by_name(name)
    if schedule is None:
        problems = catalog.problems_for(name)
        if problems:
            raise HttpError(422, INVALID_SCHEDULE, f"schedule {name!r} is invalid: nothing was run",
                            problems=[p.to_dict() for p in problems])
        raise HttpError(404, NO_SCHEDULE, f"no schedule named {name[:80]!r}")
    if not schedule.enabled:
        raise HttpError(409, CONFLICT, f"schedule {name!r} is disabled (enabled: false): nothing was run")
    alone = Catalog((schedule,), (), catalog.files)
    tick = TickRequest(clock.now(), "http", bool(options.get("dry_run", False)), frozenset({name}), manual=True)
    return Response(200, _manual_wording(run_tick(alone, tick, common.runtime(settings, request))))


NOT_SENT = ("not sent: not enough time left to call DCS before the API Gateway's backend timeout (APIG_TIMEOUT) "
            "or the function's; nothing was claimed: run it again")


def _manual_wording(summary: dict[str, Any]) -> dict[str, Any]:
    """A manual run has no next tick: what the runner deferred for lack of time (never claimed) was not sent,
    and running it again sends it."""
    for sched in summary.get("schedules", []):
        for entry in sched.get("instances", []):
            if str(entry.get("reason", "")).startswith("deferred:"):
                entry["reason"] = NOT_SENT
        if isinstance(sched.get("reason"), str):
            sched["reason"] = sched["reason"].replace("the next tick picks it up", "run it again")
    return summary
