"""One tick, top to bottom: due schedules -> targets -> claims -> status calls -> ledger -> summary.

Order of a tick, and why:
0. refuse a tick dated ahead of the wall clock (guards.tick_refusal): it would act early and, through its
   watermarks, silence every tick until real time caught up;
1. decide what is due from the schedules, the tick time and the ledger's watermarks (pure: planner, fastpath);
   windows are judged at the later of the tick and the wall clock (a late event acts on the present);
2. list the instances of each project that has due work, once per project, concurrently;
3. select targets and check eligibility (pure); existing claims are judged first (guards.judge_claim): done,
   still in flight (pending: looked at again next tick), or unknown (an invocation died after claiming);
4. claims and status calls (sending.py);
5. bookkeeping: window states, settled markers and watermarks (never ahead of the wall clock, held back where
   work is pending), written in one guarded step: a ledger failure after calls were sent is reported beside
   their results, never instead of them;
6. rollouts (schedules with a `rollout` block): carried out last by rollout_runner, wave by wave through the
   same claims and calls, waiting for each wave's health while the invocation may (their state is in the
   ledger, not in the watermark, so it is written as they go).
Freezes: a one-shot occurrence inside one is reported `frozen` (step 1) and never sent later; a window's stop
inside one is held back (starts always go through). within_maintenance_window filters targets (step 3).
"""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Optional

from dcs_maintenance import clock, dcs_rules, fastpath, freezes, guards, logs, maintenance_windows, rollout_runner
from dcs_maintenance.ledger.base import LedgerError, WindowState, claim_key
from dcs_maintenance.loader import Catalog
from dcs_maintenance.model import RUNNING, Freeze, Instance, Schedule
from dcs_maintenance.planner import (
    ACTION_FOR_STATE,
    Desired,
    eligibility,
    iso,
    one_shot_due,
    rule,
    select,
    window_desired,
    window_step,
)
from dcs_maintenance.report import ScheduleReport, TickReport
from dcs_maintenance.rollout import RolloutState
from dcs_maintenance.sending import APPLIED_OUTCOMES, execute, record_stale
from dcs_maintenance.settings import Settings
from dcs_maintenance.tick import PENDING_HOLD, Bookkeeping, Intent, LockedLedger, Runtime, TickRequest, Work

__all__ = ["Runtime", "TickRequest", "run_tick"]


def run_tick(catalog: Catalog, request: TickRequest, rt: Runtime) -> dict[str, Any]:
    """Run one tick and return its summary. Expected failures are reported, never raised; only a ledger that
    cannot be read at the start raises LedgerError (nothing was sent)."""
    settings = rt.settings
    ledger: Any = LockedLedger(rt.ledger)
    wall = clock.now()
    request = replace(request, dry_run=request.dry_run or settings.dry_run,
                      window_at=guards.judging_instant(request.at, clock.as_of()))
    report = TickReport(request.at, request.trigger, request.dry_run, request.preview)
    report.problems.extend(catalog.problems)
    for problem in catalog.problems:
        logs.error("invalid_schedule", file=problem.file, schedule=problem.schedule, path=problem.path,
                   message=problem.message)
    refusal = guards.tick_refusal(request.at, wall, not request.writes)
    if refusal:
        logs.error("tick_refused", tick=iso(request.at), wall=iso(wall), error=refusal)
        report.errors.append(refusal)
        return _summary(report, rt, request)
    schedules = catalog.schedules if request.only is None else [s for s in catalog.schedules if s.name in request.only]
    if request.only:
        for name in sorted(request.only - {s.name for s in schedules}):
            report.errors.append(f"schedule {name!r} not found or not valid")
    marks = ledger.watermarks()
    book = Bookkeeping()
    stored = _stored(schedules, ledger)
    works = _due_work(schedules, request, rt, ledger, marks, book, report, stored, catalog.freezes)
    plain = [w for w in works if w.rollout is None]
    instances = _list_projects(works, rt) if works else {}
    if request.rehearse:  # statuses the rehearsal's earlier previewed window actions would have left
        instances = _assumed(instances, getattr(rt.ledger, "assumed", {}))
    for work in plain:
        _plan(work, instances, rt, ledger, request)
    execute([w for w in plain if not w.report.error], rt, ledger, request, marks)
    for work in plain:
        _finish(work, book, request)
    if request.books:  # a dry-run tick (e.g. an observer timer) must not use up work
        _write_bookkeeping(book, ledger, report, wall)
    rollouts = [w for w in works if w.rollout is not None]
    if rollouts:  # last: they may wait for their waves' health while the invocation's time allows
        rollout_runner.carry_out(rollouts, instances, rt, ledger, request, catalog.freezes,
                                 lambda work: _targets(work, instances.get((work.project, work.region)), rt))
    return _summary(report, rt, request)


def _summary(report: TickReport, rt: Runtime, request: TickRequest) -> dict[str, Any]:
    for gw in rt.gateways.values():
        for name, count in vars(gw.stats).items():
            report.api_calls[name] = report.api_calls.get(name, 0) + count
    summary = report.to_dict()
    logs.log("tick", tick=summary["tick"], trigger=request.trigger, ok=summary["ok"], counts=summary["counts"],
             idle=summary["idle"], problems=len(summary["problems"]), api_calls=summary["api_calls"])
    return summary


# -- 1. what is due ---------------------------------------------------------------------------
def _due_work(schedules: Sequence[Schedule], request: TickRequest, rt: Runtime, ledger: Any,
              marks: dict[str, datetime], book: Bookkeeping, report: TickReport, stored: _Stored,
              frozen: tuple[Freeze, ...]) -> list[Work]:
    settings, tick = rt.settings, request.at
    new_marks = book.marks
    works: list[Work] = []
    settled_marks, rollouts = stored
    for schedule in schedules:
        if not request.manual and _idle(schedule, request, marks, new_marks, settled_marks, rollouts, settings):
            report.idle += 1  # nothing to say: no report entry, no log line, no ledger round trip
            continue
        rep = ScheduleReport(schedule, report.dry_run or schedule.dry_run)
        report.add(rep)
        project = schedule.project_id or settings.project_id or ""
        region = schedule.region or settings.region
        if not schedule.enabled:
            rep.decide("disabled", "enabled: false")
            stopping = rollout_runner.due_rollout(schedule, rep, project, region, None, rollouts.get(schedule.name))
            if stopping is not None and not request.manual:  # a running rollout halts with its schedule
                works.append(stopping)
            continue
        if request.manual:
            works.append(_manual_work(schedule, rep, project, region, tick, rollouts.get(schedule.name)))
            continue
        if schedule.is_window:
            mark = marks.get(schedule.name)
            if mark is not None and tick < mark and not request.preview:  # a stale copy must not undo a later one
                rep.decide("not_due", f"stale tick: a later one ({iso(mark)}) was already processed")
                continue
            new_marks[schedule.name] = tick
            desired = fastpath.window_desired(schedule, request.window_at or tick)
            if desired is None:
                rep.decide("not_due", "no stop or start occurrence at or before the tick")
                continue
            settled = settled_marks.get(schedule.name) == iso(desired.occurrence)
            if settled and not schedule.enforce:
                rep.decide("settled", f"{desired.state} since {iso(desired.occurrence)}; every instance done",
                           desired=desired.state)
                continue
            if _window_frozen(schedule, rep, desired, settled, frozen, request, book):
                continue
            works.append(Work(schedule, rep, project, region, desired.occurrence, desired, rep.data["dry_run"]))
            continue
        mark = marks.get(schedule.name)
        due = one_shot_due(schedule, tick, mark, settings.tick_period)
        held = _report_passed(rep, due.passed, ledger, rt, request, (project, region))
        if held:
            new_marks[schedule.name] = held - PENDING_HOLD
        elif due.fire or due.passed or _mark_is_old(mark, tick, settings):
            new_marks[schedule.name] = tick
        fire = due.fire
        if fire is not None and frozen:
            verdict = freezes.occurrence_verdict(frozen, schedule.action or "", fire, clock.as_of())
            if verdict.frozen:  # reported once, never sent later: the watermark passes it
                rep.passed(fire, "frozen", verdict.reason)
                rep.decide("frozen", verdict.reason, fire)
                fire = None
        if schedule.rollout is not None:
            work = rollout_runner.due_rollout(schedule, rep, project, region, fire, rollouts.get(schedule.name))
        else:
            work = Work(schedule, rep, project, region, fire, None, rep.data["dry_run"]) if fire else None
        if work is not None:
            works.append(work)
        elif rep.data["decision"] == "not_due":  # (a frozen occurrence said so already)
            if due.passed:
                rep.decide("not_due", due.reason)
            elif not request.writes and mark is not None and mark >= tick:
                rep.decide("handled", _handled(schedule, tick, mark, ledger))
    return works


def _window_frozen(schedule: Schedule, rep: ScheduleReport, desired: Desired, settled: bool,
                   frozen: tuple[Freeze, ...], request: TickRequest, book: Bookkeeping) -> bool:
    """A window's stop inside a freeze: held back (True: no work this tick). A stop whose occurrence falls in the
    freeze is never applied (reported `frozen` once; the window settles on it); one from before the freeze waits
    for its end. Starts always go through."""
    if not frozen:
        return False
    verdict = freezes.window_verdict(frozen, desired.state, desired.occurrence, request.window_at or request.at)
    if not verdict.frozen:
        return False
    rep.decide("frozen", verdict.reason, desired.occurrence, desired=desired.state)
    if verdict.settled and not settled:
        rep.passed(desired.occurrence, "frozen", verdict.reason)
        if request.writes and not rep.data["dry_run"]:
            book.settled[schedule.name] = iso(desired.occurrence)
    return True


def _report_passed(rep: ScheduleReport, passed: tuple[tuple[datetime, str, str], ...], ledger: Any,
                   rt: Runtime, request: TickRequest, where: tuple[str, Optional[str]]) -> Optional[datetime]:
    """Occurrences that will not run (missed, superseded, skip dates). A missed one that has claims was acted on
    (or may have been): each claim is reported as guards.judge_claim says, never hidden behind "missed", an
    unknown one with the instance's status read back as evidence. Returns the earliest occurrence whose claim is
    still in flight: the watermark must stay before it."""
    held: Optional[datetime] = None
    stale: dict[str, tuple[str, str]] = {}
    wall, in_flight = clock.now(), timedelta(seconds=rt.settings.call_budget)
    for occ, result, why in passed:
        if result == "missed":
            for key, record in sorted(ledger.claims_by_prefix(f"{rep.schedule.name}|{iso(occ)}|", now=wall).items()):
                instance_id, action = key.split("|")[2:4]
                verdict, name = guards.judge_claim(record, wall, in_flight), ""
                if verdict.stale:
                    seen = _read_back(rt, where, instance_id)
                    if seen is not None:
                        verdict, name = guards.judge_claim(record, wall, in_flight, seen.status), seen.name
                rep.instance(instance_id, name, action, verdict.result, verdict.reason, occ, handled_by=record.holder)
                if verdict.hold and held is None:
                    held = occ
                if verdict.stale:
                    stale[key] = ("unknown", verdict.reason)
        rep.passed(occ, result, why)
    if request.writes:
        record_stale(stale, ledger)
    return held


def _read_back(rt: Runtime, where: tuple[str, Optional[str]], instance_id: str) -> Optional[Instance]:
    """The instance as DCS shows it now, as evidence beside an `unknown` claim: one read, within the budget."""
    if rt.remaining() < rt.settings.call_budget:
        return None
    try:
        return rt.gateway(*where).show_instance(instance_id)
    except Exception as exc:  # GatewayError, settings or credentials: reported unknown without the evidence
        logs.error("status_read_failed", instance_id=instance_id, error=str(exc))
        return None


_Stored = tuple[dict[str, Optional[str]], dict[str, Optional[RolloutState]]]


def _stored(schedules: Sequence[Schedule], ledger: Any) -> _Stored:
    """Every window's settled marker (enforced windows act whatever it says) and every rollout schedule's stored
    rollout, in one ledger read."""
    settled_keys = {name: f"settled:{name}" for name in _window_names(schedules)}
    rollout_keys = rollout_runner.state_keys(schedules)
    keys = [*settled_keys.values(), *rollout_keys.values()]
    if not keys:
        return {}, {}
    values = ledger.get_metas(keys)
    return ({name: values.get(key) for name, key in settled_keys.items()},
            {name: rollout_runner.parse_state(name, values.get(key)) for name, key in rollout_keys.items()})


_windows_of: list = [None, ()]  # (the schedules sequence last asked about, its enabled windows' names)


def clear_memo() -> None:
    """Forget the catalog last asked about, as a cold instance (tests: conftest.reset_process_state)."""
    _windows_of[:] = [None, ()]


def _window_names(schedules: Sequence[Schedule]) -> tuple[str, ...]:
    """The enabled windows' names, found once per catalog: its schedules tuple is the same object from tick to
    tick while its files are unchanged (loader's cache)."""
    if _windows_of[0] is not schedules:
        _windows_of[:] = [schedules, tuple(s.name for s in schedules if s.is_window and s.enabled)]
    return _windows_of[1]


def _idle(schedule: Schedule, request: TickRequest, marks: dict[str, datetime], new_marks: dict[str, datetime],
          settled_marks: dict[str, Optional[str]], rollouts: dict[str, Optional[RolloutState]],
          settings: Settings) -> bool:
    """True for a schedule that _due_work would report as quiet (disabled, not due, settled), with the same
    watermark: the fast path, which skips the report entry, its log line and the cron evaluation. Never for a
    schedule whose rollout is in progress: it is stepped at every tick until it ends."""
    tick = request.at
    if rollouts and rollout_runner.in_progress(rollouts.get(schedule.name)):  # none stored: nothing to look up
        return False
    if not schedule.enabled:
        return True
    mark = marks.get(schedule.name)
    if schedule.window is not None:
        desired = fastpath.window_desired(schedule, request.window_at or tick)
        if desired is None or (not schedule.enforce and settled_marks.get(schedule.name) == iso(desired.occurrence)):
            new_marks[schedule.name] = tick  # a stale tick's earlier time too: a watermark never moves back
            return True
        return False
    if not request.writes and mark is not None and mark >= tick:
        return False  # a preview of a time already handled says so (_handled), never just nothing
    if fastpath.quiet_one_shot(schedule, tick, mark, settings.tick_period):
        if _mark_is_old(mark, tick, settings):
            new_marks[schedule.name] = tick
        return True
    return False


def _mark_is_old(mark: Optional[datetime], tick: datetime, settings: Settings) -> bool:
    """Whether a quiet one-shot schedule's watermark must be moved to this tick. Nothing lay in (mark, tick], so a
    mark at most one period old still starts the next window where nothing can be missed: it is rewritten only
    every other tick (10,000 quiet schedules' writes were a third of a tick's cost). A missing one is written:
    the default window (T - TICK_PERIOD, T] would not reach back over a dropped tick."""
    return mark is None or tick - mark > settings.tick_period


def _handled(schedule: Schedule, tick: datetime, mark: datetime, ledger: Any) -> str:
    """For a preview at a time the ledger has passed: up to when, and who handled the latest occurrence."""
    occ = rule(schedule.cron or "", schedule.timezone).prev_at_or_before(tick)
    text = f"already handled up to {iso(mark)}"
    if occ is None:
        return text
    claims = ledger.claims_by_prefix(f"{schedule.name}|{iso(occ)}|")
    if not claims:
        return f"{text}; occurrence {iso(occ)} was looked at then, nothing was claimed for it"
    holders = ", ".join(sorted({c.holder for c in claims.values()}))
    outcomes = Counter(c.outcome for c in claims.values())
    done = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    return f"{text}: occurrence {iso(occ)} by request {holders} ({done})"


def _manual_work(schedule: Schedule, rep: ScheduleReport, project: str, region: Optional[str],
                 tick: datetime, rollout: Optional[RolloutState]) -> Work:
    """A manual run: the action now (once per minute, via its claim), or a window's state re-applied; a rollout
    schedule starts a rollout of the current minute (carried on by the following ticks)."""
    minute = tick.replace(second=0, microsecond=0)
    if schedule.rollout is not None and not schedule.is_window:
        work = rollout_runner.due_rollout(schedule, rep, project, region, minute, rollout, manual=True)
        assert work is not None
        return work
    desired = window_desired(schedule, tick) if schedule.is_window else None
    if schedule.is_window and desired is None:
        desired = Desired(RUNNING, minute)
    return Work(schedule, rep, project, region, minute, desired, rep.data["dry_run"], manual=True)


# -- 2. instances, once per project ---------------------------------------------------------------
def _list_projects(works: list[Work], rt: Runtime) -> dict[tuple[str, Optional[str]], Any]:
    """List each project's instances once, projects concurrently; an error is kept per project."""
    keys = sorted({(w.project, w.region) for w in works}, key=lambda k: (k[0], k[1] or ""))
    # Where list entries carry no tags: the tag filters these schedules and the protect tag need (issue 11).
    filters = {key: dcs_rules.tag_filters([w.schedule for w in works if (w.project, w.region) == key],
                                          rt.settings.protect_tag) for key in keys}

    def list_one(key: tuple[str, Optional[str]]) -> Any:
        try:
            return rt.gateway(*key).list_instances(filters[key])
        except Exception as exc:  # GatewayError, settings or credential errors: reported per schedule
            return exc

    for key in keys:  # build gateways in this thread: the factory may read credentials once
        try:
            rt.gateway(*key)
        except Exception as exc:
            logs.error("gateway", project=key[0], region=key[1], error=str(exc))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(rt.settings.max_parallel_projects, len(keys))) as pool:
        # Each worker runs in a copy of this context: the request id and the secrets to redact are context
        # variables, which a bare pool thread does not inherit (its log lines were unredacted, its claims
        # held by request '-').
        futures = [pool.submit(contextvars.copy_context().run, list_one, key) for key in keys]
        return {key: future.result() for key, future in zip(keys, futures, strict=False)}


def _assumed(instances: dict[tuple[str, Optional[str]], Any], assumed: dict[str, str]
             ) -> dict[tuple[str, Optional[str]], Any]:
    if not assumed:
        return instances
    return {key: listed if isinstance(listed, BaseException) else
            [replace(i, status=assumed.get(i.instance_id, i.status)) for i in listed]
            for key, listed in instances.items()}


# -- 3. targets, claims already taken, eligibility (pure decisions) -----------------------------------------
def _plan(work: Work, instances: dict[tuple[str, Optional[str]], Any], rt: Runtime, ledger: Any,
          request: TickRequest) -> None:
    schedule, rep = work.schedule, work.report
    targets = _targets(work, instances.get((work.project, work.region)), rt)
    if targets is None:
        return
    action_word = ACTION_FOR_STATE[work.desired.state] if work.desired else schedule.action
    if schedule.is_window:
        _plan_window(work, targets, ledger, request)
    else:
        _plan_one_shot(work, targets, ledger, rt.settings, request)
    what = f"{len(work.intents)} instance(s) to {action_word}" if work.intents else "no instance to act on"
    rep.decide("due", f"{what} for occurrence {iso(work.occurrence)}", work.occurrence,
               desired=work.desired.state if work.desired else None)


def _targets(work: Work, listed: Any, rt: Runtime) -> Optional[tuple[Instance, ...]]:
    """The schedule's targets at the occurrence (selector minus exclude and protected; with
    within_maintenance_window, only those inside their DCS maintenance window), the others reported skipped;
    None when there are none to decide on (the listing failed, the selector matched too many: reported)."""
    schedule, rep = work.schedule, work.report
    if isinstance(listed, BaseException) or listed is None:
        work.pending = True
        rep.fail(f"could not list instances of project {work.project or '(none)'}: {listed}")
        return None
    selection = select(schedule, listed, rt.settings.protect_tag)
    action_word = ACTION_FOR_STATE[work.desired.state] if work.desired else schedule.action
    for iid, name, why in selection.skipped:
        rep.instance(iid, name, action_word, "skipped", why, work.occurrence)
    if selection.error:
        work.pending |= selection.retry  # tags that could not be read: the next tick looks again
        rep.fail(selection.error)
        return None
    if not schedule.within_maintenance_window or schedule.is_window:
        return selection.targets
    inside, outside = maintenance_windows.partition(selection.targets, work.occurrence)
    for inst, why in outside:
        rep.instance(inst.instance_id, inst.name, action_word, "skipped", why, work.occurrence)
    return inside


def _plan_one_shot(work: Work, targets: tuple[Instance, ...], ledger: Any, settings: Settings,
                   request: TickRequest) -> None:
    """Claims first: an instance already acted on for this occurrence (still RESTARTING from it, say) is done,
    not transitional; one claimed by an invocation in flight is pending; then eligibility for the rest."""
    schedule, rep, action = work.schedule, work.report, work.schedule.action or ""
    occurrence_key = f"manual@{iso(work.occurrence)}" if work.manual else iso(work.occurrence)
    keys = {inst.instance_id: claim_key(schedule.name, occurrence_key, inst.instance_id, action) for inst in targets}
    wall = clock.now()
    done = ledger.get_claims(list(keys.values()), now=wall) if keys else {}
    stale: dict[str, tuple[str, str]] = {}
    for inst in targets:
        key = keys[inst.instance_id]
        record = done.get(key)
        if record is not None:
            verdict = guards.judge_claim(record, wall, timedelta(seconds=settings.call_budget), inst.status)
            rep.instance(inst.instance_id, inst.name, action, verdict.result, verdict.reason, work.occurrence,
                         handled_by=record.holder)
            work.pending |= verdict.hold
            if verdict.stale:
                stale[key] = ("unknown", verdict.reason)
            continue
        verdict = eligibility(action, inst, schedule.allow_flush)
        if not verdict.ok:
            work.pending |= verdict.retry
            rep.instance(inst.instance_id, inst.name, action, "skipped", verdict.reason, work.occurrence)
            continue
        work.intents.append(Intent(work, inst, action, key, work.occurrence))
    if request.writes and not work.dry_run:
        record_stale(stale, ledger)


def _plan_window(work: Work, targets: tuple[Instance, ...], ledger: Any, request: TickRequest) -> None:
    schedule, desired, rep = work.schedule, work.desired, work.report
    assert desired is not None
    last = ledger.window_states(schedule.name)
    last = {**last, **_report_superseded(work, targets, last, ledger)}
    for inst in targets:
        prior = last.get(inst.instance_id)
        if prior is not None and not work.manual and request.at < prior.occurrence:
            # An overlapping older tick: a later transition was already applied to this instance; never undo it.
            rep.instance(inst.instance_id, inst.name, None, "skipped", f"stale tick: {prior.state} was applied for "
                         f"the later occurrence {iso(prior.occurrence)}", desired.occurrence)
            continue
        step = window_step(desired, inst, prior.state if prior else None, schedule.enforce or work.manual)
        work.pending |= not step.settled
        if step.applied:
            work.applied[inst.instance_id] = WindowState(desired.state, desired.occurrence)
        if step.action is None:
            if not (prior and prior.state == desired.state):
                rep.instance(inst.instance_id, inst.name, None, "skipped", step.reason, desired.occurrence)
            continue
        occurrence_key = iso(desired.occurrence)
        if work.manual:
            occurrence_key += f"~manual@{iso(work.occurrence)}"
        elif prior is not None and prior.state == desired.state:  # enforce: a correction, once per tick
            occurrence_key += f"~enforce@{iso(request.at)}"
        key = claim_key(schedule.name, occurrence_key, inst.instance_id, step.action)
        work.intents.append(Intent(work, inst, step.action, key, desired.occurrence))


def _report_superseded(work: Work, targets: tuple[Instance, ...], last: dict[str, WindowState],
                       ledger: Any) -> dict[str, WindowState]:
    """The transition before the one in force, where it never happened on an instance (every attempt given back,
    or never eligible) and no claim or remembered refusal says why: reported `missed` now, rather than dropped
    without a word when the next transition takes over (found by issue 10's race harness). A transition the window
    settled on (done everywhere, or frozen) was reported then and is not looked at again. A manual run says it
    too: it records the state it applies, so no later tick would (issue 16).

    Returns the states the window's memory lacks: a transition DCS carried out (its claim's outcome `success`
    or `unknown`) whose state was never recorded (the ledger failed after the call, issue 16). Without them the
    next transition would read the instance as left alone by hand, and not act on it."""
    schedule, desired = work.schedule, work.desired
    assert desired is not None  # a window's work
    previous = window_desired(schedule, desired.occurrence - PENDING_HOLD)
    if previous is None or previous.state == desired.state:
        return {}
    candidates = {inst.instance_id: (inst, prior) for inst in targets
                  if (prior := last.get(inst.instance_id)) is not None
                  and prior.occurrence < previous.occurrence and prior.state != previous.state}
    if not candidates or ledger.get_meta(f"settled:{schedule.name}") == iso(previous.occurrence):
        return {}
    action, now_action = ACTION_FOR_STATE[previous.state], ACTION_FOR_STATE[desired.state]
    keys = {iid: claim_key(schedule.name, iso(previous.occurrence), iid, action) for iid in candidates}
    claimed = ledger.get_claims(list(keys.values()))
    # A refusal DCS gave (remembered: the transition was skipped with its reason then) is not a silent loss either.
    refused = ledger.get_metas([dcs_rules.refusal_key(schedule.name, iid, action) for iid in candidates])
    for iid, (inst, prior) in candidates.items():
        if keys[iid] not in claimed and not refused.get(dcs_rules.refusal_key(schedule.name, iid, action)):
            work.report.instance(iid, inst.name, action, "missed",
                                 f"the {action} for {iso(previous.occurrence)} never happened on this instance (last "
                                 f"applied: {prior.state} for {iso(prior.occurrence)}, nothing sent since); "
                                 f"superseded by the {now_action} at {iso(desired.occurrence)}", previous.occurrence)
    return {iid: WindowState(previous.state, previous.occurrence) for iid, key in keys.items()
            if key in claimed and claimed[key].outcome in APPLIED_OUTCOMES}


# -- 5. bookkeeping -----------------------------------------------------------------------------------
def _finish(work: Work, book: Bookkeeping, request: TickRequest) -> None:
    if not request.books or (work.dry_run and not request.rehearse):
        return
    name = work.schedule.name
    if work.applied:
        book.window_states.setdefault(name, {}).update(work.applied)
    if work.manual:
        return
    if work.desired is None:
        if work.pending:  # hold the watermark just before the occurrence so the next tick sees it again
            book.marks[name] = work.occurrence - PENDING_HOLD
        return
    if not work.pending and not work.report.error:
        book.settled[name] = iso(work.occurrence)


def _write_bookkeeping(book: Bookkeeping, ledger: Any, report: TickReport, wall: datetime) -> None:
    """Window states, settled markers, then watermarks (never ahead of the wall clock). A failure is reported
    beside the tick's results: what was sent stays in the summary and the notification."""
    try:
        for name, states in book.window_states.items():
            ledger.set_window_states(name, states)
        for name, occurrence in book.settled.items():
            ledger.set_meta(f"settled:{name}", occurrence)
        ledger.advance_watermarks(guards.bounded_marks(book.marks, wall))
    except LedgerError as exc:
        logs.error("ledger_bookkeeping_failed", error=str(exc))
        report.errors.append(f"the ledger failed after this tick's calls ({exc}): the results above are what DCS "
                             "answered; watermarks or window states were not recorded, so the next tick looks "
                             "again (the claims taken stop any second action)")
