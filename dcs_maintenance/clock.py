"""The wall clock, replaceable so that tests and `run --at` can live at another time.

Only the wall-clock checks (is an occurrence already older than its starting_deadline when
the call would be sent?) read this; the tick's own time comes from the event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def offset_clock(at: datetime) -> Clock:
    """A clock that reads `at` now and then advances in real time (for simulated runs)."""
    start = time.monotonic()

    def now() -> datetime:
        return at.astimezone(timezone.utc) + timedelta(seconds=time.monotonic() - start)

    return now


_current: Clock = system_clock


def now() -> datetime:
    return _current()


def set_clock(clock: Clock | None) -> None:
    """Install a clock (None restores the system clock)."""
    global _current
    _current = clock or system_clock
