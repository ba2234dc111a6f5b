"""What the schema cannot say about a schedule or a freeze, and one that passed every check -> its model value.

On values of the right type (wrong types are the schema's to report): cron expressions
(`cronrules.check_cron`), IANA zones, real dates, date order, flush needs `allow_flush: true`, `enforce`,
`rollout` and `within_maintenance_window` only on one-shot schedules or windows as they apply, the
starting deadline's and the rollout's ranges. A valid item becomes a `Schedule` with the file's
`defaults` filled in (a schedule's own value wins). Freezes: real local date-times, a zone, `until`
after `from` on the wall clock and as instants (a freeze inside a spring-forward gap covers no time);
a valid one becomes a `Freeze` with its instants resolved (`freezes.local_instant`).

What depends on the function the schedules run in (`ValidationContext`: its region and tick period) is
checked by `context_problems` (a `region` other than the function's needs its own `project_id`: project
ids are per region) and `context_warnings` (a one-shot `starting_deadline` shorter than the tick period).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Optional, Union

from dcs_maintenance.documents import short
from dcs_maintenance.durations import format_duration, parse_duration
from dcs_maintenance.model import (
    ALL_ACTIONS,
    DEFAULT_WAVE_TIMEOUT,
    Amount,
    Freeze,
    RolloutSpec,
    Schedule,
    Selector,
    Window,
)

MAX_STARTING_DEADLINE = timedelta(hours=24)  # the ledger keeps claims 8 days; occurrences must be acted on well within
DEFAULT_STARTING_DEADLINE = timedelta(minutes=10)
MIN_WAVE_TIMEOUT = timedelta(minutes=1)  # the health gate trusts RUNNING only 30 s after a wave (rollout.GATE_SETTLE)
MAX_WAVE_TIMEOUT = timedelta(hours=24)
MAX_ROLLOUT_TIMEOUT = timedelta(hours=168)  # claims are kept 8 days

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DURATION_RE = re.compile(r"[0-9]+[smh]")
_PERCENT_RE = re.compile(r"[0-9]{1,3}%")
_LOCAL_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")

PathPart = Union[str, int]


@dataclass(frozen=True)
class ValidationContext:
    """What validation knows of the function that runs the schedules; None where it is not known (a local
    `validate` without DCS_REGION, say). Settings.validation_context() gives the function's own."""

    region: Optional[str] = None  # DCS_REGION
    tick_period: Optional[timedelta] = None  # TICK_PERIOD


NO_CONTEXT = ValidationContext()


def check_values(item: dict, base: tuple[PathPart, ...]) -> Iterable[tuple[tuple[PathPart, ...], str]]:
    """What the schema cannot check, on values of the right type (wrong types are the schema's to report)."""
    cron = item.get("cron")
    if isinstance(cron, str):
        message = cron_problem(cron)
        if message:
            yield base + ("cron",), message
    window = item.get("window")
    if isinstance(window, dict):
        for key in ("stop", "start"):
            expr = window.get(key)
            message = cron_problem(expr) if isinstance(expr, str) else None
            if message:
                yield base + ("window", key), message
        stop, start = window.get("stop"), window.get("start")
        if isinstance(stop, str) and isinstance(start, str) and stop.split() == start.split():
            yield base + ("window", "start"), "start and stop are the same expression: the window would never be open"
    zone = item.get("timezone")
    if isinstance(zone, str):
        message = _zone_problem(zone)
        if message:
            yield base + ("timezone",), message
    if item.get("action") == "flush" and item.get("allow_flush") is not True:
        yield base + ("allow_flush",), ("action 'flush' deletes all data in the selected instances: "
                                        "set allow_flush: true to confirm")
    if item.get("enforce") is True and "window" not in item:
        yield base + ("enforce",), "enforce applies only to window schedules (this one has no window)"
    skip = item.get("skip_dates")
    if isinstance(skip, list):
        for k, value in enumerate(skip):
            message = _date_problem(value)
            if message:
                yield base + ("skip_dates", k), message
    first, last = item.get("active_from"), item.get("active_until")
    for key, value in (("active_from", first), ("active_until", last)):
        message = _date_problem(value)
        if message:
            yield base + (key,), message
    if _date_problem(first) is None and _date_problem(last) is None and isinstance(first, str) \
            and isinstance(last, str) and first > last:
        yield base + ("active_until",), f"active_until ({last}) is before active_from ({first})"
    deadline = item.get("starting_deadline")
    if isinstance(deadline, str) and _DURATION_RE.fullmatch(deadline):
        message = _deadline_problem(deadline)
        if message:
            yield base + ("starting_deadline",), message
    if "window" in item and "rollout" in item:
        yield base + ("rollout",), ("rollout applies only to one-shot schedules (restart, soft_restart, flush): a "
                                    "window's stops and starts are not sent in waves")
    elif isinstance(item.get("rollout"), dict):
        yield from _rollout_problems(item["rollout"], base + ("rollout",))
    if "window" in item and item.get("within_maintenance_window") is True:
        yield base + ("within_maintenance_window",), (
            "within_maintenance_window applies only to one-shot schedules: a window's stop and start times "
            "already say when it acts, and its starts must always go through")


def _rollout_problems(rollout: dict, base: tuple[PathPart, ...]) -> Iterable[tuple[tuple[PathPart, ...], str]]:
    for key, low in (("batch", 1), ("max_errors", 0)):
        value = rollout.get(key)
        if isinstance(value, str) and _PERCENT_RE.fullmatch(value) and not low <= int(value[:-1]) <= 100:
            yield base + (key,), f"a percentage must be from {low}% to 100% (got {value})"
    for key, low, high in (("wave_timeout", MIN_WAVE_TIMEOUT, MAX_WAVE_TIMEOUT),
                           ("timeout", timedelta(seconds=1), MAX_ROLLOUT_TIMEOUT)):
        value = rollout.get(key)
        if isinstance(value, str) and _DURATION_RE.fullmatch(value):
            message = _range_problem(value, low, high)
            if message:
                yield base + (key,), message


def _range_problem(text: str, low: timedelta, high: timedelta) -> Optional[str]:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        return str(exc)
    if not low <= value <= high:
        return f"must be from {format_duration(low)} to {format_duration(high)} (got {text})"
    return None


def check_freeze(item: dict, base: tuple[PathPart, ...],
                 default_zone: str) -> Iterable[tuple[tuple[PathPart, ...], str]]:
    """What the schema cannot check about one freeze (`default_zone`: the file's, else UTC)."""
    from dcs_maintenance.freezes import FROM, UNTIL, local_instant, parse_local

    zone = item.get("timezone", default_zone)
    zone_message = _zone_problem(zone) if isinstance(zone, str) else "no zone"
    if "timezone" in item and isinstance(zone, str) and zone_message:
        yield base + ("timezone",), zone_message
    local: dict[str, Any] = {}
    for key in (FROM, UNTIL):
        value = item.get(key)
        if isinstance(value, str) and _LOCAL_RE.fullmatch(value):
            try:
                local[key] = parse_local(value)
            except ValueError:
                yield base + (key,), f"{value} is not a real date and time"
    if len(local) < 2:
        return
    first, last = item[FROM], item[UNTIL]
    if local[UNTIL] <= local[FROM]:
        yield base + (UNTIL,), f"until ({last}) must be after from ({first})"
        return
    if zone_message or not isinstance(zone, str):
        return  # the zone is reported (here or in the file's defaults)
    try:
        start, end = local_instant(local[FROM], zone, FROM), local_instant(local[UNTIL], zone, UNTIL)
    except (OverflowError, ValueError):
        yield base + (UNTIL,), f"from ({first}) and until ({last}) are out of range on {zone}"
        return
    if end <= start:
        yield base + (UNTIL,), (f"from ({first}) and until ({last}) fall in the same skipped hour on {zone} (a "
                                "daylight saving time change): the freeze would cover no time")


def to_freeze(item: dict, default_zone: str, source: str) -> Freeze:
    """A freeze that passed every check, its local bounds resolved to instants on its zone."""
    from dcs_maintenance.freezes import FROM, UNTIL, local_instant, parse_local

    zone = item.get("timezone") or default_zone
    actions = item.get("actions")
    return Freeze(
        name=item["name"],
        source=source,
        start=local_instant(parse_local(item[FROM]), zone, FROM),
        end=local_instant(parse_local(item[UNTIL]), zone, UNTIL),
        timezone=zone,
        local_from=item[FROM],
        local_until=item[UNTIL],
        reason=item["reason"],
        actions=frozenset(actions) if actions else frozenset(ALL_ACTIONS),
    )


def context_problems(item: dict, defaults: dict, base: tuple[PathPart, ...],
                     context: ValidationContext) -> Iterable[tuple[tuple[PathPart, ...], str]]:
    """A schedule that acts in a region other than the function's must name that region's project: project
    ids differ per region, and without one the function's own project id would be sent to that region."""
    region = item.get("region", defaults.get("region"))
    if not isinstance(region, str) or item.get("project_id", defaults.get("project_id")) is not None:
        return
    if context.region is not None and region == context.region:
        return
    origin = "" if "region" in item else " (from the file's defaults)"
    if context.region is None:
        whose = ("the function's region is not known here (set DCS_REGION to it; a schedule in the function's "
                 "own region may leave project_id out)")
    else:
        whose = f"the function's region is {context.region}"
    yield base + ("project_id",), (
        f"region {region!r}{origin} needs project_id: project ids differ per region, and without one the "
        f"function's own project id would be used in {region}; {whose}")


def context_warnings(item: dict, defaults: dict, base: tuple[PathPart, ...],
                     context: ValidationContext) -> Iterable[tuple[tuple[PathPart, ...], str]]:
    """A one-shot schedule whose starting_deadline is shorter than the tick period: an occurrence between two
    ticks is already too old when the next tick comes, so it is always reported missed. Valid, but said."""
    if context.tick_period is None or "action" not in item:
        return
    raw = item.get("starting_deadline", defaults.get("starting_deadline"))
    try:
        deadline = DEFAULT_STARTING_DEADLINE if raw is None else parse_duration(raw)
    except (TypeError, ValueError):
        return  # the schema and check_values report a bad value
    if deadline >= context.tick_period:
        return
    shown = f"(default {_text(deadline)})" if raw is None else raw + (
        "" if "starting_deadline" in item else " (from the file's defaults)")
    period = _text(context.tick_period)
    yield base + ("starting_deadline",), (
        f"starting_deadline {shown} is shorter than the tick period (TICK_PERIOD={period}): an occurrence "
        f"that does not fall on a tick is already too old when the next tick runs, and is reported missed; "
        f"use at least {period}")


def _text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@functools.lru_cache(maxsize=4096)
def cron_problem(expr: str) -> Optional[str]:
    from dcs_maintenance.cronrules import CronError, check_cron

    try:
        check_cron(expr)
    except CronError as exc:
        return str(exc)
    except ValueError as exc:  # croniter's own errors are ValueErrors too
        return f"invalid cron expression {short(expr)}: {exc}"
    return None


@functools.lru_cache(maxsize=1024)
def _zone_problem(name: str) -> Optional[str]:
    from zoneinfo import ZoneInfo

    hint = ("use an IANA time zone name such as 'Asia/Shanghai', 'Europe/Berlin' or 'UTC' "
            "(fixed offsets such as '+08:00' or 'UTC+8' do not follow daylight saving time)")
    if name == "localtime" or name.startswith(("posix/", "right/")):
        return f"time zone {short(name)} is not allowed: {hint}"
    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError for odd keys, OSError for directories
        return f"unknown time zone {short(name)}: {hint}"
    return None


def _date_problem(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return None  # absent, or the schema's to report
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"{value} is not a calendar date"
    return None


def _deadline_problem(text: str) -> Optional[str]:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        return str(exc)
    if value <= timedelta(0):
        return "must be more than 0s: with no time to start, every occurrence would be missed"
    if value > MAX_STARTING_DEADLINE:
        return f"must be at most 24h (got {text})"
    return None


def to_schedule(item: dict, defaults: dict, source: str) -> Schedule:
    """A schedule that passed every check; the file's defaults fill in what it does not set."""
    merged = {**defaults, **item} if defaults else item
    window = item.get("window")
    deadline = merged.get("starting_deadline")
    skip = item.get("skip_dates")
    return Schedule(
        name=item["name"],
        source=source,
        instances=_selector(item["instances"]),
        action=item.get("action"),
        cron=item.get("cron"),
        window=Window(stop=window["stop"], start=window["start"]) if window is not None else None,
        description=item.get("description", ""),
        enabled=item.get("enabled", True),
        timezone=merged.get("timezone") or "UTC",
        enforce=item.get("enforce", False),
        exclude=_selector(item["exclude"]) if "exclude" in item else _NO_SELECTOR,
        skip_dates=frozenset(map(date.fromisoformat, skip)) if skip else frozenset(),
        active_from=date.fromisoformat(item["active_from"]) if "active_from" in item else None,
        active_until=date.fromisoformat(item["active_until"]) if "active_until" in item else None,
        starting_deadline=_duration(deadline) if deadline is not None else DEFAULT_STARTING_DEADLINE,
        allow_flush=item.get("allow_flush", False),
        max_instances=int(item.get("max_instances", 50)),
        project_id=merged.get("project_id"),
        region=merged.get("region"),
        dry_run=item.get("dry_run", False),
        rollout=_rollout(item["rollout"]) if "rollout" in item else None,
        within_maintenance_window=item.get("within_maintenance_window", False),
    )


def _rollout(data: dict) -> RolloutSpec:
    return RolloutSpec(
        batch=Amount.parse(data["batch"]) if "batch" in data else None,
        canary=data.get("canary", False),
        wave_timeout=_duration(data["wave_timeout"]) if "wave_timeout" in data else DEFAULT_WAVE_TIMEOUT,
        max_errors=Amount.parse(data.get("max_errors", 0)),
        order=data.get("order", "name"),
        timeout=_duration(data["timeout"]) if "timeout" in data else None,
    )


_NO_SELECTOR = Selector()
_duration = functools.lru_cache(maxsize=256)(parse_duration)


def _selector(data: dict) -> Selector:
    ids, names, tags = data.get("ids"), data.get("names"), data.get("tags")
    return Selector(
        ids=tuple(dict.fromkeys(ids)) if ids else (),
        names=tuple(dict.fromkeys(names)) if names else (),
        tags=tuple(sorted(tags.items())) if tags else (),
    )
