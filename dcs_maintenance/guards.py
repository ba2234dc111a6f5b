"""Pure decisions that keep "exactly once" true when time, deliveries and replies misbehave (issue 10).

Each function returns what to do and why; the runner only carries it out:
- `tick_refusal`: a tick dated ahead of the wall clock (beyond MAX_CLOCK_SKEW) acts on nothing and moves nothing;
- `bounded_marks`: no watermark is ever written ahead of the wall clock, whatever path computed it;
- `judging_instant`: a window applies the state in force NOW, never the one at a stale event's time;
- `judge_claim`: what an existing claim means for this tick: done, still in flight (pending: look again next tick),
  or unknown (an outcome-less claim older than one call budget: its invocation died or lost its reply).

Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from dcs_maintenance.ledger.base import CLAIMED, ClaimRecord
from dcs_maintenance.planner import iso

# How far a tick's time may be ahead of the function's wall clock: the timer and the function run on different
# hosts whose clocks may disagree by a few seconds. A minute covers any sane NTP-synchronised pair; anything more
# is an event from the wrong source or a wrong clock, and acting on it would act early and silence later ticks.
MAX_CLOCK_SKEW = timedelta(seconds=60)


def _seconds(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    if total < 120:
        return f"{total}s"
    if total < 7200:
        return f"{total // 60}m"
    if total < 3 * 86400:
        return f"{total // 3600}h"
    return f"{total // 86400} days"


def tick_refusal(tick: datetime, wall: datetime, dry_run: bool) -> Optional[str]:
    """Why a tick must not run at all, or None. A dry run or preview may look at any time (it changes nothing)."""
    if dry_run or tick - wall <= MAX_CLOCK_SKEW:
        return None
    return (f"tick time {iso(tick)} is {_seconds(tick - wall)} ahead of the wall clock {iso(wall)} (allowed skew "
            f"{_seconds(MAX_CLOCK_SKEW)}): refused, nothing sent, no watermark or window state moved; check the "
            "event's source and the function's clock (a preview of a future time: use a dry run)")


def bounded_marks(marks: dict[str, datetime], wall: datetime) -> dict[str, datetime]:
    """Watermarks never ahead of the wall clock (plus the allowed skew): a mark in the future would make every
    tick until then skip the schedule."""
    limit = wall + MAX_CLOCK_SKEW
    if not marks or max(marks.values()) <= limit:  # the usual case (the tick's own time bounds every mark)
        return marks
    return {name: min(mark, limit) for name, mark in marks.items()}


def judging_instant(tick: datetime, wall: datetime) -> datetime:
    """The instant a window's desired state is taken at: the tick's, or the wall clock's when the event is late.

    A window event for 20:00 delivered at 07:30 must not stop the instance during its running hours."""
    return max(tick, wall)


@dataclass(frozen=True)
class ClaimJudgement:
    """What an existing claim means: its result for this tick's report, why, and what follows."""

    result: str  # "skipped" (done, or in flight) | "unknown"
    reason: str
    hold: bool = False  # in flight: the watermark must not pass the occurrence, a window must not settle on it
    applied: bool = False  # a window transition counts as applied (it may have run, or it did)
    stale: bool = False  # an outcome-less claim from a dead invocation: record it as unknown


def judge_claim(record: ClaimRecord, wall: datetime, in_flight: timedelta, status: str = "") -> ClaimJudgement:
    """An existing claim: never sent again, but never silently counted as done either.

    An outcome-less claim younger than one call budget belongs to an invocation still in flight: pending. Older,
    it belongs to an invocation that died (or lost its reply) between claim and record: the action may or may not
    have been sent, so it is `unknown`, loudly, with the instance's current status as evidence.
    """
    who = f"request {record.holder or '?'}"
    if record.outcome == CLAIMED:
        age = wall - record.at
        if age <= in_flight:
            return ClaimJudgement("skipped", f"claimed by {who} {_seconds(max(age, timedelta(0)))} ago, outcome "
                                             "not recorded yet (in flight): looked at again next tick", hold=True)
        evidence = f"; status now {status}" if status else ""
        return ClaimJudgement("unknown", f"claimed by {who} at {iso(record.at)} but no outcome was ever recorded "
                                         f"(that invocation died or lost its reply): it may have been sent{evidence}; "
                                         "not re-sent", applied=True, stale=True)
    if record.outcome == "unknown":
        detail = f": {record.detail}" if record.detail else ""
        return ClaimJudgement("unknown", f"outcome unknown since {who}{detail}; not re-sent", applied=True)
    return ClaimJudgement("skipped", f"already handled by {who} ({record.outcome}): not sent again",
                          applied=record.outcome == "success")
