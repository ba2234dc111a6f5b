"""Durations written the way operators write them: `30s`, `15m`, `2h` (and `1d` for settings).

One whole number and one unit, nothing else: no fractions, no signs, no compound forms such
as `1h30m` (write `90m`). `format_duration` is the inverse for the units schedules accept.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]{1,12})([smhd])")
# The largest duration timedelta holds is 999,999,999 days; stay well inside it.
MAX_SECONDS = 10**9 * 86400 // 2


def parse_duration(text: str) -> timedelta:
    """`"30s"` -> 30 seconds, `"15m"`, `"2h"`, `"1d"`. Raises ValueError with a readable message."""
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string such as '30s', '15m' or '2h', not {type(text).__name__}")
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(f"{shown!r} is not a duration: write a whole number and a unit s, m, h or d, such as "
                         "'30s', '15m' or '2h'")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text.strip()!r} is too long a duration")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest `s`/`m`/`h` form that parses back to `value`: 600 s -> `"10m"`, 90 min -> `"90m"`.

    Days are written in hours (`"24h"`) so the result is valid wherever schedules take a duration.
    Raises ValueError for negative durations and fractions of a second, which have no such form.
    """
    if value < timedelta(0):
        raise ValueError(f"cannot format a negative duration ({value})")
    if value.microseconds:
        raise ValueError(f"cannot format a duration with a fraction of a second ({value})")
    seconds = value.days * 86400 + value.seconds
    for unit in ("h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


__all__ = ["parse_duration", "format_duration", "MAX_SECONDS"]
