"""The wall clock, replaceable so that tests and simulations can live at another time.

Two readings:
- `now()`: the wall clock. It bounds a tick (an event dated ahead of it is refused), bounds every watermark
  written, and times claims. Tests, the demo and benchmarks replace it (`set_clock`) to simulate a world.
- `as_of()`: the instant a tick is judged at: whether an occurrence is already older than its starting_deadline
  when the call would be sent, and which window state is in force. It is `now()` unless `run --at` asks to
  judge a tick as it would have been judged then (`set_as_of`), which never moves the wall clock itself: a
  `run --at` in the future cannot write state ahead of the real time.
The tick's own time comes from the event.

A rollout waits for its health gate by polling DCS, sleeping between looks (`sleep`); a simulated world
replaces the sleep too (`set_sleep`, or `SteppedClock`), so that a wait of minutes costs no real time.
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
_sleep: Callable[[float], None] = time.sleep


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


def sleep(seconds: float) -> None:
    """Wait (a rollout's health gate between two looks at DCS): real time, or a simulated clock's jump."""
    _sleep(max(0.0, seconds))


def set_sleep(fn: Callable[[float], None] | None) -> None:
    """Install how `sleep` waits (None restores time.sleep)."""
    global _sleep
    _sleep = fn or time.sleep


class SteppedClock:
    """A simulated wall clock from `at` that runs in real time and jumps forward when the function sleeps.

    For tests, the demo and benchmarks: `install()` makes it the wall clock and the sleep, so a rollout that
    polls DCS for its health gate waits minutes of simulated time in no real time. Give the emulator the same
    time (`Emulator(clock=lambda: clock.now().timestamp())`) and its restart durations follow these jumps.
    """

    def __init__(self, at: datetime) -> None:
        self._base = at.astimezone(timezone.utc)
        self._start = time.monotonic()
        self.slept = 0.0  # seconds jumped by sleeps so far

    def now(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._start + self.slept)

    def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)

    def advance_to(self, at: datetime) -> None:
        """Jump to `at` (never backwards: a clock that ran past it stays where it is)."""
        self.slept += max(0.0, (at - self.now()).total_seconds())

    def install(self) -> SteppedClock:
        set_clock(self.now)
        set_sleep(self.sleep)
        return self
