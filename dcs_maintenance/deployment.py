"""What the platform around the function must satisfy: pure decisions, no I/O.

- The ledger must be shared by every instance FunctionGraph may run at once. A `sqlite:` ledger lives in
  one instance's `/tmp` (instances share nothing), so it is safe only with the function capped at one
  instance (`MAX_INSTANCE_NUM=1`, the deployment default); otherwise the function refuses to act.
- The TIMER trigger is a FunctionGraph Cron timer derived from TICK_PERIOD, so ticks fall on the wall
  clock (:00, :05, ...). FunctionGraph's trigger documentation does not say that Rate timers are aligned
  to the clock, so they are not used. The Cron format is FunctionGraph's own: six fields with seconds,
  `?` for "any day of the week" ("Cron Expressions for a Function Timer Trigger", FunctionGraph user
  guide, functiongraph_01_0908); without CRON_TZ it is read in the region's time zone, which only moves
  hourly ticks (every Huawei Cloud region has a whole-hour UTC offset, so minute ticks fall on the same
  instants in every region).

deploy/terraform/main.tf and deploy/after_serverless.py use these; tests keep them in step.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

MAX_INSTANCE_CAP = 1000  # FunctionGraph: "Max. Instances per Function", -1 or 1..1000 (-1: unlimited)

# Every TICK_PERIOD a Cron timer fires evenly: minutes dividing an hour, whole hours dividing a day.
# Rate timers accept 1-60 minutes and 1-24 hours as well (FunctionGraph "Timer Trigger" page), so each of
# these is also a period FunctionGraph accepts; 7m or 5h are not even on a clock and are refused.
TICK_PERIODS = ("1m", "2m", "3m", "4m", "5m", "6m", "10m", "12m", "15m", "20m", "30m",
                "1h", "2h", "3h", "4h", "6h", "8h", "12h", "24h")


def _minutes(text: str) -> int:
    return int(text[:-1]) * (60 if text.endswith("h") else 1)


_ALLOWED_MINUTES = tuple(_minutes(p) for p in TICK_PERIODS)


def tick_period_problem(period: timedelta) -> Optional[str]:
    """Why a TICK_PERIOD cannot drive a clock-aligned Cron timer, or None."""
    seconds = period.total_seconds()
    if seconds % 60 or int(seconds // 60) not in _ALLOWED_MINUTES:
        return (f"{_show(period)} cannot be fired evenly by a FunctionGraph Cron timer: use one of "
                f"{', '.join(TICK_PERIODS)} (minutes dividing an hour, or hours dividing a day)")
    return None


def timer_cron(period: timedelta) -> str:
    """The FunctionGraph Cron expression (seconds first) that fires every `period` on the clock."""
    problem = tick_period_problem(period)
    if problem:
        raise ValueError(problem)
    minutes = int(period.total_seconds() // 60)
    if minutes == 1:
        return "0 * * * * ?"
    if minutes < 60:
        return f"0 0/{minutes} * * * ?"
    hours = minutes // 60
    if hours == 1:
        return "0 0 * * * ?"
    if hours < 24:
        return f"0 0 0/{hours} * * ?"
    return "0 0 0 * * ?"


def unshared_ledger_problem(ledger_url: str, max_instance_num: int) -> Optional[str]:
    """Why this function must not act: its ledger is local to one instance while several may run at once.

    None when the ledger is shared (redis://, rediss://) or the function runs alone (MAX_INSTANCE_NUM=1).
    The message names the fix and never the URL (it may hold a password).
    """
    scheme = ledger_url.strip().partition(":")[0].lower()
    if scheme != "sqlite" or max_instance_num <= 1:
        return None
    return (f"LEDGER_URL is a local SQLite file but MAX_INSTANCE_NUM={max_instance_num} allows "
            f"{max_instance_num} concurrent instances: use a redis:// ledger or set MAX_INSTANCE_NUM=1")


def _show(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
