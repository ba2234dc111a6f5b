"""A simulation driver: FunctionGraph TIMER ticks through handler.handler against the emulator, on a simulated clock.

It delivers one tick per period between two instants the way the platform might: on time or a little late
(jitter on the event's `time`, lag on the wall clock), sometimes not at all (dropped), sometimes twice (repeated
at once, two concurrent invocations, or a stale copy re-delivered a few ticks later), sometimes long after its time
(a backlog: the wall clock runs ahead and the following ticks queue behind it), and with a status-call fault
injected before some deliveries. Everything random comes from one seed.

Deliveries run in this process (threads for concurrent ones), or, with `Options(processes=N)`, in N worker
processes of the race harness (tests/race.py) sharing the ledger and the emulator, each delivery on a worker
chosen by the seed. Then the race faults of issue 10 join the mix (`race_rate`, `race_kinds`), each placed
deliberately on a slot where something is due (`busy`): a delivery whose status call is held (plain, throttled,
or 429 after it took effect) while a second delivery of the same tick runs to its end in another process; a
claim whose reply is lost (and whose release fails too, or not); a process killed between claim and call; an
event hours ahead of the wall clock. The slot after a race fault is never dropped or late, so that an occurrence
the fault left pending is looked at again in time; none is placed in the last `race_quiet` of the run, so that
a later tick can report every claim a fault left without an outcome.

It records every delivery (event time, wall clock, summary) and every status PUT the emulator received (with the
simulated wall time it arrived at), and analysis helpers turn them into facts a test can assert:
which (schedule, occurrence, instance) was acted on by which call, what each occurrence's fate was.

    sim = Simulation(emulator, start, end, seed=7, options=Options(drop_rate=0.05, repeat_rate=0.02, ...))
    sim.run()
    acts = sim.acts()          # one entry per action sent, attributed from the summaries
    sim.check_calls_match_summaries()
    sim.orphans()             # claims the race faults left without an outcome: each must be reported unknown later

Plain module (no pytest import at module level) so that it can be reused from a script.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import race

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
    kind: str  # tick | repeat | concurrent | stale | ahead (an extra event dated hours after the wall clock)
    fault: Optional[str] = None  # a fault injected on the status endpoint before this group
    summary: dict = field(default_factory=dict)
    race: Optional[str] = None  # the race fault this delivery suffered or staged (tests/race.py RACE_KINDS)
    worker: Optional[int] = None  # the worker process it ran in (None: this process)
    request_id: str = ""
    killed: bool = False  # its process was killed between claim and call: no summary
    fired: bool = False  # its race fault happened (the call was held, claims taken, the process killed, refused)
    orphaned: list[str] = field(default_factory=list)  # claim keys its fault left without an outcome


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
    processes: int = 0  # worker processes (tests/race.py); 0: every delivery runs in this process
    race_rate: float = 0.0  # the chance of a race fault at a busy slot (needs processes >= 2)
    race_kinds: tuple[str, ...] = race.RACE_KINDS  # chosen evenly, by the seed
    busy: Optional[Callable[[datetime], bool]] = None  # slot instants where something is due (None: every slot)
    race_quiet: timedelta = timedelta(hours=1)  # no race fault this close to the end of the run
    ahead: tuple[timedelta, timedelta] = (timedelta(hours=1), timedelta(hours=48))  # how far ahead an AHEAD event is
    overlap_transition: float = 60.0  # seconds actions last during an OVERLAP_THROTTLE_AFTER (see race.overlap)


class Simulation:
    """Drive `invoke(event, context)` (handler.handler) through every slot in [start, end) with `period`."""

    def __init__(self, emulator: Any, start: datetime, end: datetime, *, period: timedelta = timedelta(minutes=5),
                 seed: int = 0, options: Optional[Options] = None, invoke: Optional[Callable] = None,
                 before: Optional[Callable[[Simulation, int, datetime], None]] = None,
                 log_dir: Optional[Path] = None) -> None:
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
        # Status calls answered 429 before they took effect (the `throttle` fault): the function reads the status
        # back, finds it unchanged and gives the claims back, so they are not "sent" and a later tick sends them.
        self.throttled: list[Call] = []
        self.wall = start
        self._group = 0
        self._stale: dict[int, list[tuple[int, datetime, datetime]]] = defaultdict(list)
        self.log_dir = log_dir  # the worker processes' log lines (None: discarded)
        self.workers: Optional[race.Workers] = None
        if self.options.processes == 1:
            raise ValueError("Options(processes=) is 0 (this process) or at least 2: the deliveries of a concurrent "
                             "group, and a race fault's second delivery, run in distinct processes")
        if self.options.race_rate and not self.options.processes:
            raise ValueError("race faults need worker processes: Options(processes=2) or more")
        unknown = set(self.options.race_kinds) - set(race.RACE_KINDS)
        if unknown:
            raise ValueError(f"unknown race kinds {sorted(unknown)}; known: {race.RACE_KINDS}")

    # -- running ----------------------------------------------------------------------------------------------
    def slots(self) -> Iterable[tuple[int, datetime]]:
        k, t = 0, self.start
        while t < self.end:
            yield k, t
            k += 1
            t = self.start + self.period * k

    def run(self) -> Simulation:
        started = time.perf_counter()
        if self.options.processes:
            attributes = {}
            gateway = sys.modules.get("dcs_maintenance.gateway")
            if gateway is not None:  # the workers retry reads as this process would (a test may speed it up)
                attributes["dcs_maintenance.gateway.BACKOFF_BASE"] = gateway.BACKOFF_BASE
            self.workers = race.Workers(self.options.processes, log_dir=self.log_dir, attributes=attributes).start()
        try:
            self._run_slots()
        finally:
            self._clock.set_clock(None)
            if self.workers is not None:
                self.workers.close()
                self.figures["worker_restarts"] = self.workers.restarts
        self.figures["deliveries"] = len(self.deliveries)
        self.figures["status_calls"] = len(self.calls)
        self.elapsed = time.perf_counter() - started
        return self

    def _run_slots(self) -> None:
        opt, rng = self.options, self.rng
        drops_in_a_row = 0
        quiet_from = self.end - opt.race_quiet
        protected: set[int] = set()  # slots right after a race fault: never dropped, never late
        for k, nominal in self.slots():
            if self.before:
                self.before(self, k, nominal)
            for slot, event_time, first_nominal in self._stale.pop(k, []):
                self._deliver([(slot, first_nominal, event_time, "stale")], nominal)
            self.figures["slots"] += 1
            racing = None
            if opt.race_rate and nominal < quiet_from and (opt.busy is None or opt.busy(nominal)) \
                    and k not in opt.force_drop and rng.random() < opt.race_rate:
                racing = rng.choice(opt.race_kinds)
            dropped = racing is None and k not in protected and (k in opt.force_drop or (
                k not in opt.no_drop and drops_in_a_row < opt.max_consecutive_drops and rng.random() < opt.drop_rate))
            if dropped:
                drops_in_a_row += 1
                self.figures["dropped"] += 1
                continue
            drops_in_a_row = 0
            event_time = nominal + _uniform(rng, opt.jitter)
            if racing is not None:
                self.figures[f"race_{racing}"] += 1
                protected.add(k + 1)
                self._race(racing, k, nominal, event_time)
            else:
                # After a race fault the next slot is a plain tick in time: an occurrence the fault left pending
                # is looked at again within its deadline (a pair with the next slot would run 5 minutes late).
                roll = rng.random() if k not in protected else 1.0
                if roll < opt.concurrent_rate:
                    self.figures["duplicates_concurrent"] += 1
                    batch = [(k, nominal, event_time, "tick"), (k, nominal, event_time, "concurrent")]
                elif roll < opt.concurrent_rate + opt.concurrent_next_rate:
                    self.figures["overlapping_next"] += 1
                    nxt = nominal + self.period
                    batch = [(k, nominal, event_time, "tick"),
                             (k + 1, nxt, nxt + _uniform(rng, opt.jitter), "concurrent")]
                else:
                    batch = [(k, nominal, event_time, "tick")]
                late = rng.random() < opt.late_rate and k not in protected
                self._deliver(batch, nominal, late=late)
            if rng.random() < opt.repeat_rate:
                self.figures["duplicates_repeated"] += 1
                self._deliver([(k, nominal, event_time, "repeat")], nominal)
            if k in opt.force_stale or rng.random() < opt.stale_rate:
                self.figures["duplicates_stale"] += 1
                self._stale[k + opt.force_stale.get(k, rng.randint(1, 3))].append((k, event_time, nominal))

    def _race(self, kind: str, k: int, nominal: datetime, event_time: datetime) -> None:
        """One race fault at slot k (tests/race.py): the slot's tick suffers it, or (AHEAD) an extra event dated
        hours after the wall clock, on a busy instant, comes first and the slot's tick follows as usual."""
        if kind == race.AHEAD:
            low, high = (int(span / self.period) for span in self.options.ahead)
            ahead = nominal + self.period * self.rng.randint(max(low, 1), max(high, 1))
            for _ in range(24):  # the next busy instant: an event that would act early if it were believed
                if self.options.busy is None or self.options.busy(ahead):
                    break
                ahead += self.period
            self._deliver([(k, nominal, ahead, "ahead")], nominal, race_kind=kind)
            self._deliver([(k, nominal, event_time, "tick")], nominal)
        elif kind in race.OVERLAPS:
            self._deliver([(k, nominal, event_time, "tick"), (k, nominal, event_time, "concurrent")], nominal,
                          race_kind=kind)
        else:
            self._deliver([(k, nominal, event_time, "tick")], nominal, race_kind=kind)

    def _deliver(self, batch: list[tuple[int, datetime, datetime, str]], nominal: datetime, late: bool = False,
                 race_kind: Optional[str] = None) -> None:
        opt, rng = self.options, self.rng
        self._group += 1
        on_time = [event_time for _, _, event_time, kind in batch if kind != "ahead"]  # an AHEAD event's time is
        latest = max(on_time, default=nominal)  # not when it was delivered
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
        if race_kind is None and opt.fault_rate and rng.random() < opt.fault_rate:
            from dcs_emulator import Fault

            fault = opt.fault_kind
            self.emulator.inject(Fault(endpoint="status", kind=fault, times=1))
        wall, real_start = self.wall, time.time()
        self._clock.set_clock(self._clock.offset_clock(wall))
        deliveries = [Delivery(self._group, slot, nom, event_time, wall, kind, fault, race=race_kind,
                               request_id=f"{kind}-{slot}-{uuid.uuid4().hex[:8]}")
                      for slot, nom, event_time, kind in batch]
        if self.workers is not None:
            self._run_in_workers(deliveries, wall, race_kind)
        elif len(deliveries) == 1:
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
                call = Call(self._group, arrived, e["body"]["action"], list(e["body"]["instances"]), e.get("fault"),
                            e.get("status"))
                (self.throttled if e.get("fault") == "throttle" else self.calls).append(call)
                if e.get("fault"):
                    self.figures[f"faults_hit_{e['fault']}"] += 1
        # The wall clock moved on in real time during the group.
        self.wall += timedelta(seconds=time.time() - real_start)

    def _run_in_workers(self, deliveries: list[Delivery], wall: datetime, race_kind: Optional[str]) -> None:
        """The group's deliveries in distinct worker processes at once (chosen by the seed), each on the group's
        simulated clock as it reads when the delivery starts; a race fault staged as race.py does it."""
        workers = self.workers
        assert workers is not None
        group_clock = self._clock.offset_clock(wall)
        for d, index in zip(deliveries, self.rng.sample(range(workers.size), len(deliveries)), strict=True):
            d.worker = index

        def job(d: Delivery, fault: Optional[str] = None) -> race.Job:
            return race.Job(self._timer_event(d.time), group_clock(), d.request_id, fault)

        if race_kind in race.OVERLAPS:
            first, second = deliveries
            transition = self.options.overlap_transition if race_kind == race.OVERLAP_THROTTLE_AFTER else None
            staged = race.overlap(workers, self.emulator, race_kind, (first.worker, job(first)),
                                  (second.worker, job(second)), transition=transition)
            outcomes = [staged.first, staged.second]
            first.fired = staged.held
        else:
            fault = race_kind if race_kind in race.WORKER_FAULTS else None
            outcomes = workers.run_together([(d.worker, job(d, fault)) for d in deliveries])
        for d, out in zip(deliveries, outcomes, strict=True):
            if out.error:
                raise RuntimeError(f"handler.handler raised in worker {d.worker} ({d.request_id}):\n{out.error}")
            d.summary, d.killed, d.orphaned = out.summary, out.killed, list(out.orphaned)
            if race_kind in race.WORKER_FAULTS:
                d.fired = out.fired
            elif race_kind == race.AHEAD:
                d.fired = True
        if race_kind is not None and any(d.fired for d in deliveries):
            self.figures[f"race_{race_kind}_fired"] += 1

    def _run_one(self, d: Delivery, barrier: Optional[threading.Barrier] = None) -> None:
        event = self._timer_event(d.time)
        context = self._context(request_id=d.request_id)
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
        """(occurrence, instance or '*') -> [(result, reason), ...] over the whole run; pending reports (in
        flight, not sent, deferred: a later tick must say more) are not fates and are left out."""
        out: dict[tuple[datetime, str], list[tuple[str, str]]] = defaultdict(list)
        for _d, e in self.entries(schedule):
            if "occurrence" in e and not is_pending(e):
                out[(utc(e["occurrence"]), e["instance_id"])].append((e["result"], e["reason"]))
        return out

    def processed_until(self) -> datetime:
        """The latest event time delivered (an AHEAD event, refused, processes nothing)."""
        return max(d.time for d in self.deliveries if d.kind != "ahead")

    def orphans(self) -> dict[str, Delivery]:
        """Claim key -> the delivery whose race fault (a killed process, a lost reply whose claims could not be
        given back) left that claim without an outcome."""
        return {key: d for d in self.deliveries for key in d.orphaned}

    def unknown_reports(self) -> dict[str, list[tuple[Delivery, dict]]]:
        """Claim key -> the (delivery, entry) pairs that reported another invocation's claim `unknown`."""
        from dcs_maintenance.ledger.base import claim_key

        out: dict[str, list[tuple[Delivery, dict]]] = defaultdict(list)
        for d in self.deliveries:
            for sched in d.summary.get("schedules", []):
                for e in sched["instances"]:
                    if e["result"] == "unknown" and e.get("handled_by") and "occurrence" in e:
                        key = claim_key(sched["name"], e["occurrence"], e["instance_id"], e["action"])
                        out[key].append((d, e))
        return out

    def race_figures(self) -> dict[str, int]:
        """Per race fault family (tests/race.py FAMILIES): how many were staged and how many happened."""
        out: dict[str, int] = {}
        for family, kinds in race.FAMILIES.items():
            out[f"race_{family}"] = sum(self.figures[f"race_{k}"] for k in kinds)
            out[f"race_{family}_fired"] = sum(self.figures[f"race_{k}_fired"] for k in kinds)
        return out


def _uniform(rng: random.Random, span: timedelta) -> timedelta:
    """A whole number of seconds in [0, span]."""
    seconds = int(span.total_seconds())
    return timedelta(seconds=rng.randint(0, seconds)) if seconds > 0 else timedelta(0)


# A skipped entry that promises a later look (README "Time and state semantics": a claim in flight keeps its
# occurrence pending; claims given back are tried by the next tick; `not_sent: true`): not an occurrence's fate.
PENDING_WORDS = ("in flight", "next tick", "later tick", "deferred")


def is_pending(entry: dict) -> bool:
    return entry["result"] == "skipped" and (
        bool(entry.get("not_sent")) or any(word in entry["reason"] for word in PENDING_WORDS))


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
