"""A simulated month of 5-minute TIMER ticks through handler.handler, against the emulator, on a simulated clock.

March 2026 (New York changes to DST on the 8th, Berlin on the 29th), with daily restarts in three zones, an hourly
soft restart, a weekly flush and an overnight window, while the platform misbehaves (seeded): ticks dropped,
delivered twice (at once, concurrently, overlapping with the next tick, or stale after later ticks), a little late
(jitter, lag), sometimes far later than starting_deadline (a backlog), and status calls whose answer is lost
(reset_after: the call was executed, the connection reset). Every delivery runs in one of three worker processes
sharing the ledger and the emulator (tests/race.py), and the race faults of issue 10 are placed on slots where
something is due: a delivery whose status call is held (plain, throttled, 429 after it took effect) while a
second delivery of the same tick runs to its end in another process; a claim whose reply is lost (its release
failing too, or not); a process killed between claim and call; an event hours ahead of the wall clock.

Asserted, independently of the runner's own bookkeeping:
- no (schedule, occurrence, instance) acted on twice: the summaries' sent entries, the emulator's status-call log
  (delivery group by group) and the ledger's claims all agree;
- no action early or after its deadline: the simulated wall clock when the emulator received the call is within
  [occurrence, occurrence + starting_deadline];
- every occurrence, computed with cronrules over the month, is accounted for in the summaries, for every instance:
  done (success), unknown, failed, missed (and then legitimately: the first tick covering it came too late) or
  skipped with a reason; a pending report (in flight, not sent) is not an account; none is left `unaccounted`;
  and no summary names an occurrence that does not exist;
- the window: exactly one stop or start per transition per instance that needed it (none where a race fault
  left the transition's claim without an outcome: it is unknown, never re-sent), and the right state at the end;
- the ledger's claims: every claim has an outcome at the end; the claims judged unknown without having been sent
  are exactly those a race fault left without an outcome, and each was reported `unknown` by a later summary;
- an event ahead of the wall clock is refused (`ok: false`, nothing sent) and no watermark is ever ahead of it.
- the rollout (a canary, then waves of 2): every (occurrence, instance) accounted for (sent once, halted, missed
  or skipped, with a reason), its waves sent in order, each only after the previous wave's gate (30 s after it at
  least), wave 1 within starting_deadline and none after the rollout's deadline (the next occurrence).

The default run is the whole month on SQLite (about 8,640 ticks; see the printed timing) and a week on Redis.
"""

from __future__ import annotations

import functools
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import race
from conftest import PROJECT
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)
from simulation import Options, Simulation, fate_of, iso

from dcs_maintenance.cronrules import CronRule
from dcs_maintenance.guards import MAX_CLOCK_SKEW
from dcs_maintenance.ledger import CLAIMED, open_ledger
from dcs_maintenance.ledger.base import claim_key

UTC = timezone.utc
DEADLINE = timedelta(minutes=10)

SCHEDULES = """
schedules:
  - name: restart-shanghai
    action: restart
    cron: "0 3 * * *"
    timezone: Asia/Shanghai
    skip_dates: ["2026-03-10", "2026-03-20"]
    instances: {tags: {grp: sh}}
  - name: restart-berlin
    action: restart
    cron: "30 2 * * *"
    timezone: Europe/Berlin
    instances: {tags: {grp: be}}
  - name: restart-new-york
    action: restart
    cron: "0 2 * * *"
    timezone: America/New_York
    instances: {tags: {grp: ny}}
  - name: soft-hourly
    action: soft_restart
    cron: "15 * * * *"
    timezone: Europe/Berlin
    instances: {tags: {grp: hourly}}
  - name: flush-sundays
    action: flush
    allow_flush: true
    cron: "0 4 * * sun"
    timezone: Asia/Shanghai
    instances: {tags: {grp: cache}}
  - name: dev-nights
    window: {stop: "0 20 * * mon-fri", start: "0 7 * * mon-fri"}
    timezone: Europe/Berlin
    instances: {tags: {grp: dev}}
  - name: rolling-web
    action: restart
    cron: "45 1 * * *"
    instances: {tags: {grp: web}}
    rollout: {batch: 2, canary: true, max_errors: 0}
"""

ONE_SHOT = {  # name -> (cron, zone, instances)
    "restart-shanghai": ("0 3 * * *", "Asia/Shanghai", ["i-sh1", "i-sh2"]),
    "restart-berlin": ("30 2 * * *", "Europe/Berlin", ["i-be1"]),
    "restart-new-york": ("0 2 * * *", "America/New_York", ["i-ny1"]),
    "soft-hourly": ("15 * * * *", "Europe/Berlin", ["i-h1", "i-h2"]),
    "flush-sundays": ("0 4 * * sun", "Asia/Shanghai", ["i-c1"]),
}
WINDOW = ("dev-nights", "0 20 * * mon-fri", "0 7 * * mon-fri", "Europe/Berlin", ["i-w1", "i-w2"])
ROLLOUT = ("rolling-web", "45 1 * * *", "UTC", ["i-r1", "i-r2", "i-r3", "i-r4", "i-r5"])  # waves: r1 | r2 r3 | r4 r5
GROUPS = {"i-sh1": "sh", "i-sh2": "sh", "i-be1": "be", "i-ny1": "ny", "i-h1": "hourly", "i-h2": "hourly",
          "i-c1": "cache", "i-w1": "dev", "i-w2": "dev", "i-r1": "web", "i-r2": "web", "i-r3": "web", "i-r4": "web",
          "i-r5": "web"}


@pytest.fixture(autouse=True)
def ticks_look_once(monkeypatch):
    """The simulation's clock runs in real time: a rollout does not wait for its gates inside an invocation (which
    would sleep for real); each tick looks once, and the next one goes on. A setting, so that the deliveries see
    it wherever they run."""
    monkeypatch.setenv("ROLLOUT_MAX_WAIT", "0s")


@functools.cache
def _due_instants() -> frozenset[datetime]:
    low, high = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    rules = [CronRule(cron, zone) for cron, zone, _ in ONE_SHOT.values()]
    rules += [CronRule(WINDOW[1], WINDOW[3]), CronRule(WINDOW[2], WINDOW[3])]
    return frozenset(t for rule in rules for t in rule.between(low, high))


def busy(at: datetime) -> bool:
    """An instant where an occurrence or a window transition falls: a race fault there meets claims and calls."""
    return at in _due_instants()


OPTIONS = Options(
    drop_rate=0.03, repeat_rate=0.02, concurrent_rate=0.02, concurrent_next_rate=0.01, stale_rate=0.02,
    jitter=timedelta(seconds=30), lag=timedelta(seconds=20),
    late_rate=0.01, late_lag=(timedelta(minutes=10, seconds=30), timedelta(minutes=25)),
    fault_rate=0.08, fault_kind="reset_after",
    processes=3, race_rate=0.15, race_kinds=race.RACE_KINDS, busy=busy,
)


def simulate(emulator, write_schedules, start: datetime, end: datetime, seed: int, log_dir=None) -> Simulation:
    for iid, grp in GROUPS.items():
        emulator.add_instance(PROJECT, instance_id=iid, name=iid, tags={"grp": grp})
    write_schedules(SCHEDULES)
    return Simulation(emulator, start, end, seed=seed, options=OPTIONS, log_dir=log_dir).run()


def check(sim: Simulation, ledger_url: str, start: datetime) -> dict:
    """Every assertion of the module docstring; returns the figures."""
    figures = Counter(sim.figures)
    killed = [d for d in sim.deliveries if d.killed]
    assert all(d.race == race.KILLED for d in killed), "only the deliberate kills end a worker"
    bad = [d.summary for d in sim.deliveries if not d.killed and not d.summary.get("tick")]
    assert not bad, f"a tick failed as a whole: {bad[:1]}"

    # 1. Nothing acted on twice: summaries, emulator log and ledger agree.
    sim.check_calls_match_summaries()
    acts = sim.acts()
    per_key = Counter((a.schedule, a.occurrence, a.instance) for a in acts)
    twice = {k: n for k, n in per_key.items() if n > 1}
    assert not twice, f"acted on more than once: {twice}"
    received = Counter(iid for call in sim.calls for iid in call.instances)
    assert sum(received.values()) == len(acts)
    with open_ledger(ledger_url) as ledger:
        keys = {claim_key(a.schedule, a.occurrence, a.instance, a.action): a for a in acts}
        claims = ledger.get_claims(list(keys))
    assert set(claims) == set(keys), "every action sent has its claim"
    for key, act in keys.items():
        assert claims[key].outcome == act.result, (key, claims[key], act.result)

    # 2. The right moment, by the simulated wall clock when the emulator received the call.
    arrivals = {(c.group, iid, c.action): c.wall for c in sim.calls for iid in c.instances}
    for a in acts:
        arrived = arrivals[(a.delivery.group, a.instance, a.action)]
        assert arrived >= a.occurrence, f"{a.schedule} {a.instance} acted early: {arrived} < {a.occurrence}"
        if a.schedule in ONE_SHOT:
            assert a.delivery.wall - a.occurrence <= DEADLINE, f"{a.schedule} {a.occurrence} started too late"
            assert arrived - a.occurrence <= DEADLINE + timedelta(seconds=1), (
                f"{a.schedule} {a.occurrence} {a.instance} sent at {arrived}, after its deadline")

    # 3. Every occurrence accounted for, for every instance; none invented.
    first_tick = min(d.time for d in sim.deliveries if d.slot == 0 and d.kind != "ahead")
    until = sim.processed_until()
    fates: Counter[str] = Counter()
    unaccounted: list[str] = []
    ordered = sorted((d for d in sim.deliveries if d.kind not in ("stale", "ahead")), key=lambda d: (d.group, d.time))
    for name, (cron, zone, instances) in ONE_SHOT.items():
        expected = CronRule(cron, zone).between(first_tick - sim.period, until)
        seen = sim.fates(name)
        invented = {occ for occ, _ in seen} - set(expected)
        assert not invented, f"{name}: occurrences that do not exist: {sorted(invented)}"
        for occ in expected:
            for iid in instances:
                results = seen.get((occ, iid), []) + seen.get((occ, "*"), [])
                fate = fate_of(results)
                if fate == "none":  # neither done nor reported: the one thing that must never happen silently
                    unaccounted.append(f"{name} {iso(occ)} {iid}: {seen.get((occ, iid), [])}")
                    continue
                fates[fate] += 1
                if fate == "missed" and not any("superseded" in why for _, why in results):
                    # Legitimate only if the first tick covering it was itself too late.
                    first = next(d for d in ordered if d.time >= occ)
                    too_late = first.wall - occ > DEADLINE - timedelta(seconds=1) or first.time - occ > DEADLINE
                    assert too_late, f"{name} {iso(occ)} {iid} missed although tick {first} was in time: {results}"
                if fate == "skipped":
                    assert all(why for _, why in results)
    figures.update({f"occurrences_{k}": v for k, v in fates.items()})
    figures["unaccounted"] = len(unaccounted)
    assert not unaccounted, f"{len(unaccounted)} occurrence(s) not accounted for in any summary: {unaccounted[:5]}"

    # 4. The window: one call per transition per instance that needed it, none where a race fault left the
    #    transition's claim without an outcome (unknown: never re-sent), and the right state at the end.
    orphans = sim.orphans()
    name, stop, start_cron, zone, instances = WINDOW
    transitions = sorted([(t, "stop") for t in CronRule(stop, zone).between(start - timedelta(days=4), until)]
                         + [(t, "start") for t in CronRule(start_cron, zone).between(start - timedelta(days=4),
                                                                                     until)])
    periods = [p for n, p in enumerate(transitions) if n + 1 == len(transitions) or transitions[n + 1][0] > start]
    times = sim.call_times()
    state = {iid: "RUNNING" for iid in instances}  # what the emulator holds, as the calls made it
    for n, (at, action) in enumerate(periods):
        until_next = periods[n + 1][0] if n + 1 < len(periods) else until + timedelta(days=1)
        other = "start" if action == "stop" else "stop"
        wanted = "CLOSED" if action == "stop" else "RUNNING"
        for iid in instances:
            got = [w for w in times.get((iid, action), []) if at <= w < until_next]
            wrong = [w for w in times.get((iid, other), []) if at <= w < until_next]
            orphaned = claim_key(name, at, iid, action) in orphans
            expected = 0 if orphaned or state[iid] == wanted else 1
            assert len(got) == expected and not wrong, (
                f"{name} {iid}: {len(got)} {action} call(s) (expected {expected}) and {len(wrong)} {other} in the "
                f"period from {at}")
            if got:
                state[iid] = wanted
            figures["window_orphaned_transitions"] += orphaned
        figures["window_transitions"] += 1
    assert {iid: sim.emulator.get_instance(PROJECT, iid)["status"] for iid in instances} == state

    # 5. Claims: none without an outcome at the end; the claims judged unknown without having been sent are
    #    exactly those a race fault left without an outcome, and a later summary reported each `unknown`.
    with open_ledger(ledger_url) as ledger:
        stored = {}
        for schedule in [*ONE_SHOT, WINDOW[0], ROLLOUT[0]]:
            stored.update(ledger.claims_by_prefix(f"{schedule}|"))
        marks = ledger.watermarks()
    outcome_less = sorted(key for key, c in stored.items() if c.outcome == CLAIMED)
    assert not outcome_less, f"claims without an outcome at the end: {outcome_less[:5]}"
    judged = {key for key, c in stored.items() if c.outcome == "unknown" and key not in keys}
    assert judged == set(orphans), (f"judged unknown without a call: {sorted(judged - set(orphans))[:5]}; left "
                                    f"without an outcome by a fault: {sorted(set(orphans) - judged)[:5]}")
    reports = sim.unknown_reports()
    for key, d in orphans.items():
        later = [r for r, e in reports.get(key, []) if r.group > d.group and e["handled_by"] == d.request_id]
        assert later, f"{key}: left without an outcome by {d.request_id} ({d.race}), never reported unknown"
        assert stored[key].holder == d.request_id
        figures["orphans_reported_unknown"] += 1
    figures["claims_orphaned"] = len(orphans)

    # 6. An event ahead of the wall clock: refused, nothing sent; no watermark ahead of the wall clock.
    ahead = [d for d in sim.deliveries if d.kind == "ahead"]
    for d in ahead:
        assert d.summary["ok"] is False and d.summary["errors"] and not d.summary["schedules"], d.summary
    ahead_groups = {d.group for d in ahead}
    assert not [c for c in sim.calls + sim.throttled if c.group in ahead_groups]
    figures["ahead_refused"] = len(ahead)
    assert all(mark <= sim.wall + MAX_CLOCK_SKEW for mark in marks.values()), max(marks.values())
    figures.update(sim.race_figures())

    figures.update(check_rollout(sim, first_tick, until))

    figures["actions_sent"] = len(acts)
    figures["actions_unknown"] = sum(a.result == "unknown" for a in acts)
    figures["duplicates_sent"] = len(twice)
    figures["duplicates_injected"] = sum(figures[k] for k in ("duplicates_repeated", "duplicates_concurrent",
                                                              "duplicates_stale", "overlapping_next"))
    return dict(figures)


def check_rollout(sim: Simulation, first_tick: datetime, until: datetime) -> Counter[str]:
    """The rollout schedule: every (occurrence, instance) has a fate with a reason; sends are once (checked with
    every act above), in wave order, each wave after the previous one's gate, within the rollout's bounds."""
    import re

    from dcs_maintenance.rollout import GATE_SETTLE

    name, cron, zone, instances = ROLLOUT
    rule = CronRule(cron, zone)
    expected = rule.between(first_tick - sim.period, until)
    seen = sim.fates(name)
    figures: Counter[str] = Counter()
    invented = {occ for occ, _ in seen} - set(expected)
    assert not invented, f"{name}: occurrences that do not exist: {sorted(invented)}"
    arrivals = {(c.group, iid): c.wall for c in sim.calls for iid in c.instances if c.action == "restart"}
    for occ in expected:
        for iid in instances:
            results = seen.get((occ, iid), []) + seen.get((occ, "*"), [])
            kinds = {r for r, _ in results}
            fate = next((k for k in ("success", "unknown", "failed", "halted", "missed", "skipped") if k in kinds),
                        "none")
            if fate == "none" and occ + timedelta(days=1) > until:
                fate = "in_progress"  # the run ended while this rollout was still going: not a loss
            assert fate != "none", f"{name} {iso(occ)} {iid}: not accounted for in any summary: {results}"
            assert all(why for _, why in results)
            figures[f"rollout_{fate}"] += 1
        sends = sorted((arrivals[(a.delivery.group, a.instance)], int(re.search(r"\(wave (\d+) of", a.reason)[1]))
                       for a in sim.acts() if a.schedule == name and a.occurrence == occ)
        waves = [wave for _, wave in sends]
        assert waves == sorted(waves), f"{name} {iso(occ)}: waves out of order: {sends}"
        first_of = {}
        for at, wave in sends:
            first_of.setdefault(wave, at)
        for wave, at in first_of.items():
            if wave > 1 and wave - 1 in first_of:
                assert at - first_of[wave - 1] >= GATE_SETTLE, f"{name} {iso(occ)}: wave {wave} before the gate"
        if sends:
            assert first_of.get(1, sends[0][0]) - occ <= DEADLINE + timedelta(seconds=1), "wave 1 started late"
            assert sends[-1][0] <= rule.next_after(occ), f"{name} {iso(occ)}: a wave after the rollout's deadline"
            figures["rollout_waves_sent"] += len(first_of)
    return figures


def report(title: str, figures: dict, elapsed: float) -> None:
    order = ["slots", "deliveries", "duplicates_injected", "duplicates_repeated", "duplicates_concurrent",
             "overlapping_next", "duplicates_stale", "dropped", "lagged_within_deadline", "late_beyond_deadline",
             "faults_hit_reset_after", "status_calls", "actions_sent", "actions_unknown", "duplicates_sent",
             "occurrences_success", "occurrences_unknown", "occurrences_failed", "occurrences_missed",
             "occurrences_skipped", "unaccounted", "window_transitions", "window_orphaned_transitions",
             "rollout_success", "rollout_unknown", "rollout_failed", "rollout_halted", "rollout_missed",
             "rollout_skipped", "rollout_in_progress", "rollout_waves_sent"]
    races = [f"race_{family}{fired}" for family in race.FAMILIES for fired in ("", "_fired")]
    races += [f"race_{kind}{fired}" for kind in race.RACE_KINDS for fired in ("", "_fired")]
    races += ["worker_restarts", "claims_orphaned", "orphans_reported_unknown", "ahead_refused"]
    print(f"\n{title}: {elapsed:.1f}s")
    for key in order + races:
        print(f"  {key:44} {figures.get(key, 0)}")


def test_a_month_of_ticks(emulator, write_schedules, ledger_url, tmp_path):
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
    sim = simulate(emulator, write_schedules, start, end, seed=202603, log_dir=tmp_path / "workers")
    figures = check(sim, ledger_url, start)
    report("March 2026, SQLite ledger", figures, sim.elapsed)
    assert figures["slots"] == 8640
    assert figures["duplicates_sent"] == 0 and figures["unaccounted"] == 0
    assert figures["faults_hit_reset_after"] > 0 and figures["late_beyond_deadline"] > 0
    for kind in race.RACE_KINDS:  # every race fault happened, not only was staged
        assert figures[f"race_{kind}_fired"] > 0, kind
    assert figures["orphans_reported_unknown"] == figures["claims_orphaned"] > 0


@pytest.mark.parametrize("ledger_url", ["redis"], indirect=True)
def test_a_week_of_ticks_on_a_redis_ledger(emulator, write_schedules, ledger_url, tmp_path):
    start, end = datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC)  # Berlin's DST change
    sim = simulate(emulator, write_schedules, start, end, seed=20260323, log_dir=tmp_path / "workers")
    figures = check(sim, ledger_url, start)
    report("2026-03-23 .. 03-30, Redis ledger", figures, sim.elapsed)
    assert figures["duplicates_sent"] == 0 and figures["unaccounted"] == 0
    for family in race.FAMILIES:
        assert figures[f"race_{family}_fired"] > 0, family
