"""A simulation driver: FunctionGraph TIMER ticks through handler.handler against the emulator, on a simulated clock.

It delivers one tick per period between two instants the way the platform might: on time or a little late
(jitter on the event's `time`, lag on the wall clock), sometimes not at all (dropped), sometimes twice (repeated
at once, two concurrent invocations, or a stale copy re-delivered a few ticks later), sometimes long after its time
(a backlog: the wall clock runs ahead and the following ticks queue behind it), and with a status-call fault
injected before some deliveries. Everything random comes from one seed.

It records every delivery (event time, wall clock, summary) and every status PUT the emulator received (with the
simulated wall time it arrived at), and analysis helpers turn them into facts a test can assert:
which (schedule, occurrence, instance) was acted on by which call, what each occurrence's fate was.

    sim = Simulation(emulator, start, end, seed=7, options=Options(drop_rate=0.05, repeat_rate=0.02, ...))
    sim.run()
    acts = sim.acts()          # one entry per action sent, attributed from the summaries
    sim.check_calls_match_summaries()

Plain module (no pytest import at module level) so that it can be reused from a script.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

UTC = timezone.utc
SENT = ("success", "failed", "unknown")  # results of an action that reached the status call


def utc(text: str) -> datetime:
    """`2026-03-29T01:00:00Z` (or any ISO form with an offset) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Delivery:
    """One handler invocation."""

    group: int  # deliveries of one group run together (a concurrent pair) or back to back
    slot: int  # the timer slot (tick number) whose event this is
    nominal: datetime  # the slot's scheduled instant
    time: datetime  # the event's `time` field
    wall: datetime  # the simulated wall clock when the invocation started
    kind: str  # tick | repeat | concurrent | stale
    fault: Optional[str] = None  # a fault injected on the status endpoint before this group
    summary: dict = field(default_factory=dict)


@dataclass
class Call:
    """One status PUT the emulator received."""

    group: int
    wall: datetime  # simulated wall time at arrival
    action: str
    instances: list[str]
    fault: Optional[str]
    status: Optional[int]


@dataclass
class Act:
    """One (schedule, occurrence, instance) acted on: a summary entry whose action reached the status call."""

    schedule: str
    occurrence: datetime
    instance: str
    action: str
    result: str
    reason: str
    delivery: Delivery


@dataclass
class Options:
    drop_rate: float = 0.0  # a slot delivers nothing
    max_consecutive_drops: int = 2
    repeat_rate: float = 0.0  # the same event again, right after
    concurrent_rate: float = 0.0  # the same event twice, in two threads at once
    concurrent_next_rate: float = 0.0  # this slot's and the next slot's events at once (overlapping ticks)
    stale_rate: float = 0.0  # the same event again, 1-3 slots later (a platform retry after later ticks ran)
    jitter: timedelta = timedelta(0)  # the event's time is up to this late
    lag: timedelta = timedelta(0)  # the wall clock is up to this much after the event's time (within deadline)
    late_rate: float = 0.0  # a delivery far later than its time: the wall clock jumps (a backlog)
    late_lag: tuple[timedelta, timedelta] = (timedelta(minutes=11), timedelta(minutes=25))
    fault_rate: float = 0.0  # inject a status fault before a delivery group
    fault_kind: str = "reset_after"
    no_drop: frozenset[int] = frozenset()  # slots never dropped
    force_drop: frozenset[int] = frozenset()  # slots always dropped
    force_stale: dict[int, int] = field(default_factory=dict)  # slot -> re-deliver its event this many slots later


class Simulation:
    """Drive `invoke(event, context)` (handler.handler) through every slot in [start, end) with `period`."""

    def __init__(self, emulator: Any, start: datetime, end: datetime, *, period: timedelta = timedelta(minutes=5),
                 seed: int = 0, options: Optional[Options] = None, invoke: Optional[Callable] = None,
                 before: Optional[Callable[[Simulation, int, datetime], None]] = None) -> None:
        import handler
        from dcs_maintenance import clock
        from dcs_maintenance.tools.local import LocalContext, timer_event

        self.emulator = emulator
        self.start, self.end, self.period = start, end, period
        self.rng = random.Random(seed)
        self.options = options or Options()
        self.invoke = invoke or handler.handler
        self.before = before  # called before each slot: (sim, slot, nominal) -> scripted changes
        self._clock, self._timer_event, self._context = clock, timer_event, LocalContext
        self.deliveries: list[Delivery] = []
        self.calls: list[Call] = []
        self.requests: list[dict] = []
        self.figures: Counter[str] = Counter()
        self.wall = start
        self._group = 0
        self._stale: dict[int, list[tuple[int, datetime, datetime]]] = defaultdict(list)

    # -- running ----------------------------------------------------------------------------------------------
    def slots(self) -> Iterable[tuple[int, datetime]]:
        k, t = 0, self.start
        while t < self.end:
            yield k, t
            k += 1
            t = self.start + self.period * k

    def run(self) -> Simulation:
        opt, rng = self.options, self.rng
        drops_in_a_row = 0
        started = time.perf_counter()
        for k, nominal in self.slots():
            if self.before:
                self.before(self, k, nominal)
            for slot, event_time, first_nominal in self._stale.pop(k, []):
                self._deliver([(slot, first_nominal, event_time, "stale")], nominal)
            self.figures["slots"] += 1
            dropped = k in opt.force_drop or (
                k not in opt.no_drop and drops_in_a_row < opt.max_consecutive_drops and rng.random() < opt.drop_rate)
            if dropped:
                drops_in_a_row += 1
                self.figures["dropped"] += 1
                continue
            drops_in_a_row = 0
            event_time = nominal + _uniform(rng, opt.jitter)
            roll = rng.random()
            if roll < opt.concurrent_rate:
                self.figures["duplicates_concurrent"] += 1
                batch = [(k, nominal, event_time, "tick"), (k, nominal, event_time, "concurrent")]
            elif roll < opt.concurrent_rate + opt.concurrent_next_rate:
                self.figures["overlapping_next"] += 1
                nxt = nominal + self.period
                batch = [(k, nominal, event_time, "tick"), (k + 1, nxt, nxt + _uniform(rng, opt.jitter), "concurrent")]
            else:
                batch = [(k, nominal, event_time, "tick")]
            self._deliver(batch, nominal, late=rng.random() < opt.late_rate)
            if rng.random() < opt.repeat_rate:
                self.figures["duplicates_repeated"] += 1
                self._deliver([(k, nominal, event_time, "repeat")], nominal)
            if k in opt.force_stale or rng.random() < opt.stale_rate:
                self.figures["duplicates_stale"] += 1
                self._stale[k + opt.force_stale.get(k, rng.randint(1, 3))].append((k, event_time, nominal))
        self._clock.set_clock(None)
        self.figures["deliveries"] = len(self.deliveries)
        self.figures["status_calls"] = len(self.calls)
        self.elapsed = time.perf_counter() - started
        return self

    def _deliver(self, batch: list[tuple[int, datetime, datetime, str]], nominal: datetime, late: bool = False) -> None:
        opt, rng = self.options, self.rng
        self._group += 1
        latest = max(event_time for _, _, event_time, _ in batch)
        if late:
            self.figures["late_beyond_deadline"] += 1
            lag = opt.late_lag[0] + _uniform(rng, opt.late_lag[1] - opt.late_lag[0])
        else:
            lag = _uniform(rng, opt.lag)
            if lag:
                self.figures["lagged_within_deadline"] += 1
        # The wall clock never runs backwards: a delivery behind a late one queues after it (and a stale copy
        # arrives in the current slot, not at its own old time).
        self.wall = max(self.wall + timedelta(seconds=1), max(latest, nominal) + lag)
        fault = None
        if opt.fault_rate and rng.random() < opt.fault_rate:
            from dcs_emulator import Fault

            fault = opt.fault_kind
            self.emulator.inject(Fault(endpoint="status", kind=fault, times=1))
        wall, real_start = self.wall, time.time()
        self._clock.set_clock(self._clock.offset_clock(wall))
        deliveries = [Delivery(self._group, slot, nom, event_time, wall, kind, fault)
                      for slot, nom, event_time, kind in batch]
        if len(deliveries) == 1:
            self._run_one(deliveries[0])
        else:
            barrier = threading.Barrier(len(deliveries))
            threads = [threading.Thread(target=self._run_one, args=(d, barrier)) for d in deliveries]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        self.deliveries.extend(deliveries)
        if fault:
            self.emulator.clear_faults()  # unused (nothing was sent): it must not hit a later group
        entries = self.emulator.requests
        self.emulator.clear_log()
        self.requests.extend(entries)
        for e in entries:
            if e.get("endpoint") == "status" and e.get("authenticated") and isinstance(e.get("body"), dict):
                arrived = wall + timedelta(seconds=max(0.0, e["time"] - real_start))
                self.calls.append(Call(self._group, arrived, e["body"]["action"], list(e["body"]["instances"]),
                                       e.get("fault"), e.get("status")))
                if e.get("fault"):
                    self.figures[f"faults_hit_{e['fault']}"] += 1
        # The wall clock moved on in real time during the group.
        self.wall += timedelta(seconds=time.time() - real_start)

    def _run_one(self, d: Delivery, barrier: Optional[threading.Barrier] = None) -> None:
        event = self._timer_event(d.time)
        context = self._context(request_id=f"{d.kind}-{d.slot}-{uuid.uuid4().hex[:8]}")
        if barrier is not None:
            barrier.wait(timeout=30)
        d.summary = self.invoke(event, context)

    # -- analysis ------------------------------------------------------------------------------------------------
    def acts(self) -> list[Act]:
        """Every summary entry whose action this delivery sent to a status call (success, failed, unknown); not
        the reports of another delivery's claim (`handled_by`)."""
        out = []
        for d in self.deliveries:
            for sched in d.summary.get("schedules", []):
                for entry in sched["instances"]:
                    if entry["result"] in SENT and "occurrence" in entry and not entry.get("handled_by"):
                        out.append(Act(sched["name"], utc(entry["occurrence"]), entry["instance_id"],
                                       entry["action"], entry["result"], entry["reason"], d))
        return out

    def check_calls_match_summaries(self) -> None:
        """Per delivery group, the emulator's (instance, action) pairs equal the summaries' sent entries."""
        sent: dict[int, Counter] = defaultdict(Counter)
        for act in self.acts():
            sent[act.delivery.group][(act.instance, act.action)] += 1
        received: dict[int, Counter] = defaultdict(Counter)
        for call in self.calls:
            for iid in call.instances:
                received[call.group][(iid, call.action)] += 1
        for group in sorted(set(sent) | set(received)):
            assert sent[group] == received[group], (
                f"group {group}: summaries say {dict(sent[group])}, the emulator received {dict(received[group])}")

    def call_times(self) -> dict[tuple[str, str], list[datetime]]:
        """(instance, action) -> the simulated wall times the emulator received it."""
        out: dict[tuple[str, str], list[datetime]] = defaultdict(list)
        for call in self.calls:
            for iid in call.instances:
                out[(iid, call.action)].append(call.wall)
        return out

    def entries(self, schedule: str) -> list[tuple[Delivery, dict]]:
        """Every per-instance entry and every passed-occurrence entry of a schedule, with its delivery."""
        out = []
        for d in self.deliveries:
            for sched in d.summary.get("schedules", []):
                if sched["name"] == schedule:
                    out.extend((d, e) for e in sched["instances"])
                    out.extend((d, {**e, "instance_id": "*"}) for e in sched["occurrences"])
        return out

    def fates(self, schedule: str) -> dict[tuple[datetime, str], list[tuple[str, str]]]:
        """(occurrence, instance or '*') -> [(result, reason), ...] over the whole run."""
        out: dict[tuple[datetime, str], list[tuple[str, str]]] = defaultdict(list)
        for _d, e in self.entries(schedule):
            if "occurrence" in e:
                out[(utc(e["occurrence"]), e["instance_id"])].append((e["result"], e["reason"]))
        return out

    def processed_until(self) -> datetime:
        return max(d.time for d in self.deliveries)


def _uniform(rng: random.Random, span: timedelta) -> timedelta:
    """A whole number of seconds in [0, span]."""
    seconds = int(span.total_seconds())
    return timedelta(seconds=rng.randint(0, seconds)) if seconds > 0 else timedelta(0)


def fate_of(results: list[tuple[str, str]]) -> str:
    """An occurrence's final fate for one instance: done (an action was sent) beats missed beats skipped."""
    kinds = {r for r, _ in results}
    for fate in ("success", "unknown", "failed", "missed", "skipped"):
        if fate in kinds:
            return fate
    return "none"


def ledger_url_for(kind: str, tmp_path: Any, redis_server: Any = None) -> str:
    """A fresh LEDGER_URL: an SQLite file under tmp_path, or a unique key prefix on a test redis-server."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / ('ledger-' + uuid.uuid4().hex[:8] + '.sqlite3')}"
    return f"{redis_server.url}?prefix=dcsm-test-{uuid.uuid4().hex[:12]}:"
