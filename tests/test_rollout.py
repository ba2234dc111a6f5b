"""Rollouts as tables: batch sizes and percentages, canary, ordering, error budgets, health gates, timeouts,
halts, the stored state's round trip and merge; then the protocol the runner will follow, played against an
in-memory ledger with overlapping invocations, crashes and duplicate deliveries."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Optional

import pytest
from conftest import t

from dcs_maintenance.ledger.base import claim_key
from dcs_maintenance.model import Amount, Freeze, Instance, RolloutSpec, Schedule, Selector
from dcs_maintenance.rollout import (
    BACK,
    CLAIMED,
    DONE,
    FAILED,
    FINISHED,
    HALT,
    HALTED,
    MISSED,
    NOT_BACK,
    RECONCILE,
    SEND,
    SKIPPED,
    SUCCESS,
    UNGATED,
    UNKNOWN,
    WAIT,
    RolloutState,
    WaveRecord,
    absorb_claims,
    admit_occurrence,
    allowed_errors,
    batch_size,
    describe_waves,
    finish_key,
    gate_result,
    merge,
    next_step,
    order_targets,
    plan_waves,
    progress,
    record_outcomes,
    rollout_deadline,
    start_rollout,
    state_key,
    stop_rollout,
    wave_key,
    wave_sent,
    wave_taken_elsewhere,
)

UTC = timezone.utc
T0 = t("2026-12-01T03:00:00Z")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fleet(n: int) -> list[Instance]:
    return [Instance(f"i-{k:02d}", f"web-{k:02d}") for k in range(1, n + 1)]


def spec(batch=None, canary=False, max_errors=0, wave_timeout="15m", order="name", timeout=None) -> RolloutSpec:
    minutes = {"15m": 15, "10m": 10, "5m": 5}
    return RolloutSpec(batch=Amount.parse(batch) if batch is not None else None, canary=canary,
                       wave_timeout=timedelta(minutes=minutes[wave_timeout]), max_errors=Amount.parse(max_errors),
                       order=order, timeout=timedelta(minutes=timeout) if timeout is not None else None)


WEB = Selector(names=("web-*",))


def schedule(rollout: RolloutSpec, selector: Selector = WEB, cron: str = "0 3 * * *", **kw) -> Schedule:
    return Schedule("roll", "x.yaml", selector, action="restart", cron=cron, rollout=rollout, **kw)


# -- sizes -------------------------------------------------------------------------------------------------------
BATCH_SIZES = [
    # batch, targets -> instances per wave
    (None, 12, 12),
    (3, 12, 3),
    (20, 12, 12),
    ("25%", 12, 3),
    ("25%", 10, 3),  # 2.5 rounds up
    ("33%", 3, 1),  # 0.99 rounds up to 1
    ("34%", 3, 2),  # 1.02 rounds up to 2
    ("1%", 12, 1),  # at least 1
    ("100%", 12, 12),
    ("50%", 1, 1),
]


@pytest.mark.parametrize("batch, total, size", BATCH_SIZES)
def test_batch_size(batch, total, size):
    assert batch_size(Amount.parse(batch) if batch is not None else None, total) == size


ERROR_BUDGETS = [
    # max_errors, targets -> errors tolerated (one more halts)
    (0, 12, 0),
    (2, 12, 2),
    ("10%", 12, 1),  # 1.2 rounds down: 2 errors are 16.7%, more than 10%
    ("10%", 9, 0),  # 0.9 rounds down: 1 error is 11%, more than 10%
    ("10%", 10, 1),  # exactly 10% is tolerated
    ("50%", 5, 2),
    ("100%", 4, 4),
    ("0%", 100, 0),
]


@pytest.mark.parametrize("max_errors, total, allowed", ERROR_BUDGETS)
def test_allowed_errors(max_errors, total, allowed):
    assert allowed_errors(Amount.parse(max_errors), total) == allowed


# -- planning ----------------------------------------------------------------------------------------------------
WAVES = [
    # label, spec, targets -> wave sizes
    ("no batch: all at once", spec(), 12, [12]),
    ("batch 3", spec(3), 12, [3, 3, 3, 3]),
    ("batch 5: a short last wave", spec(5), 12, [5, 5, 2]),
    ("batch larger than the fleet", spec(20), 12, [12]),
    ("batch 25%", spec("25%"), 12, [3, 3, 3, 3]),
    ("batch 25% of 10 rounds up", spec("25%"), 10, [3, 3, 3, 1]),
    ("canary without batch", spec(canary=True), 12, [1, 11]),
    ("canary and batch 3", spec(3, canary=True), 12, [1, 3, 3, 3, 2]),
    ("canary and 25% (of all 12 targets)", spec("25%", canary=True), 12, [1, 3, 3, 3, 2]),
    ("canary of a single target", spec(3, canary=True), 1, [1]),
    ("no targets, no waves", spec(3, canary=True), 0, []),
]


@pytest.mark.parametrize("label, rollout, n, sizes", WAVES, ids=[w[0] for w in WAVES])
def test_plan_waves(label, rollout, n, sizes):
    waves = plan_waves(rollout, fleet(n)[::-1])  # given in reverse: the plan orders them
    assert [len(w.members) for w in waves] == sizes
    assert [w.number for w in waves] == list(range(1, len(sizes) + 1))
    assert all(w.of == len(sizes) for w in waves)
    assert [iid for w in waves for iid in w.instance_ids] == [i.instance_id for i in fleet(n)]


def inst(iid: str, name: str) -> Instance:
    return Instance(iid, name)


ZOO = [inst("i-9", "cache-b"), inst("i-1", "web-2"), inst("i-5", "api-1"), inst("i-3", "web-1"),
       inst("i-2", "cache-a"), inst("i-4", "api-1")]
ORDERS = [
    # label, order, selector -> names (ids where names tie)
    ("by name, ties by id", "name", Selector(names=("*",)), ["i-4", "i-5", "i-2", "i-9", "i-3", "i-1"]),
    ("listed ids: the ids' order", "listed", Selector(ids=("i-3", "i-9", "i-1", "i-5", "i-4", "i-2")),
     ["i-3", "i-9", "i-1", "i-5", "i-4", "i-2"]),
    ("listed globs: first matching glob, ties by name", "listed", Selector(names=("web-*", "cache-*", "*")),
     ["i-3", "i-1", "i-2", "i-9", "i-4", "i-5"]),
    ("listed globs: an instance counts for its first glob only", "listed", Selector(names=("*-1", "web-*", "*")),
     ["i-4", "i-5", "i-3", "i-1", "i-2", "i-9"]),
    ("listed with ids and names: the ids decide", "listed",
     Selector(ids=("i-2", "i-1", "i-3", "i-4", "i-5", "i-9"), names=("web-*", "*")),
     ["i-2", "i-1", "i-3", "i-4", "i-5", "i-9"]),
    ("listed with tags only: by name", "listed", Selector(tags=(("env", "x"),)),
     ["i-4", "i-5", "i-2", "i-9", "i-3", "i-1"]),
]


@pytest.mark.parametrize("label, order, selector, ids", ORDERS, ids=[o[0] for o in ORDERS])
def test_order_targets(label, order, selector, ids):
    assert [i.instance_id for i in order_targets(ZOO, order, selector)] == ids


def test_canary_is_the_first_listed():
    waves = plan_waves(spec(2, canary=True, order="listed"), ZOO, Selector(names=("cache-*", "*")))
    assert waves[0].members == (("i-2", "cache-a"),)
    assert waves[1].members == (("i-9", "cache-b"), ("i-4", "api-1"))


def test_describe_waves_for_plans_and_dry_runs():
    targets = [inst("i-1", "staging-api"), inst("i-2", "staging-jobs"), inst("i-3", "staging-web"),
               inst("i-4", "staging-worker")]
    waves = plan_waves(spec(2, canary=True), targets)
    assert describe_waves(waves) == ("wave 1 of 3: staging-api; wave 2 of 3: staging-jobs, staging-web; "
                                     "wave 3 of 3: staging-worker")
    big = plan_waves(spec(10), fleet(120))
    text = describe_waves(big, limit=2)
    assert text.startswith("wave 1 of 12: web-01, web-02") and "(+2 more)" in text
    assert text.endswith("... and 10 more waves")
    assert describe_waves(()) == "no instance to act on"
    assert plan_waves(spec(), [inst("i-7", "")])[0].describe() == "wave 1 of 1: i-7"


DEADLINES = [
    # label, schedule, occurrence -> deadline
    ("explicit timeout, from the occurrence", schedule(spec(timeout=10)), "2026-12-01T03:00:00Z",
     "2026-12-01T03:10:00Z"),
    ("default: the next occurrence", schedule(spec()), "2026-12-01T03:00:00Z", "2026-12-02T03:00:00Z"),
    ("default skips an occurrence on a skip date", schedule(spec(), skip_dates=frozenset({date(2026, 12, 2)})),
     "2026-12-01T03:00:00Z", "2026-12-03T03:00:00Z"),
    ("default on the wall clock (Berlin, across the October change)", schedule(spec(), timezone="Europe/Berlin"),
     "2026-10-24T01:00:00Z", "2026-10-25T02:00:00Z"),
    ("a monthly schedule is capped at 7 days", schedule(spec(), cron="0 3 1 * *"), "2026-12-01T03:00:00Z",
     "2026-12-08T03:00:00Z"),
    ("after active_until: capped", schedule(spec(), active_until=date(2026, 12, 1)), "2026-12-01T03:00:00Z",
     "2026-12-08T03:00:00Z"),
]


@pytest.mark.parametrize("label, sched, occurrence, deadline", DEADLINES, ids=[d[0] for d in DEADLINES])
def test_rollout_deadline(label, sched, occurrence, deadline):
    assert rollout_deadline(sched, t(occurrence)) == t(deadline)


# -- the next step -----------------------------------------------------------------------------------------------
LETTERS = {"c": CLAIMED, "k": SKIPPED, "s": SUCCESS, "f": FAILED, "u": UNKNOWN, "b": BACK, "n": NOT_BACK,
           "g": UNGATED}


def rollout(n: int = 6, history=(), **spec_kw) -> RolloutState:
    """A rollout of web-01..web-<n> (batch 2 unless given) started at T0+1s, with waves already claimed:
    history = [(sent at, outcome letters in wave order, gate closed at or None), ...]."""
    spec_kw.setdefault("batch", 2)
    state = start_rollout(schedule(spec(**spec_kw)), T0, fleet(n), at(1))
    for number, (sent_at, letters, closed) in enumerate(history, 1):
        wave = state.waves[number - 1]
        record = WaveRecord(number, at(sent_at), tuple(zip(wave.instance_ids, (LETTERS[c] for c in letters),
                                                           strict=True)), at(closed) if closed is not None else None)
        state = replace(state, sent=state.sent + (record,))
    return state


def statuses(n: int, down=()) -> dict[str, str]:
    return {f"i-{k:02d}": ("RESTARTING" if f"i-{k:02d}" in down else "RUNNING") for k in range(1, n + 1)}


FREEZE = Freeze("change-freeze", "f.yaml", at(-60), at(3600), "UTC", "2026-12-01T02:59", "2026-12-01T04:00",
                "release week")
NEXT = [
    # label, rollout kwargs, now (s after T0), down, frozen_by -> kind, wave, instances, recheck_at (s)
    ("a new rollout sends wave 1", {}, 5, (), None, SEND, 1, ["i-01", "i-02"], None),
    ("a wave being sent elsewhere is waited for", {"history": [(5, "cc", None)]}, 60, (), None,
     WAIT, 1, ["i-01", "i-02"], 605),
    ("a wave claimed long ago without outcomes is reconciled", {"history": [(5, "cs", None)]}, 700, (), None,
     RECONCILE, 1, ["i-01"], None),
    ("gate: RUNNING is not trusted right after the send", {"history": [(5, "ss", None)]}, 20, (), None,
     WAIT, 1, [], 35),
    ("gate: an instance still restarting is waited for", {"history": [(5, "ss", None)]}, 100, ["i-02"], None,
     WAIT, 1, ["i-02"], 905),
    ("gate passes: the next wave goes", {"history": [(5, "ss", None)]}, 100, (), None, SEND, 2, ["i-03", "i-04"],
     None),
    ("wave_timeout: not back is an error; max_errors 0 halts", {"history": [(5, "ss", None)]}, 905, ["i-02"], None,
     HALT, None, ["i-03", "i-04", "i-05", "i-06"], None),
    ("wave_timeout within max_errors 1: the next wave goes", {"history": [(5, "ss", None)], "max_errors": 1}, 905,
     ["i-02"], None, SEND, 2, ["i-03", "i-04"], None),
    ("a failed call over the budget halts without waiting for the gate", {"history": [(5, "sf", None)]}, 10,
     ["i-01"], None, HALT, None, ["i-03", "i-04", "i-05", "i-06"], None),
    ("a failed call within the budget: the others are waited for", {"history": [(5, "sf", None)], "max_errors": 1},
     10, ["i-01"], None, WAIT, 1, ["i-01"], 35),
    ("an unknown outcome is an error and is waited for", {"history": [(5, "su", None)], "max_errors": 1}, 100,
     ["i-02"], None, WAIT, 1, ["i-02"], 905),
    ("an unknown outcome back to RUNNING: the next wave goes", {"history": [(5, "su", None)], "max_errors": 1}, 100,
     (), None, SEND, 2, ["i-03", "i-04"], None),
    ("errors equal to max_errors: go on", {"history": [(5, "bb", 50), (60, "ff", None)], "max_errors": "50%"}, 61,
     (), None, SEND, 3, ["i-05", "i-06"], None),
    ("one error more than max_errors: halt", {"history": [(5, "bn", 905), (910, "fs", None)], "max_errors": 1},
     911, ["i-04"], None, HALT, None, ["i-05", "i-06"], None),
    ("a wave with nothing sent does not wait", {"history": [(5, "kk", None)]}, 6, (), None, SEND, 2,
     ["i-03", "i-04"], None),
    ("every wave gated: done", {"history": [(5, "bb", 50), (60, "bb", 100), (110, "ss", None)]}, 200, (), None,
     DONE, None, [], None),
    ("the last wave over the budget: done (nothing left to halt)",
     {"history": [(5, "bb", 50), (60, "bb", 100), (110, "sf", None)]}, 200, (), None, DONE, None, [], None),
    ("the rollout's timeout passed: the rest is missed", {"history": [(5, "bb", 50)], "timeout": 10}, 601, (), None,
     MISSED, None, ["i-03", "i-04", "i-05", "i-06"], None),
    ("the timeout passes during a gate within the budget: the rest missed",
     {"history": [(5, "ss", None)], "timeout": 10, "max_errors": 5}, 600, ["i-02"], None,
     MISSED, None, ["i-03", "i-04", "i-05", "i-06"], None),
    # the rollout's deadline before a wave's own wave_timeout: whoever is not back then is not an error
    ("a gate waits until the deadline when it comes before wave_timeout", {"history": [(5, "ss", None)],
     "timeout": 5}, 100, ["i-02"], None, WAIT, 1, ["i-02"], 300),
    ("the deadline cuts a gate short: not an error, max_errors 0 does not halt, the rest missed",
     {"history": [(5, "ss", None)], "timeout": 10}, 600, ["i-02"], None,
     MISSED, None, ["i-03", "i-04", "i-05", "i-06"], None),
    ("a gate cut by the deadline, looked at after its wave_timeout too: still cut at the deadline",
     {"history": [(5, "ss", None)], "timeout": 10}, 1000, ["i-02"], None,
     MISSED, None, ["i-03", "i-04", "i-05", "i-06"], None),
    ("a gate cut right after the send: not trusted yet, not an error",
     {"history": [(590, "ss", None)], "timeout": 10}, 600, (), None,
     MISSED, None, ["i-03", "i-04", "i-05", "i-06"], None),
    ("an unknown outcome cut by the deadline stays one error, within max_errors 1",
     {"history": [(5, "su", None)], "timeout": 10, "max_errors": 1}, 600, ["i-02"], None,
     MISSED, None, ["i-03", "i-04", "i-05", "i-06"], None),
    ("wave_timeout before the deadline: not back is an error, max_errors 0 halts",
     {"history": [(5, "ss", None)], "timeout": 20, "wave_timeout": "5m"}, 1200, ["i-02"], None,
     HALT, None, ["i-03", "i-04", "i-05", "i-06"], None),
    ("the deadline cuts the last wave's gate: done, nothing left to miss",
     {"history": [(5, "bb", 50), (60, "bb", 100), (110, "ss", None)], "timeout": 10}, 600, ["i-06"], None,
     DONE, None, [], None),
    ("a freeze pauses before the next wave, until it ends", {"history": [(5, "ss", None)]}, 100, (), FREEZE,
     WAIT, 2, [], 3600),
    ("a freeze never outlasts the rollout's deadline", {"history": [(5, "ss", None)], "timeout": 30}, 100, (),
     FREEZE, WAIT, 2, [], 1800),
]


@pytest.mark.parametrize("label, kwargs, now, down, frozen_by, kind, wave, instances, recheck", NEXT,
                         ids=[row[0] for row in NEXT])
def test_next_step(label, kwargs, now, down, frozen_by, kind, wave, instances, recheck):
    state = rollout(**kwargs)
    step = next_step(state, at(now), statuses(6, down), frozen_by)
    assert step.kind == kind, step.reason
    assert (step.wave.number if step.wave else None) == wave
    assert [iid for iid, _ in step.instances] == instances
    assert step.recheck_at == (at(recheck) if recheck is not None else None)
    assert step.reason and "None" not in step.reason
    assert step.state.finished is (kind in (HALT, DONE, MISSED))
    if kind == WAIT and not step.judged:
        assert step.state == state  # nothing learnt: nothing to store


def test_a_gate_that_passes_marks_its_instances_back():
    step = next_step(rollout(history=[(5, "su", None)], max_errors=1), at(100), statuses(6))
    record = step.state.record(1)
    assert record.gate_closed_at == at(100)
    assert dict(record.outcomes) == {"i-01": BACK, "i-02": UNKNOWN}  # an unknown outcome stays one error
    assert step.judged == (("i-01", "web-01", BACK),)


def test_a_gate_that_times_out_names_who_is_not_back():
    step = next_step(rollout(history=[(5, "ss", None)], max_errors=1), at(905), statuses(6, ["i-02"]))
    assert dict(step.state.record(1).outcomes) == {"i-01": BACK, "i-02": NOT_BACK}
    assert set(step.judged) == {("i-01", "web-01", BACK), ("i-02", "web-02", NOT_BACK)}
    assert [e[:2] for e in step.state.errors()] == [("i-02", "web-02")]


def test_a_deadline_that_cuts_a_gate_short_is_not_an_error():
    """Issue 13: targets not reached by the deadline are `missed`; one sent whose gate the deadline cut short (its
    own wave_timeout not run out) is unknown, never `not_back`: it must not halt the rollout."""
    step = next_step(rollout(history=[(5, "ss", None)], timeout=10), at(600), statuses(6, ["i-02"]))
    assert dict(step.state.record(1).outcomes) == {"i-01": BACK, "i-02": UNGATED}
    assert set(step.judged) == {("i-01", "web-01", BACK), ("i-02", "web-02", UNGATED)}
    assert step.state.errors() == () and step.state.status == MISSED
    assert step.reason == ("the rollout's deadline 2026-12-01T03:10:00Z passed: 4 instance(s) in 2 wave(s) not "
                           "reached; it came before wave 1's health gate closed: web-02 unknown, not counted as "
                           "an error")
    untrusted = next_step(rollout(history=[(590, "ss", None)], timeout=10), at(600), statuses(6))
    assert dict(untrusted.state.record(1).outcomes) == {"i-01": UNGATED, "i-02": UNGATED}  # RUNNING too soon
    assert untrusted.state.errors() == () and untrusted.kind == MISSED
    waiting = next_step(rollout(history=[(5, "ss", None)], timeout=5), at(100), statuses(6, ["i-02"]))
    assert waiting.reason.endswith("the rollout's deadline 2026-12-01T03:05:00Z comes first: not back by then is "
                                   "unknown, not an error")


def test_a_deadline_that_cuts_the_last_gate_ends_the_rollout_done():
    step = next_step(rollout(history=[(5, "bb", 50), (60, "bb", 100), (110, "ss", None)], timeout=10), at(600),
                     statuses(6, ["i-06"]))
    assert step.kind == DONE and dict(step.state.record(3).outcomes) == {"i-05": BACK, "i-06": UNGATED}
    assert step.reason == ("all 3 wave(s) sent; the rollout's deadline 2026-12-01T03:10:00Z came before wave 3's "
                           "health gate closed: web-06 unknown, not counted as an error; 0 error(s), max_errors 0")


def test_an_unknown_outcome_cut_by_the_deadline_stays_as_it_was():
    step = next_step(rollout(history=[(5, "su", None)], timeout=10, max_errors=1), at(600), statuses(6, ["i-02"]))
    assert dict(step.state.record(1).outcomes) == {"i-01": BACK, "i-02": UNKNOWN}  # reported when it was sent
    assert step.judged == (("i-01", "web-01", BACK),)
    assert [e[2] for e in step.state.errors()] == [UNKNOWN]


VERDICTS = [
    # outcome the gate reached, status read then -> the instance's result and reason (None: nothing to report)
    (BACK, "RUNNING", None),
    (NOT_BACK, "RESTARTING", ("failed", "restart sent, but not back to RUNNING within wave_timeout 15m (RESTARTING): "
                                        "counted as an error (wave 1 of 3)")),
    (UNGATED, "RESTARTING", ("unknown", "restart sent, but the rollout's deadline 2026-12-01T03:10:00Z came before "
                                          "its health gate closed (RESTARTING): not counted as an error (wave 1 of "
                                          "3)")),
    (UNGATED, None, ("unknown", "restart sent, but the rollout's deadline 2026-12-01T03:10:00Z came before its "
                                  "health gate closed (status unknown): not counted as an error (wave 1 of 3)")),
]


@pytest.mark.parametrize("outcome, status, result", VERDICTS)
def test_gate_verdicts_as_results(outcome, status, result):
    assert gate_result(rollout(timeout=10), 1, outcome, status) == result


def test_a_freeze_does_not_hold_a_gate_open():
    step = next_step(rollout(history=[(5, "ss", None)]), at(100), statuses(6), FREEZE)
    assert step.kind == WAIT and "release week" in step.reason and "change-freeze" in step.reason
    assert step.state.record(1).gate_closed_at == at(100)  # stored: the gate's verdict is not lost


def test_a_halt_says_why_and_who():
    step = next_step(rollout(history=[(5, "bn", 905), (910, "fs", None)], max_errors=1), at(911), statuses(6))
    assert step.state.status == HALTED and step.state.finished_at == at(911)
    assert "2 error(s)" in step.reason and "web-02 not back" in step.reason and "web-03 failed" in step.reason
    assert "more than max_errors 1" in step.reason and "2 instance(s) not touched" in step.reason
    assert step.state.reason == step.reason


def test_a_finished_rollout_has_nothing_to_do():
    done = next_step(rollout(history=[(5, "bb", 50), (60, "bb", 100), (110, "bb", 150)]), at(200), statuses(6))
    assert done.kind == DONE
    again = next_step(done.state, at(300), statuses(6))
    assert again.kind == FINISHED and again.state == done.state and "done" in again.reason


def test_an_empty_rollout_is_done_at_once():
    state = start_rollout(schedule(spec(2)), T0, [], at(1))
    step = next_step(state, at(1), {})
    assert step.kind == DONE and step.reason == "no instance to act on"


def test_stop_rollout_from_outside():
    step = stop_rollout(rollout(history=[(5, "bb", 50)]), at(60), "the schedule was disabled")
    assert step.kind == HALT and step.state.status == HALTED and "disabled" in step.reason
    assert [iid for iid, _ in step.instances] == ["i-03", "i-04", "i-05", "i-06"]
    assert stop_rollout(step.state, at(70), "again").kind == FINISHED


# -- recording what the runner did --------------------------------------------------------------------------------
def test_wave_sent_then_outcomes():
    state = rollout()
    sent = wave_sent(state, 1, at(5))
    assert sent.record(1) == WaveRecord(1, at(5), (("i-01", CLAIMED), ("i-02", CLAIMED)))
    assert wave_sent(sent, 1, at(9)) == sent  # recorded once
    done = record_outcomes(sent, 1, {"i-01": SUCCESS, "i-02": FAILED})
    assert dict(done.record(1).outcomes) == {"i-01": SUCCESS, "i-02": FAILED}
    with pytest.raises(ValueError, match="the next wave is 2"):
        wave_sent(done, 3, at(10))
    with pytest.raises(ValueError, match="not one of"):
        record_outcomes(done, 1, {"i-01": "done"})
    with pytest.raises(ValueError, match="wave 2 was not sent"):
        record_outcomes(done, 2, {"i-03": SUCCESS})


CLAIMS = [
    # the per-instance claim's outcome (None: no claim) -> the instance's outcome in the rollout
    (None, SKIPPED),  # never claimed: the call was never made
    ("claimed", UNKNOWN),  # claimed, outcome never recorded: the call may have run
    ("success", SUCCESS),
    ("failed", FAILED),
    ("unknown", UNKNOWN),
    ("skipped", SKIPPED),
]


@pytest.mark.parametrize("claim, outcome", CLAIMS)
def test_absorb_claims(claim, outcome):
    state = wave_sent(rollout(), 1, at(5))
    absorbed = absorb_claims(state, 1, {"i-01": claim})
    assert dict(absorbed.record(1).outcomes) == {"i-01": outcome, "i-02": CLAIMED}


def test_a_lost_wave_claim_waits_then_reconciles():
    state = rollout(history=[(5, "bb", 50)])
    young = wave_taken_elsewhere(state, 2, at(60), "req-a", at(100))
    assert young.kind == WAIT and young.recheck_at == at(660) and "req-a" in young.reason
    old = wave_taken_elsewhere(state, 2, at(60), "req-a", at(700))
    assert old.kind == RECONCILE and [iid for iid, _ in old.instances] == ["i-03", "i-04"]
    assert old.state.record(2) == WaveRecord(2, at(60), (("i-03", CLAIMED), ("i-04", CLAIMED)))
    recorded = record_outcomes(old.state, 2, {"i-03": SUCCESS, "i-04": SUCCESS})
    assert wave_taken_elsewhere(recorded, 2, at(60), "req-a", at(700)).kind == WAIT  # read the stored state again


# -- a new occurrence while one runs -----------------------------------------------------------------------------
ADMISSIONS = [
    # label, stored (None, or (occurrence, finished)), new occurrence -> kind
    ("nothing stored", None, "2026-12-01T03:00:00Z", "start"),
    ("this occurrence's rollout exists", ("2026-12-01T03:00:00Z", False), "2026-12-01T03:00:00Z", "continue"),
    ("the previous one is still running", ("2026-12-01T03:00:00Z", False), "2026-12-02T03:00:00Z", "missed"),
    ("the previous one finished", ("2026-12-01T03:00:00Z", True), "2026-12-02T03:00:00Z", "start"),
    ("a later one started: a stale delivery", ("2026-12-02T03:00:00Z", True), "2026-12-01T03:00:00Z", "missed"),
]


@pytest.mark.parametrize("label, stored, occurrence, kind", ADMISSIONS, ids=[a[0] for a in ADMISSIONS])
def test_admit_occurrence(label, stored, occurrence, kind):
    state = None
    if stored is not None:
        state = start_rollout(schedule(spec(2)), t(stored[0]), fleet(4), t(stored[0]))
        if stored[1]:
            state = replace(state, status=DONE, finished_at=t(stored[0]) + timedelta(hours=1), reason="done")
    admission = admit_occurrence(state, t(occurrence))
    assert admission.kind == kind and admission.reason
    if label == "the previous one is still running":
        assert admission.reason.startswith("previous rollout still in progress")


# -- the stored state ------------------------------------------------------------------------------------------
def test_state_round_trip_is_exact_and_json_safe():
    state = rollout(history=[(5.25, "bn", 905), (910, "fu", None)], max_errors=3)
    state = next_step(state, at(1000), statuses(6)).state
    text = json.dumps(state.to_dict())
    back = RolloutState.from_dict(json.loads(text))
    assert back == state
    assert back.to_dict() == state.to_dict()
    data = json.loads(text)
    assert data["version"] == 1 and data["occurrence"] == "2026-12-01T03:00:00Z"
    assert data["sent"][0] == {"wave": 1, "sent_at": "2026-12-01T03:00:05.250000Z",
                               "gate_closed_at": "2026-12-01T03:15:05Z",
                               "outcomes": {"i-01": "back", "i-02": "not_back"}}
    assert data["waves"][0] == [["i-01", "web-01"], ["i-02", "web-02"]]
    finished = next_step(rollout(history=[(5, "sf", None)]), at(10), statuses(6)).state
    assert RolloutState.from_dict(json.loads(json.dumps(finished.to_dict()))) == finished


@pytest.mark.parametrize("change, gist", [
    ({"version": 2}, "version 2"),
    ({"status": "paused"}, "status 'paused'"),
    ({"waves": None}, "malformed"),
    ({"occurrence": "2026-12-01T03:00:00"}, "no UTC offset"),
    ({"sent": [{"wave": 1, "sent_at": "2026-12-01T03:00:05Z", "outcomes": {"i-01": "great"}}]}, "outcome"),
    ({"sent": [{"wave": 9, "sent_at": "2026-12-01T03:00:05Z", "outcomes": {}}]}, "malformed"),
])
def test_state_from_dict_refuses_what_it_did_not_write(change, gist):
    data = {**rollout().to_dict(), **change}
    with pytest.raises(ValueError, match="not a rollout state") as exc:
        RolloutState.from_dict(data)
    assert gist in str(exc.value)
    with pytest.raises(ValueError, match="not a rollout state"):
        RolloutState.from_dict({k: v for k, v in rollout().to_dict().items() if k != "deadline"})


def test_merge_keeps_the_first_plan_and_moves_outcomes_forward():
    stored = wave_sent(rollout(), 1, at(5))
    other_plan = start_rollout(schedule(spec(3)), T0, fleet(6), at(2))  # another invocation's listing
    assert merge(stored, other_plan).waves == stored.waves
    a = record_outcomes(stored, 1, {"i-01": SUCCESS})
    b = record_outcomes(wave_sent(rollout(), 1, at(7)), 1, {"i-02": FAILED})
    both = merge(merge(stored, a), b)
    assert both == merge(merge(stored, b), a)  # the order of the writes does not matter
    assert both.record(1) == WaveRecord(1, at(5), (("i-01", SUCCESS), ("i-02", FAILED)))
    assert merge(both, stored) == both  # a stale write undoes nothing
    assert merge(both, both) == both


def test_a_gate_cut_by_the_deadline_is_stored_and_merged():
    """`ungated` round-trips, and two invocations closing one gate differently keep the gloomier verdict:
    not_back over ungated over back (as not_back over back)."""
    cut = next_step(rollout(history=[(5, "ss", None)], timeout=10), at(600), statuses(6, ["i-02"])).state
    assert RolloutState.from_dict(json.loads(json.dumps(cut.to_dict()))) == cut
    assert cut.to_dict()["sent"][0]["outcomes"] == {"i-01": "back", "i-02": "ungated"}
    seen_back = rollout(history=[(5, "bb", 590)], timeout=10)
    timed_out = rollout(history=[(5, "bn", 905)])
    assert merge(seen_back, cut).record(1).outcomes == (("i-01", BACK), ("i-02", UNGATED))
    assert merge(cut, seen_back).record(1).gate_closed_at == at(590)  # the earliest close
    assert merge(cut, timed_out).record(1).outcomes == (("i-01", BACK), ("i-02", NOT_BACK))


def test_merge_never_runs_two_rollouts_side_by_side():
    running = rollout(history=[(5, "ss", None)])
    tomorrow = start_rollout(schedule(spec(2)), T0 + timedelta(days=1), fleet(6), T0 + timedelta(days=1))
    assert merge(running, tomorrow) == running  # the earlier one still runs: it stays
    finished = replace(running, status=DONE, finished_at=at(200), reason="done")
    assert merge(finished, tomorrow) == tomorrow  # a finished one is replaced by the next occurrence
    assert merge(tomorrow, finished) == tomorrow  # and never comes back
    with pytest.raises(ValueError, match="cannot merge"):
        merge(running, replace(tomorrow, schedule="other"))


def test_merge_the_earliest_finish_wins():
    base = rollout(history=[(5, "bb", 50)])
    done = replace(base, status=MISSED, finished_at=at(600), reason="missed it")
    halted = replace(base, status=HALTED, finished_at=at(500), reason="halted it")
    assert merge(done, halted).status == HALTED and merge(halted, done).status == HALTED
    assert merge(base, done).status == MISSED and merge(done, base).status == MISSED


def test_progress_for_summaries_and_get_schedules():
    state = rollout(history=[(5, "bb", 50), (60, "sf", None)], max_errors=1)
    info = progress(state, at(70))
    assert info["status"] == "in_progress" and (info["waves"], info["waves_sent"], info["instances"]) == (3, 2, 6)
    assert info["errors"] == 1 and info["max_errors"] == 1 and info["outcomes"] == {"back": 2, "success": 1,
                                                                                    "failed": 1}
    assert info["text"].startswith("wave 2 of 3 sent at 2026-12-01T03:01:00Z, waiting")
    assert progress(rollout(), at(2))["text"].endswith("wave 1 of 3 not sent yet")
    json.dumps(info)


def test_ledger_keys():
    assert wave_key("roll", T0, 2, "restart") == "roll|2026-12-01T03:00:00Z~wave2|*|restart"
    assert wave_key("roll", T0, 2, "restart") == claim_key("roll", "2026-12-01T03:00:00Z~wave2", "*", "restart")
    assert finish_key("roll", T0, "restart") == "roll|2026-12-01T03:00:00Z~rollout-end|*|restart"
    assert state_key("roll") == "rollout:roll"
    # never the key of an instance: those are schedule|occurrence|instance|action, as without a rollout
    assert wave_key("roll", T0, 1, "restart") != claim_key("roll", T0, "*", "restart")


# -- the protocol the runner will follow ---------------------------------------------------------------------------
RESTART_TIME = timedelta(seconds=60)
BUDGET = timedelta(seconds=300)  # an invocation is killed after this (FunctionGraph's timeout): < CLAIM_GRACE


class FakeLedger:
    """Claims that exist once, and the rollout state stored with `merge` (an atomic read-merge-write)."""

    def __init__(self) -> None:
        self.claims: dict[str, tuple[str, datetime, str]] = {}
        self.state: Optional[RolloutState] = None

    def claim(self, key: str, holder: str, now: datetime) -> bool:
        if key in self.claims:
            return False
        self.claims[key] = (holder, now, "claimed")
        return True

    def record(self, key: str, outcome: str) -> None:
        holder, when, _ = self.claims[key]
        self.claims[key] = (holder, when, outcome)

    def outcome(self, key: str) -> Optional[str]:
        return self.claims[key][2] if key in self.claims else None

    def store(self, update: RolloutState) -> RolloutState:
        self.state = merge(self.state, update)
        return self.state


class FakeDcs:
    def __init__(self, n: int) -> None:
        self.back_at = {f"i-{k:02d}": None for k in range(1, n + 1)}
        self.sent: list[str] = []
        self.most_down = 0

    def restart(self, iid: str, now: datetime) -> None:
        self.sent.append(iid)
        self.back_at[iid] = now + RESTART_TIME

    def statuses(self, now: datetime) -> dict[str, str]:
        out = {iid: ("RESTARTING" if back and now < back else "RUNNING") for iid, back in self.back_at.items()}
        self.most_down = max(self.most_down, sum(1 for s in out.values() if s != "RUNNING"))
        return out


def invocation(name: str, sched: Schedule, ledger: FakeLedger, dcs: FakeDcs, clock: list[datetime]):
    """One invocation doing what the runner will do, one ledger or DCS operation per `yield` (where another
    invocation may run, or this one may die)."""
    occurrence, action = T0, sched.action or ""

    def instance_key(iid: str) -> str:
        return claim_key(sched.name, occurrence, iid, action)

    if ledger.state is None or ledger.state.occurrence != occurrence:
        ledger.store(start_rollout(sched, occurrence, fleet(len(dcs.back_at)), clock[0]))
        yield
    for _ in range(50):
        state = ledger.state
        step = next_step(state, clock[0], dcs.statuses(clock[0]))
        state = ledger.store(step.state)
        yield
        if step.kind == RECONCILE:
            ledger.store(absorb_claims(state, step.wave.number, {iid: ledger.outcome(instance_key(iid))
                                                                 for iid, _ in step.instances}))
            yield
            continue
        if step.kind != SEND:
            return  # wait: a later tick (or this invocation's polling) looks again; finished: nothing to do
        number = step.wave.number
        key = wave_key(sched.name, occurrence, number, action)
        if not ledger.claim(key, name, clock[0]):
            holder, claimed_at, _ = ledger.claims[key]
            lost = wave_taken_elsewhere(state, number, claimed_at, holder, clock[0])
            ledger.store(lost.state)
            yield
            if lost.kind == RECONCILE:
                ledger.store(absorb_claims(ledger.state, number, {iid: ledger.outcome(instance_key(iid))
                                                                  for iid, _ in lost.instances}))
                yield
                continue
            return
        yield
        ledger.store(wave_sent(ledger.state, number, clock[0]))
        yield
        outcomes = {}
        for iid in step.wave.instance_ids:
            if not ledger.claim(instance_key(iid), name, clock[0]):
                outcomes[iid] = ledger.outcome(instance_key(iid)) or CLAIMED
                continue
            yield
            dcs.restart(iid, clock[0])
            yield
            ledger.record(instance_key(iid), SUCCESS)
            outcomes[iid] = SUCCESS
            yield
        ledger.store(record_outcomes(ledger.state, number, {
            iid: (out if out in (SUCCESS, FAILED, UNKNOWN, SKIPPED, CLAIMED) else UNKNOWN)
            for iid, out in outcomes.items()}))
        yield


@pytest.mark.parametrize("seed", range(150))
def test_overlapping_invocations_and_crashes_never_send_twice_nor_exceed_a_batch(seed):
    rng = random.Random(seed)
    sched = schedule(spec(3, canary=True, max_errors="100%"))
    ledger, dcs, clock = FakeLedger(), FakeDcs(12), [at(5)]
    live: list[tuple[datetime, object]] = []
    count = 0
    for _ in range(3000):
        if ledger.state is not None and ledger.state.finished and not live:
            break
        roll = rng.random()
        if roll < 0.08 or not live:  # a tick, a duplicate delivery or an overlapping invocation
            count += 1
            live.append((clock[0], invocation(f"req-{count}", sched, ledger, dcs, clock)))
        elif roll < 0.35:
            clock[0] += timedelta(seconds=rng.choice([1, 5, 20, 45, 90]))
        else:
            k = rng.randrange(len(live))
            started, gen = live[k]
            try:
                if clock[0] - started > BUDGET or rng.random() < 0.02:
                    raise StopIteration  # killed by the platform's timeout, or crashed
                next(gen)
            except StopIteration:
                live.pop(k)
    state = ledger.state
    assert state is not None and state.status == DONE, (state.status if state else None, state.reason if state else "")
    assert len(dcs.sent) == len(set(dcs.sent)), "an instance was restarted twice"
    assert dcs.most_down <= 3, "more than a batch of instances down at once"
    outcomes = {iid: out for rec in state.sent for iid, out in rec.outcomes}
    assert set(outcomes) == {f"i-{k:02d}" for k in range(1, 13)}
    for iid, out in outcomes.items():
        if out == SKIPPED:
            assert iid not in dcs.sent  # reported not sent: really not sent
        if iid in dcs.sent:
            assert out in (BACK, UNKNOWN, NOT_BACK)
    assert [r.number for r in state.sent] == list(range(1, len(state.waves) + 1))
    wave_claims = [k for k in ledger.claims if "~wave" in k]
    assert len(wave_claims) == len(state.waves)
