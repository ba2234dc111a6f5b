"""In-process memory that makes a tick cost what is due, not what exists (issue 7).

A warm function instance keeps, per schedule, when it fires next; a tick then evaluates a schedule's cron only
when that time has come, so 10,000 idle schedules cost a dictionary look-up each. Both answers are exactly the
planner's, never an approximation:

- `quiet_one_shot`: True only when `planner.one_shot_due` would find no occurrence at all in the tick's window
  (it would return no fire, no passed occurrence, and the runner would report the schedule as idle);
- `window_desired`: `planner.window_desired`, remembered until the next stop or start occurrence, before which
  the answer cannot change.

Entries are keyed by what the answer depends on (name, cron expressions, zone, dates), so an edited schedule
gets a fresh entry; they hold instants (UTC), never ledger state. Pure: no I/O, no SDK.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

from dcs_maintenance import planner
from dcs_maintenance.model import Schedule

MAX_ENTRIES = 200_000  # about 200 bytes each; cleared (not evicted) past this: a cache miss is only slower
# How far ahead one evaluation looks: one of cronrules' 12-hour chunks, the cost of any short window.
HORIZON = timedelta(hours=11, minutes=59)

# (name, cron, zone) -> (after, until, first): `first` is the first occurrence in (after, until], or None
_next_fire: dict[tuple[str, str, str], tuple[datetime, datetime, Optional[datetime]]] = {}
# (name, stop, start, zone, dates) -> (from, until, desired): window_desired(s, t) is `desired` for from <= t < until
_windows: dict[tuple, tuple[datetime, Optional[datetime], Optional[planner.Desired]]] = {}


def clear() -> None:
    _next_fire.clear()
    _windows.clear()


def quiet_one_shot(schedule: Schedule, tick: datetime, watermark: Optional[datetime], tick_period: timedelta) -> bool:
    """True when `one_shot_due(schedule, tick, watermark, tick_period)` has nothing to run or report.

    The planner looks at the occurrences in (report_from, tick]. One evaluation finds the first occurrence in
    (report_from, report_from + HORIZON]; later ticks reuse it while their report_from is not before the
    evaluated span's start nor past that first occurrence: then it is still their first occurrence (or, when
    there was none, there is none up to the span's end).
    """
    assert schedule.cron is not None
    low = watermark if watermark is not None else tick - tick_period
    if low >= tick:
        return True  # one_shot_due: "already processed", nothing passed, nothing to fire
    start = max(low, tick - planner.MAX_REPORT_SPAN).astimezone(timezone.utc)
    tick = tick.astimezone(timezone.utc)
    key = (schedule.name, schedule.cron, schedule.timezone)
    entry = _next_fire.get(key)
    if entry is not None and entry[0] <= start:
        first = entry[2]
        if first is not None and first > start:
            return first > tick
        if first is None and tick <= entry[1]:
            return True
    if len(_next_fire) >= MAX_ENTRIES:
        _next_fire.clear()
    until = max(start + HORIZON, tick)
    found = planner.rule(schedule.cron, schedule.timezone).between(start, until)
    first = found[0] if found else None
    _next_fire[key] = (start, until, first)
    return first is None or first > tick


def window_desired(schedule: Schedule, tick: datetime) -> Optional[planner.Desired]:
    """`planner.window_desired(schedule, tick)`, computed once per stop/start occurrence.

    The latest stop and start at or before the tick, and so the desired state, stay the same until the next
    occurrence of either (whatever its date: skip_dates and active_until only make fewer occurrences count).
    Before active_from the answer depends on the local date as well: it is not remembered then.
    """
    assert schedule.window is not None
    key = (schedule.name, schedule.window.stop, schedule.window.start, schedule.timezone, schedule.skip_dates,
           schedule.active_from, schedule.active_until)
    at = tick.astimezone(timezone.utc)  # instants compare by wall time within one zone: compare in UTC
    entry = _windows.get(key)
    if entry is not None and entry[0] <= at and (entry[1] is None or at < entry[1]):
        return entry[2]
    desired = planner.window_desired(schedule, tick)
    if desired is None and schedule.active_from is not None:
        return desired
    tz = schedule.timezone
    nexts = [t for t in (planner.rule(schedule.window.stop, tz).next_after(at),
                         planner.rule(schedule.window.start, tz).next_after(at)) if t is not None]
    if len(_windows) >= MAX_ENTRIES:
        _windows.clear()
    _windows[key] = (at, min(nexts) if nexts else None, desired)
    return desired
