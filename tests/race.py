"""A race harness: overlapping invocations of handler.handler in SEPARATE PROCESSES, one ledger, one emulator.

The orchestrator (a test, the month simulation, bench/reliability.py) owns the emulator and decides what
overlaps; worker processes only run `handler.handler(event, context)`, as function instances would, each on the
simulated wall clock the job gives it (`clock.set_clock(clock.offset_clock(wall))`), all against the same ledger
(an SQLite file or a real redis-server, from LEDGER_URL) and the same emulator (over HTTP, through the SDK).
Each worker keeps its warm state (ledger connection, schedule cache, next-fire cache) between jobs, like a warm
function instance, and another worker does not see it.

Workers are started once and reused: a month is ~9,000 deliveries. They are forked from multiprocessing's
fork server, which has imported the function and the SDK once (PRELOAD), so a new worker (the first ones, or
one restarted after it was killed on purpose) costs milliseconds, not an interpreter start and an SDK import.

A job may carry a fault that happens INSIDE the worker, where only a separate process can make it real:
- LOST_REPLY: the ledger takes the claims, then the caller gets LedgerError (a Redis connection dropped after
  SET NX: the claims exist, the reply is lost); the function gives them back;
- LOST_REPLY_NO_RELEASE: the same, and giving them back fails too: the claims stay without an outcome;
- KILLED: the process exits hard (os._exit) right after its claims were taken, before any status call; the
  orchestrator restarts the worker.
Each outcome says which claims the fault left without an outcome (`orphaned`): a later tick must report each
of them `unknown`, never send it and never drop it.

The faults that need the orchestrator (the emulator is in its process) are functions here too:
- overlap(): one delivery's status call is held in the emulator (plain, throttled 429 before the request took
  effect, or 429 after it did) while a second delivery of the same tick runs to its end in another worker;
- an event ahead of the wall clock needs no help: a job whose event time is hours after its wall.

    with Workers(3, log_dir=tmp_path) as workers:     # env: this process's os.environ at start()
        out = workers.run(0, Job(timer_event(t), wall=t, request_id="tick-1", fault=KILLED))
        assert out.killed and out.orphaned

Plain module (no pytest import) so that bench/reliability.py can use it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Optional

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# Faults a worker makes itself.
LOST_REPLY = "lost_claim_reply"
LOST_REPLY_NO_RELEASE = "lost_claim_reply_release_fails"
KILLED = "killed_after_claim"
WORKER_FAULTS = (LOST_REPLY, LOST_REPLY_NO_RELEASE, KILLED)
KILLED_EXIT = 77  # the exit status of a worker killed on purpose (anything else is a crash)

# Overlaps the orchestrator stages: the fault injected on the held status call (None: the reply is only late).
OVERLAP_HELD = "overlap_held"
OVERLAP_THROTTLE = "overlap_throttle"  # 429 before the request took effect: nothing happened
OVERLAP_THROTTLE_AFTER = "overlap_throttle_after"  # 429 after it took effect (a proxy throttled the answer)
OVERLAPS = {OVERLAP_HELD: None, OVERLAP_THROTTLE: "throttle", OVERLAP_THROTTLE_AFTER: "throttle_after"}

AHEAD = "ahead_of_wall_clock"  # an event dated hours after the worker's wall clock
RACE_KINDS = (*OVERLAPS, *WORKER_FAULTS, AHEAD)
FAMILIES = {  # the fault kinds of issue 10's proof, and the variants that make each
    "overlaps_a_throttled_call": tuple(OVERLAPS),
    "claim_reply_lost": (LOST_REPLY, LOST_REPLY_NO_RELEASE),
    "killed_between_claim_and_call": (KILLED,),
    "event_ahead_of_wall_clock": (AHEAD,),
}

# What the fork server imports once, so that every worker starts warm: the function, the SDK it loads when
# something is due, both ledger backends, and this module (the workers' code).
PRELOAD = ("handler", "dcs_maintenance.gateway", "huaweicloudsdkdcs.v2", "huaweicloudsdkcore.auth.credentials",
           "dcs_maintenance.ledger.sqlite", "dcs_maintenance.ledger.redis", "dcs_maintenance.tools.local", "race")

# The emulator's transitional statuses and where each settles (dcs_emulator/state.py: an accepted action's
# status for `restart_seconds`, then RUNNING, or CLOSED after a stop).
SETTLED = {"RESTARTING": "RUNNING", "FLUSHING": "RUNNING", "STARTING": "RUNNING", "CLOSING": "CLOSED"}


@dataclass(frozen=True)
class Job:
    """One invocation for a worker: the event, the simulated wall clock at its start, its request id, and a
    fault to suffer inside the worker (None, LOST_REPLY, LOST_REPLY_NO_RELEASE, KILLED)."""

    event: dict
    wall: datetime
    request_id: str
    fault: Optional[str] = None


@dataclass
class Outcome:
    """What a job came to. `summary` is handler.handler's answer ({} when the worker was killed)."""

    worker: int = -1
    request_id: str = ""
    summary: dict = field(default_factory=dict)
    fault: Optional[str] = None
    fired: bool = False  # the fault happened: claims were taken (and their reply lost, or the process killed)
    killed: bool = False
    taken: list[str] = field(default_factory=list)  # claim keys this job's ledger took, for a job with a fault
    orphaned: list[str] = field(default_factory=list)  # of those, the ones the fault left without an outcome
    error: Optional[str] = None  # a traceback: handler.handler raised (it must never)


class Workers:
    """`size` worker processes, each serving jobs one at a time over its own pipe; indices 0..size-1.

    `env` (default: os.environ when started) is each worker's whole environment: the function reads its
    settings from it. `log_dir` receives each worker's JSON log lines (worker-<i>.log; None: discarded).
    `attributes` are module attributes set in every worker before its first job, e.g.
    {"dcs_maintenance.gateway.BACKOFF_BASE": 0.001}.
    """

    def __init__(self, size: int = 2, *, env: Optional[Mapping[str, str]] = None, log_dir: Optional[Path] = None,
                 attributes: Optional[Mapping[str, Any]] = None) -> None:
        if size < 1:
            raise ValueError("Workers needs at least one process")
        self.size = size
        self.env = dict(env) if env is not None else None
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.attributes = dict(attributes or {})
        self.restarts = 0  # workers started again after a KILLED job
        self._procs: list[Any] = [None] * size
        self._conns: list[Any] = [None] * size
        self._busy: list[Optional[Job]] = [None] * size

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> Workers:
        if self.env is None:
            self.env = dict(os.environ)
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.size):
            self._spawn(index)
        return self

    def close(self) -> None:
        for index, conn in enumerate(self._conns):
            if conn is None:
                continue
            with contextlib.suppress(OSError):
                conn.send(None)
            proc = self._procs[index]
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            conn.close()
            self._conns[index] = self._procs[index] = None

    def __enter__(self) -> Workers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_path(self, index: int) -> Optional[Path]:
        return self.log_dir / f"worker-{index}.log" if self.log_dir is not None else None

    def _spawn(self, index: int) -> None:
        ctx = _context()
        parent, child = ctx.Pipe()
        log = self.log_path(index)
        proc = ctx.Process(target=_serve, args=(child, self.env, str(log) if log else None, self.attributes),
                           name=f"race-worker-{index}", daemon=True)
        with _fork_server_path():
            proc.start()
        child.close()
        self._procs[index], self._conns[index] = proc, parent

    # -- jobs ------------------------------------------------------------------------------------------------------
    def submit(self, index: int, job: Job) -> None:
        """Start `job` on worker `index` (which must be idle) without waiting for it."""
        if self._busy[index] is not None:
            raise RuntimeError(f"worker {index} is still running a job")
        self._busy[index] = job
        self._conns[index].send(job)

    def done(self, index: int) -> bool:
        """True when worker `index` has an answer (or died)."""
        return self._conns[index].poll(0)

    def collect(self, index: int, timeout: float = 120.0) -> Outcome:
        """The outcome of the job running on worker `index`; a worker killed on purpose is started again."""
        job, conn = self._busy[index], self._conns[index]
        if job is None:
            raise RuntimeError(f"worker {index} has no job")
        if not conn.poll(timeout):
            raise TimeoutError(f"worker {index} gave no answer in {timeout:.0f}s to {job.request_id} "
                               f"(its log: {self.log_path(index)})")
        try:
            out: Outcome = conn.recv()
        except EOFError:
            code = self._reap(index)
            raise RuntimeError(f"worker {index} died (exit status {code}) running {job.request_id} "
                               f"(its log: {self.log_path(index)})") from None
        self._busy[index] = None
        out.worker = index
        if out.killed:
            code = self._reap(index)
            if code != KILLED_EXIT:
                raise RuntimeError(f"worker {index} was to exit {KILLED_EXIT} after its claims, exited {code}")
            self.restarts += 1
            self._spawn(index)
        return out

    def run(self, index: int, job: Job, timeout: float = 120.0) -> Outcome:
        self.submit(index, job)
        return self.collect(index, timeout)

    def run_together(self, assignments: Iterable[tuple[int, Job]], timeout: float = 120.0) -> list[Outcome]:
        """Jobs on distinct workers at once (an overlapping or concurrent delivery); outcomes in the same order."""
        pairs = list(assignments)
        if len({index for index, _ in pairs}) != len(pairs):
            raise ValueError("run_together needs a distinct worker per job")
        for index, job in pairs:
            self.submit(index, job)
        return [self.collect(index, timeout) for index, _ in pairs]

    def _reap(self, index: int) -> Optional[int]:
        proc, conn = self._procs[index], self._conns[index]
        proc.join(timeout=10)
        conn.close()
        self._busy[index] = None
        self._procs[index] = self._conns[index] = None
        return proc.exitcode


# -- the orchestrator's faults ---------------------------------------------------------------------------------
@dataclass
class Overlap:
    """An overlap's two outcomes, and whether the first delivery's status call was held while the second ran."""

    first: Outcome
    second: Outcome
    held: bool


def overlap(workers: Workers, emulator: Any, variant: str, first: tuple[int, Job], second: tuple[int, Job],
            transition: Optional[float] = None, timeout: float = 60.0) -> Overlap:
    """"A delivery that overlaps a throttled call": `first` runs until its status call reaches the emulator,
    which holds it (processed, only the answer waits; throttled 429 before anything happened; or processed and
    then answered 429); `second`, a delivery of the same tick, runs to its end in another worker meanwhile;
    then the call is released and `first` finishes.

    If `first` makes no status call (nothing was due for it), nothing is held: the hold is released and the fault
    withdrawn, and `second` runs after it. (The emulator has no way to drop an unused hold: released, it stays
    until the next status call passes through it; should that be the next overlap's first call, that overlap
    is not held either and says so, `held=False`.)

    For OVERLAP_THROTTLE_AFTER against an emulator whose transitions are instant, pass `transition` (seconds):
    actions last that long during the overlap (a restart is never instant in DCS, and the read-back after a 429
    must see it), and every instance still in transition after it is settled."""
    from dcs_emulator import Fault

    kind = OVERLAPS[variant]
    fault = inject_first(emulator, Fault(endpoint="status", kind=kind, times=1)) if kind else None
    delay = emulator.transition_delay
    if transition is not None:
        emulator.transition_delay = transition
    mark = len(emulator.requests)
    hold = emulator.hold("status", timeout=timeout)
    (i, job_a), (j, job_b) = first, second
    try:
        workers.submit(i, job_a)
        deadline = time.monotonic() + timeout
        while not hold.reached.is_set() and not workers.done(i):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{job_a.request_id}: neither a status call nor an answer in {timeout:.0f}s")
            hold.wait_reached(0.002)
        held = hold.reached.is_set()
        if held:
            second_out = workers.run(j, job_b, timeout)
            hold.release()
            first_out = workers.collect(i, timeout)
        else:
            hold.release()  # unused: a later status call passes straight through it
            first_out = workers.collect(i, timeout)
            second_out = workers.run(j, job_b, timeout)
    finally:
        hold.release()
        if fault is not None:
            withdraw(emulator, fault)
        if transition is not None:
            emulator.transition_delay = delay
            settle(emulator, emulator.requests[mark:])
    return Overlap(first_out, second_out, held)


def inject_first(emulator: Any, fault: Any) -> Any:
    """Inject `fault` ahead of the faults already pending: the next matching request takes it."""
    pending = emulator.faults()
    emulator.clear_faults()
    emulator.inject(fault)
    for other in pending:
        emulator.inject(other)
    return fault


def withdraw(emulator: Any, fault: Any) -> None:
    """Remove `fault` if it is still pending (unused), keeping the others in order."""
    pending = emulator.faults()
    if any(f is fault for f in pending):
        emulator.clear_faults()
        for other in pending:
            if other is not fault:
                emulator.inject(other)


def settle(emulator: Any, entries: Iterable[dict]) -> None:
    """Every instance named in these status calls that is still in a transitional state takes its settled
    state now (the transition it started has run its course)."""
    for entry in entries:
        if entry.get("endpoint") != "status" or not isinstance(entry.get("body"), dict):
            continue
        for iid in entry["body"].get("instances", []):
            try:
                status = emulator.get_instance(entry["project_id"], iid)["status"]
            except KeyError:
                continue
            if status in SETTLED:
                emulator.set_status(entry["project_id"], iid, SETTLED[status])


def ahead_of(wall: datetime, low: timedelta = timedelta(hours=1), high: timedelta = timedelta(hours=48),
             rng: Any = None) -> datetime:
    """An event time hours after `wall` (a whole number of minutes between low and high)."""
    import random

    rng = rng or random.Random()
    minutes = rng.randint(int(low.total_seconds() // 60), int(high.total_seconds() // 60))
    return wall + timedelta(minutes=minutes)


# -- inside a worker ---------------------------------------------------------------------------------------------
def _serve(conn: Any, env: Mapping[str, str], log: Optional[str], attributes: Mapping[str, Any]) -> None:
    """A worker's life: become a function instance with `env`, then run jobs until told to stop."""
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)  # the function's JSON log lines (stdout) and anything on stderr
    os.dup2(fd, 2)
    os.close(fd)
    for dotted, value in attributes.items():
        module, _, name = dotted.rpartition(".")
        setattr(__import__(module, fromlist=[name]), name, value)
    from dcs_maintenance import invocation

    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            conn.send(_run(job, conn))
    finally:
        invocation.close_ledgers()


def _run(job: Job, conn: Any) -> Outcome:
    import handler
    from dcs_maintenance import clock
    from dcs_maintenance.tools.local import LocalContext

    clock.set_clock(clock.offset_clock(job.wall))
    clock.set_as_of(None)
    out = Outcome(request_id=job.request_id, fault=job.fault)
    try:
        with _armed(job.fault, out, conn):
            out.summary = handler.handler(job.event, LocalContext(request_id=job.request_id))
    except BaseException:
        out.error = traceback.format_exc()
    finally:
        clock.set_clock(None)
        sys.stdout.flush()
    return out


class _armed:
    """Patches the worker's ledger (the object handler.handler will use) for one job's fault."""

    def __init__(self, fault: Optional[str], out: Outcome, conn: Any) -> None:
        self.fault, self.out, self.conn = fault, out, conn
        self.ledger: Any = None
        self.recorded: set[str] = set()
        self.released: set[str] = set()

    def __enter__(self) -> _armed:
        if self.fault is None:
            return self
        if self.fault not in WORKER_FAULTS:
            raise ValueError(f"unknown worker fault {self.fault!r}; one of {WORKER_FAULTS}")
        from dcs_maintenance import invocation
        from dcs_maintenance.ledger.base import LedgerError
        from dcs_maintenance.settings import load_settings

        ledger = self.ledger = invocation.ledger_for(load_settings())
        claim, record, release = ledger.claim_many, ledger.record_many, ledger.release_many
        out = self.out

        def claim_many(keys: list[str], holder: str, *args: Any, **kwargs: Any) -> list[bool]:
            won = claim(keys, holder, *args, **kwargs)
            mine = [key for key, ok in zip(keys, won, strict=True) if ok]
            out.taken.extend(mine)
            if self.fault == KILLED and mine:
                out.fired = out.killed = True
                out.orphaned = self.orphans()
                self.conn.send(out)
                os._exit(KILLED_EXIT)  # no finally, no flush, no ledger write: a process killed between claim and call
            if self.fault in (LOST_REPLY, LOST_REPLY_NO_RELEASE):
                out.fired = True
                raise LedgerError("connection lost while reading the reply to the claims (race harness)")
            return won

        def record_many(outcomes: dict, *args: Any, **kwargs: Any) -> None:
            record(outcomes, *args, **kwargs)
            self.recorded.update(outcomes)

        def release_many(keys: list[str], holder: str) -> None:
            if self.fault == LOST_REPLY_NO_RELEASE:
                raise LedgerError("connection refused (race harness)")
            release(keys, holder)
            self.released.update(keys)

        ledger.claim_many, ledger.record_many, ledger.release_many = claim_many, record_many, release_many
        return self

    def orphans(self) -> list[str]:
        return [key for key in self.out.taken if key not in self.recorded and key not in self.released]

    def __exit__(self, *exc: object) -> None:
        if self.ledger is not None:
            for name in ("claim_many", "record_many", "release_many"):
                vars(self.ledger).pop(name, None)  # back to the class's methods
            self.out.orphaned = self.orphans()


# -- the fork server ---------------------------------------------------------------------------------------------
def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))  # takes effect when the fork server starts (once per process)
    return ctx


class _fork_server_path:
    """PYTHONPATH for the fork server's start: it imports PRELOAD before it learns the parent's sys.path
    (multiprocessing's forkserver ignores it), so the project and tests/ must be on its path from the start."""

    def __enter__(self) -> None:
        self.saved = os.environ.get("PYTHONPATH")
        parts = [str(ROOT), str(TESTS)] + ([self.saved] if self.saved else [])
        os.environ["PYTHONPATH"] = os.pathsep.join(parts)

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = self.saved
