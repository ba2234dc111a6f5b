"""The wall clock, replaceable so that tests and simulations can live at another time.

Two readings:
- `now()`: the wall clock. It bounds a tick (an event dated ahead of it is refused), bounds every watermark
  written, and times claims. Tests, the demo and benchmarks replace it (`set_clock`) to simulate a world.
- `as_of()`: the instant a tick is judged at: whether an occurrence is already older than its starting_deadline
  when the call would be sent, and which window state is in force. It is `now()` unless `run --at` asks to
  judge a tick as it would have been judged then (`set_as_of`), which never moves the wall clock itself: a
  `run --at` in the future cannot write state ahead of the real time.
The tick's own time comes from the event.
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
_as_of: Clock | None = None


def now() -> datetime:
    return _current()


def simulated() -> bool:
    """True while a replaced wall clock is installed (tests, the demo, benchmarks)."""
    return _current is not system_clock


def as_of() -> datetime:
    return _as_of() if _as_of is not None else _current()


def set_clock(clock: Clock | None) -> None:
    """Install a wall clock (None restores the system clock)."""
    global _current
    _current = clock or system_clock


def set_as_of(clock: Clock | None) -> None:
    """Judge ticks at another instant than the wall clock (None: judge at the wall clock)."""
    global _as_of
    _as_of = clock
