"""A simulated world for rollout tests: the function's wall clock and the emulator's clock are one simulated clock,
so restarts take minutes (the emulator's per-instance `restart_seconds`) and the function's health-gate polling
waits them out in no real time.

The clock is a discrete-event one (`TurnClock`): time stands still while invocations work and moves only when
every invocation running is asleep (clock.sleep), to the earliest wake-up. Concurrent invocations then see what
they would see in real time, whatever the machine's speed: one that sleeps 30 s lets the others do 30 s of work
first. (A clock that jumped on each sleep would let a sleeping thread race ahead of one still sending.)

    world = World(emulator, start)                # the emulator made with clock=emulator_clock
    summary = world.tick(at)                      # a TIMER tick through handler.handler, the clock at `at` + lag
    world.together([at, at, at - period])        # several deliveries at once, each in its own thread
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, Optional

from dcs_maintenance import clock

UTC_LAG = timedelta(seconds=10)  # ticks arrive a little after their time


def emulator_clock() -> float:
    """The emulator's clock: the function's (simulated) wall clock, as seconds."""
    return clock.now().timestamp()


class TurnClock:
    """Simulated time that moves only when every registered thread sleeps: then to the earliest wake-up."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._cond = threading.Condition()
        self._awake: set[int] = set()
        self._sleeping: dict[int, datetime] = {}

    def now(self) -> datetime:
        return self._now

    def advance_to(self, at: datetime) -> None:
        with self._cond:
            self._now = max(self._now, at)

    def enter(self) -> None:
        with self._cond:
            self._awake.add(threading.get_ident())

    def leave(self) -> None:
        with self._cond:
            self._awake.discard(threading.get_ident())
            self._wake_next()

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self._cond:
            if me not in self._awake:  # not a registered invocation: time is its own
                self._now += timedelta(seconds=max(0.0, seconds))
                return
            self._awake.discard(me)
            self._sleeping[me] = self._now + timedelta(seconds=max(0.0, seconds))
            self._wake_next()
            while me in self._sleeping:
                self._cond.wait()

    def _wake_next(self) -> None:
        if self._awake or not self._sleeping:
            return
        self._now = max(self._now, min(self._sleeping.values()))
        for ident, at in list(self._sleeping.items()):
            if at <= self._now:
                del self._sleeping[ident]
                self._awake.add(ident)
        self._cond.notify_all()

    def install(self) -> TurnClock:
        clock.set_clock(self.now)
        clock.set_sleep(self.sleep)
        return self


class World:
    def __init__(self, emulator: Any, start: datetime) -> None:
        self.emulator = emulator
        self.clock = TurnClock(start).install()

    def tick(self, at: datetime, lag: timedelta = UTC_LAG, context: Any = None, user_event: Any = "") -> dict:
        self.clock.advance_to(at + lag)
        return self._invoke(at, context, user_event)

    def _invoke(self, at: datetime, context: Any = None, user_event: Any = "") -> dict:
        import handler
        from dcs_maintenance.tools.local import LocalContext, timer_event

        self.clock.enter()
        try:
            return handler.handler(timer_event(at, user_event), context or LocalContext())
        finally:
            self.clock.leave()

    def together(self, times: list[datetime], wall: datetime) -> list[dict]:
        """Deliveries of the events `times`, all at once (one thread each), with the wall clock at `wall`."""
        self.clock.advance_to(wall)
        out: list[dict] = [{} for _ in times]
        ready = threading.Barrier(len(times))

        def run(k: int) -> None:
            self.clock.enter()  # registered before any of them starts: time waits for all of them
            ready.wait(timeout=30)
            try:
                out[k] = self._invoke_registered(times[k])
            finally:
                self.clock.leave()

        threads = [threading.Thread(target=run, args=(k,)) for k in range(len(times))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return out

    def _invoke_registered(self, at: datetime) -> dict:
        import handler
        from dcs_maintenance.tools.local import LocalContext, timer_event

        return handler.handler(timer_event(at), LocalContext())

    def ticks(self, start: datetime, count: int, every: timedelta = timedelta(minutes=5)) -> list[dict]:
        return [self.tick(start + every * n) for n in range(count)]


def rollout_entry(summary: dict, name: str) -> Optional[dict]:
    return next((s for s in summary["schedules"] if s["name"] == name), None)


def status_bodies(emulator: Any, action: str = "restart") -> list[list[str]]:
    """The instance lists of the status PUTs the emulator received, in order."""
    return [list(body["instances"]) for body in emulator.calls(action)]


def restarts(emulator: Any, project: str) -> dict[str, int]:
    return {inst["instance_id"]: inst["counters"]["restarts"] for inst in emulator.instances(project)}
