"""What a schedule means to a reader: its cron in plain language and its next occurrences; the freezes.

Shared by the CLI (`next`) and the HTTP route `GET /schedules`, so both say the same thing.
Pure: no I/O, no SDK.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from dcs_maintenance.describe import describe
from dcs_maintenance.freezes import freeze_entries
from dcs_maintenance.model import Freeze, RolloutSpec, Schedule
from dcs_maintenance.planner import iso, local_date_reason, rule

# A sparse expression (`0 0 29 2 *`) with skip dates could search for ever: stop after ten years.
SEARCH_LIMIT = timedelta(days=3660)


def iter_occurrences(schedule: Schedule, after: datetime) -> Iterator[tuple[datetime, str]]:
    """Every occurrence after `after`, in time order, as (UTC instant, action): both window edges for windows.

    Occurrences on a skipped or inactive local date are left out, as the tick would skip them. `upcoming`
    (the CLI's `next`, GET /schedules) and the calendar feed both read this, so they always agree.
    """
    if schedule.window is not None:
        exprs = [("stop", schedule.window.stop), ("start", schedule.window.start)]
    else:
        exprs = [(schedule.action or "", schedule.cron or "")]
    return heapq.merge(*(_edge_occurrences(schedule, expr, label, after) for label, expr in exprs))


def _edge_occurrences(schedule: Schedule, expr: str, label: str, after: datetime) -> Iterator[tuple[datetime, str]]:
    cron, cursor = rule(expr, schedule.timezone), after
    while True:
        nxt = cron.next_after(cursor)
        if nxt is None:
            return
        cursor = nxt
        if local_date_reason(schedule, nxt) is None:
            yield nxt, label
        elif nxt > after + SEARCH_LIMIT:
            return


def upcoming(schedule: Schedule, after: datetime, count: int) -> list[dict[str, str]]:
    """The next `count` occurrences after `after` (both window edges for windows), in its zone and UTC."""
    tz = ZoneInfo(schedule.timezone)
    return [{"action": label, "utc": iso(when), "local": when.astimezone(tz).isoformat()}
            for when, label in islice(iter_occurrences(schedule, after), max(count, 0))]


def describe_schedule(schedule: Schedule) -> str:
    """One sentence: "restart at 03:00 every day (Asia/Shanghai)", or the window's two edges."""
    if schedule.window is not None:
        return (f"stopped {describe(schedule.window.stop)} until started {describe(schedule.window.start)}"
                f" ({schedule.timezone})")
    text = f"{schedule.action} {describe(schedule.cron or '')} ({schedule.timezone})"
    if schedule.rollout is not None:
        text += f", {describe_rollout(schedule.rollout)}"
    if schedule.within_maintenance_window:
        text += ", only inside each instance's maintenance window"
    return text


def describe_rollout(spec: RolloutSpec) -> str:
    """`in waves of 25% after a canary, by name, halting when errors exceed 1`."""
    waves = f"in waves of {spec.batch}" if spec.batch is not None else "in one wave"
    canary = " after a canary" if spec.canary else ""
    order = "as listed" if spec.order == "listed" else "by name"
    budget = "halting at the first error" if str(spec.max_errors) == "0" else \
        f"halting when errors exceed {spec.max_errors}"
    return f"{waves}{canary}, {order}, {budget}"


def freezes_info(freezes: tuple[Freeze, ...], now: datetime) -> list[dict]:
    """Every freeze as written, with its UTC bounds and `state` (upcoming, active, past), soonest first."""
    return freeze_entries(freezes, now)
