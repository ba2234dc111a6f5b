"""Freeze (deny) periods: when no maintenance may be sent, decided as pure functions of (freezes, action, time).

A freeze is written in local date-times on an IANA zone (`from: "2026-12-20T00:00"`). It covers exactly
the instants whose local time lies in [from, until); where DST makes that set odd, the freeze is the
smallest interval of instants holding all of it, so a freeze is never shorter than its wall-clock text:
- `from` in a repeated (fall-back) hour is its FIRST pass, `until` in one is its SECOND pass;
- `from` or `until` in a skipped (spring-forward) gap is the instant of the jump, the first instant whose
  local time is after the gap (as cron fires a skipped time at the jump).

Decisions (each returns a value with a plain-English reason; the runner carries them out):
- `active_freeze(freezes, action, instant)`: the freeze holding `action` back at `instant`, if any;
- `occurrence_verdict`: a one-shot occurrence is `frozen` when the occurrence, or the moment it would be
  sent, lies in a freeze for its action; it is reported once and never sent later;
- `window_verdict`: a window's stop is suppressed inside a freeze for `stop`; starts always go through
  (as with skip_dates), so a freeze never leaves an instance stopped;
- `manual_verdict`: a manual run inside a freeze for its action is refused (HTTP 409) unless the request
  says `"override_freeze": true`, which is allowed and must be logged.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from dcs_maintenance.model import RUNNING, STOPPED, Freeze

UTC = timezone.utc
FROM, UNTIL = "from", "until"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- local date-times -> instants ------------------------------------------------------------------
def parse_local(text: str) -> datetime:
    """`2026-12-20T00:00` or `2026-12-20T00:00:30` -> a naive datetime; ValueError if it is no real date-time."""
    if len(text) not in (16, 19) or text[10] != "T":
        raise ValueError(f"{text!r} is not a local date-time YYYY-MM-DDTHH:MM (seconds optional)")
    return datetime.fromisoformat(text)


def local_instant(local: datetime, zone: str, edge: str) -> datetime:
    """The UTC instant of a freeze's local `from` or `until` on `zone` (see the module's DST rules)."""
    tz = ZoneInfo(zone)
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    early, late = min(first, second), max(first, second)
    if first.astimezone(tz).replace(tzinfo=None) != local:  # no such local time: a spring-forward gap
        return _jump(tz, early, late)
    return early if edge == FROM else late


def _jump(tz: ZoneInfo, early: datetime, late: datetime) -> datetime:
    """The instant in (early, late] at which the zone's offset changes (transitions fall on whole seconds)."""
    after = late.astimezone(tz).utcoffset()
    lo, hi = 0, int((late - early).total_seconds())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (early + timedelta(seconds=mid)).astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return early + timedelta(seconds=hi)


# -- decisions -----------------------------------------------------------------------------------
def active_freeze(freezes: Iterable[Freeze], action: str, instant: datetime) -> Optional[Freeze]:
    """The freeze that holds `action` back at `instant`: of several, the one ending last (then by name)."""
    found = [f for f in freezes if f.covers(action) and f.active_at(instant)]
    if not found:
        return None
    return max(found, key=lambda f: (f.end, _reverse(f.name)))


def _reverse(name: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in name)


def describe(freeze: Freeze) -> str:
    """`freeze 'year-end' (2026-12-20T00:00 to 2027-01-04T00:00 Europe/Berlin): code freeze`"""
    return (f"freeze {freeze.name!r} ({freeze.local_from} to {freeze.local_until} {freeze.timezone}): "
            f"{freeze.reason}")


@dataclass(frozen=True)
class FreezeVerdict:
    """Whether a scheduled action is held back by a freeze, and why.

    `settled`: True when the action is over for good (a one-shot occurrence, or a window stop that fell
    in the freeze: never sent later); False when it is only held while the freeze lasts (a window stop
    that came before the freeze and is not applied yet: applied after the freeze, if still wanted).
    """

    frozen: bool
    reason: str = ""
    freeze: Optional[Freeze] = None
    settled: bool = True


NOT_FROZEN = FreezeVerdict(False)


def occurrence_verdict(freezes: Iterable[Freeze], action: str, occurrence: datetime,
                       now: datetime) -> FreezeVerdict:
    """A one-shot occurrence is `frozen` when it, or the moment it would be sent, lies in a freeze for its action.

    It is reported `frozen` once (result value `frozen`, not a failure) and never sent later, even after
    the freeze: an action meant for 03:00 does not run at the end of a freeze at 14:00.
    """
    freezes = tuple(freezes)
    hit = active_freeze(freezes, action, occurrence)
    if hit is not None:
        return FreezeVerdict(True, f"occurrence {iso(occurrence)} falls in {describe(hit)}; not sent later", hit)
    hit = active_freeze(freezes, action, now)
    if hit is not None:
        return FreezeVerdict(True, f"{describe(hit)} began before occurrence {iso(occurrence)} was sent; "
                                   "not sent later", hit)
    return NOT_FROZEN


def window_verdict(freezes: Iterable[Freeze], desired_state: str, desired_occurrence: datetime,
                   tick: datetime) -> FreezeVerdict:
    """A window's stop inside a freeze for `stop` is suppressed; a start always goes through.

    - the stop occurrence falls in a freeze: never applied (settled), as a stop on a skip date; the
      window's next start or stop decides from then on;
    - the stop came before the freeze but is not applied yet (transitional state, a failed tick): held
      while the freeze lasts, applied after it if the window still wants it (not settled).
    """
    if desired_state != STOPPED:
        assert desired_state == RUNNING, desired_state
        return NOT_FROZEN
    freezes = tuple(freezes)
    hit = active_freeze(freezes, "stop", desired_occurrence)
    if hit is not None:
        return FreezeVerdict(True, f"stop at {iso(desired_occurrence)} falls in {describe(hit)}: not applied; "
                                   "starts still go through", hit, settled=True)
    hit = active_freeze(freezes, "stop", tick)
    if hit is not None:
        return FreezeVerdict(True, f"stops are held during {describe(hit)} until {iso(hit.end)}", hit,
                             settled=False)
    return NOT_FROZEN


@dataclass(frozen=True)
class ManualVerdict:
    """A manual run (POST /schedules/{name}/run, PUT /instances/status) against the freezes.

    `allowed` False: answer 409 with `reason`. `overridden` True: allowed only because the request said
    `"override_freeze": true`; log it (who, what, which freeze).
    """

    allowed: bool
    reason: str = ""
    freeze: Optional[Freeze] = None
    overridden: bool = False


def manual_verdict(freezes: Iterable[Freeze], action: str, now: datetime, override: bool = False) -> ManualVerdict:
    """Refused inside a freeze for `action` (starts included: a manual start is a choice, not a window's
    own start), unless `override`."""
    hit = active_freeze(freezes, action, now)
    if hit is None:
        return ManualVerdict(True, "no freeze is active")
    if override:
        return ManualVerdict(True, f"override_freeze: acting during {describe(hit)}", hit, overridden=True)
    return ManualVerdict(False, f"{action} refused: {describe(hit)} is active until {iso(hit.end)}; "
                                'send "override_freeze": true to act anyway', hit)


# -- listing ---------------------------------------------------------------------------------------
def freeze_state(freeze: Freeze, now: datetime) -> str:
    if now < freeze.start:
        return "upcoming"
    return "active" if now < freeze.end else "past"


def freeze_entry(freeze: Freeze, now: datetime) -> dict:
    """A freeze for `next` and GET /schedules: as written, its UTC bounds, and whether it is active now."""
    return {**freeze.to_dict(), "state": freeze_state(freeze, now)}


def freeze_entries(freezes: Iterable[Freeze], now: datetime) -> list[dict]:
    """Every freeze, soonest first (by start, then name)."""
    return [freeze_entry(f, now) for f in sorted(freezes, key=lambda f: (f.start, f.name))]


__all__ = ["parse_local", "local_instant", "active_freeze", "describe", "FreezeVerdict", "occurrence_verdict",
           "window_verdict", "ManualVerdict", "manual_verdict", "freeze_state", "freeze_entry", "freeze_entries"]
