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
# A remembered "no occurrence at all" (a date that comes round every few decades at most) is trusted this long.
NONE_VALID = timedelta(days=365 * 40)
UTC = timezone.utc

# name -> (cron, zone, after, first): `first` is the first occurrence strictly after `after` (None: none for decades)
_next_fire: dict[str, tuple[str, str, datetime, Optional[datetime]]] = {}
# (name, stop, start, zone, dates) -> (from, until, desired): window_desired(s, t) is `desired` for from <= t < until
_windows: dict[tuple, tuple[datetime, Optional[datetime], Optional[planner.Desired]]] = {}
# The last tick seen, with what every schedule's check derives from it:
# [tick, tick_period, tick in UTC, tick - MAX_REPORT_SPAN, tick - tick_period] (all UTC).
_tick: list = [None, None, None, None, None]
calls = {"next_after": 0}  # how often a next fire was computed (tests count it; never reset by the runner)


def clear() -> None:
    """Forget everything remembered (tests: each starts as a cold instance; `calls` is a counter, kept)."""
    _next_fire.clear()
    _windows.clear()
    _tick[:] = [None] * len(_tick)


def quiet_one_shot(schedule: Schedule, tick: datetime, watermark: Optional[datetime], tick_period: timedelta) -> bool:
    """True when `one_shot_due(schedule, tick, watermark, tick_period)` has nothing to run or report.

    The planner looks at the occurrences in (start, tick], start being the watermark (or tick - tick_period),
    never earlier than tick - MAX_REPORT_SPAN. Each schedule's first occurrence after some instant is
    remembered: while a later tick's start is not before that instant nor at or past that occurrence, it
    is still the first one after the start, and the answer is whether it is later than the tick. Once it
    has fired, the next one is one `CronRule.next_after` step from it (a few microseconds whatever the cron),
    so a `*/5` schedule costs one step per fire, and a daily one a dictionary look-up per tick.
    """
    memo = _tick
    if memo[0] is not tick or memo[1] != tick_period:  # once per tick, not once per schedule
        utc_tick = tick.astimezone(UTC)
        memo[:] = [tick, tick_period, utc_tick, utc_tick - planner.MAX_REPORT_SPAN, utc_tick - tick_period]
    tick_utc = memo[2]
    low = memo[4] if watermark is None else watermark
    if low >= tick_utc:
        return True  # one_shot_due: "already processed", nothing passed, nothing to fire
    start = low if low > memo[3] else memo[3]
    cron = schedule.cron
    entry = _next_fire.get(schedule.name)
    if entry is not None and entry[2] <= start and entry[0] == cron and entry[1] == schedule.timezone:
        first = entry[3]
        if first is None:
            if start - entry[2] < NONE_VALID:
                return True
        elif start < first:
            return first > tick_utc
    assert cron is not None
    if len(_next_fire) >= MAX_ENTRIES:
        _next_fire.clear()
    calls["next_after"] += 1
    first = planner.rule(cron, schedule.timezone).next_after(start)
    _next_fire[schedule.name] = (cron, schedule.timezone, start, first)
    return first is None or first > tick_utc


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
