"""Rollouts carried out by the runner (issue 13), end to end: TIMER ticks through handler.handler, the real SDK
over HTTP to the emulator, whose instances take minutes to restart (`restart_seconds`) on the same simulated clock
as the function (tests/rollout_world.py). "Never more than a batch down" is read from the emulator's own status
samples, taken after every request it answered (`peak_not_running`), never from the function's reports.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Optional

import pytest
from conftest import AK, OTHER_PROJECT, PROJECT, SK, results_by_instance, use_ledger
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)
from rollout_world import World, emulator_clock, restarts, rollout_entry, status_bodies

from dcs_maintenance import clock
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.rollout import RolloutState, state_key
from dcs_maintenance.tools.local import LocalContext

UTC = timezone.utc
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
TOPIC = f"urn:smn:cn-north-4:{PROJECT}:dcs-maintenance-alerts"

ROLLING = """
schedules:
  - name: web-roll
    action: restart
    cron: "0 3 * * *"
    instances: {{tags: {{role: web}}}}
    rollout: {{batch: 3, canary: true, wave_timeout: 5m{extra}}}
"""

DEADLINED = """
schedules:
  - name: web-roll
    action: restart
    cron: "0 3 * * *"
    instances: {{tags: {{role: web}}}}
    rollout: {{batch: 1, wave_timeout: 5m, timeout: {timeout}{extra}}}
"""

SOON = """  - name: z-plain
    action: restart
    cron: "{minute} {hour} * * *"
    instances: {{names: [web-01]}}
"""


class Crash(BaseException):
    """The invocation dies (the platform's timeout, a lost container): nothing after this point runs."""


@pytest.fixture
def emulator():
    """The emulator on the function's simulated clock (restart durations follow the clock's jumps)."""
    from dcs_emulator import Emulator

    emu = Emulator(ak=AK, sk=SK, projects=[PROJECT, OTHER_PROJECT], transition_delay=0.0, clock=emulator_clock)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def fleet(emu, count: int = 12, seed: int = 13, never_back: tuple[str, ...] = (),
          restart_seconds: Optional[int] = None) -> list[str]:
    """web-01 .. web-<count>, tagged role=web, each taking 40-150 s (seeded) to restart, or `restart_seconds`
    (a timeline a test can count on)."""
    rng = random.Random(seed)
    ids = []
    for k in range(1, count + 1):
        iid = f"i-{k:02d}"
        seconds = rng.randint(40, 150) if restart_seconds is None else restart_seconds
        emu.add_instance(PROJECT, instance_id=iid, name=f"web-{k:02d}", tags={"role": "web"},
                         restart_seconds=seconds, never_back=iid in never_back)
        ids.append(iid)
    return ids


def waves_of(ids: list[str], batch: int = 3) -> list[list[str]]:
    return [ids[:1]] + [ids[k:k + batch] for k in range(1, len(ids), batch)]


def stored_state(ledger_url: str, name: str = "web-roll") -> RolloutState:
    with open_ledger(ledger_url) as ledger:
        return RolloutState.from_dict(json.loads(ledger.get_meta(state_key(name))))


def results(summaries: list[dict], result: str) -> list[dict]:
    return [e for s in summaries for sch in s["schedules"] for e in sch["instances"] if e["result"] == result]


def test_a_12_instance_rollout_in_waves_of_3_with_a_canary(emulator, function_env, write_schedules, http):
    ids = fleet(emulator)
    write_schedules(ROLLING.format(extra=""))
    world = World(emulator, T0)
    summaries = world.ticks(T0, 6)
    # the waves, in order, each sent once: a canary, then 3 at a time
    assert status_bodies(emulator) == waves_of(ids)
    assert restarts(emulator, PROJECT) == dict.fromkeys(ids, 1)
    # never more than a batch restarting at once, by the emulator's own samples after every request
    assert emulator.peak_not_running(PROJECT) == 3
    # each wave started only once the previous one was RUNNING again: no sample mixes two waves down
    wave_of = {iid: n for n, wave in enumerate(waves_of(ids)) for iid in wave}
    for sample in emulator.status_samples(PROJECT):
        down = {wave_of[iid] for iid, status in sample["statuses"].items() if status != "RUNNING"}
        assert len(down) <= 1, sample
    # it took several ticks, and each tick said where it stood
    first = rollout_entry(summaries[0], "web-roll")
    assert first["decision"] == "rollout" and first["rollout"]["status"] == "in_progress"
    assert first["rollout"]["waves"] == 5 and 0 < first["rollout"]["waves_sent"] < 5
    done = [rollout_entry(s, "web-roll") for s in summaries if rollout_entry(s, "web-roll")][-1]
    assert done["rollout"]["status"] == "done" and done["reason"].startswith("all 5 wave(s) sent and gated")
    assert all(s["ok"] for s in summaries)
    assert [e["wave"] for e in results(summaries, "success")] == [1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5]
    # once done, the schedule is idle again, and GET /schedules shows the rollout's progress
    assert rollout_entry(summaries[-1], "web-roll") is None
    [entry] = json.loads(http("GET", "/schedules")["body"])["schedules"]
    assert entry["rollout"]["progress"]["status"] == "done"
    assert entry["rollout"]["progress"]["outcomes"] == {"back": 12}


def test_an_instance_that_never_comes_back_halts_the_rest(emulator, function_env, write_schedules, monkeypatch,
                                                          http):
    monkeypatch.setenv("NOTIFY_SMN_TOPIC_URN", TOPIC)
    ids = fleet(emulator, never_back=("i-06",))
    write_schedules(ROLLING.format(extra=", max_errors: 0"))
    world = World(emulator, T0)
    summaries = world.ticks(T0, 6)
    # waves 1-3 were sent (i-06 is in wave 3); wave 3's gate found i-06 not back in 5 minutes: halted
    assert status_bodies(emulator) == waves_of(ids)[:3]
    assert restarts(emulator, PROJECT) == {iid: int(iid <= "i-07") for iid in ids}
    [late] = results(summaries, "failed")
    assert late["instance_id"] == "i-06" and "not back to RUNNING within wave_timeout 5m (RESTARTING)" in late["reason"]
    halted = results(summaries, "halted")
    assert [e["instance_id"] for e in halted] == ids[7:]
    assert all("more than max_errors 0" in e["reason"] and "web-06 not back" in e["reason"] for e in halted)
    [halting] = [s for s in summaries if s["counts"]["halted"]]
    assert halting["ok"] is False and halting["counts"]["halted"] == 5
    assert halting["notification"]["sent"] is True
    [message] = emulator.smn_messages
    assert "5 halted by a rollout" in message["subject"] and "Halted (a rollout's error budget" in message["message"]
    # reported once: the ticks after the halt are quiet, and nothing else was ever sent
    after = summaries[summaries.index(halting) + 1:]
    assert after and all(rollout_entry(s, "web-roll") is None and s["ok"] for s in after)
    assert stored_state(function_env["LEDGER_URL"]).status == "halted"
    # the history keeps them, and GET /history filters on the new results
    found = json.loads(http("GET", "/history", query={"result": "halted"})["body"])["entries"]
    assert sorted(e["instance_id"] for e in found) == ids[7:]


def put_times(emu) -> list[datetime]:
    """When the emulator received each status PUT, by its own clock (its status sample after the request)."""
    return [datetime.fromtimestamp(s["clock"], UTC) for s in emu.status_samples(PROJECT)
            if s["endpoint"] == "status" and s["method"] == "PUT"]


def test_a_deadline_that_cuts_a_health_gate_short_is_missed_not_an_error(emulator, function_env, write_schedules,
                                                                          monkeypatch):
    """The rollout's deadline (03:05) comes while wave 2's instance is still restarting, before its own
    wave_timeout: it was sent, so it is reported `unknown`, not counted against max_errors 0, and the rollout ends
    `missed` with the rest missed. Before the fix the deadline closed the gate as if wave_timeout had run out:
    web-02 `failed` ("not back ... within wave_timeout 5m"), and the rollout `halted` with a notification."""
    monkeypatch.setenv("NOTIFY_SMN_TOPIC_URN", TOPIC)
    ids = fleet(emulator, count=4, restart_seconds=200)
    write_schedules(DEADLINED.format(timeout="5m", extra=""))  # max_errors: the default 0
    world = World(emulator, T0)
    summaries = world.ticks(T0, 3)  # 03:00, 03:05, 03:10
    deadline = T0 + timedelta(minutes=5)
    # the 03:00 tick sent web-01 at 03:00:10, saw it back at 03:03:40 and sent web-02 (back at 03:07:00 only)
    assert status_bodies(emulator) == [ids[:1], ids[1:2]]
    state = stored_state(function_env["LEDGER_URL"])
    wave2 = state.record(2)
    assert wave2.sent_at < deadline < wave2.sent_at + timedelta(minutes=5)  # its own wave_timeout had not run out
    assert state.status == "missed" and state.errors() == ()
    assert results(summaries, "failed") == [] and results(summaries, "halted") == []
    [cut] = results(summaries, "unknown")
    assert cut["instance_id"] == "i-02" and cut["wave"] == 2 and cut["handled_by"]
    assert cut["reason"] == ("restart sent, but the rollout's deadline 2026-12-01T03:05:00Z came before its health "
                             "gate closed (RESTARTING): not counted as an error (wave 2 of 4)")
    missed = results(summaries, "missed")
    assert [e["instance_id"] for e in missed] == ids[2:]
    assert all(e["reason"].startswith("the rollout's deadline 2026-12-01T03:05:00Z passed: 2 instance(s) in 2 "
                                      "wave(s) not reached") for e in missed)
    assert "web-02 unknown" in missed[0]["reason"]
    [closing] = [s for s in summaries if s["counts"]["missed"]]
    assert closing["tick"] == "2026-12-01T03:05:00Z" and closing["counts"]["unknown"] == 1
    assert rollout_entry(closing, "web-roll")["rollout"]["status"] == "missed"
    # not ok (an outcome not known never is), but nothing was halted: the message says unknown, not halted
    assert closing["ok"] is False
    [message] = emulator.smn_messages
    assert "1 unknown" in message["subject"] and "halted" not in message["subject"]
    sent_at = put_times(emulator)
    assert len(sent_at) == 2 and all(at < deadline for at in sent_at)  # nothing sent after the deadline
    assert rollout_entry(summaries[2], "web-roll") is None  # over: the next tick is quiet


def test_a_rollout_reaching_its_deadline_with_max_errors_100_percent(emulator, function_env, write_schedules, http):
    """With every error tolerated the deadline is what ends it: the targets not reached are `missed`, with the
    reason, reported once; the summary and GET /schedules say `missed`; no wave goes out after the deadline."""
    ids = fleet(emulator)
    write_schedules(DEADLINED.format(timeout="5m", extra=', max_errors: "100%"'))
    world = World(emulator, T0)
    summaries = world.ticks(T0, 4)
    deadline = T0 + timedelta(minutes=5)
    sent = [iid for body in status_bodies(emulator) for iid in body]
    assert 1 < len(sent) < 12 and sent == ids[:len(sent)]  # in order, one wave at a time, then the deadline
    sent_at = put_times(emulator)
    assert len(sent_at) == len(sent) and all(at < deadline for at in sent_at)
    assert restarts(emulator, PROJECT) == {iid: int(iid in sent) for iid in ids}
    state = stored_state(function_env["LEDGER_URL"])
    assert state.status == "missed" and len(state.sent) == len(sent)
    missed = results(summaries, "missed")
    assert [e["instance_id"] for e in missed] == ids[len(sent):]  # each once
    reason = (f"the rollout's deadline 2026-12-01T03:05:00Z passed: {12 - len(sent)} instance(s) in "
              f"{12 - len(sent)} wave(s) not reached")
    assert all(e["reason"].startswith(reason) for e in missed)
    # the last wave sent was still restarting at the deadline, within its own wave_timeout: unknown, no error
    assert results(summaries, "failed") == [] and state.errors() == ()
    [cut] = results(summaries, "unknown")
    assert cut["instance_id"] == sent[-1] and "not counted as an error" in cut["reason"]
    [closing] = [s for s in summaries if s["counts"]["missed"]]
    entry = rollout_entry(closing, "web-roll")
    assert entry["decision"] == "rollout" and entry["reason"].startswith(reason)
    assert entry["rollout"]["status"] == "missed" and entry["rollout"]["finished_at"] >= "2026-12-01T03:05:00Z"
    assert closing["counts"]["missed"] == 12 - len(sent) and closing["counts"]["halted"] == 0
    assert [s["tick"] for s in summaries if rollout_entry(s, "web-roll")] == ["2026-12-01T03:00:00Z",
                                                                             "2026-12-01T03:05:00Z"]
    [listed] = json.loads(http("GET", "/schedules")["body"])["schedules"]
    assert listed["rollout"]["progress"]["status"] == "missed"
    assert listed["rollout"]["progress"]["text"].startswith(reason)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_crash_between_waves_resumes_at_the_next_tick(emulator, function_env, write_schedules, request, tmp_path,
                                                        monkeypatch, kind):
    url = use_ledger(kind, request, tmp_path, monkeypatch)
    ids = fleet(emulator)
    write_schedules(ROLLING.format(extra=""))
    world = World(emulator, T0)
    sleeps = []

    def die_on_third_wait(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise Crash()
        world.clock.sleep(seconds)

    clock.set_sleep(die_on_third_wait)
    with pytest.raises(Crash):
        world.tick(T0)
    clock.set_sleep(world.clock.sleep)
    before = stored_state(url)
    assert before.status == "in_progress" and len(before.sent) >= 1
    summaries = world.ticks(T0 + timedelta(minutes=5), 6)
    assert status_bodies(emulator) == waves_of(ids)  # every wave once, in order, across the crash
    assert restarts(emulator, PROJECT) == dict.fromkeys(ids, 1)
    assert emulator.peak_not_running(PROJECT) <= 3
    assert stored_state(url).status == "done"
    assert all(s["ok"] for s in summaries)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_crash_after_the_call_is_reconciled_and_never_sent_again(emulator, function_env, write_schedules,
                                                                   monkeypatch, request, tmp_path, kind):
    from dcs_maintenance.gateway import DcsGateway

    url = use_ledger(kind, request, tmp_path, monkeypatch)
    ids = fleet(emulator)
    write_schedules(ROLLING.format(extra=", max_errors: 3"))
    world = World(emulator, T0)
    real = DcsGateway.change_status
    calls = []

    def call_then_die(self, action, instance_ids):
        outcomes = real(self, action, instance_ids)
        calls.append(instance_ids)
        if len(calls) == 2:  # wave 2 went out; the invocation dies before recording anything
            raise Crash()
        return outcomes

    monkeypatch.setattr(DcsGateway, "change_status", call_then_die)
    with pytest.raises(Crash):
        world.tick(T0)
    monkeypatch.setattr(DcsGateway, "change_status", real)
    crashed = stored_state(url)
    assert [dict(r.outcomes) for r in crashed.sent][1] == dict.fromkeys(ids[1:4], "claimed")
    summaries = world.ticks(T0 + timedelta(minutes=5), 8)
    # wave 2 is waited for (its sender may still be at work), then read back from its claims after 10 minutes:
    # unknown (the call may have run), never sent again; then the rollout goes on
    reconciled = results(summaries, "unknown")
    assert sorted(e["instance_id"] for e in reconciled) == ids[1:4]
    assert all(e["handled_by"] and "not re-sent" in e["reason"] for e in reconciled)
    assert status_bodies(emulator) == waves_of(ids)
    assert restarts(emulator, PROJECT) == dict.fromkeys(ids, 1)
    state = stored_state(url)
    assert state.status == "done" and len(state.errors()) == 3  # within max_errors 3
    with open_ledger(url) as ledger:
        claims = ledger.claims_by_prefix("web-roll|")
    assert {k: c.outcome for k, c in claims.items() if c.outcome != "success"} == {
        f"web-roll|2026-12-01T03:00:00Z|{iid}|restart": "unknown" for iid in ids[1:4]}  # the crashed wave's


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_duplicate_and_overlapping_deliveries_mid_rollout(emulator, function_env, write_schedules, request,
                                                          tmp_path, monkeypatch, kind):
    url = use_ledger(kind, request, tmp_path, monkeypatch)
    ids = fleet(emulator)
    write_schedules(ROLLING.format(extra=""))
    world = World(emulator, T0)
    summaries: list[dict] = []
    for n in range(8):
        at = T0 + timedelta(minutes=5 * n)
        # each tick delivered twice at once, with the previous tick's event again (a stale retry) beside them
        batch = [at, at] + ([at - timedelta(minutes=5)] if n else [])
        summaries += world.together(batch, wall=at + timedelta(seconds=10))
    assert restarts(emulator, PROJECT) == dict.fromkeys(ids, 1)
    assert status_bodies(emulator) == waves_of(ids)
    assert emulator.peak_not_running(PROJECT) <= 3
    state = stored_state(url)
    assert state.status == "done" and [r.number for r in state.sent] == [1, 2, 3, 4, 5]
    sent_here = [e for e in results(summaries, "success") if not e.get("handled_by")]
    assert sorted(e["instance_id"] for e in sent_here) == ids  # each reported sent by exactly one delivery
    with open_ledger(url) as ledger:
        waves = ledger.claims_by_prefix("web-roll|2026-12-01T03:00:00Z~wave")
        every = ledger.claims_by_prefix("web-roll|")
    assert len(waves) == 5
    assert {c.outcome for c in every.values()} == {"success"}  # no claim is left without an outcome
    assert all(s["ok"] for s in summaries)


def test_a_new_occurrence_during_a_running_rollout_is_missed(emulator, function_env, write_schedules):
    ids = fleet(emulator, count=4, never_back=("i-01",))
    write_schedules("""
schedules:
  - name: web-roll
    action: restart
    cron: "0 * * * *"
    instances: {tags: {role: web}}
    rollout: {batch: 3, canary: true, wave_timeout: 90m, timeout: 3h}
""")
    world = World(emulator, T0)
    summaries = world.ticks(T0, 24)  # 03:00 to 04:55
    entry = rollout_entry(summaries[12], "web-roll")  # the 04:00 tick
    assert entry["occurrences"] == [{"occurrence": "2026-12-01T04:00:00Z", "result": "missed",
                                     "reason": entry["occurrences"][0]["reason"]}]
    assert entry["occurrences"][0]["reason"].startswith("previous rollout still in progress (occurrence "
                                                        "2026-12-01T03:00:00Z, 1 of 2 waves sent")
    assert status_bodies(emulator) == [["i-01"]]  # the canary never came back: nothing else was sent
    halted = [s for s in summaries if s["counts"]["halted"]]
    assert [s["tick"] for s in halted] == ["2026-12-01T04:30:00Z"]  # 90 minutes after the canary: halted
    assert [e["instance_id"] for e in results(halted, "halted")] == ids[1:]


def test_plan_and_dry_runs_show_the_waves(emulator, function_env, write_schedules, http):
    fleet(emulator, count=7)
    write_schedules(ROLLING.format(extra=""))
    World(emulator, T0 + timedelta(minutes=1))
    plan = json.loads(http("GET", "/plan", query={"at": "2026-12-01T03:00:00Z"})["body"])
    entry = rollout_entry(plan, "web-roll")
    assert entry["decision"] == "due"
    assert entry["reason"] == ("rollout of 7 instance(s) in 3 wave(s): wave 1 of 3: web-01; wave 2 of 3: web-02, "
                               "web-03, web-04; wave 3 of 3: web-05, web-06, web-07")
    assert entry["waves"][1] == {"wave": 2, "instances": ["web-02", "web-03", "web-04"]}
    assert [e["reason"] for e in entry["instances"]][:2] == ["dry run: would restart in wave 1 of 3 (RUNNING)",
                                                             "dry run: would restart in wave 2 of 3 (RUNNING)"]
    assert emulator.calls("restart") == []
    with open_ledger(function_env["LEDGER_URL"]) as ledger:
        assert ledger.get_meta(state_key("web-roll")) is None  # a preview stores no rollout


def test_a_manual_run_starts_a_rollout_and_refuses_a_second_one(emulator, function_env, write_schedules, http):
    ids = fleet(emulator, count=4)
    write_schedules(ROLLING.format(extra=""))
    world = World(emulator, T0 + timedelta(hours=5))
    first = http("POST", "/schedules/web-roll/run")
    assert first["statusCode"] == 200
    body = json.loads(first["body"])
    entry = rollout_entry(body, "web-roll")
    assert entry["rollout"]["status"] == "in_progress" and entry["rollout"]["waves_sent"] == 1
    assert status_bodies(emulator) == [["i-01"]]  # the canary; the API Gateway's minute has no time to wait
    world.clock.advance_to(T0 + timedelta(hours=5, minutes=2))
    again = http("POST", "/schedules/web-roll/run")
    assert again["statusCode"] == 409
    refused = json.loads(again["body"])
    assert refused["error_code"] == "DCSM.4092" and "previous rollout still in progress" in refused["error_msg"]
    # the ticks carry the manual rollout on to its end
    world.ticks(T0 + timedelta(hours=5, minutes=5), 4)
    assert restarts(emulator, PROJECT) == dict.fromkeys(ids, 1)
    assert emulator.peak_not_running(PROJECT) <= 3


def test_disabling_a_schedule_halts_its_running_rollout(emulator, function_env, write_schedules, capsys):
    """The halt goes through the tick's one listing of the project, beside a plain schedule due at that tick
    (issue 16: the halting work's project or region dropped made a second listing, or a tick that crashed
    sorting the listings)."""
    fleet(emulator)
    write_schedules(ROLLING.format(extra=""))
    world = World(emulator, T0)
    world.tick(T0)
    sent = sum(restarts(emulator, PROJECT).values())
    assert 0 < sent < 12
    write_schedules(ROLLING.format(extra="").replace("action: restart", "action: restart\n    enabled: false")
                    + SOON.format(minute=(T0 + timedelta(minutes=5)).minute, hour=(T0 + timedelta(minutes=5)).hour))
    capsys.readouterr()
    summary = world.tick(T0 + timedelta(minutes=5))
    assert summary["api_calls"]["list_calls"] == 1
    decisions = [(line["decision"], line["reason"]) for line in map(json.loads, capsys.readouterr().out.splitlines())
                 if line["event"] == "schedule" and line["schedule"] == "web-roll"]
    assert decisions[0] == ("disabled", "enabled: false")  # logged first, then what became of the rollout
    assert [e["result"] for e in results_by_instance(summary, "z-plain").values()] == ["success"]
    entry = rollout_entry(summary, "web-roll")
    assert entry["decision"] == "rollout" and "the schedule was disabled" in entry["reason"]
    assert len(results([summary], "halted")) == 12 - sent
    world.ticks(T0 + timedelta(minutes=10), 3)
    assert sum(restarts(emulator, PROJECT).values()) == sent + 1  # + the plain schedule's one restart of web-01
    assert stored_state(function_env["LEDGER_URL"]).status == "halted"


def test_rollout_max_wait_bounds_the_waiting_in_one_invocation(emulator, function_env, write_schedules,
                                                               monkeypatch):
    from dcs_maintenance.settings import SettingsError, load_settings

    assert load_settings().rollout_max_wait == timedelta(minutes=10)
    monkeypatch.setenv("ROLLOUT_MAX_WAIT", "2h")
    with pytest.raises(SettingsError, match="ROLLOUT_MAX_WAIT='2h': at most 1h"):
        load_settings()
    monkeypatch.setenv("ROLLOUT_MAX_WAIT", "0s")  # each tick looks once, sends at most one wave, and goes
    ids = fleet(emulator)
    write_schedules(ROLLING.format(extra=""))
    world = World(emulator, T0)
    slept: list[float] = []
    clock.set_sleep(lambda seconds: slept.append(seconds))
    summaries = world.ticks(T0, 7)
    assert slept == []
    assert status_bodies(emulator) == waves_of(ids)  # one wave per tick: 5 waves in 5 ticks, gated in between
    assert [sum(1 for e in s["schedules"][0]["instances"] if e["result"] == "success") for s in summaries[:5]] == [
        1, 3, 3, 3, 2]
    assert stored_state(function_env["LEDGER_URL"]).status == "done"


def recorded_sleeps(world: World) -> list[float]:
    """The function's sleeps, in order, each still passing on the world's simulated clock."""
    slept: list[float] = []

    def record(seconds: float) -> None:
        slept.append(seconds)
        world.clock.sleep(seconds)

    clock.set_sleep(record)
    return slept


def test_the_health_gate_polls_with_backoff(emulator, function_env, write_schedules):
    """The gate is read every 5 s, doubling up to 30 s (rollout_runner.POLL_FIRST, POLL_CAP), never sleeping past
    the step's own recheck time (the 30 s settle after a send: 15, not 20), and from 5 s again after each send;
    the invocation stops before a sleep that would end past its limit (here its time budget: 300 s less two call
    budgets of 40 s, from 03:00:10), and the next tick goes on."""
    ids = fleet(emulator, count=3, restart_seconds=70)
    write_schedules(DEADLINED.format(timeout="1h", extra=""))
    world = World(emulator, T0)
    slept = recorded_sleeps(world)
    first = world.tick(T0)
    # wave 1 at 03:00:10, back at 03:01:20, seen at 03:01:50; wave 2 then, seen back at 03:03:10; wave 3 then
    assert slept == [5, 10, 15, 30, 30, 5, 10, 15, 30, 30, 5, 10, 15]
    assert status_bodies(emulator) == [[iid] for iid in ids]
    assert rollout_entry(first, "web-roll")["reason"].endswith("; the next tick looks again")
    del slept[:]
    world.tick(T0 + timedelta(minutes=5))
    assert slept == []  # wave 3 was back long before: the gate passes at the first look
    assert stored_state(function_env["LEDGER_URL"]).status == "done"


def test_little_time_left_in_the_invocation_stops_the_waiting(emulator, function_env, write_schedules):
    """An invocation with 150 s left may wait 70 s (two call budgets of 40 s are kept): it sends wave 1, polls
    5, 10, 15 and 30 s, and stops rather than sleep past 03:01:20 (where the default 300 s would have sent wave
    2, as above); the stored state says wave 1 is still gated, and the next tick carries on from it."""
    ids = fleet(emulator, count=2, restart_seconds=70)
    write_schedules(DEADLINED.format(timeout="1h", extra=""))
    world = World(emulator, T0)
    slept = recorded_sleeps(world)
    short = world.tick(T0, context=LocalContext(timeout_ms=150_000))
    assert slept == [5, 10, 15, 30]
    assert status_bodies(emulator) == [ids[:1]]
    entry = rollout_entry(short, "web-roll")
    assert entry["reason"].startswith("waiting for wave 1 of 2 to be back to RUNNING: web-01 (RESTARTING)")
    assert entry["reason"].endswith("; the next tick looks again") and short["ok"]
    left = stored_state(function_env["LEDGER_URL"])
    assert left.status == "in_progress" and left.record(1).gate_closed_at is None
    summaries = world.ticks(T0 + timedelta(minutes=5), 2)
    assert status_bodies(emulator) == [ids[:1], ids[1:]]
    assert restarts(emulator, PROJECT) == dict.fromkeys(ids, 1)
    assert stored_state(function_env["LEDGER_URL"]).status == "done" and all(s["ok"] for s in summaries)


def test_a_freeze_pauses_a_running_rollout_before_its_next_wave(emulator, function_env, write_schedules):
    ids = fleet(emulator, count=4)
    write_schedules(ROLLING.format(extra="") + """
freezes:
  - name: incident
    from: "2026-12-01T03:01"
    until: "2026-12-01T03:20"
    timezone: UTC
    reason: incident in progress
    actions: [restart]
""")
    world = World(emulator, T0)
    summaries = world.ticks(T0, 8)  # 03:00 .. 03:35
    sent_at = {e["instance_id"]: s["tick"] for s in summaries for e in results([s], "success")}
    assert sent_at["i-01"] == "2026-12-01T03:00:00Z"  # the canary went before the freeze
    assert all(sent_at[iid] >= "2026-12-01T03:20:00Z" for iid in ids[1:])  # the rest only after it
    paused = [rollout_entry(s, "web-roll")["reason"] for s in summaries if "03:05" <= s["tick"][11:16] <= "03:15"]
    assert paused and all(r.startswith("paused before wave 2 of 2: freeze 'incident'") for r in paused)
    assert restarts(emulator, PROJECT) == dict.fromkeys(ids, 1)
    assert stored_state(function_env["LEDGER_URL"]).status == "done"


@pytest.mark.parametrize("list_tags", [True, False], ids=["tags-listed", "tags-not-listed"])
def test_waves_larger_than_a_show_read_see_real_tags(emulator, function_env, write_schedules, list_tags):
    """Waves of 6 gated within one invocation are read back with one listing (more than SHOW_LIMIT instances).
    Where DCS leaves `tags` out of list entries (issue 11), that listing must resolve them as the tick's does:
    before the fix every instance of wave 2 looked untagged, counted as protected, and was skipped for good."""
    emulator.set_modes(list_tags=list_tags)
    ids = fleet(emulator)
    write_schedules(ROLLING.format(extra="").replace("batch: 3, canary: true", "batch: 6, canary: false"))
    summaries = World(emulator, T0).ticks(T0, 3)
    assert status_bodies(emulator) == [ids[:6], ids[6:]]
    assert restarts(emulator, PROJECT) == dict.fromkeys(ids, 1)
    assert [e["instance_id"] for e in results(summaries, "success")] == ids
    assert results(summaries, "skipped") == [] and all(s["ok"] for s in summaries)


@pytest.mark.parametrize("list_tags", [True, False], ids=["tags-listed", "tags-not-listed"])
def test_a_protect_tag_added_between_waves_stops_its_instance(emulator, function_env, write_schedules,
                                                              monkeypatch, list_tags):
    emulator.set_modes(list_tags=list_tags)
    monkeypatch.setenv("ROLLOUT_MAX_WAIT", "0s")  # one wave per tick: the tag changes between the two
    ids = fleet(emulator)
    write_schedules(ROLLING.format(extra="").replace("batch: 3, canary: true", "batch: 6, canary: false"))
    world = World(emulator, T0)
    summaries = world.ticks(T0, 1)
    assert status_bodies(emulator) == [ids[:6]]
    emulator.update_instance(PROJECT, "i-09", tags={"role": "web", "maintenance-protect": "true"})
    summaries += world.ticks(T0 + timedelta(minutes=5), 5)
    assert status_bodies(emulator) == [ids[:6], ids[6:8] + ids[9:]]
    [protected] = [e for e in results(summaries, "skipped") if e["instance_id"] == "i-09"]
    assert protected["reason"].startswith("protected by tag maintenance-protect=true: not sent")
    assert all(s["ok"] for s in summaries)
