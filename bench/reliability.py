"""Reliability under random API faults: many timer ticks, nothing sent twice, nothing lost.

An in-process DCS emulator (its clock follows the simulated time, so restarts settle between ticks) serves
two projects; the function's handler runs one TIMER tick every 5 simulated minutes with random faults of
every kind (http_error 500-504, throttle, slow beyond the read timeout, reset before / after the request
is processed, malformed answers, DCS errors, failed result entries) on the list, show and status calls,
seeded. Schedules: restart, soft_restart and flush one-shots, and a stop/start window, on disjoint groups
of instances (plus a protected instance that must never be touched). Then a few ticks without faults let
pending work finish.

The handler runs in worker processes of the race harness (tests/race.py), which share the SQLite ledger and
the emulator as function instances would, each delivery on a worker chosen by the seed. At ticks where
something is due, issue 10's race faults are added (`--race-rate`): a delivery whose status call is held
(plain, throttled 429 before it took effect, or 429 after it did) while a second delivery of the same tick runs
to its end in another process; a claim whose reply is lost, with and without its release failing; a process
killed between claim and call (the worker is started again); an event hours ahead of the wall clock, followed
by the tick's real delivery. `--processes 0` runs every delivery in this process instead (threads for
overlapping ones), without race faults, as before.

Independently of the function, the benchmark works out every (schedule, occurrence, instance) that should
have been acted on (the cron occurrences x the targets), and checks it against the emulator's request log
(what was SENT, each status PUT mapped to the occurrence current at its tick) and the returned summaries
(what was REPORTED):
- duplicates: a key sent more than once (the status PUT must never be re-sent, a claim never re-taken; a PUT
  answered 429 before it took effect is not sent: its claims are given back and a later tick sends it);
- lost: a key intended, not sent, and never reported with a final result (success, failed, unknown,
  missed, skipped for a reason that promises no later look: not "deferred", "transitional", "in flight",
  "next tick", not `not_sent`), nor covered by a reported error of its schedule at a tick where it was current;
- unexpected: a key sent that was not intended (a protected instance, a wrong occurrence);
- orphans: every claim a race fault left without an outcome must be reported `unknown` by a later summary;
- ahead: an event ahead of the wall clock is refused (`ok: false`) and sends nothing.
It exits 1 unless duplicates, lost, unexpected, orphans never reported unknown and ahead events not refused are
all 0 (and no tick ended in an internal error).

Usage: .venv/bin/python bench/reliability.py [--ticks N] [--fault-rate R] [--seed S] [--batch-size B]
                                              [--processes N] [--race-rate R] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):  # the project, and the race harness (tests/race.py)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import race  # noqa: E402  (tests/race.py, after the path above)

UTC = timezone.utc
AK, SK = "RELIAK0123456789", "RELISK-secret-value-0123456789"
# Status PUTs answered with these refused the whole request and executed nothing (issue 11): not sends. A 429 may
# come after the request took effect (a proxy throttling the answer): not listed here.
REFUSED_AS_A_WHOLE = frozenset(range(400, 500)) - {429}
P1, P2 = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday, on the hour
TICK = timedelta(minutes=5)
DRAIN_TICKS = 4  # fault-free ticks at the end: pending work completes or is reported missed
READ_TIMEOUT = 0.25
SLOW_DELAY = 0.4  # > READ_TIMEOUT: the answer arrives too late, the request was processed

# name -> (project, kind, cron or (stop, start), group, instances in the group)
SCHEDULES: dict[str, tuple[str, str, Any, str, int]] = {
    "restart-a": (P1, "restart", "0 * * * *", "a", 4),
    "soft-b": (P1, "soft_restart", "20 * * * *", "b", 3),
    "flush-c": (P1, "flush", "10,40 * * * *", "c", 3),
    "restart-d": (P2, "restart", "30 */2 * * *", "d", 5),
    "window-e": (P1, "window", ("45 * * * *", "55 * * * *"), "e", 3),
}
FAULT_KINDS: list[tuple[str, dict[str, Any]]] = [
    ("http_error", {"status": 500}), ("http_error", {"status": 502}), ("http_error", {"status": 503}),
    ("http_error", {"status": 504}), ("throttle", {}), ("throttle", {"retry_after": 1}),
    ("slow", {"delay": SLOW_DELAY}), ("reset_before", {}), ("reset_after", {}), ("malformed", {}),
    ("dcs_error", {"status": 400, "error_code": "DCS.4026"}), ("dcs_error", {"status": 400, "error_code": "DCS.4049"}),
]
FINAL = ("success", "failed", "unknown", "missed", "skipped")
# A skipped entry that promises a later look (in flight, claims given back for the next tick, deferred,
# transitional): not a final result; `not_sent: true` entries are intermediate too.
INTERMEDIATE_WORDS = ("deferred", "transitional", "in flight", "next tick", "later tick")


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_yaml() -> str:
    lines = ["schedules:"]
    for name, (project, kind, cron, group, _n) in SCHEDULES.items():
        lines.append(f"  - name: {name}")
        if kind == "window":
            lines.append(f"    window: {{stop: '{cron[0]}', start: '{cron[1]}'}}")
        else:
            lines.append(f"    action: {kind}")
            lines.append(f"    cron: '{cron}'")
        if kind == "flush":
            lines.append("    allow_flush: true")
        if project != P1:
            lines.append(f"    project_id: {project}")
        lines.append(f"    instances: {{tags: {{grp: '{group}'}}}}")
    return "\n".join(lines) + "\n"


def targets(name: str) -> list[str]:
    _project, _kind, _cron, group, count = SCHEDULES[name]
    return [f"{group}-{n}" for n in range(count)]


def occurrences(expr: str, start: datetime, end: datetime) -> list[datetime]:
    """Occurrences in (start, end], computed with plain croniter (UTC schedules: no DST policy involved)."""
    from croniter import croniter

    it, out = croniter(expr, start), []
    while True:
        occ = it.get_next(datetime)
        if occ > end:
            return out
        out.append(occ)


def latest(expr: str, t: datetime) -> datetime:
    from croniter import croniter

    return croniter(expr, t + timedelta(seconds=1)).get_prev(datetime)


class SimClock:
    """Monotonic seconds of the simulation: the tick's simulated instant plus real time since the tick began."""

    def __init__(self) -> None:
        self.base = 0.0
        self.real = time.monotonic()

    def set(self, sim_seconds: float) -> None:
        self.base, self.real = sim_seconds, time.monotonic()

    def __call__(self) -> float:
        return self.base + (time.monotonic() - self.real)


def due_at(at: datetime) -> bool:
    """Something is due at `at`: a one-shot occurrence or a window's stop or start (a race fault there meets claims
    and calls)."""
    for _project, kind, cron, _group, _count in SCHEDULES.values():
        for expr in (cron if kind == "window" else (cron,)):
            if latest(expr, at) == at:
                return True
    return False


def run(ticks: int, fault_rate: float, seed: int, batch_size: int, verbose: bool = False, processes: int = 3,
        race_rate: float = 0.1, log_dir: Path | None = None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="dcsm-reliability-"))
    os.environ["HOME"] = str(tmp)  # the SDK writes $HOME/.huaweicloud on import
    import handler
    from dcs_emulator import Emulator, Fault
    from dcs_maintenance import clock, gateway, invocation
    from dcs_maintenance.tools.local import LocalContext, timer_event

    (tmp / "schedules").mkdir()
    (tmp / "schedules" / "reliability.yaml").write_text(schedule_yaml())
    os.environ.update({
        "DCS_ENDPOINT": "", "DCS_REGION": "cn-north-4", "RUNTIME_PROJECT_ID": P1, "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK, "LEDGER_URL": f"sqlite:///{tmp / 'ledger.sqlite3'}",
        "SCHEDULES_DIR": str(tmp / "schedules"), "TICK_PERIOD": "5m", "BATCH_SIZE": str(batch_size),
        "DCS_CONNECT_TIMEOUT": "1", "DCS_READ_TIMEOUT": str(READ_TIMEOUT), "SAFETY_MARGIN": "1s", "LOG_LEVEL": "INFO",
    })
    for key in ("DCS_PROJECT_ID", "DRY_RUN", "PROTECT_TAG", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "API_TOKEN"):
        os.environ.pop(key, None)
    gateway.BACKOFF_BASE = 0.001  # backoff shape unchanged, sleeps of microseconds

    sim = SimClock()
    emu = Emulator(ak=AK, sk=SK, projects=[P1, P2], transition_delay=60.0, clock=sim, fault_seed=seed)
    emu.start()
    os.environ["DCS_ENDPOINT"] = emu.url
    for name, (project, _kind, _cron, group, _count) in SCHEDULES.items():
        for iid in targets(name):
            emu.add_instance(project, instance_id=iid, name=f"{name}-{iid}", tags={"grp": group})
    emu.add_instance(P1, instance_id="a-protected", name="restart-a-protected",
                     tags={"grp": "a", "maintenance-protect": "true"})

    # Faults: every kind on every endpoint, each with the same probability, so that a request meets a fault
    # with probability fault_rate overall.
    per_fault = 1 - (1 - fault_rate) ** (1 / len(FAULT_KINDS)) if fault_rate > 0 else 0.0
    faults = [Fault(endpoint=endpoint, kind=kind, times=None, probability=per_fault, **params)
              for endpoint in ("list", "show", "status") for kind, params in FAULT_KINDS]
    per_entries = 1 - (1 - fault_rate) ** 0.5 if fault_rate > 0 else 0.0
    faults.append(Fault(endpoint="status", kind="failed_entries", times=None, probability=per_entries))
    rng = random.Random(seed)
    workers = race.Workers(processes, log_dir=log_dir, attributes={"dcs_maintenance.gateway.BACKOFF_BASE": 0.001}
                           ).start() if processes else None
    races: Counter[str] = Counter()  # race kind -> staged; "<kind>_fired" -> happened
    orphans: dict[str, str] = {}  # claim key -> the request id whose fault left it without an outcome
    unknown_by: dict[str, set[str]] = {}  # claim key -> request ids of the claims later summaries reported unknown
    ahead_not_refused: list[str] = []

    sent: Counter[tuple[str, str, str, str]] = Counter()  # (schedule, occurrence, instance, action) -> sends
    reported: dict[tuple[str, str, str], str] = {}  # (schedule, occurrence, instance) -> first final result
    errored: set[tuple[str, str]] = set()  # (schedule, occurrence) reported as a schedule error at a tick
    already: set[tuple[str, str, str]] = set()  # window keys whose instance was in the desired state already
    window_seen: set[tuple[str, str]] = set()
    results: Counter[str] = Counter()
    deliveries: Counter[str] = Counter()
    log_entries: list[dict[str, Any]] = []
    internal_errors: list[str] = []
    group_of = {iid: name for name in SCHEDULES for iid in targets(name)}
    group_of["a-protected"] = "restart-a"
    log_sink = io.StringIO()
    started = time.monotonic()
    total_ticks = ticks + DRAIN_TICKS
    try:
        for step in range(total_ticks):
            at = T0 + TICK * step
            if step == ticks:
                emu.clear_faults()
            elif step == 0:
                for fault in faults:
                    emu.inject(fault)
            sim.set((at - T0).total_seconds())
            wall = at + timedelta(seconds=rng.uniform(0, 20))  # timer lag
            clock.set_clock(clock.offset_clock(wall))
            for name, (project, kind, cron, _group, _count) in SCHEDULES.items():
                occ = current_occurrence(name, at)
                if kind != "window" or (name, iso(occ)) in window_seen:
                    continue
                window_seen.add((name, iso(occ)))
                wanted = "CLOSED" if occ == latest(cron[0], at) else "RUNNING"
                for iid in targets(name):  # the emulator's own view (not an API request, not logged)
                    if emu.get_instance(project, iid)["status"] == wanted:
                        already.add((name, iso(occ), iid))
            busy = None  # now and then the cloud has an instance UPGRADING during a tick: retried at a later one
            if step < ticks and rng.random() < 0.08:
                name = rng.choice([n for n, spec in SCHEDULES.items() if spec[1] != "window"])
                candidate = rng.choice(targets(name))
                if emu.get_instance(SCHEDULES[name][0], candidate)["status"] == "RUNNING":
                    busy = (SCHEDULES[name][0], candidate)
                    emu.set_status(*busy, "UPGRADING")
            # The platform does not deduplicate: the same event may come twice, one after the other or at once.
            mode = "once" if step >= ticks else rng.choices(["once", "twice", "overlap"], [0.86, 0.08, 0.06])[0]
            if processes and step < ticks and due_at(at) and rng.random() < race_rate:
                mode = rng.choice(race.RACE_KINDS)  # issue 10's race faults, at a tick where something is due
                races[mode] += 1
            deliveries[mode] += 1
            event = timer_event(at)
            summaries: list[dict[str, Any]] = []
            if workers is not None:
                outcomes = deliver_in_workers(workers, emu, mode, step, at, wall, rng, races, ahead_not_refused)
                summaries = [out.summary for out in outcomes if not out.killed]
                for out in outcomes:
                    orphans.update((key, out.request_id) for key in out.orphaned)
            else:
                with contextlib.redirect_stdout(log_sink), contextlib.redirect_stderr(log_sink):
                    if mode == "overlap":
                        def invoke(event: dict = event, out: list = summaries) -> None:
                            out.append(handler.handler(event, LocalContext()))

                        threads = [threading.Thread(target=invoke) for _ in range(2)]
                        for thread in threads:
                            thread.start()
                        for thread in threads:
                            thread.join()
                    else:
                        for _ in range(2 if mode == "twice" else 1):
                            summaries.append(handler.handler(event, LocalContext()))
            if busy is not None:
                emu.set_status(*busy, "RUNNING")
            current = {name: current_occurrence(name, at) for name in SCHEDULES}
            tick_entries = emu.requests  # a deep copy: taken once per tick, then the log is emptied
            emu.clear_log()
            log_entries += tick_entries
            for entry in tick_entries:
                if entry.get("endpoint") != "status" or not entry.get("authenticated") or \
                        entry.get("fault") == "throttle":
                    continue  # throttled before it reached DCS: its claims are released and sent by a later tick
                body = entry["body"]
                if entry.get("status") in REFUSED_AS_A_WHOLE:
                    continue  # refused as a whole, nothing executed: its halves are sent under the same claims
                for iid in body["instances"]:
                    name = group_of.get(iid, "?")
                    sent[(name, iso(current[name]) if name in current else "?", iid, body["action"])] += 1
            for summary in summaries:
                account(summary, current, reported, errored, results, internal_errors)
                for sched in summary.get("schedules", []):
                    for inst in sched.get("instances", []):
                        if inst["result"] == "unknown" and inst.get("handled_by") and "occurrence" in inst:
                            key = f"{sched['name']}|{inst['occurrence']}|{inst['instance_id']}|{inst['action']}"
                            unknown_by.setdefault(key, set()).add(inst["handled_by"])
            if verbose and step % 50 == 0:
                print(f"tick {step}/{total_ticks} at {iso(at)}: ok={[s.get('ok') for s in summaries]}",
                      file=sys.stderr)
    finally:
        clock.set_clock(None)
        if workers is not None:
            workers.close()
        invocation.close_ledgers()
        emu.stop()
    elapsed = time.monotonic() - started
    orphans_unreported = sorted(key for key, holder in orphans.items() if holder not in unknown_by.get(key, ()))

    last_tick = T0 + TICK * (total_ticks - 1)  # the fault-free drain ticks act on their own occurrences too
    intended: set[tuple[str, str, str, str]] = set()
    for name, (_project, kind, cron, _group, _count) in SCHEDULES.items():
        if kind == "window":
            stops = occurrences(cron[0], T0 - TICK, last_tick)
            starts = occurrences(cron[1], T0 - TICK, last_tick)
            first = max(latest(cron[0], T0), latest(cron[1], T0))
            for occ, action in [(o, "stop") for o in stops] + [(o, "start") for o in starts] + [
                    (first, "stop" if first == latest(cron[0], T0) else "start")]:
                intended |= {(name, iso(occ), iid, action) for iid in targets(name)}
        else:
            for occ in occurrences(cron, T0 - TICK, last_tick):
                intended |= {(name, iso(occ), iid, kind) for iid in targets(name)}
    intended = {k for k in intended if (k[0], k[1], k[2]) not in already}
    sent_keys = set(sent)
    lost = sorted(k for k in intended - sent_keys
                  if (k[0], k[1], k[2]) not in reported and (k[0], k[1]) not in errored)
    unexpected = sorted(k for k in sent_keys - intended)
    faults_injected = sum(1 for e in log_entries if e.get("fault"))
    return {
        "ticks": total_ticks,
        "faulty_ticks": ticks,
        "fault_rate": fault_rate,
        "seed": seed,
        "requests": len(log_entries),
        "deliveries": dict(deliveries),
        "faults_injected": faults_injected,
        "faults_by_kind": dict(Counter(e["fault"] for e in log_entries if e.get("fault"))),
        "processes": processes,
        "race_rate": race_rate if processes else 0.0,
        "race_faults_by_kind": {kind: f"{races[kind + '_fired']}/{races[kind]}" for kind in race.RACE_KINDS},
        "race_faults_by_family": {family: f"{sum(races[k + '_fired'] for k in kinds)}/{sum(races[k] for k in kinds)}"
                                  for family, kinds in race.FAMILIES.items()},
        "worker_restarts": workers.restarts if workers is not None else 0,
        "actions_intended": len(intended),
        "actions_sent": len(sent_keys),
        "status_puts": sum(1 for e in log_entries if e.get("endpoint") == "status"),
        "duplicates_sent": sum(n - 1 for n in sent.values()),
        "actions_lost": len(lost),
        "unexpected_sent": len(unexpected),
        "not_sent_but_reported": len(intended - sent_keys) - len(lost),
        "unknown_reported": sum(1 for result in reported.values() if result == "unknown"),
        "claims_orphaned": len(orphans),
        "orphans_reported_unknown": len(orphans) - len(orphans_unreported),
        "orphans_unreported": len(orphans_unreported),
        "ahead_not_refused": len(ahead_not_refused),
        "results": dict(results),
        "internal_errors": len(internal_errors),
        "seconds": round(elapsed, 1),
        "lost_examples": lost[:5],
        "unexpected_examples": unexpected[:5],
        "duplicate_examples": [k for k, n in sent.items() if n > 1][:5],
        "orphan_unreported_examples": orphans_unreported[:5],
        "ahead_not_refused_examples": ahead_not_refused[:3],
        "internal_error_examples": internal_errors[:3],
    }


def deliver_in_workers(workers: race.Workers, emu: Any, mode: str, step: int, at: datetime, wall: datetime,
                       rng: random.Random, races: Counter, ahead_not_refused: list[str]) -> list[race.Outcome]:
    """One tick's deliveries in worker processes, on the tick's simulated wall clock: once, twice (one after the
    other), overlap (two at once), or one of issue 10's race faults (race.RACE_KINDS)."""
    from dcs_maintenance import clock
    from dcs_maintenance.tools.local import timer_event

    tick_clock = clock.offset_clock(wall)
    pick = rng.sample(range(workers.size), 2)

    def job(tag: str, when: datetime = at, fault: str | None = None) -> race.Job:
        return race.Job(timer_event(when), tick_clock(), f"{tag}-{step}-{rng.getrandbits(32):08x}", fault)

    if mode == "once":
        return [workers.run(pick[0], job("tick"))]
    if mode == "twice":
        return [workers.run(pick[0], job("tick")), workers.run(pick[1], job("repeat"))]
    if mode == "overlap":
        return workers.run_together([(pick[0], job("tick")), (pick[1], job("concurrent"))])
    if mode in race.OVERLAPS:
        staged = race.overlap(workers, emu, mode, (pick[0], job("tick")), (pick[1], job("concurrent")))
        races[mode + "_fired"] += staged.held
        return [staged.first, staged.second]
    if mode in race.WORKER_FAULTS:
        out = workers.run(pick[0], job("tick", fault=mode))
        races[mode + "_fired"] += out.fired
        return [out]
    assert mode == race.AHEAD, mode
    when = race.ahead_of(wall, rng=rng).replace(second=0, microsecond=0)
    when -= timedelta(minutes=when.minute % 5)
    for _ in range(24):  # the next instant where something is due: acting on it would act early
        if due_at(when):
            break
        when += TICK
    before = len(emu.requests)
    ahead = workers.run(pick[0], job("ahead", when))
    calls = [e for e in emu.requests[before:] if e.get("endpoint") == "status"]
    refused = ahead.summary.get("ok") is False and not ahead.summary.get("schedules") and not calls
    races[mode + "_fired"] += 1
    if not refused:
        ahead_not_refused.append(f"{iso(when)} at wall {iso(wall)}: {ahead.summary.get('counts')}, "
                                 f"{len(calls)} call(s)")
    return [ahead, workers.run(pick[1], job("tick"))]


def account(summary: dict[str, Any], current: dict[str, datetime], reported: dict, errored: set, results: Counter,
            internal_errors: list[str]) -> None:
    """What one summary reported: final per-instance results, occurrence-level results, schedule errors."""
    for error in summary.get("errors", []):
        if "internal error" in error:
            internal_errors.append(error)
    for sched in summary.get("schedules", []):
        name = sched["name"]
        if sched["decision"] == "error" and SCHEDULES[name][1] == "window":
            # A window retries on every tick until its next occurrence; a schedule error at a tick is its report.
            # (A one-shot must end with an instance- or occurrence-level result: it is retried, then "missed".)
            errored.add((name, iso(current[name])))
        for occ in sched.get("occurrences", []):
            for iid in targets(name):
                reported.setdefault((name, occ["occurrence"], iid), occ["result"])
        for inst in sched.get("instances", []):
            results[inst["result"]] += 1
            if inst["result"] == "skipped" and (inst.get("not_sent")
                                                or any(w in inst["reason"] for w in INTERMEDIATE_WORDS)):
                continue
            reported.setdefault((name, inst.get("occurrence", ""), inst["instance_id"]), inst["result"])


def current_occurrence(name: str, at: datetime) -> datetime:
    """The occurrence a status PUT at tick `at` belongs to: the latest at or before the tick (for a window, the
    latest stop or start). One-shot occurrences are >= 20 minutes apart, more than starting_deadline (10m)."""
    _project, kind, cron, _group, _count = SCHEDULES[name]
    if kind == "window":
        return max(latest(cron[0], at), latest(cron[1], at))
    return latest(cron, at)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=600, help="ticks with faults (5 simulated minutes apart)")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="probability that a request meets a fault")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--processes", type=int, default=3,
                        help="worker processes running the handler (0: this process, without race faults)")
    parser.add_argument("--race-rate", type=float, default=0.1,
                        help="probability of a race fault at a tick where something is due")
    parser.add_argument("--log-dir", type=Path, help="where the workers' log lines go (default: discarded)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.ticks < 1 or not 0 <= args.fault_rate < 1 or not 0 <= args.race_rate <= 1:
        parser.error("--ticks must be >= 1, --fault-rate within [0, 1) and --race-rate within [0, 1]")
    if args.processes == 1 or args.processes < 0:
        parser.error("--processes is 0 (this process) or at least 2 (overlapping deliveries run in distinct ones)")
    figures = run(args.ticks, args.fault_rate, args.seed, args.batch_size, args.verbose, args.processes,
                  args.race_rate, args.log_dir)
    failed = figures["duplicates_sent"] or figures["actions_lost"] or figures["unexpected_sent"] or \
        figures["internal_errors"] or figures["orphans_unreported"] or figures["ahead_not_refused"]
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for label in ("ticks", "faulty_ticks", "fault_rate", "seed", "processes", "race_rate", "deliveries",
                      "requests", "faults_injected", "faults_by_kind", "race_faults_by_family", "race_faults_by_kind",
                      "worker_restarts", "actions_intended", "actions_sent", "status_puts", "not_sent_but_reported",
                      "duplicates_sent", "actions_lost", "unexpected_sent", "unknown_reported", "claims_orphaned",
                      "orphans_reported_unknown", "ahead_not_refused", "internal_errors", "results", "seconds"):
            print(f"RESULT reliability | {label.replace('_', ' ')} | {figures[label]}")
        for label in ("lost_examples", "unexpected_examples", "duplicate_examples", "orphan_unreported_examples",
                      "ahead_not_refused_examples", "internal_error_examples"):
            if figures[label]:
                print(f"RESULT reliability | {label.replace('_', ' ')} | {figures[label]}")
    print(f"RESULT reliability | verdict | {'FAIL' if failed else 'PASS'}: {figures['duplicates_sent']} duplicates, "
          f"{figures['actions_lost']} lost, {figures['unexpected_sent']} unexpected, {figures['unknown_reported']} "
          f"unknown reported ({figures['orphans_reported_unknown']} of {figures['claims_orphaned']} orphaned claims), "
          f"{figures['orphans_unreported']} orphaned claims never reported")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
