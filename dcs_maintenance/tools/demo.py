"""The README's main command: a weekend night of maintenance against the local emulator.

It starts the emulator in this process with demo/seed.json, points the function at it (real SDK,
real HTTP, signed requests), and runs the function's TIMER handler every 5 minutes of simulated
time with the example schedules, printing each tick that did something.

With real Redis (`--redis`, the default when `redis-server` is installed) every instance is a
`redis-server` process: keys are written into each one before the first tick, the stopped instance
is probed while it is stopped (connections refused), and afterwards the data is checked against
what DCS promises: a flushed instance is empty, an instance with AOF persistence keeps its data
across a restart, one without persistence loses it, untouched instances keep theirs. Each claim is
printed with ok/FAILED and the command exits non-zero when one does not hold.

It also rolls a restart through a fleet of eight web caches in a project of their own
(demo/schedules/web-fleet-rolling-restart.yaml, added to a copy of the example schedules): a
canary, then two at a time, each instance taking a minute or two to come back (the emulator's
`restart_seconds`), and one that never does (`never_back`). The function waits for each wave in
simulated time (clock.SteppedClock: its sleeps jump, the emulator's clock follows). Its claims are
checked from the emulator's own log and status samples: the waves went out in plan order, one wave
down at a time, never more than the batch, and the halt stopped the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

from dcs_maintenance import clock

ROOT = Path(__file__).resolve().parents[2]
DEMO_AK, DEMO_SK = "DEMOACCESSKEY00000000", "demo-secret-key-not-a-real-one"
DEMO_PROJECT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
FLEET_PROJECT = "1a2b3c4d5e6f708192a3b4c5d6e7f801"  # the rolling restart's fleet (demo/seed.json)
FLEET_SCHEDULE = "web-fleet-rolling-restart"
DEMO_SCHEDULES = ROOT / "demo" / "schedules"
DEFAULT_START = datetime(2026, 12, 5, 18, 0, tzinfo=timezone.utc)  # Saturday evening
DEFAULT_HOURS = 38.0
KEYS_PER_INSTANCE = 100
CANARY = "demo:canary"
ACTIONS = {"restarts": "restart", "soft_restarts": "soft_restart", "flushes": "flush", "stops": "stop",
           "starts": "start"}
ENV_KEYS = ("DCS_ENDPOINT", "DCS_REGION", "RUNTIME_PROJECT_ID", "DCS_PROJECT_ID", "HUAWEICLOUD_SDK_AK",
            "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "LEDGER_URL", "SCHEDULES_DIR", "LOG_LEVEL",
            "NOTIFY_SMN_TOPIC_URN", "SMN_ENDPOINT", "DRY_RUN", "TICK_PERIOD")


def _time(text: str) -> datetime:
    from dcs_maintenance.events import EventError, parse_time

    try:
        return parse_time(text, "--from")
    except EventError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not 0 < value <= 24 * 31:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 and at most {24 * 31} (a month)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", type=_time, default=None, metavar="ISO8601",
                        help=f"first tick (default {DEFAULT_START.isoformat()}, a Saturday evening)")
    parser.add_argument("--hours", type=_hours, default=DEFAULT_HOURS,
                        help=f"how many hours of 5-minute ticks (default {DEFAULT_HOURS:g})")
    parser.add_argument("--redis", action=argparse.BooleanOptionalAction, default=None,
                        help="back every instance with a real redis-server and check the data afterwards "
                             "(default: when redis-server is installed)")
    parser.add_argument("--seed", default=str(ROOT / "demo" / "seed.json"), metavar="FILE",
                        help="emulator seed: a JSON file with the instances (default demo/seed.json)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="keep the night's ledger and schedules in DIR (a new or empty folder), to read them "
                             "afterwards with `history` and `calendar` (default: a temporary folder, removed)")


def redis_available() -> Optional[str]:
    """The redis-server binary the emulator would use, or None."""
    try:
        from dcs_emulator.redis_backend import find_redis_server

        return find_redis_server()
    except (ImportError, RuntimeError):
        return None


class RedisData:
    """Writes keys into every instance's redis-server, probes stopped ones, and checks the data at the end."""

    def __init__(self, emulator: Any, project: str) -> None:
        self.emu = emulator
        self.project = project
        self.before: dict[str, int] = {}
        self.probes: dict[str, dict[str, Any]] = {}

    def _client(self, inst: dict[str, Any]) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(host=inst["ip"], port=int(inst["port"]), socket_connect_timeout=1, socket_timeout=2,
                           retry=Retry(NoBackoff(), 0))  # a refused connection is the answer, not a glitch

    def write(self) -> int:
        for inst in self.emu.instances(self.project):
            client = self._client(inst)
            pipe = client.pipeline()
            pipe.set(CANARY, f"{inst['name']}: written before the night")
            pipe.mset({f"demo:key:{n:03d}": f"value {n}" for n in range(KEYS_PER_INSTANCE)})
            pipe.execute()
            self.before[inst["instance_id"]] = int(client.dbsize())
            client.close()
        return KEYS_PER_INSTANCE + 1

    def probe_stopped(self, at: datetime) -> list[dict[str, Any]]:
        """Try every CLOSED instance once per stop: the connection must be refused."""
        import redis

        found = []
        for inst in self.emu.instances(self.project):
            iid = inst["instance_id"]
            if inst["status"] != "CLOSED":
                continue
            stops = inst["counters"]["stops"]
            if self.probes.get(iid, {}).get("stops") == stops:
                continue
            client = self._client(inst)
            try:
                client.ping()
                outcome, refused = "answered PING although CLOSED", False
            except redis.ConnectionError as exc:
                outcome, refused = f"connection refused ({type(exc).__name__})", True
            finally:
                client.close()
            probe = {"instance": inst["name"], "instance_id": iid, "tick": at.isoformat(), "stops": stops,
                     "address": f"{inst['ip']}:{inst['port']}", "refused": refused, "outcome": outcome}
            self.probes[iid] = probe
            found.append(probe)
        return found

    def check(self, refused: Optional[dict[str, str]] = None) -> list[dict[str, Any]]:
        """One claim per instance about its data, and one per stopped instance about the probe. `refused`:
        instance id -> the action DCS refused for it (it must have kept running, and its data)."""
        claims = []
        refused = refused or {}
        for inst in self.emu.instances(self.project):
            iid, counters = inst["instance_id"], inst["counters"]
            actions = [ACTIONS.get(k, k) + (f" x{v}" if v > 1 else "") for k, v in counters.items() if v]
            client = self._client(inst)
            try:
                after = int(client.dbsize())
                canary = client.get(CANARY) is not None
            except Exception as exc:  # an instance left stopped: no data to read
                after, canary = -1, False
                actions.append(f"unreachable: {type(exc).__name__}")
            finally:
                client.close()
            before = self.before.get(iid, 0)
            restarted = counters["restarts"] + counters["soft_restarts"] + counters["stops"]
            if counters["flushes"]:
                expected, why, ok = "emptied", "flush is FLUSHALL: every key is deleted", after == 0
            elif restarted and inst["persistence"] == "aof":
                expected, why, ok = "kept", "AOF persistence: the data is reloaded after the restart", (
                    after == before and canary)
            elif restarted:
                what = "a restarted" if counters["restarts"] + counters["soft_restarts"] else "a stopped and started"
                expected, why, ok = "lost", f"no persistence: {what} Redis starts empty", after == 0
            elif iid in refused:
                expected, why, ok = "kept", f"DCS refused its {refused[iid]} (only old instances can be stopped): it " \
                                            "kept running", after == before and canary
            else:
                expected, why, ok = "kept", "not touched by any schedule", after == before and canary
            claims.append({"kind": "data", "instance": inst["name"], "instance_id": iid,
                           "persistence": inst["persistence"], "actions": actions, "keys_before": before,
                           "keys_after": after, "expected": expected, "why": why, "ok": ok})
            if counters["stops"]:
                probe = self.probes.get(iid)
                claims.append({"kind": "stopped", "instance": inst["name"], "instance_id": iid,
                               "probe": probe, "ok": bool(probe and probe["refused"]),
                               "why": "a stopped instance refuses connections" if probe else
                               "never seen CLOSED at a tick: not probed"})
        return claims


def _claims_text(claims: list[dict[str, Any]]) -> str:
    lines = ["", "real Redis, after the night (keys before -> after):",
             f"  {'instance':<22} {'persistence':<11} {'actions':<26} {'keys':<11} {'expected':<8}  result"]
    for c in claims:
        if c["kind"] != "data":
            continue
        keys = f"{c['keys_before']} -> {c['keys_after'] if c['keys_after'] >= 0 else '?'}"
        lines.append(f"  {c['instance']:<22} {c['persistence']:<11} {', '.join(c['actions']) or '-':<26} "
                     f"{keys:<11} {c['expected']:<8}  {'ok' if c['ok'] else 'FAILED'}: {c['why']}")
    for c in claims:
        if c["kind"] == "stopped":
            p = c["probe"]
            detail = f"probed at the {p['tick'][:16]} tick, {p['address']}: {p['outcome']}" if p else c["why"]
            lines.append(f"  {c['instance']:<22} stopped during its window: {detail}  "
                         f"{'ok' if c['ok'] else 'FAILED'}")
    bad = [c for c in claims if not c["ok"]]
    lines.append(f"  {len(claims) - len(bad)} of {len(claims)} claims hold" + ("" if not bad else
                                                                             ": SEE FAILED LINES ABOVE"))
    return "\n".join(lines)


class Rollout:
    """The rolling restart's claims, from the emulator's request log and status samples (not the function's
    reports): waves in plan order, one wave down at a time, at most `batch` down, the halt stops the rest."""

    def __init__(self, emulator: Any, schedules_dir: Path) -> None:
        from dcs_maintenance.loader import load_catalog

        self.emu = emulator
        self.schedule = load_catalog(schedules_dir).by_name(FLEET_SCHEDULE)

    def check(self, summaries: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if self.schedule is None or self.schedule.rollout is None:
            return None
        from dcs_maintenance.model import Instance
        from dcs_maintenance.planner import select
        from dcs_maintenance.rollout import batch_size, plan_waves

        listed = self.emu.instances(FLEET_PROJECT)
        names = {i["instance_id"]: i["name"] for i in listed}
        fleet = [Instance(i["instance_id"], i["name"], tags=tuple(sorted((t["key"], t["value"]) for t in i["tags"])))
                 for i in listed]
        targets = select(self.schedule, fleet, ("maintenance-protect", "true")).targets
        planned = [[names[iid] for iid in w.instance_ids] for w in plan_waves(self.schedule.rollout, targets,
                                                                            self.schedule.instances)]
        batch = batch_size(self.schedule.rollout.batch, len(targets))
        sent = [[names.get(iid, iid) for iid in r["body"]["instances"]] for r in self.emu.requests
                if r["method"] == "PUT" and FLEET_PROJECT in r.get("path", "")]
        mentioned = any(sch["name"] == FLEET_SCHEDULE for s in summaries for sch in s["schedules"])
        if not sent and not mentioned:  # its occurrence is not in this run's hours: nothing to claim
            return {"schedule": FLEET_SCHEDULE, "ran": False, "batch": batch, "waves_planned": planned,
                    "waves_sent": [], "peak_not_running": 0, "halted": [], "claims": []}
        wave_of = {name: n for n, wave in enumerate(planned) for name in wave}
        mixed = [s for s in self.emu.status_samples(FLEET_PROJECT)
                 if len({wave_of.get(names[iid]) for iid, st in s["statuses"].items() if st != "RUNNING"}) > 1]
        peak = self.emu.peak_not_running(FLEET_PROJECT)
        stuck = [i["name"] for i in listed if i.get("never_back")]
        halted = sorted({e["name"] for s in summaries for sch in s["schedules"] if sch["name"] == FLEET_SCHEDULE
                         for e in sch["instances"] if e["result"] == "halted"})
        untouched = sorted(i["name"] for i in listed if not i["counters"]["restarts"])
        after_halt = sorted(name for wave in planned[len(sent):] for name in wave)
        claims = [
            {"claim": "waves in plan order, each once", "ok": bool(sent) and sent == planned[:len(sent)],
             "detail": " | ".join(", ".join(w) for w in sent) or "nothing sent"},
            {"claim": "one wave down at a time", "ok": bool(sent) and not mixed,
             "detail": f"{len(mixed)} of {len(self.emu.status_samples(FLEET_PROJECT))} status samples mix waves"},
            {"claim": f"never more than batch ({batch}) down at once", "ok": 0 < peak <= batch,
             "detail": f"most instances not RUNNING in one sample: {peak}"},
            {"claim": "the halt stopped the rest", "ok": bool(stuck) and bool(after_halt) and halted == after_halt
             and untouched == after_halt,
             "detail": f"{', '.join(stuck) or 'nothing'} never came back; reported halted: "
                       f"{', '.join(halted) or 'none'}; never restarted: {', '.join(untouched) or 'none'}"},
        ]
        return {"schedule": FLEET_SCHEDULE, "ran": True, "batch": batch, "waves_planned": planned, "waves_sent": sent,
                "peak_not_running": peak, "halted": halted, "claims": claims}


def _rollout_text(result: dict[str, Any]) -> str:
    if not result["ran"]:
        return f"\nrolling restart ({result['schedule']}): not due in these hours (Sunday 22:30 UTC)"
    lines = ["", f"rolling restart ({result['schedule']}, {len(result['waves_planned'])} waves planned: "
             + " | ".join(", ".join(w) for w in result["waves_planned"]) + "):"]
    for c in result["claims"]:
        lines.append(f"  {c['claim']:<38} {'ok' if c['ok'] else 'FAILED'}: {c['detail']}")
    bad = [c for c in result["claims"] if not c["ok"]]
    lines.append(f"  {len(result['claims']) - len(bad)} of {len(result['claims'])} rollout claims hold"
                 + ("" if not bad else ": SEE FAILED LINES ABOVE"))
    return "\n".join(lines)


def _keep_problem(keep: Optional[str]) -> Optional[str]:
    """`--keep DIR` must not mix the night with an earlier one: a new or empty folder only."""
    if not keep:
        return None
    path = Path(keep)
    if path.exists() and not path.is_dir():
        return f"--keep {keep}: not a folder"
    if path.is_dir() and any(path.iterdir()):
        return f"--keep {keep}: the folder is not empty (give a new or empty one)"
    return None


def _kept_text(kept: dict[str, str]) -> str:
    """How to read the kept night back: the same commands an operator runs against a deployed ledger."""
    return (f"\nkept the night's ledger and schedules; what happened and what comes next:\n"
            f"  LEDGER_URL={shlex.quote(kept['LEDGER_URL'])} .venv/bin/python -m dcs_maintenance history\n"
            f"  .venv/bin/python -m dcs_maintenance --schedules {shlex.quote(kept['SCHEDULES_DIR'])} calendar --days 7")


def _demo_schedules(given: Optional[str], work: Path) -> Path:
    """`--schedules DIR` as given; by default a copy of the example schedules plus the demo's rolling restart
    (which is not shipped: schedules/ is what the deployment package holds)."""
    if given:
        return Path(given)
    folder = work / "schedules"
    folder.mkdir()
    for source in (ROOT / "schedules", DEMO_SCHEDULES):
        for path in sorted(source.glob("*.y*ml")):
            shutil.copyfile(path, folder / path.name)
    return folder


def run_demo(args: argparse.Namespace) -> int:
    saved = {key: os.environ.get(key) for key in (*ENV_KEYS, "HOME")}
    try:
        return _run(args)
    finally:
        clock.set_clock(None)
        clock.set_sleep(None)
        from dcs_maintenance import invocation

        invocation.close_ledgers()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run(args: argparse.Namespace) -> int:
    if not os.environ.get("HOME"):
        os.environ["HOME"] = tempfile.mkdtemp(prefix="dcsm-home-")
    import handler
    from dcs_emulator import Emulator
    from dcs_maintenance.tools.local import LocalContext, timer_event
    from dcs_maintenance.tools.progress import Progress
    from dcs_maintenance.tools.summary_text import summary_text

    as_json = bool(getattr(args, "json", False))
    say = (lambda *a, **k: None) if as_json else print
    seed = Path(getattr(args, "seed", None) or ROOT / "demo" / "seed.json")
    from dcs_emulator.__main__ import seed_problem

    problem = seed_problem(str(seed))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    use_redis = getattr(args, "redis", None)
    binary = redis_available()
    if use_redis and binary is None:
        print("error: --redis needs redis-server (bash scripts/setup installs it)", file=sys.stderr)
        return 2
    if use_redis is None:
        use_redis = binary is not None
        if not use_redis:
            say("note: redis-server not found, so instances are simulated only (bash scripts/setup installs it)")
    start = getattr(args, "start", None) or DEFAULT_START
    hours = getattr(args, "hours", DEFAULT_HOURS)
    ticks = max(1, int(hours * 12))
    keep = getattr(args, "keep", None)
    problem = _keep_problem(keep)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    work = Path(keep).resolve() if keep else Path(tempfile.mkdtemp(prefix="dcsm-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    ledger_url = f"sqlite:///{work / 'ledger.sqlite3'}"
    schedules = getattr(args, "schedules", None)
    report: dict[str, Any] = {"start": start.isoformat(), "ticks": ticks, "redis": use_redis, "active": [],
                              "probes": [], "claims": []}
    folder = _demo_schedules(schedules, work)
    # One simulated clock for the function and the emulator: ticks jump it forward, a rollout's waits too.
    world = clock.SteppedClock(start)
    try:
        with Emulator(ak=DEMO_AK, sk=DEMO_SK, projects=[DEMO_PROJECT], transition_delay=0.0,
                      redis_backed=use_redis, clock=lambda: clock.now().timestamp(),
                      status_sample_limit=100_000) as emu:
            emu.load_seed(str(seed))
            for key in ENV_KEYS:
                os.environ.pop(key, None)
            os.environ.update({
                "DCS_ENDPOINT": emu.url, "DCS_REGION": "cn-north-4", "RUNTIME_PROJECT_ID": DEMO_PROJECT,
                "HUAWEICLOUD_SDK_AK": DEMO_AK, "HUAWEICLOUD_SDK_SK": DEMO_SK,
                "LEDGER_URL": ledger_url,
                "SCHEDULES_DIR": str(folder),
                "LOG_LEVEL": "ERROR",
            })
            say(f"emulator at {emu.url} with {len(emu.instances(DEMO_PROJECT))} instances"
                f"{' (one redis-server each)' if use_redis else ''}; {ticks} ticks from {start.isoformat()} "
                "every 5 minutes")
            data = RedisData(emu, DEMO_PROJECT) if use_redis else None
            if data is not None:
                keys = data.write()
                say(f"wrote {keys} keys ({CANARY} and {KEYS_PER_INSTANCE} others) into every instance")
            ok = True
            world.install()
            with Progress(ticks, "simulated ticks", enabled=None if not as_json else False) as bar:
                for n in range(ticks):
                    at = start + timedelta(minutes=5 * n)
                    world.advance_to(at + timedelta(seconds=20))  # ticks arrive a little late
                    with contextlib.redirect_stdout(sys.stderr):  # log lines never mix with the output
                        summary = handler.handler(timer_event(at), LocalContext())
                    ok &= bool(summary.get("ok")) or not summary.get("errors")
                    if summary.get("schedules") or summary.get("problems") or summary.get("errors"):
                        report["active"].append(summary)
                        bar.clear()
                        say(summary_text(summary))
                    if data is not None:
                        for probe in data.probe_stopped(at):
                            report["probes"].append(probe)
                            bar.clear()
                            say(f"  probe: {probe['instance']} is CLOSED; redis at {probe['address']}: "
                                f"{probe['outcome']}")
                    bar.update(n + 1, at.strftime("%a %Y-%m-%d %H:%M UTC"))
            clock.set_clock(None)
            clock.set_sleep(None)
            puts = [r for r in emu.requests if r["method"] == "PUT" and DEMO_PROJECT in r.get("path", "")]
            report["status_calls"] = [{"action": r["body"]["action"], "instances": r["body"]["instances"]}
                                      for r in puts]
            say(f"\n{len(puts)} status call(s) sent:")
            for r in puts:
                say(f"  {r['body']['action']:<12} {', '.join(r['body']['instances'])}")
            report["refusals"] = [{"instance": e["name"], "instance_id": e["instance_id"], "action": e["action"],
                                   "tick": summary["tick"], "reason": e["reason"]}
                                  for summary in report["active"] for sched in summary["schedules"]
                                  for e in sched["instances"]
                                  if e["result"] == "failed" and e["reason"].startswith("DCS refused")]
            if report["refusals"]:
                say("\nrefused by DCS (reported once, remembered: later transitions skip them without a call):")
                for r in report["refusals"]:
                    say(f"  {r['action']:<12} {r['instance']}: {r['reason']}")
            report["final"] = {inst["name"]: inst["status"] for inst in emu.instances(DEMO_PROJECT)}
            say("\nfinal instance states:")
            for name, status in report["final"].items():
                say(f"  {name:<24} {status}")
            if data is not None:
                report["claims"] = data.check({r["instance_id"]: r["action"] for r in report["refusals"]})
                say(_claims_text(report["claims"]))
                ok &= all(c["ok"] for c in report["claims"])
            rollout = Rollout(emu, folder).check(report["active"])
            report["rollout"] = rollout
            if rollout is not None:
                say(_rollout_text(rollout))
                ok &= all(c["ok"] for c in rollout["claims"])
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    report["ok"] = bool(ok)
    if keep:
        report["kept"] = {"LEDGER_URL": ledger_url, "SCHEDULES_DIR": str(folder)}
        say(_kept_text(report["kept"]))
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    return 0 if ok else 1
