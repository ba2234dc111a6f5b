"""Rollouts in a tick: the I/O side that carries out rollout.py's decisions (issue 13).

A one-shot schedule with a `rollout` block never sends to all its targets at once. The runner hands it here twice:
- `due_rollout`, while it works out what is due: whether the schedule has rollout work this tick (a due
  occurrence, which may start a rollout; a rollout of an earlier occurrence still in progress, stepped at every
  tick until it ends; a running rollout to halt because its schedule was disabled);
- `carry_out`, after the tick's other schedules were sent and their watermarks written: each rollout is stepped
  (`rollout.next_step`) and the step carried out, again and again while this invocation may wait:
  claim the wave key (`rollout.wave_key`: only one invocation ever sends wave k), store `wave_sent`, send the
  wave's instances through the tick's own per-instance claims and ONE status call (`sending.execute`), store
  their outcomes; wait for the health gate, reading the instances' status from DCS with backoff
  (`clock.sleep`), until the invocation's time, ROLLOUT_MAX_WAIT or the next tick comes (a later tick goes on
  from the stored state); halt, miss or finish, reporting the instances not reached once (`rollout.finish_key`).

The state lives in the ledger as meta `rollout:<schedule>` (JSON), written only through `store_state`: an atomic
read-merge-write (`update_meta` with `rollout.merge`), so overlapping invocations combine their progress and a
stale one never undoes it. It is read beside the windows' settled markers, in the tick's one `get_metas` call.

Exactly once per (schedule, occurrence, instance) is the per-instance claim, as without a rollout: the key is
`schedule|occurrence|instance|action` whatever wave sends it. The wave claim only stops two invocations from
sending the same wave (and so from having more than a batch down at once); a wave claimed by an invocation that
died is reconciled from the per-instance claims (`rollout.wave_taken_elsewhere`, `absorb_claims`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from dcs_maintenance import clock, dcs_rules, logs
from dcs_maintenance.freezes import active_freeze
from dcs_maintenance.guards import judge_claim
from dcs_maintenance.ledger.base import CLAIM_TTL, LedgerError, claim_key
from dcs_maintenance.model import Freeze, Instance, Schedule
from dcs_maintenance.planner import eligibility, is_protected, iso, too_late
from dcs_maintenance.report import ScheduleReport
from dcs_maintenance.rollout import (
    CLAIMED,
    DONE,
    FAILED,
    GATED,
    HALT,
    MISSED,
    RECONCILE,
    SEND,
    SKIPPED,
    SUCCESS,
    UNKNOWN,
    WAIT,
    RolloutState,
    Step,
    Wave,
    absorb_claims,
    admit_occurrence,
    describe_waves,
    finish_key,
    gate_result,
    merge,
    next_step,
    plan_waves,
    progress,
    record_outcomes,
    start_rollout,
    state_key,
    stop_rollout,
    wave_key,
    wave_sent,
    wave_taken_elsewhere,
)
from dcs_maintenance.sending import execute, record_stale
from dcs_maintenance.tick import Intent, Runtime, TickRequest, Work

STATE_TTL = CLAIM_TTL  # a rollout's state outlives its claims' guard (8 days after its last write; Redis only)
POLL_FIRST = 5.0  # seconds between two looks at a wave's health, doubling up to POLL_CAP
POLL_CAP = 30.0
SHOW_LIMIT = 5  # up to this many instances are read one by one (show); more: one listing of the project
MAX_TURNS = 200  # steps of one rollout in one invocation without a wait: a guard against a loop, never reached

AGAIN, WAITING, OVER = "again", "waiting", "over"  # what a turn leaves: step again now, poll later, nothing more


@dataclass
class RolloutWork:
    """What a tick knows about a rollout schedule before carrying it out (the runner's Work.rollout)."""

    stored: Optional[RolloutState]  # the schedule's stored state, as read at the start of the tick
    fire: Optional[datetime] = None  # an occurrence due now (or a manual run's minute): it may start a rollout
    stop: Optional[str] = None  # halt the running rollout from outside: why


# -- reading the stored state ------------------------------------------------------------------------------------
_keys_of: list = [None, {}]  # (the schedules sequence last asked about, its rollout state keys)


def clear_memo() -> None:
    """Forget the catalog last asked about, as a cold instance (tests: conftest.reset_process_state)."""
    _keys_of[:] = [None, {}]


def state_keys(schedules: Sequence[Schedule]) -> dict[str, str]:
    """schedule name -> its rollout state's meta key, for every one-shot schedule with a rollout block; found once
    per catalog (its schedules tuple is the same object from tick to tick while its files are unchanged)."""
    if _keys_of[0] is not schedules:
        _keys_of[:] = [schedules, {s.name: state_key(s.name) for s in schedules
                                   if s.rollout is not None and not s.is_window}]
    return _keys_of[1]


def parse_state(name: str, text: Optional[str]) -> Optional[RolloutState]:
    """A stored state, or None (nothing stored; unreadable: logged, and a new rollout may replace it)."""
    if not text:
        return None
    try:
        state = RolloutState.from_dict(json.loads(text))
    except ValueError as exc:
        logs.error("rollout_state_unreadable", schedule=name, error=str(exc))
        return None
    return state if state.schedule == name else None


def in_progress(state: Optional[RolloutState]) -> bool:
    return state is not None and not state.finished


def store_state(ledger: Any, update: RolloutState) -> RolloutState:
    """Write `update` merged into what is stored (atomically), and return what is stored now: maybe more than
    `update` (another invocation's progress), maybe another occurrence's rollout (then `update` lost)."""

    def change(text: Optional[str]) -> Optional[str]:
        merged = merge(parse_state(update.schedule, text), update)
        return json.dumps(merged.to_dict(), sort_keys=True, separators=(",", ":"))

    stored = ledger.update_meta(state_key(update.schedule), change, ttl=STATE_TTL)
    return RolloutState.from_dict(json.loads(stored))


def progress_of(ledger: Any, schedules: list[Schedule], now: datetime) -> dict[str, Optional[dict]]:
    """Each rollout schedule's current rollout as `rollout.progress` says (None: none stored), in one read.
    Raises LedgerError."""
    keys = {s.name: state_key(s.name) for s in schedules if s.rollout is not None and not s.is_window}
    if not keys:
        return {}
    values = ledger.get_metas(list(keys.values()))
    out: dict[str, Optional[dict]] = {}
    for name, key in keys.items():
        state = parse_state(name, values.get(key))
        out[name] = progress(state, now) if state is not None else None
    return out


# -- the runner's first hook: is there rollout work? -------------------------------------------------------------------
def due_rollout(schedule: Schedule, rep: ScheduleReport, project: str, region: Optional[str],
                fire: Optional[datetime], stored: Optional[RolloutState], manual: bool = False) -> Optional[Work]:
    """The schedule's rollout work this tick, or None: a due occurrence (`fire`), or a stored rollout still in
    progress (continued; stopped when the schedule is disabled)."""
    if not schedule.enabled:
        if not in_progress(stored):
            return None
        assert stored is not None
        return Work(schedule, rep, project, region, stored.occurrence, None, rep.data["dry_run"],
                    rollout=RolloutWork(stored, stop="the schedule was disabled (enabled: false)"))
    if fire is None and not in_progress(stored):
        return None
    occurrence = fire if fire is not None else stored.occurrence  # type: ignore[union-attr]
    return Work(schedule, rep, project, region, occurrence, None, rep.data["dry_run"], manual=manual,
                rollout=RolloutWork(stored, fire))


# -- the runner's second hook: carry the rollouts out -----------------------------------------------------------------
Targets = Callable[[Work], Optional[tuple[Instance, ...]]]


def carry_out(works: list[Work], listings: Mapping[tuple[str, Optional[str]], Any], rt: Runtime, ledger: Any,
              request: TickRequest, freezes: tuple[Freeze, ...], targets: Targets) -> None:
    """Step every rollout and carry its steps out while this invocation may wait; then report where each stands.

    `listings`: the tick's instance listing per (project, region) (an exception where it failed); `targets`:
    the runner's selection of a schedule's targets (selector, exclude, protection, within_maintenance_window),
    reporting the others, for a rollout that starts now."""
    runs = [_Rollout(work, listings.get((work.project, work.region)), rt, ledger, request, freezes, targets)
            for work in works]
    live = []
    for run in runs:
        if run.preview_only:
            run.preview()
        else:
            live.append(run)
    _drive(live, rt, request)
    for run in runs:
        run.conclude()


def _drive(runs: list[_Rollout], rt: Runtime, request: TickRequest) -> None:
    """Turn every rollout until it waits, then poll: sleep (backoff, or until the step's own recheck time), read
    the waited-for instances' status, turn again; stop when the next tick, ROLLOUT_MAX_WAIT or the time budget
    comes."""
    until = _poll_until(rt, request)
    pause = POLL_FIRST
    while runs:
        waiting, sent = [], False
        for run in runs:
            outcome = run.turn_until_wait()
            sent |= run.sent_this_round
            if outcome == WAITING:
                waiting.append(run)
        runs = waiting
        if not runs:
            return
        if sent:
            pause = POLL_FIRST
        now = clock.now()
        wake = min((run.recheck for run in runs if run.recheck is not None), default=now + timedelta(seconds=pause))
        delay = min(pause, max(1.0, (wake - now).total_seconds()))
        if now + timedelta(seconds=delay) > until or rt.remaining() < delay + 2 * rt.settings.call_budget:
            for run in runs:
                run.left_for_later = True
            return
        clock.sleep(delay)
        pause = min(pause * 2, POLL_CAP)
        for run in runs:
            run.refresh()


def _poll_until(rt: Runtime, request: TickRequest) -> datetime:
    """How long this invocation may wait for gates: never into the next tick (which goes on from the stored
    state), never longer than ROLLOUT_MAX_WAIT, and with time left for a status call and the summary's writes."""
    now = clock.now()
    budget = rt.settings.call_budget
    left = max(0.0, min(rt.remaining() - 2 * budget, rt.settings.rollout_max_wait.total_seconds()))
    limit = now + timedelta(seconds=left)
    if not request.manual:
        limit = min(limit, request.at + rt.settings.tick_period - timedelta(seconds=budget))
    return limit


@dataclass
class _WaveIntent(Intent):
    """An Intent sent as part of a wave: remembers what sending.py reported for it (the rollout stores it)."""

    wave: Optional[Wave] = None
    result: str = ""
    handled_by: Optional[str] = None
    not_sent: bool = False

    def report(self, result: str, reason: str, **extra: Any) -> None:
        self.result, self.handled_by = result, extra.get("handled_by")
        self.not_sent = bool(extra.get("not_sent"))
        if self.not_sent:  # sending.py's "the next tick tries again" is not true of a wave: it is sent once
            reason = reason.rsplit("; ", 1)[0] + "; not retried: each wave is sent once, the rollout goes on"
        assert self.wave is not None
        super().report(result, f"{reason} (wave {self.wave.number} of {self.wave.of})", wave=self.wave.number,
                       **extra)

    def outcome(self) -> str:
        """What the rollout state records: the call's outcome; another invocation's claim: known only from that
        claim (reconciled later), unless it is known to be unknown; not sent: skipped."""
        if self.handled_by:
            return UNKNOWN if self.result == "unknown" else CLAIMED
        if self.result in (SUCCESS, FAILED, UNKNOWN):
            return self.result
        return SKIPPED if self.result else CLAIMED


class _Rollout:
    """One schedule's rollout in this invocation: its latest known state and what this invocation did to it."""

    def __init__(self, work: Work, listed: Any, rt: Runtime, ledger: Any, request: TickRequest,
                 freezes: tuple[Freeze, ...], targets: Targets) -> None:
        self.work, self.rt, self.ledger, self.request, self.freezes = work, rt, ledger, request, freezes
        self.targets = targets
        self.schedule, self.rep = work.schedule, work.report
        self.action = work.schedule.action or ""
        plan: RolloutWork = work.rollout
        self.state, self.fire, self.stop = plan.stored, plan.fire, plan.stop
        self.listed: dict[str, Instance] = {} if isinstance(listed, BaseException) or listed is None else {
            inst.instance_id: inst for inst in listed}
        self.list_error = listed if isinstance(listed, BaseException) else None
        self.statuses: dict[str, Optional[str]] = {iid: inst.status for iid, inst in self.listed.items()}
        self.listing_fresh = True  # the tick's listing is seconds old: good enough for the first wave sent
        self.recheck: Optional[datetime] = None
        self.last: Optional[Step] = None
        self.stepped = False
        self.sent_this_round = False
        self.left_for_later = False
        self.over = False
        self.preview_only = not request.writes or work.dry_run

    # -- a turn: one step, carried out ---------------------------------------------------------------------
    def turn_until_wait(self) -> str:
        self.sent_this_round = False
        for _ in range(MAX_TURNS):
            outcome = self.turn()
            if outcome != AGAIN:
                if outcome == OVER:
                    self.over = True
                return outcome
        logs.error("rollout_loop", schedule=self.schedule.name, turns=MAX_TURNS)
        return OVER

    def turn(self) -> str:
        now = clock.now()
        if self.over:
            return OVER
        if self.stop is not None and in_progress(self.state):
            assert self.state is not None
            return self._end(stop_rollout(self.state, now, self.stop), now)
        admit = self.fire is not None and (not in_progress(self.state) or self.stepped
                                           or self.state.occurrence >= self.fire)  # type: ignore[union-attr]
        if admit and not self._admit(now):
            return OVER
        state = self.state
        if state is None or state.finished:
            return OVER
        frozen_by = active_freeze(self.freezes, state.action, now)
        step = next_step(state, now, self.statuses, frozen_by)
        self.stepped = True
        if step.state is not state and not self._store(step.state):
            return OVER
        self._report_judged(step, state)
        self.last = step
        if step.kind == SEND:
            return self._send(step, now)
        if step.kind == RECONCILE:
            return self._reconcile(step, now)
        if step.kind == WAIT:
            self.recheck = step.recheck_at
            self._decide(step.reason, now)
            return AGAIN if self.fire is not None else WAITING  # a due occurrence is admitted (missed) at once
        if step.kind in (HALT, MISSED, DONE):
            return self._end(step, now)
        return OVER  # FINISHED

    def _admit(self, now: datetime) -> bool:
        """A due occurrence against the stored rollout: start it, continue it, or report it missed."""
        fire, self.fire = self.fire, None
        assert fire is not None
        admission = admit_occurrence(self.state, fire)
        if admission.kind == "missed":
            self.rep.passed(fire, "missed", admission.reason)
            if self.work.manual:  # the route answers 409: no new rollout beside the running one
                self.rep.data["busy"] = admission.reason
            return in_progress(self.state)
        if admission.kind == "continue":
            return True
        return self._start(fire, now)

    def _start(self, fire: datetime, now: datetime) -> bool:
        targets = self.targets(self.work)
        if targets is None:  # listing failed or the selector matched too many: reported by the runner
            return False
        if not self.work.manual and too_late(self.schedule, fire, clock.as_of()):
            self.rep.passed(fire, "missed", f"older than starting_deadline {self.schedule.starting_deadline} by the "
                                            "wall clock when its first wave would start")
            return False
        new = start_rollout(self.schedule, fire, targets, now)
        if not self._store(new):
            return False
        if self.state is not None and self.state.occurrence == fire and self.state.started_at == new.started_at:
            self._decide(f"rollout of {new.total} instance(s) started: {describe_waves(new.waves)}", now)
        return True

    # -- sending a wave ------------------------------------------------------------------------------------
    def _send(self, step: Step, now: datetime) -> str:
        state, wave = self.state, step.wave
        assert state is not None and wave is not None
        if self.rt.remaining() < self.rt.settings.call_budget:
            return self._later(f"{step.reason}: not enough time left in this invocation to send it", now)
        current = self._current(wave.instance_ids)
        if current is None:
            return self._later(f"{step.reason}: the instances' status could not be read: not sent yet", now)
        if wave.number == 1 and not self.work.manual and too_late(self.schedule, state.occurrence, clock.as_of()):
            return self._end(stop_rollout(state, now, f"wave 1 could not start within starting_deadline "
                                                       f"{self.schedule.starting_deadline} of the occurrence",
                                          MISSED), now)
        key = wave_key(self.schedule.name, state.occurrence, wave.number, self.action)
        holder = logs.request_id()
        try:
            won = self.ledger.claim_many([key], holder, now=now)[0]
        except LedgerError as exc:
            return self._failed(f"{wave.describe()} not sent: the ledger could not take the wave's claim ({exc})")
        if not won:
            return self._lost_wave(wave, key, now)
        try:
            sent = store_state(self.ledger, wave_sent(state, wave.number, now))
        except (LedgerError, ValueError) as exc:
            with contextlib.suppress(LedgerError):  # the state never said this wave was sent: give its claim back
                self.ledger.release_many([key], holder)
            return self._failed(f"{wave.describe()} not sent: the rollout's state could not be stored ({exc})")
        if not self._accept(sent, state):
            return OVER
        outcomes = self._send_members(wave, current, now)
        try:
            self._accept(store_state(self.ledger, record_outcomes(self.state, wave.number, outcomes)), state)
        except (LedgerError, ValueError) as exc:  # the per-instance claims hold the outcomes: reconciled later
            return self._failed(f"{wave.describe()} sent, but its outcomes could not be stored ({exc}); a later "
                                "look reads them back from the instances' claims")
        self._close_wave_claim(key, f"{wave.describe()} sent", only_claimed=False)
        self.sent_this_round = True
        for iid in wave.instance_ids:  # what was read before the call says nothing about the gate
            self.statuses.pop(iid, None)
        self._decide(f"sent {wave.describe()}", now)
        return AGAIN

    def _send_members(self, wave: Wave, current: dict[str, Optional[Instance]], now: datetime) -> dict[str, str]:
        """The wave's instances through the tick's claims and status call (sending.execute); their outcomes."""
        state = self.state
        assert state is not None
        settings, occurrence = self.rt.settings, state.occurrence
        keys = {iid: claim_key(self.schedule.name, occurrence, iid, self.action) for iid in wave.instance_ids}
        try:
            existing = self.ledger.get_claims(list(keys.values()), now=now)
        except LedgerError as exc:
            for iid, name in wave.members:
                self._instance(iid, name, "skipped", f"not sent: the ledger could not be read ({exc}) (wave "
                                                     f"{wave.number} of {wave.of})", wave=wave.number)
            return dict.fromkeys(wave.instance_ids, SKIPPED)
        outcomes: dict[str, str] = {}
        intents: list[_WaveIntent] = []
        stale: dict[str, tuple[str, str]] = {}
        of = f"(wave {wave.number} of {wave.of})"
        for iid, name in wave.members:
            inst = current.get(iid)
            record = existing.get(keys[iid])
            if record is not None:  # sent before (a crash between wave_sent and record_outcomes): never again
                verdict = judge_claim(record, now, timedelta(seconds=settings.call_budget),
                                      inst.status if inst else "")
                self._instance(iid, name, verdict.result, f"{verdict.reason} {of}", handled_by=record.holder,
                               wave=wave.number)
                if verdict.stale:
                    stale[keys[iid]] = ("unknown", verdict.reason)
                outcomes[iid] = UNKNOWN if verdict.result == "unknown" else (
                    record.outcome if record.outcome in (SUCCESS, FAILED, SKIPPED) else CLAIMED)
                continue
            why = self._not_eligible(inst)
            if why:
                self._instance(iid, name, "skipped", f"{why}: not sent, and not retried {of}", wave=wave.number)
                outcomes[iid] = SKIPPED
                continue
            assert inst is not None
            intents.append(_WaveIntent(self.work, inst, self.action, keys[iid], occurrence, late_check=False,
                                       wave=wave))
        record_stale(stale, self.ledger)
        if intents:
            self.work.intents = list(intents)
            execute([self.work], self.rt, self.ledger, self.request, {self.schedule.name: occurrence})
            self.work.intents = []
            outcomes.update({it.instance.instance_id: it.outcome() for it in intents})
        return outcomes

    def _not_eligible(self, inst: Optional[Instance]) -> str:
        if inst is None:
            return "not found in the project any more"
        key, value = self.rt.settings.protect_tag
        if not inst.tags_known:
            return dcs_rules.unreadable(inst)
        if is_protected(inst, self.rt.settings.protect_tag):
            return f"protected by tag {key}={value}"
        verdict = eligibility(self.action, inst, self.schedule.allow_flush)
        return "" if verdict.ok else verdict.reason

    def _lost_wave(self, wave: Wave, key: str, now: datetime) -> str:
        """Another invocation holds wave k's claim: wait while it may be sending; reconcile after the grace."""
        state = self.state
        assert state is not None
        try:
            record = self.ledger.get_claims([key], now=now).get(key)
        except LedgerError as exc:
            return self._failed(f"{wave.describe()}: its claim could not be read ({exc})")
        if record is None:  # expired or released meanwhile: look again soon
            self.recheck = now + timedelta(seconds=POLL_FIRST)
            return WAITING
        lost = wave_taken_elsewhere(state, wave.number, record.at, record.holder, now)
        if lost.state is not state and not self._store(lost.state):
            return OVER
        if lost.kind == RECONCILE:
            return self._reconcile(lost, now)
        self.last, self.recheck = lost, lost.recheck_at
        self._decide(lost.reason, now)
        return WAITING

    def _reconcile(self, step: Step, now: datetime) -> str:
        """A wave whose sender stopped before recording its outcomes: read its instances' claims."""
        state, wave = self.state, step.wave
        assert state is not None and wave is not None
        keys = {iid: claim_key(self.schedule.name, state.occurrence, iid, self.action) for iid, _ in step.instances}
        try:
            records = self.ledger.get_claims(list(keys.values()), now=now)
        except LedgerError as exc:
            return self._failed(f"{step.reason}: the claims could not be read ({exc})")
        stale: dict[str, tuple[str, str]] = {}
        claims: dict[str, Optional[str]] = {}
        of = f"(wave {wave.number} of {wave.of})"
        for iid, name in step.instances:
            record = records.get(keys[iid])
            claims[iid] = record.outcome if record is not None else None
            if record is None:
                self._instance(iid, name, "skipped", f"never sent: its wave's sender stopped before claiming it "
                                                     f"{of}", wave=wave.number)
                continue
            verdict = judge_claim(record, now, timedelta(seconds=self.rt.settings.call_budget),
                                  self.statuses.get(iid) or "")
            self._instance(iid, name, verdict.result, f"{verdict.reason} {of}", handled_by=record.holder,
                           wave=wave.number)
            if verdict.stale:
                stale[keys[iid]] = ("unknown", verdict.reason)
        record_stale(stale, self.ledger)
        if not self._store(absorb_claims(state, wave.number, claims)):
            return OVER
        self._close_wave_claim(wave_key(self.schedule.name, state.occurrence, wave.number, self.action),
                               f"{wave.describe()}: reconciled from its instances' claims", only_claimed=True)
        return AGAIN

    def _close_wave_claim(self, key: str, detail: str, only_claimed: bool) -> None:
        """The wave claim's outcome, once the wave's outcomes are stored: no claim stays without one (an operator
        reading the ledger, or a check of outcome-less claims, sees the wave as done)."""
        try:
            self.ledger.record_many({key: ("success", detail)}, only_claimed=only_claimed)
        except LedgerError as exc:  # the claim still guards the wave; only its outcome text is missing
            logs.error("ledger_record_failed", what="wave claim", error=str(exc))

    # -- the end -----------------------------------------------------------------------------------------------
    def _end(self, step: Step, now: datetime) -> str:
        """Halted, missed or done: stored, and the instances not reached reported once (the finish claim)."""
        if not self._store(step.state):
            return OVER
        state = self.state
        assert state is not None
        if step.kind in (HALT, MISSED) and step.instances:
            result = "halted" if step.kind == HALT else "missed"
            key = finish_key(self.schedule.name, state.occurrence, self.action)
            try:
                won = self.ledger.claim_many([key], logs.request_id(), now=now)[0]
            except LedgerError as exc:
                return self._failed(f"{state.reason}; the instances not reached could not be reported: {exc}")
            if won:
                for iid, name in step.instances:
                    self._instance(iid, name, result, state.reason or step.reason)
                try:
                    self.ledger.record_many({key: ("success", f"{len(step.instances)} instance(s) reported "
                                                              f"{result}")})
                except LedgerError as exc:
                    logs.error("ledger_record_failed", what="rollout end", error=str(exc))
                self._decide(state.reason or step.reason, now)
            else:
                holder = self._holder(key)
                self._decide(f"{state.reason or step.reason} (reported by request {holder})", now)
        else:
            self._decide(state.reason or step.reason, now)
        if self.fire is not None:  # a due occurrence waiting for this rollout to end: it may start now
            return AGAIN
        return OVER

    def _report_judged(self, step: Step, before: RolloutState) -> None:
        """Instances the health gate did not find back, once (by the invocation that closed it): not back in time
        `failed`; cut short by the rollout's deadline `unknown` (rollout.gate_result says which and why)."""
        state, record = self.state, step.state.last
        if not step.judged or state is None or record is None:
            return
        late = {(iid, name): reported for iid, name, verdict in step.judged
                if (reported := gate_result(before, record.number, verdict, self.statuses.get(iid))) is not None}
        stored = state.record(record.number)
        if not late or stored is None or stored.gate_closed_at != record.gate_closed_at:
            return  # nothing to report, or another invocation closed this gate first and reported it
        keys = {iid: claim_key(self.schedule.name, state.occurrence, iid, self.action) for iid, _ in late}
        try:
            holders = {iid: rec.holder for iid, key in keys.items()
                       if (rec := self.ledger.get_claims([key]).get(key)) is not None}
        except LedgerError:
            holders = {}
        for (iid, name), (result, reason) in late.items():
            self._instance(iid, name, result, reason, handled_by=holders.get(iid, "?"), wave=record.number)

    # -- polling ---------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """After a sleep: the stored state (another invocation may have moved it) and the waited-for statuses."""
        self.listing_fresh = False
        try:
            stored = parse_state(self.schedule.name, self.ledger.get_meta(state_key(self.schedule.name)))
        except LedgerError as exc:
            logs.error("rollout_state_read_failed", schedule=self.schedule.name, error=str(exc))
            stored = None
        if stored is not None and self.state is not None and stored.occurrence == self.state.occurrence:
            self.state = merge(stored, self.state)
        elif stored is not None and self.state is not None and stored.occurrence > self.state.occurrence:
            self.state = stored
        last = self.state.last if self.state is not None else None
        waited = [iid for iid, out in last.outcomes if out in GATED] if last and not last.gate_closed_at else []
        if waited:
            found = self._read(waited)
            if found is not None:
                self.statuses.update({iid: (inst.status if inst else None) for iid, inst in found.items()})

    def _current(self, ids: tuple[str, ...]) -> Optional[dict[str, Optional[Instance]]]:
        """The wave's instances as DCS shows them now (the tick's listing for the first send of this invocation)."""
        if self.listing_fresh and self.listed:
            self.listing_fresh = False
            return {iid: self.listed.get(iid) for iid in ids}
        return self._read(list(ids))

    def _read(self, ids: list[str]) -> Optional[dict[str, Optional[Instance]]]:
        if self.rt.remaining() < self.rt.settings.call_budget:
            return None
        try:
            gateway = self.rt.gateway(self.work.project, self.work.region)
            if len(ids) <= SHOW_LIMIT:
                return {iid: gateway.show_instance(iid) for iid in ids}
            # where list entries carry no tags, the same tag filters as the tick's listing (fail closed otherwise)
            filters = dcs_rules.tag_filters([self.schedule], self.rt.settings.protect_tag)
            listed = {inst.instance_id: inst for inst in gateway.list_instances(filters)}
            return {iid: listed.get(iid) for iid in ids}
        except Exception as exc:  # GatewayError, settings or credential errors: looked at again later
            logs.error("rollout_status_read_failed", schedule=self.schedule.name, error=str(exc))
            return None

    # -- dry runs and previews -----------------------------------------------------------------------------------
    def preview(self) -> None:
        """What a tick would do, changing nothing: the waves of a rollout that would start, or the next step of
        the running one."""
        now = clock.now()
        if self.stop is not None and in_progress(self.state):
            self.rep.decide("rollout", f"would halt the rollout: {self.stop}", self.work.occurrence,
                            rollout=progress(self.state, now))  # type: ignore[arg-type]
            return
        if in_progress(self.state):
            assert self.state is not None
            step = next_step(self.state, now, self.statuses, active_freeze(self.freezes, self.state.action, now))
            if self.fire is not None and self.fire != self.state.occurrence:
                admission = admit_occurrence(self.state, self.fire)
                if admission.kind == "missed":
                    self.rep.passed(self.fire, "missed", admission.reason)
            self.rep.decide("rollout", f"{progress(self.state, now)['text']}; next: {step.reason}",
                            self.state.occurrence, rollout=progress(self.state, now))
            return
        if self.fire is None:
            return
        targets = self.targets(self.work)
        if targets is None:
            return
        spec = self.schedule.rollout
        assert spec is not None
        waves = plan_waves(spec, targets, self.schedule.instances)
        for wave in waves:
            for iid, name in wave.members:
                inst = self.listed.get(iid)
                why = self._not_eligible(inst)
                self._instance(iid, name, "skipped", f"dry run: {why}: would not be sent (wave {wave.number} of "
                                                     f"{wave.of})" if why else
                               f"dry run: would {self.action} in wave {wave.number} of {wave.of} "
                               f"({inst.status if inst else '?'})", occurrence=self.fire, wave=wave.number)
        self.rep.decide("due", f"rollout of {sum(len(w.members) for w in waves)} instance(s) in {len(waves)} "
                               f"wave(s): {describe_waves(waves)}", self.fire,
                        waves=[{"wave": w.number, "instances": [name or iid for iid, name in w.members]}
                               for w in waves])

    # -- small helpers ---------------------------------------------------------------------------------------------
    def conclude(self) -> None:
        if self.preview_only:
            return
        now = clock.now()
        if self.fire is not None and in_progress(self.state):  # never admitted: the earlier rollout still runs
            self.stepped = True
            self._admit(now)
        if self.left_for_later and self.last is not None and in_progress(self.state):
            self._decide(f"{self.last.reason}; the next tick looks again", now)

    def _store(self, update: RolloutState) -> bool:
        try:
            stored = store_state(self.ledger, update)
        except (LedgerError, ValueError) as exc:
            self._failed(f"the rollout's state could not be stored ({exc}); nothing more is done in this "
                         "invocation, the next tick goes on from what is stored")
            return False
        return self._accept(stored, update)

    def _accept(self, stored: RolloutState, update: RolloutState) -> bool:
        if stored.occurrence != update.occurrence:
            self.state = stored
            self._decide(f"the rollout of occurrence {iso(update.occurrence)} was superseded by that of "
                         f"{iso(stored.occurrence)}", clock.now())
            return False
        self.state = stored
        return True

    def _later(self, reason: str, now: datetime) -> str:
        self.left_for_later = False
        self._decide(f"{reason}; the next tick looks again", now)
        return OVER

    def _failed(self, reason: str) -> str:
        logs.error("rollout_failed", schedule=self.schedule.name, error=reason)
        self.rep.fail(reason)
        return OVER

    def _holder(self, key: str) -> str:
        try:
            record = self.ledger.get_claims([key]).get(key)
        except LedgerError:
            record = None
        return record.holder if record is not None else "?"

    def _instance(self, iid: str, name: str, result: str, reason: str, **extra: Any) -> None:
        occurrence = extra.pop("occurrence", None) or (self.state.occurrence if self.state else self.work.occurrence)
        self.rep.instance(iid, name, self.action, result, reason, occurrence, **extra)

    def _decide(self, reason: str, now: datetime) -> None:
        if self.rep.error:  # a failure stays the schedule's decision
            return
        state = self.state
        self.rep.decide("rollout", reason, state.occurrence if state else self.work.occurrence,
                        rollout=progress(state, now) if state is not None else None)


__all__ = ["STATE_TTL", "POLL_FIRST", "POLL_CAP", "RolloutWork", "state_keys", "parse_state",
           "in_progress", "store_state", "progress_of", "due_rollout", "carry_out"]
