"""An instance's own DCS maintenance window, for schedules with `within_maintenance_window: true`. Pure.

DCS gives each instance a daily maintenance window as `maintain_begin`/`maintain_end` in the list and
show responses: UTC times of day, documented as `HH:mm:ss` ("Listing Maintenance Time Windows",
ListMaintenanceWindows, https://support.huaweicloud.com/intl/en-us/tr-central-201-api-dcs/ListMaintenanceWindows.html,
and the SDK's InstanceListInfo: "维护时间窗开始时间，为UTC时间，格式为HH:mm:ss"). The same pages' examples also
show hour-only values ("18", "19") and windows that cross midnight ("23" to "00"), so `HH`, `HH:mm` and
`HH:mm:ss` are all read, and an end at or before the begin means the window runs past midnight.

Decisions made here (the SPEC is silent):
- the window is [begin, end): an instant at exactly `end` is outside it;
- begin == end is an EMPTY window (never inside), not a whole day: DCS offers only 1- or 4-hour
  windows, so equal times mean malformed data, and an instance is never acted on by accident;
- an instance without a window (either value missing or unreadable) is outside, with a reason that says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from dcs_maintenance.model import Instance

_TIME = re.compile(r"([01][0-9]|2[0-3])(?::([0-5][0-9]))?(?::([0-5][0-9]))?")


def seconds_of_day(text: Optional[str]) -> Optional[int]:
    """`"18:00:00"`, `"18:00"` or `"18"` -> seconds after midnight; None for a missing or unreadable value."""
    if not isinstance(text, str):
        return None
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return None
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def in_maintenance_window(begin: Optional[str], end: Optional[str], instant: datetime) -> bool:
    """Whether `instant` lies in the daily UTC window [begin, end), which may cross midnight."""
    low, high = seconds_of_day(begin), seconds_of_day(end)
    if low is None or high is None or low == high:
        return False
    utc = instant.astimezone(timezone.utc)
    now = utc.hour * 3600 + utc.minute * 60 + utc.second
    if low < high:
        return low <= now < high
    return now >= low or now < high  # across midnight: 22:00-02:00


def format_window(begin: Optional[str], end: Optional[str]) -> str:
    """`18:00-22:00 UTC` (seconds shown only where they are not zero)."""
    return f"{_hhmm(begin)}-{_hhmm(end)} UTC"


def _hhmm(text: Optional[str]) -> str:
    value = seconds_of_day(text)
    if value is None:
        return repr(text) if text else "?"
    h, m, s = value // 3600, value // 60 % 60, value % 60
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


@dataclass(frozen=True)
class WindowVerdict:
    """Whether an instance may be acted on at an instant under `within_maintenance_window`, and why."""

    inside: bool
    reason: str


def window_verdict(instance: Instance, instant: datetime) -> WindowVerdict:
    """Inside: act. Outside (or no usable window): skip, with the window in the reason."""
    begin, end = instance.maintain_begin, instance.maintain_end
    if not begin or not end:
        return WindowVerdict(False, "has no maintenance window in DCS (maintain_begin/maintain_end missing)")
    low, high = seconds_of_day(begin), seconds_of_day(end)
    if low is None or high is None:
        return WindowVerdict(False, f"maintenance window {begin!r}-{end!r} is not readable as UTC times of day")
    window = format_window(begin, end)
    if low == high:
        return WindowVerdict(False, f"maintenance window {window} is empty (begin equals end)")
    at = instant.astimezone(timezone.utc).strftime("%H:%M")
    if in_maintenance_window(begin, end, instant):
        return WindowVerdict(True, f"inside its maintenance window {window} at {at} UTC")
    return WindowVerdict(False, f"outside its maintenance window {window} at {at} UTC")


def partition(instances: Iterable[Instance], instant: datetime) -> tuple[tuple[Instance, ...],
                                                                        tuple[tuple[Instance, str], ...]]:
    """A schedule's targets at an occurrence: (those inside their window, (instance, why) for the others)."""
    inside: list[Instance] = []
    outside: list[tuple[Instance, str]] = []
    for inst in instances:
        verdict = window_verdict(inst, instant)
        if verdict.inside:
            inside.append(inst)
        else:
            outside.append((inst, verdict.reason))
    return tuple(inside), tuple(outside)


__all__ = ["seconds_of_day", "in_maintenance_window", "format_window", "WindowVerdict", "window_verdict",
           "partition"]
