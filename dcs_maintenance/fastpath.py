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

from datetime import datetime, timedelta
from typing import Optional

from dcs_maintenance import planner
from dcs_maintenance.model import Schedule

MAX_ENTRIES = 200_000  # about 200 bytes each; cleared (not evicted) past this: a cache miss is only slower

# (name, cron, zone) -> (after, the first occurrence strictly after `after`, or None: none within 50 years)
_next_fire: dict[tuple[str, str, str], tuple[datetime, Optional[datetime]]] = {}
# (name, stop, start, zone, dates) -> (from, until, desired): window_desired(s, t) is `desired` for from <= t < until
_windows: dict[tuple, tuple[datetime, Optional[datetime], Optional[planner.Desired]]] = {}


def clear() -> None:
    _next_fire.clear()
    _windows.clear()


def quiet_one_shot(schedule: Schedule, tick: datetime, watermark: Optional[datetime], tick_period: timedelta) -> bool:
    """True when `one_shot_due(schedule, tick, watermark, tick_period)` has nothing to run or report.

    The planner looks at the occurrences in (report_from, tick]; there is none exactly when the first
    occurrence after report_from is later than the tick. That first occurrence is remembered with the instant
    it was computed from, and is still the first one for any later report_from that it does not precede.
    """
    assert schedule.cron is not None
    low = watermark if watermark is not None else tick - tick_period
    if low >= tick:
        return True  # one_shot_due: "already processed", nothing passed, nothing to fire
    report_from = max(low, tick - planner.MAX_REPORT_SPAN)
    key = (schedule.name, schedule.cron, schedule.timezone)
    entry = _next_fire.get(key)
    if entry is None or entry[0] > report_from or (entry[1] is not None and entry[1] <= report_from):
        if len(_next_fire) >= MAX_ENTRIES:
            _next_fire.clear()
        entry = (report_from, planner.rule(schedule.cron, schedule.timezone).next_after(report_from))
        _next_fire[key] = entry
    return entry[1] is None or entry[1] > tick


def window_desired(schedule: Schedule, tick: datetime) -> Optional[planner.Desired]:
    """`planner.window_desired(schedule, tick)`, computed once per stop/start occurrence.

    The latest stop and start at or before the tick, and so the desired state, stay the same until the next
    occurrence of either (whatever its date: skip_dates and active_until only make fewer occurrences count).
    Before active_from the answer depends on the local date as well: it is not remembered then.
    """
    assert schedule.window is not None
    key = (schedule.name, schedule.window.stop, schedule.window.start, schedule.timezone, schedule.skip_dates,
           schedule.active_from, schedule.active_until)
    entry = _windows.get(key)
    if entry is not None and entry[0] <= tick and (entry[1] is None or tick < entry[1]):
        return entry[2]
    desired = planner.window_desired(schedule, tick)
    if desired is None and schedule.active_from is not None:
        return desired
    tz = schedule.timezone
    nexts = [t for t in (planner.rule(schedule.window.stop, tz).next_after(tick),
                         planner.rule(schedule.window.start, tz).next_after(tick)) if t is not None]
    if len(_windows) >= MAX_ENTRIES:
        _windows.clear()
    _windows[key] = (tick, min(nexts) if nexts else None, desired)
    return desired
