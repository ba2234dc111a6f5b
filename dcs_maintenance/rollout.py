"""Rollouts: an occurrence's targets in waves, each wave gated on the previous one's health. Pure decisions.

A one-shot schedule with a `rollout` block does not act on all its targets at once. At its occurrence the
targets are ordered and split into waves (`plan_waves`), frozen into a `RolloutState` (`start_rollout`)
that the ledger keeps. From then on, every look at the rollout (the same invocation polling, or a later
tick) asks `next_step(state, now, statuses)` what to do, and the runner only carries it out:

- `send`: send wave k (claim its wave key first, then `wave_sent`, the per-instance claims and calls as
  today, then `record_outcomes`);
- `wait`: the previous wave is not back to RUNNING yet, a wave is being sent elsewhere, or a freeze pauses
  the rollout; look again later (`recheck_at` says when the answer changes even if no status does);
- `reconcile`: a wave was claimed but its outcomes were never recorded (its sender stopped): read the
  per-instance claims and `absorb_claims` them;
- `halt`: the error budget is exceeded; the remaining instances are reported `halted`;
- `done`: every wave was sent and gated (the last gate maybe cut short by the deadline);
- `missed`: the rollout's deadline passed before every wave was sent; the rest are reported `missed`, and
  the last wave's instances its gate had not judged by then `unknown` (`judged`: `ungated`, not errors);
- `finished`: the rollout was already over (nothing to do).

Each step carries the new state to store. States from overlapping invocations combine with `merge`
(the stored plan always wins; outcomes only move forward), so a stale writer never undoes progress; a
wave is sent by whoever wins its wave claim (`wave_key`), so two deliveries never both send wave k.

Rules (documented in the README, section "Rollouts"):
- order `name`: by instance name (then id). `listed`: by the selector's `ids` order when it has ids; else
  by the index of the FIRST `names` glob an instance's name matches, ties by name; a tags-only selector
  has no order of its own and falls back to names;
- `batch`: a count, or a percentage of the occurrence's targets rounded up (at least 1); absent: one wave;
  `canary: true`: wave 1 is the first instance alone, then waves of `batch`;
- `max_errors`: a count, or a percentage of the targets rounded down (errors > p% of the targets exactly
  when errors > floor(p * targets / 100)); default 0. Errors are instances whose call failed, whose
  outcome is unknown, or that were not back to RUNNING within `wave_timeout` (each counted once). The
  rollout halts as soon as errors EXCEED the budget, without waiting for the open gate;
- health gate: every instance of the previous wave that was sent (success or unknown) is RUNNING, and at
  least `GATE_SETTLE` has passed since the wave was sent (a status read right after the call may not show
  the restart yet). `wave_timeout` after the send, those not RUNNING count as `not_back` errors and the gate
  closes; an unknown outcome stays one error whether or not the instance comes back;
- deadline (`rollout_deadline`): `timeout` after the occurrence, else the schedule's next occurrence (on an
  active date), never more than `MAX_ROLLOUT_TIME` after the occurrence (claims live 8 days). The waves not
  sent by then are `missed`. A gate still open at the deadline, before its own `wave_timeout`, closes then:
  its instances not (trusted) RUNNING are `ungated`, reported unknown but NOT errors (they were sent, and
  their wave_timeout had not run out: nothing says they failed), so the deadline never halts a rollout;
- a new occurrence while a rollout of an earlier one is still running is `missed` ("previous rollout still
  in progress"; `admit_occurrence`). The runner steps the stored rollout first, so a rollout past its
  deadline is closed (`missed`) before the next one starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any, Optional, Union

from dcs_maintenance.model import Amount, Freeze, Instance, RolloutSpec, Schedule, Selector

UTC = timezone.utc
GATE_SETTLE = timedelta(seconds=30)  # RUNNING is trusted only this long after a wave was sent
CLAIM_GRACE = timedelta(minutes=10)  # a wave claimed longer ago than this without outcomes: its sender stopped
MAX_ROLLOUT_TIME = timedelta(days=7)  # claims are kept 8 days (ledger.base.CLAIM_TTL)
STATE_VERSION = 1

# One instance's outcome in a rollout, as stored.
CLAIMED = "claimed"  # its wave was claimed; the call's outcome is not recorded (yet)
SKIPPED = "skipped"  # not sent: ineligible, gone, or its wave's sender stopped before sending
SUCCESS = "success"  # accepted by DCS; the health gate has not judged it yet
FAILED = "failed"  # refused by DCS (an error)
UNKNOWN = "unknown"  # the call may have run (an error; the gate still waits for it to be RUNNING)
BACK = "back"  # success, and back to RUNNING in time
NOT_BACK = "not_back"  # sent, and not RUNNING within wave_timeout (an error)
UNGATED = "ungated"  # sent, and the rollout's deadline came before its gate closed (reported unknown; not an error)
OUTCOMES = (CLAIMED, SKIPPED, SUCCESS, FAILED, UNKNOWN, BACK, UNGATED, NOT_BACK)
ERRORS = (FAILED, UNKNOWN, NOT_BACK)
GATED = (SUCCESS, UNKNOWN)  # sent and possibly down: the health gate waits for these
# How far an outcome has got; merge keeps the further one (at equal rank, the later in OUTCOMES: the gloomier).
_RANK = {CLAIMED: 0, SKIPPED: 1, SUCCESS: 1, FAILED: 1, UNKNOWN: 1, BACK: 2, UNGATED: 2, NOT_BACK: 2}

# A rollout's status.
IN_PROGRESS = "in_progress"
DONE = "done"
HALTED = "halted"
MISSED = "missed"
STATUSES = (IN_PROGRESS, DONE, HALTED, MISSED)

# What next_step says to do.
SEND = "send"
WAIT = "wait"
RECONCILE = "reconcile"
HALT = "halt"
FINISHED = "finished"  # and DONE, MISSED
STEPS = (SEND, WAIT, RECONCILE, HALT, DONE, MISSED, FINISHED)

Member = tuple[str, str]  # (instance_id, name)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- sizes ------------------------------------------------------------------------------------------------
def batch_size(batch: Optional[Amount], total: int) -> int:
    """Instances per wave: all (no batch), a count, or a percentage of `total` rounded up; at least 1."""
    if total <= 0:
        return 1
    if batch is None:
        return total
    size = math.ceil(batch.value * total / 100) if batch.percent else batch.value
    return max(1, min(size, total))


def allowed_errors(max_errors: Amount, total: int) -> int:
    """Errors tolerated: a count, or a percentage of `total` rounded down (more than p% halts)."""
    if max_errors.percent:
        return max_errors.value * max(total, 0) // 100
    return max_errors.value


# -- planning --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Wave:
    """One wave of a rollout: its number (1-based), the number of waves, and its instances in order."""

    number: int
    of: int
    members: tuple[Member, ...]

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return tuple(iid for iid, _ in self.members)

    def describe(self, limit: int = 8) -> str:
        """`wave 2 of 4: staging-jobs, staging-web` (at most `limit` names, then how many more)."""
        names = [name or iid for iid, name in self.members]
        shown = ", ".join(names[:limit]) + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")
        return f"wave {self.number} of {self.of}: {shown}"


def order_targets(targets: Sequence[Instance], order: str = "name",
                  selector: Optional[Selector] = None) -> tuple[Instance, ...]:
    """`name`: by name, then id. `listed`: the selector's `ids` order if it has ids, else the index of the first
    `names` glob that matches (ties by name), else (tags only) by name."""
    by_name = sorted(targets, key=lambda i: (i.name, i.instance_id))
    if order != "listed" or selector is None:
        return tuple(by_name)
    if selector.ids:
        rank = {iid: k for k, iid in enumerate(selector.ids)}
        return tuple(sorted(by_name, key=lambda i: rank.get(i.instance_id, len(rank))))
    if selector.names:
        globs = selector.names

        def first_glob(inst: Instance) -> int:
            return next((k for k, glob in enumerate(globs) if fnmatchcase(inst.name, glob)), len(globs))

        return tuple(sorted(by_name, key=first_glob))  # sorted() is stable: ties keep name order
    return tuple(by_name)


def plan_waves(spec: RolloutSpec, targets: Sequence[Instance],
               selector: Optional[Selector] = None) -> tuple[Wave, ...]:
    """The targets, ordered, in waves: a canary of one first if asked, then waves of `batch`."""
    ordered = order_targets(targets, spec.order, selector)
    members = [(i.instance_id, i.name) for i in ordered]
    if not members:
        return ()
    size = batch_size(spec.batch, len(members))
    groups: list[list[Member]] = []
    if spec.canary:
        groups.append(members[:1])
        members = members[1:]
    groups += [members[k:k + size] for k in range(0, len(members), size)]
    return tuple(Wave(n, len(groups), tuple(g)) for n, g in enumerate(groups, 1))


def describe_waves(waves: Sequence[Wave], limit: int = 10) -> str:
    """For plans and dry runs: `wave 1 of 4: staging-api; wave 2 of 4: staging-jobs, staging-web; ...`."""
    if not waves:
        return "no instance to act on"
    text = "; ".join(w.describe() for w in waves[:limit])
    return text + (f"; ... and {len(waves) - limit} more waves" if len(waves) > limit else "")


def rollout_deadline(schedule: Schedule, occurrence: datetime) -> datetime:
    """`timeout` after the occurrence, else the schedule's next occurrence on an active local date; at most
    `MAX_ROLLOUT_TIME` after the occurrence."""
    from dcs_maintenance.planner import local_date_reason, rule

    cap = occurrence + MAX_ROLLOUT_TIME
    spec = schedule.rollout
    if spec is not None and spec.timeout is not None:
        return min(occurrence + spec.timeout, cap)
    if schedule.cron is None:
        return cap
    cron, t = rule(schedule.cron, schedule.timezone), occurrence
    while True:
        nxt = cron.next_after(t)
        if nxt is None or nxt >= cap:
            return cap
        if local_date_reason(schedule, nxt) is None:
            return nxt
        t = nxt


# -- the stored state --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WaveRecord:
    """A wave that was claimed: when, each instance's outcome (in wave order), and when its gate closed."""

    number: int
    sent_at: datetime
    outcomes: tuple[tuple[str, str], ...]  # (instance_id, outcome)
    gate_closed_at: Optional[datetime] = None

    def outcome_of(self, instance_id: str) -> Optional[str]:
        return dict(self.outcomes).get(instance_id)

    def with_outcomes(self, changes: Mapping[str, str]) -> WaveRecord:
        return replace(self, outcomes=tuple((iid, changes.get(iid, out)) for iid, out in self.outcomes))


@dataclass(frozen=True)
class RolloutState:
    """One occurrence's rollout, as the ledger keeps it (`to_dict`/`from_dict`: JSON-safe).

    The plan (`waves`), the budget and the deadline are fixed when it starts; `sent` grows one record per
    wave claimed; `status` leaves `in_progress` once (done, halted or missed) with `finished_at` and `reason`.
    """

    schedule: str
    occurrence: datetime
    action: str
    started_at: datetime
    deadline: datetime
    waves: tuple[Wave, ...]
    allowed_errors: int
    wave_timeout: timedelta
    sent: tuple[WaveRecord, ...] = ()
    status: str = IN_PROGRESS
    finished_at: Optional[datetime] = None
    reason: str = ""

    # -- reading it
    @property
    def finished(self) -> bool:
        return self.status != IN_PROGRESS

    @property
    def last(self) -> Optional[WaveRecord]:
        return self.sent[-1] if self.sent else None

    @property
    def total(self) -> int:
        return sum(len(w.members) for w in self.waves)

    @cached_property
    def _names(self) -> dict[str, str]:
        return {iid: name for wave in self.waves for iid, name in wave.members}

    def name_of(self, instance_id: str) -> str:
        return self._names.get(instance_id, "")

    def record(self, number: int) -> Optional[WaveRecord]:
        return next((r for r in self.sent if r.number == number), None)

    def errors(self) -> tuple[tuple[str, str, str], ...]:
        """(instance_id, name, outcome) of every instance counted against max_errors."""
        return tuple((iid, self.name_of(iid), out) for rec in self.sent for iid, out in rec.outcomes if out in ERRORS)

    def remaining(self) -> tuple[Member, ...]:
        """The instances of the waves not sent yet (never reached)."""
        sent = {r.number for r in self.sent}
        return tuple(m for w in self.waves if w.number not in sent for m in w.members)

    def next_wave(self) -> Optional[Wave]:
        sent = {r.number for r in self.sent}
        return next((w for w in self.waves if w.number not in sent), None)

    # -- storing it
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "schedule": self.schedule,
            "occurrence": _ts(self.occurrence),
            "action": self.action,
            "started_at": _ts(self.started_at),
            "deadline": _ts(self.deadline),
            "wave_timeout": int(self.wave_timeout.total_seconds()),
            "allowed_errors": self.allowed_errors,
            "waves": [[[iid, name] for iid, name in w.members] for w in self.waves],
            "sent": [{"wave": r.number, "sent_at": _ts(r.sent_at),
                      "gate_closed_at": _ts(r.gate_closed_at) if r.gate_closed_at else None,
                      "outcomes": dict(r.outcomes)} for r in self.sent],
            "status": self.status,
            "finished_at": _ts(self.finished_at) if self.finished_at else None,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutState:
        """The state `to_dict` wrote; ValueError naming the field for anything else."""
        try:
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r} is not {STATE_VERSION}")
            groups = data["waves"]
            waves = tuple(Wave(n, len(groups), tuple((str(iid), str(name)) for iid, name in g))
                          for n, g in enumerate(groups, 1))
            plan = {w.number: w for w in waves}
            sent = []
            for item in data["sent"]:
                wave = plan[int(item["wave"])]
                stored = item["outcomes"]
                outcomes = tuple((iid, str(stored.get(iid, CLAIMED))) for iid in wave.instance_ids)
                if any(out not in OUTCOMES for _, out in outcomes):
                    raise ValueError(f"sent wave {wave.number}: an outcome is not one of {', '.join(OUTCOMES)}")
                closed = item.get("gate_closed_at")
                sent.append(WaveRecord(wave.number, _parse(item["sent_at"]), outcomes,
                                       _parse(closed) if closed else None))
            status = data["status"]
            if status not in STATUSES:
                raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
            finished_at = data.get("finished_at")
            return cls(
                schedule=str(data["schedule"]), occurrence=_parse(data["occurrence"]), action=str(data["action"]),
                started_at=_parse(data["started_at"]), deadline=_parse(data["deadline"]), waves=waves,
                allowed_errors=int(data["allowed_errors"]), wave_timeout=timedelta(seconds=int(data["wave_timeout"])),
                sent=tuple(sorted(sent, key=lambda r: r.number)), status=status,
                finished_at=_parse(finished_at) if finished_at else None, reason=str(data.get("reason") or ""))
        except ValueError as exc:
            raise ValueError(f"not a rollout state: {exc}") from None
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"not a rollout state: missing or malformed {exc}") from None


def _ts(t: datetime) -> str:
    """UTC ISO 8601 with a Z, microseconds only where there are some: round-trips exactly."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value.astimezone(UTC)


def start_rollout(schedule: Schedule, occurrence: datetime, targets: Sequence[Instance],
                  now: datetime) -> RolloutState:
    """A new rollout for an occurrence: its waves, budget and deadline fixed now. The ledger keeps the first
    one stored for an occurrence (`merge`), so every invocation works on the same plan."""
    spec = schedule.rollout or RolloutSpec()
    waves = plan_waves(spec, targets, schedule.instances)
    total = sum(len(w.members) for w in waves)
    return RolloutState(schedule.name, occurrence.astimezone(UTC), schedule.action or "", now.astimezone(UTC),
                        rollout_deadline(schedule, occurrence).astimezone(UTC), waves,
                        allowed_errors(spec.max_errors, total), spec.wave_timeout)


@dataclass(frozen=True)
class Admission:
    """Whether a due occurrence may start a rollout: `start`, `continue` (its rollout exists) or `missed`."""

    kind: str
    reason: str


def admit_occurrence(state: Optional[RolloutState], occurrence: datetime) -> Admission:
    """A due occurrence against the schedule's stored rollout (step that one first: past its deadline it closes).

    Never two rollouts of one schedule side by side: while an earlier occurrence's rollout runs, the new
    occurrence is `missed` ("previous rollout still in progress") and not started later.
    """
    if state is None:
        return Admission("start", "no earlier rollout")
    if state.occurrence == occurrence:
        return Admission("continue", f"the rollout of this occurrence started at {iso(state.started_at)}")
    if state.occurrence > occurrence:
        return Admission("missed", f"a later occurrence's rollout ({iso(state.occurrence)}) has already started")
    if not state.finished:
        sent = len(state.sent)
        return Admission("missed", f"previous rollout still in progress (occurrence {iso(state.occurrence)}, "
                                   f"{sent} of {len(state.waves)} waves sent, deadline {iso(state.deadline)})")
    return Admission("start", f"the previous rollout ({iso(state.occurrence)}) is {state.status}")


# -- the next step ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """What to do next with a rollout, why, and the state to store (merge) before doing it.

    `wave`: the wave to send (send) or whose claims to read (reconcile). `instances`: send: the wave's;
    wait: those waited for; reconcile: those whose per-instance claims to read; halt/missed: the remaining
    ones, to report `halted`/`missed`. `judged`: instances whose gate verdict was reached in this step,
    (instance_id, name, `back`, `not_back` or `ungated`): report them as `gate_result` says.
    `recheck_at`: when the answer changes even if no status does (a wait's settle time, timeout, the
    deadline, a freeze's end); statuses may change it sooner.
    """

    kind: str
    reason: str
    state: RolloutState
    wave: Optional[Wave] = None
    instances: tuple[Member, ...] = ()
    judged: tuple[tuple[str, str, str], ...] = ()
    recheck_at: Optional[datetime] = None


def next_step(state: RolloutState, now: datetime, statuses: Mapping[str, Optional[str]],
              frozen_by: Optional[Freeze] = None, *, settle: timedelta = GATE_SETTLE,
              grace: timedelta = CLAIM_GRACE) -> Step:
    """The next step of a rollout from its stored state, the current DCS statuses of the last sent wave's
    instances (instance_id -> status, None or absent: not found), the time, and the freeze active now for
    its action (a freeze pauses sending; gates still close)."""
    if state.finished:
        return Step(FINISHED, f"rollout already {state.status} at {iso(state.finished_at or now)}: {state.reason}",
                    state)
    last, judged = state.last, ()
    if last is not None:
        claimed = tuple((iid, state.name_of(iid)) for iid, out in last.outcomes if out == CLAIMED)
        wave = state.waves[last.number - 1]
        if claimed and now < last.sent_at + grace:
            return Step(WAIT, f"wave {wave.number} of {wave.of} is being sent (since {iso(last.sent_at)}); "
                              f"{len(claimed)} outcome(s) not recorded yet", state, wave, claimed,
                        recheck_at=last.sent_at + grace)
        if claimed:
            return Step(RECONCILE, f"wave {wave.number} of {wave.of} was claimed at {iso(last.sent_at)} but "
                                   f"{len(claimed)} outcome(s) were never recorded (its sender stopped): read "
                                   "their claims", state, wave, claimed)
    halt = _over_budget(state, now)
    if halt is not None:
        return halt
    if last is not None and last.gate_closed_at is None:
        gate = _gate(state, last, now, statuses, settle)
        if isinstance(gate, Step):
            return gate
        state, judged = gate
        halt = _over_budget(state, now, judged)
        if halt is not None:
            return halt
    errors = state.errors()
    upcoming = state.next_wave()
    cut = _cut_short(state)
    if upcoming is None:
        if not state.waves:
            why = "no instance to act on"
        elif cut:
            why = (f"all {len(state.waves)} wave(s) sent; the rollout's deadline {iso(state.deadline)} {cut}; "
                   f"{len(errors)} error(s), max_errors {state.allowed_errors}")
        else:
            why = (f"all {len(state.waves)} wave(s) sent and gated; {len(errors)} error(s), max_errors "
                   f"{state.allowed_errors}")
        return Step(DONE, why, _finish(state, DONE, now, why), judged=judged)
    if now >= state.deadline:
        rest = state.remaining()
        why = (f"the rollout's deadline {iso(state.deadline)} passed: {len(rest)} instance(s) in "
               f"{len(state.waves) - len(state.sent)} wave(s) not reached" + (f"; it {cut}" if cut else ""))
        return Step(MISSED, why, _finish(state, MISSED, now, why), instances=rest, judged=judged)
    if frozen_by is not None:
        from dcs_maintenance.freezes import describe

        return Step(WAIT, f"paused before wave {upcoming.number} of {upcoming.of}: {describe(frozen_by)}, until "
                          f"{iso(frozen_by.end)}", state, upcoming, judged=judged,
                    recheck_at=min(frozen_by.end, state.deadline))
    after = f" after wave {state.last.number}'s gate closed" if state.last is not None else ""
    return Step(SEND, f"send {upcoming.describe()}{after}; {len(errors)} error(s) so far, max_errors "
                      f"{state.allowed_errors}", state, upcoming, upcoming.members, judged=judged)


def _over_budget(state: RolloutState, now: datetime, judged: tuple = ()) -> Optional[Step]:
    errors = state.errors()
    rest = state.remaining()
    if len(errors) <= state.allowed_errors or not rest:
        return None
    listed = ", ".join(f"{name or iid} {out.replace('_', ' ')}" for iid, name, out in errors[:5])
    more = f" and {len(errors) - 5} more" if len(errors) > 5 else ""
    why = (f"halted: {len(errors)} error(s) ({listed}{more}), more than max_errors {state.allowed_errors}; "
           f"{len(rest)} instance(s) not touched")
    return Step(HALT, why, _finish(state, HALTED, now, why), instances=rest, judged=judged)


def _cut_short(state: RolloutState) -> str:
    """`came before wave 2's health gate closed: web-02 unknown, not counted as an error` when the deadline closed
    the last sent wave's gate with instances `ungated`; else ""."""
    last = state.last
    cut = [state.name_of(iid) or iid for iid, out in last.outcomes if out == UNGATED] if last else []
    if not cut or last is None:
        return ""
    shown = ", ".join(cut[:5]) + (f" and {len(cut) - 5} more" if len(cut) > 5 else "")
    return (f"came before wave {last.number}'s health gate closed: {shown} unknown, not counted as "
            f"{'an error' if len(cut) == 1 else 'errors'}")


Judged = tuple[tuple[str, str, str], ...]


def _gate(state: RolloutState, last: WaveRecord, now: datetime, statuses: Mapping[str, Optional[str]],
          settle: timedelta) -> Union[Step, tuple[RolloutState, Judged]]:
    """The health gate of the last sent wave: a WAIT step, or (the state with the gate closed, the verdicts).

    It closes at whichever comes first: the wave's `wave_timeout` (who is not back is an error, `not_back`) or
    the rollout's deadline (who is not back, or not trusted yet, is `ungated`: not an error, the wave's own time
    had not run out). Judged by which came first, not by when it is looked at: a look after both still says
    the deadline cut it."""
    wave = state.waves[last.number - 1]
    down = [(iid, state.name_of(iid), statuses.get(iid)) for iid, out in last.outcomes
            if out in GATED and statuses.get(iid) != "RUNNING"]
    sent_any = any(out in GATED for _, out in last.outcomes)
    trusted_at = last.sent_at + settle
    timed_out_at = last.sent_at + state.wave_timeout
    cut = state.deadline < timed_out_at  # the rollout's deadline ends this gate's wait, not wave_timeout
    gives_up_at = state.deadline if cut else timed_out_at
    if not down and (now >= trusted_at or not sent_any):  # passed (nothing sent: nothing to wait for)
        changes = {iid: BACK for iid, out in last.outcomes if out == SUCCESS}
    elif now >= gives_up_at and not cut:  # closed by wave_timeout: who is not back is an error
        late = {iid for iid, _, _ in down}
        changes = {iid: (NOT_BACK if iid in late else BACK) for iid, out in last.outcomes
                   if out == SUCCESS or (out == UNKNOWN and iid in late)}
    elif now >= gives_up_at:  # closed by the deadline: not back (or not trusted yet) is unknown, not an error
        late = {iid for iid, _, _ in down} if now >= trusted_at else {iid for iid, _ in last.outcomes}
        changes = {iid: (UNGATED if iid in late else BACK) for iid, out in last.outcomes if out == SUCCESS}
    elif not down:
        return Step(WAIT, f"wave {wave.number} of {wave.of} sent at {iso(last.sent_at)}: RUNNING is trusted from "
                          f"{iso(trusted_at)}", state, wave, recheck_at=trusted_at)
    else:
        shown = ", ".join(f"{name or iid} ({status or 'status unknown'})" for iid, name, status in down[:8])
        more = f" and {len(down) - 8} more" if len(down) > 8 else ""
        then = (f"the rollout's deadline {iso(gives_up_at)} comes first: not back by then is unknown, not an error"
                if cut else f"counted as errors from {iso(gives_up_at)}")
        return Step(WAIT, f"waiting for wave {wave.number} of {wave.of} to be back to RUNNING: {shown}{more}; "
                          f"{then}", state, wave, tuple((iid, name) for iid, name, _ in down),
                    recheck_at=trusted_at if now < trusted_at else gives_up_at)
    record = replace(last.with_outcomes(changes), gate_closed_at=now)
    judged = tuple((iid, state.name_of(iid), out) for iid, out in changes.items())
    return _replace_record(state, record), judged


def gate_result(state: RolloutState, number: int, outcome: str, status: Optional[str]) -> Optional[tuple[str, str]]:
    """How a gate verdict of wave `number` is reported for an instance: (result, reason), or None (`back`: its
    success stands). `not_back` -> failed (an error); `ungated` -> unknown (sent, but the deadline came before
    the gate closed: not an error). `status`: what DCS said when the gate closed (None: not known)."""
    wave = state.waves[number - 1]
    seen = status or "status unknown"
    of = f"(wave {wave.number} of {wave.of})"
    if outcome == NOT_BACK:
        minutes = int(state.wave_timeout.total_seconds() // 60)
        return "failed", (f"{state.action} sent, but not back to RUNNING within wave_timeout {minutes}m ({seen}): "
                          f"counted as an error {of}")
    if outcome == UNGATED:
        return "unknown", (f"{state.action} sent, but the rollout's deadline {iso(state.deadline)} came before its "
                           f"health gate closed ({seen}): not counted as an error {of}")
    return None


def _replace_record(state: RolloutState, record: WaveRecord) -> RolloutState:
    return replace(state, sent=tuple(record if r.number == record.number else r for r in state.sent))


def _finish(state: RolloutState, status: str, now: datetime, reason: str) -> RolloutState:
    return replace(state, status=status, finished_at=now, reason=reason)


def stop_rollout(state: RolloutState, now: datetime, reason: str, status: str = HALTED) -> Step:
    """End a running rollout from outside: `halted` (the schedule disabled, its rollout block removed, the schedule
    gone), or `missed` (its first wave could not start before the occurrence's starting_deadline)."""
    if state.finished:
        return Step(FINISHED, f"rollout already {state.status}: {state.reason}", state)
    if status not in (HALTED, MISSED):
        raise ValueError(f"a rollout is stopped as {HALTED} or {MISSED}, not {status!r}")
    why = f"{status}: {reason}"
    return Step(HALT if status == HALTED else MISSED, why, _finish(state, status, now, why),
                instances=state.remaining())


# -- recording what the runner did ---------------------------------------------------------------------------
def wave_sent(state: RolloutState, number: int, now: datetime) -> RolloutState:
    """Wave `number` claimed (the runner won its wave key): every instance `claimed` until its outcome is known.

    Store this BEFORE the per-instance claims and calls: a crash after it leaves a record that `next_step`
    turns into a `reconcile` once `CLAIM_GRACE` has passed.
    """
    if state.record(number) is not None:
        return state
    expected = len(state.sent) + 1
    if number != expected or number > len(state.waves):
        raise ValueError(f"wave {number} cannot be sent now: the next wave is {expected} of {len(state.waves)}")
    wave = state.waves[number - 1]
    return replace(state, sent=state.sent + (WaveRecord(number, now, tuple((iid, CLAIMED) for iid in
                                                                                 wave.instance_ids)),))


def record_outcomes(state: RolloutState, number: int, outcomes: Mapping[str, str]) -> RolloutState:
    """The outcomes of wave `number`'s calls: `success`, `failed`, `unknown`, `skipped` (or `claimed`: not known)."""
    record = state.record(number)
    if record is None:
        raise ValueError(f"wave {number} was not sent: record it with wave_sent first")
    allowed = (CLAIMED, SKIPPED, SUCCESS, FAILED, UNKNOWN)
    bad = sorted({out for out in outcomes.values() if out not in allowed})
    if bad:
        raise ValueError(f"outcome(s) {', '.join(map(repr, bad))} not one of {', '.join(allowed)}")
    current = dict(record.outcomes)
    changes = {iid: _forward(current[iid], out) for iid, out in outcomes.items() if iid in current}
    return _replace_record(state, record.with_outcomes(changes))


def absorb_claims(state: RolloutState, number: int, claims: Mapping[str, Optional[str]]) -> RolloutState:
    """After `reconcile`: the per-instance claim outcomes of wave `number` (None: no claim, so never sent).

    No claim -> `skipped` (the call was never made); a claim still `claimed` -> `unknown` (the call may have
    run); a recorded outcome -> that outcome. Instances not in `claims` are left as they are.
    """
    mapped: dict[str, str] = {}
    for iid, outcome in claims.items():
        if outcome is None:
            mapped[iid] = SKIPPED
        elif outcome in (SUCCESS, FAILED, UNKNOWN, SKIPPED):
            mapped[iid] = outcome
        else:  # "claimed", or anything a ledger may hold that is not an outcome: the call may have run
            mapped[iid] = UNKNOWN
    return record_outcomes(state, number, mapped)


def wave_taken_elsewhere(state: RolloutState, number: int, claimed_at: datetime, holder: str, now: datetime,
                         grace: timedelta = CLAIM_GRACE) -> Step:
    """The runner lost wave `number`'s claim to `holder`: wait while that sender may still be at work; after
    `grace` without outcomes, record the wave as claimed at `claimed_at` and reconcile its instances' claims."""
    wave = state.waves[number - 1]
    record = state.record(number)
    if record is None:
        if now < claimed_at + grace:
            return Step(WAIT, f"wave {number} of {wave.of} is being sent by request {holder} (since "
                              f"{iso(claimed_at)})", state, wave, recheck_at=claimed_at + grace)
        record = WaveRecord(number, claimed_at, tuple((iid, CLAIMED) for iid in wave.instance_ids))
        state = merge(state, replace(state, sent=state.sent + (record,)))
    claimed = tuple((iid, state.name_of(iid)) for iid, out in record.outcomes if out == CLAIMED)
    if not claimed:
        return Step(WAIT, f"wave {number} of {wave.of} was sent by request {holder}: read the stored state again",
                    state, wave, recheck_at=now)
    if now < record.sent_at + grace:
        return Step(WAIT, f"wave {number} of {wave.of} is being sent by request {holder} (since "
                          f"{iso(record.sent_at)})", state, wave, claimed, recheck_at=record.sent_at + grace)
    return Step(RECONCILE, f"wave {number} of {wave.of} was claimed by request {holder} at {iso(record.sent_at)} "
                           f"but {len(claimed)} outcome(s) were never recorded: read their claims", state, wave,
                claimed)


def _forward(old: str, new: str) -> str:
    """An outcome only moves forward: the further one wins; at equal rank, the later in OUTCOMES."""
    if _RANK[new] != _RANK[old]:
        return new if _RANK[new] > _RANK[old] else old
    return max(old, new, key=OUTCOMES.index)


# -- combining states ----------------------------------------------------------------------------------------
def merge(stored: Optional[RolloutState], update: RolloutState) -> RolloutState:
    """What the ledger keeps when `update` is written over `stored` (both may come from different invocations).

    - another schedule: an error; nothing stored: the update;
    - another occurrence: a later one replaces a FINISHED rollout; otherwise the stored one stays (a stale
      update, or a new occurrence while one runs: never two rollouts side by side);
    - the same occurrence: the stored plan, budget and deadline stay (the first stored wins); wave records
      are combined (earliest send and gate times, outcomes moved forward); the earliest finish wins.
    Idempotent, and the order in which updates of one occurrence arrive does not change the records.
    """
    if stored is None:
        return update
    if stored.schedule != update.schedule:
        raise ValueError(f"cannot merge the rollout of {update.schedule!r} into that of {stored.schedule!r}")
    if update.occurrence != stored.occurrence:
        return update if update.occurrence > stored.occurrence and stored.finished else stored
    records = {r.number: r for r in stored.sent}
    for rec in update.sent:
        if rec.number > len(stored.waves):
            continue
        mine = records.get(rec.number)
        theirs = dict(rec.outcomes)
        if mine is None:  # in the stored plan's wave, with the stored plan's members
            records[rec.number] = WaveRecord(rec.number, rec.sent_at, tuple(
                (iid, theirs.get(iid, CLAIMED)) for iid in stored.waves[rec.number - 1].instance_ids),
                rec.gate_closed_at)
            continue
        closed = [t for t in (mine.gate_closed_at, rec.gate_closed_at) if t is not None]
        records[rec.number] = WaveRecord(
            rec.number, min(mine.sent_at, rec.sent_at),
            tuple((iid, _forward(out, theirs.get(iid, CLAIMED))) for iid, out in mine.outcomes),
            min(closed) if closed else None)
    merged = replace(stored, sent=tuple(records[n] for n in sorted(records)))
    ends = [s for s in (stored, update) if s.finished and s.finished_at is not None]
    if ends:
        first = min(ends, key=lambda s: (s.finished_at, STATUSES.index(s.status)))
        merged = replace(merged, status=first.status, finished_at=first.finished_at, reason=first.reason)
    return merged


# -- progress, for summaries and GET /schedules ----------------------------------------------------------------
def progress(state: RolloutState, now: datetime) -> dict[str, Any]:
    """A rollout's progress as a small JSON-safe dict with a one-line `text`."""
    last = state.last
    counts: dict[str, int] = {}
    for rec in state.sent:
        for _, out in rec.outcomes:
            counts[out] = counts.get(out, 0) + 1
    errors = len(state.errors())
    if state.finished:
        text = state.reason
    elif last is None:
        text = f"started at {iso(state.started_at)}: wave 1 of {len(state.waves)} not sent yet"
    elif last.gate_closed_at is None:
        text = (f"wave {last.number} of {len(state.waves)} sent at {iso(last.sent_at)}, waiting for it to be "
                f"back to RUNNING; {errors} error(s), max_errors {state.allowed_errors}")
    else:
        text = (f"wave {last.number} of {len(state.waves)} back at {iso(last.gate_closed_at)}; {errors} error(s), "
                f"max_errors {state.allowed_errors}")
    return {"occurrence": iso(state.occurrence), "status": state.status, "waves": len(state.waves),
            "waves_sent": len(state.sent), "instances": state.total, "outcomes": counts, "errors": errors,
            "max_errors": state.allowed_errors, "started_at": iso(state.started_at), "deadline": iso(state.deadline),
            "finished_at": iso(state.finished_at) if state.finished_at else None,
            "overdue": not state.finished and now >= state.deadline, "text": text}


# -- ledger keys --------------------------------------------------------------------------------------------
def state_key(schedule: str) -> str:
    """Where the ledger keeps a schedule's current (latest) rollout state: one per schedule."""
    return f"rollout:{schedule}"


def wave_key(schedule: str, occurrence: datetime, number: int, action: str) -> str:
    """The claim that lets exactly one invocation send wave `number`: `schedule|occurrence~wave<k>|*|action`
    (the format of `ledger.base.claim_key`, so both backends store it like any claim)."""
    return f"{schedule}|{iso(occurrence)}~wave{number}|*|{action}"


def finish_key(schedule: str, occurrence: datetime, action: str) -> str:
    """The claim that lets exactly one invocation report a rollout's end (halted/missed lists, the notification)."""
    return f"{schedule}|{iso(occurrence)}~rollout-end|*|{action}"


__all__ = [
    "GATE_SETTLE", "CLAIM_GRACE", "MAX_ROLLOUT_TIME", "OUTCOMES", "ERRORS", "STATUSES", "STEPS",
    "batch_size", "allowed_errors", "Wave", "order_targets", "plan_waves", "describe_waves", "rollout_deadline",
    "WaveRecord", "RolloutState", "start_rollout", "Admission", "admit_occurrence", "Step", "next_step",
    "stop_rollout", "gate_result", "wave_sent", "record_outcomes", "absorb_claims", "wave_taken_elsewhere",
    "merge", "progress", "state_key", "wave_key", "finish_key",
]
