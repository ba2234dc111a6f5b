"""Schedule routes: list them, validate a posted document, run one now."""

from __future__ import annotations

import base64
import json
import re
from bisect import bisect_right
from collections import defaultdict
from typing import Any, Optional

from dcs_maintenance import clock, dcs_rules, invocation, rollout_runner
from dcs_maintenance.http_api import (
    CONFLICT,
    INVALID_PARAMETER,
    INVALID_SCHEDULE,
    NO_SCHEDULE,
    NOT_SENT,
    ROLLOUT_BUSY,
    THROTTLED,
    HttpError,
    Request,
    Response,
)
from dcs_maintenance.ledger.base import LedgerError
from dcs_maintenance.loader import Catalog, ValidationContext, check_document
from dcs_maintenance.model import RUNNING, Problem, Schedule
from dcs_maintenance.planner import ACTION_FOR_STATE, iso, select, window_desired
from dcs_maintenance.routes import common
from dcs_maintenance.runner import TickRequest
from dcs_maintenance.schedule_info import describe_schedule, freezes_info, upcoming
from dcs_maintenance.sending import data_loss_marks
from dcs_maintenance.settings import SettingsError, load_settings

NEXT_COUNT = 5
DEFAULT_PAGE = 100
MAX_PAGE = 1000
RUN_OPTIONS = {"dry_run": bool, "override_freeze": bool}
_SOURCE_RE = re.compile(r"[\w.\-/ ]{1,200}")


# -- GET /schedules ---------------------------------------------------------------------------------
def list_schedules(request: Request) -> Response:
    """One page of the schedules, each with its validation result, a plain-language description and its next
    occurrences; every page also has the files and all problems (the catalog's validity).

    Pages (`limit`, default 100, at most 1000; `cursor` from the previous page's `next_cursor`) go through the
    schedules in (name, file) order, so a schedule added or removed between two requests moves no other one
    across a page boundary. The descriptions and occurrences are computed for the page only: a page over
    10,000 schedules costs about what 100 do.
    """
    limit = _limit(request.query.get("limit"))
    after = _cursor(request.query.get("cursor"))
    resolve = _resolve(request.query.get("resolve"))
    settings = common.settings()
    catalog = common.catalog(settings)
    now = clock.now()
    warned: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for warning in catalog.warnings:
        warned[(warning.file, warning.schedule or "")].append(warning.to_dict())
    by_name: dict[tuple[str, str], list[Problem]] = defaultdict(list)
    by_file: dict[str, list[Problem]] = defaultdict(list)
    for problem in catalog.problems:
        by_file[problem.file].append(problem)
        if problem.schedule:
            by_name[(problem.file, problem.schedule)].append(problem)
    keys = _ordered(catalog, tuple(by_name))
    start = bisect_right(keys, after) if after is not None else 0
    page = keys[start:start + limit]
    by_key = catalog.by_name
    entries = []
    for name, file in page:
        schedule = by_key(name)
        if schedule is not None and schedule.source == file:
            entries.append({**_valid_entry(schedule, now), "warnings": warned.get((file, name), [])})
        else:
            entries.append({"name": name, "file": file, "valid": False,
                            "problems": [p.to_dict() for p in by_name[(file, name)]]})
    _attach_progress(entries, [s for s in map(by_key, (name for name, _ in page)) if s is not None], settings, now)
    if resolve:
        _add_targets(entries, catalog, settings, request)
    files = [{"file": f, "valid": not by_file.get(f), "problems": [p.to_dict() for p in by_file.get(f, [])]}
             for f in catalog.files]
    files += [{"file": f, "valid": False, "problems": [p.to_dict() for p in ps]}
              for f, ps in by_file.items() if f not in catalog.files]  # e.g. a missing schedules directory
    more = start + limit < len(keys)
    return Response(200, {"valid": catalog.ok, "at": iso(now),
                          "schedules": entries, "count": len(keys), "limit": limit,
                          "next_cursor": _encode_cursor(page[-1]) if more and page else None,
                          "files": files,
                          "problems": [p.to_dict() for p in catalog.problems],
                          "warnings": [w.to_dict() for w in catalog.warnings],
                          "freezes": freezes_info(catalog.freezes, now)})


def _attach_progress(entries: list[dict[str, Any]], schedules: list[Schedule], settings: Any, now: Any) -> None:
    """`rollout.progress` of the page's rollout schedules (their latest rollout, from the ledger in one read;
    null: none yet). A ledger that cannot be read leaves `progress` null with `progress_error`: the listing still
    answers."""
    wanted = [s for s in schedules if s.rollout is not None and not s.is_window]
    if not wanted:
        return
    error = None
    try:
        found = rollout_runner.progress_of(invocation.ledger_for(settings), wanted, now)
    except (LedgerError, ValueError) as exc:
        found, error = {}, f"the ledger could not be read: {exc}"
    for entry in entries:
        if "rollout" in entry and entry.get("valid"):
            entry["rollout"]["progress"] = found.get(entry["name"])
            if error:
                entry["rollout"]["progress_error"] = error


# The schedules in page order, per catalog (a catalog is rebuilt only when its files change).
_order: list = [None, None, ()]


def clear_memo() -> None:
    """Forget the catalog last paged, as a cold instance (tests: conftest.reset_process_state)."""
    _order[:] = [None, None, ()]


def _ordered(catalog: Catalog, invalid: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Every entry's (name, file), sorted: the valid schedules and the names that only have problems."""
    if _order[0] is catalog and _order[1] == invalid:
        return _order[2]
    keys = sorted({(s.name, s.source) for s in catalog.schedules} | {(name, file) for file, name in invalid})
    _order[:] = [catalog, invalid, keys]
    return keys


def _limit(text: Any) -> int:
    if text is None:
        return DEFAULT_PAGE
    value = text.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 5 and 1 <= int(value) <= MAX_PAGE):
        raise HttpError(400, INVALID_PARAMETER, f"limit: a whole number from 1 to {MAX_PAGE} (got {text[:20]!r})")
    return int(value)


def _encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), ensure_ascii=False).encode()).decode().rstrip("=")


def _cursor(text: Any) -> Optional[tuple[str, str]]:
    """The (name, file) after which the page starts; 400 for anything that is not a next_cursor of ours."""
    if text is None or text == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        key = None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(part, str) for part in key)):
        raise HttpError(400, INVALID_PARAMETER, "cursor: not a next_cursor from a previous page of GET /schedules")
    return key[0], key[1]


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
        entry["note"] = dcs_rules.STOP_START_NOTE
    else:
        entry["action"], entry["cron"] = schedule.action, schedule.cron
        if schedule.rollout is not None:
            entry["rollout"] = schedule.rollout.to_dict()
        if schedule.within_maintenance_window:
            entry["within_maintenance_window"] = True
    return entry


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def _resolve(text: Any) -> bool:
    value = (text or "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise HttpError(400, INVALID_PARAMETER, "resolve: true or false")
    return value in _TRUE


def _add_targets(entries: list[dict[str, Any]], catalog: Catalog, settings: Any, request: Request) -> None:
    """`?resolve=true`: each enabled schedule of the page gets `targets` (instance id, name, status and, for a
    restart or soft restart that empties the instance, `data_loss`) and `left_alone` (excluded, protected,
    unknown ids, with the reason), or `targets_error`. Each project is listed once (plus its tag filters where
    list entries carry no tags); ListConfigurations is read only for restart targets whose list entry does not
    tell (dcs_rules.data_loss), within the request's time budget."""
    chosen = [(entry, catalog.by_name(entry["name"])) for entry in entries if entry.get("valid") and
              entry.get("enabled")]
    chosen = [(entry, schedule) for entry, schedule in chosen if schedule is not None]
    if not chosen:
        return
    rt = common.runtime(settings, request, read_only=True)
    scope = {schedule.name: (schedule.project_id or settings.project_id or "", schedule.region or settings.region)
             for _, schedule in chosen}
    listed: dict[tuple[str, Optional[str]], Any] = {}
    for key in sorted(set(scope.values()), key=lambda k: (k[0], k[1] or "")):
        needs = dcs_rules.tag_filters([s for _, s in chosen if scope[s.name] == key], settings.protect_tag)
        try:
            listed[key] = rt.gateway(*key).list_instances(needs)
        except Exception as exc:  # GatewayError, no credentials or region: shown per schedule
            listed[key] = exc
    restart_targets: dict[tuple[str, Optional[str]], dict[str, Any]] = defaultdict(dict)
    picked = {}
    for entry, schedule in chosen:
        got = listed[scope[schedule.name]]
        if isinstance(got, BaseException):
            entry["targets_error"] = f"could not list the instances of project {scope[schedule.name][0]}: {got}"
            continue
        selection = select(schedule, got, settings.protect_tag)
        picked[schedule.name] = selection
        if schedule.action in dcs_rules.DATA_LOSS_ACTIONS:
            restart_targets[scope[schedule.name]].update((i.instance_id, i) for i in selection.targets)
    marks: dict[str, Optional[str]] = {}
    for key, instances in restart_targets.items():
        marks.update(data_loss_marks(rt.gateway(*key), list(instances.values()), rt))
    for entry, schedule in chosen:
        selection = picked.get(schedule.name)
        if selection is None:
            continue
        restarts = schedule.action in dcs_rules.DATA_LOSS_ACTIONS
        entry["targets"] = [{"instance_id": i.instance_id, "name": i.name, "status": i.status,
                             **({"data_loss": marks[i.instance_id]} if restarts and marks.get(i.instance_id)
                                else {})} for i in selection.targets]
        entry["left_alone"] = [{"instance_id": iid, "name": name, "reason": why}
                               for iid, name, why in selection.skipped]
        if selection.error:
            entry["targets_error"] = selection.error


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
    schedules, problems, warnings = check_document(request.body, source, fmt, _context())
    return Response(200, {"valid": not problems, "schedules": [s.name for s in schedules],
                          "problems": [p.to_dict() for p in problems],
                          "warnings": [w.to_dict() for w in warnings]})


def _context() -> ValidationContext:
    """The function's region and tick period for the checks that depend on them; validation still answers
    (without those checks) when the settings are invalid."""
    try:
        return load_settings().validation_context()
    except SettingsError:
        return ValidationContext()


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
    now, dry_run = clock.now(), bool(options.get("dry_run", False))
    if not dry_run:  # a dry run changes nothing: a freeze does not stop it
        common.check_freeze(catalog.freezes, _manual_action(schedule, now), now,
                            bool(options.get("override_freeze", False)), route="run", schedule=name)
    alone = Catalog((schedule,), (), catalog.files, freezes=catalog.freezes)
    tick = TickRequest(now, "http", dry_run, frozenset({name}), manual=True)
    summary = common.tick(alone, tick, settings, request, history_trigger="manual")
    busy = [s["busy"] for s in summary["schedules"] if s.get("busy")]
    if busy:
        raise HttpError(409, ROLLOUT_BUSY, f"schedule {name!r}: {busy[0]}: no new rollout was started; the running "
                                           "one goes on at the next ticks", summary=summary)
    not_sent = [e for s in summary["schedules"] for e in s["instances"] if e.get("not_sent")]
    if not_sent:
        raise _not_sent(summary, not_sent)
    return Response(200, summary)


def _manual_action(schedule: Schedule, now: Any) -> str:
    """The action a manual run would take: the schedule's, or the one a window's current state calls for (the
    runner re-applies running when a window has no state yet)."""
    if schedule.window is None:
        return schedule.action or ""
    desired = window_desired(schedule, now)
    return ACTION_FOR_STATE[desired.state if desired is not None else RUNNING]


def _not_sent(summary: dict, entries: list[dict]) -> HttpError:
    """A manual run that could not send (throttled, a refused connection, no time left): no tick will retry it,
    so the caller must; the claims were given back, so the retry acts. 429 when DCS throttled it, else 503."""
    throttled = all("429" in e["reason"] for e in entries)
    waits = [e["retry_after"] for e in entries if e.get("retry_after")]
    headers = {"Retry-After": str(int(max(waits)))} if waits else {}
    names = ", ".join(e.get("name") or e["instance_id"] for e in entries[:10])
    message = (f"{len(entries)} instance(s) not sent ({names}): nothing was done for them; retry the request"
               + (f" after {headers['Retry-After']}s" if headers else "") + ". The summary says what was done.")
    return HttpError(429 if throttled else 503, THROTTLED if throttled else NOT_SENT, message, headers,
                     summary=summary)
