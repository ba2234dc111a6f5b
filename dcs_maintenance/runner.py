"""One tick, top to bottom: due schedules -> targets -> claims -> status calls -> ledger -> summary.

Order of a tick, and why:
1. decide what is due from the schedules, the tick time and the ledger's watermarks (pure);
2. list the instances of each project that has due work, once per project, concurrently;
3. select targets and check eligibility (pure); dry runs stop here;
4. for each (project, region, action) chunk: check the time budget and the wall-clock
   deadline, claim the (schedule, occurrence, instance, action) keys, send ONE status call,
   record every entry's outcome. A claim is taken before the call, so a duplicate event, an
   overlapping invocation or a retry after a crash can never send the same action twice;
5. advance the watermarks (held back where work is pending) and mark settled windows.
"""

from __future__ import annotations

import contextvars
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

from dcs_maintenance import clock, fastpath, logs
from dcs_maintenance.ledger.base import Ledger, LedgerError, WindowState, claim_key
from dcs_maintenance.loader import Catalog
from dcs_maintenance.model import RUNNING, Instance, Outcome, Schedule
from dcs_maintenance.planner import (
    ACTION_FOR_STATE,
    Desired,
    eligibility,
    iso,
    one_shot_due,
    select,
    too_late,
    window_desired,
    window_step,
)
from dcs_maintenance.report import ScheduleReport, TickReport
from dcs_maintenance.settings import Settings

if TYPE_CHECKING:  # the gateway (and the thread pool) are imported when a tick has work: a cold idle tick skips them
    from dcs_maintenance.gateway import DcsGateway

GatewayFactory = Callable[[str, Optional[str]], "DcsGateway"]
PENDING_HOLD = timedelta(seconds=1)
# A window action counts as applied (what the schedule last did) unless DCS refused it: an unknown outcome may have
# run, and a later transition must still act (e.g. start in the morning what a lost-answer stop did stop).
APPLIED_OUTCOMES = ("success", "unknown", "claimed")


@dataclass(frozen=True)
class TickRequest:
    """What to run: the tick time and the invocation's options."""

    at: datetime
    trigger: str = "timer"
    dry_run: bool = False  # decide and report, change nothing in DCS
    only: Optional[frozenset[str]] = None  # restrict to these schedule names
    preview: bool = False  # read-only everywhere, ledger included (GET /plan)
    manual: bool = False  # run the chosen schedules now (POST /schedules/{name}/run), whatever their cron


@dataclass
class Runtime:
    """The invocation's I/O: settings, ledger, gateways, time budget."""

    settings: Settings
    ledger: Ledger
    gateway_factory: GatewayFactory
    remaining: Callable[[], float] = lambda: float("inf")  # seconds left in the invocation
    gateways: dict[tuple[str, Optional[str]], DcsGateway] = field(default_factory=dict)

    def gateway(self, project: str, region: Optional[str]) -> DcsGateway:
        key = (project, region)
        if key not in self.gateways:
            self.gateways[key] = self.gateway_factory(project, region)
        return self.gateways[key]


@dataclass
class Intent:
    """One action on one instance, for one schedule occurrence, not yet sent."""

    work: Work
    instance: Instance
    action: str
    key: str
    occurrence: datetime


@dataclass
class Work:
    """A due schedule on its way through the tick."""

    schedule: Schedule
    report: ScheduleReport
    project: str
    region: Optional[str]
    occurrence: datetime
    desired: Optional[Desired] = None  # windows only
    dry_run: bool = False
    pending: bool = False  # something must be looked at again next tick
    manual: bool = False  # a manual run: its own claim keys, no watermark or settled marker
    intents: list[Intent] = field(default_factory=list)
    applied: dict[str, WindowState] = field(default_factory=dict)


class _LockedLedger:
    """Serialises ledger calls from the per-project worker threads."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._ledger, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


def run_tick(catalog: Catalog, request: TickRequest, rt: Runtime) -> dict[str, Any]:
    """Run one tick and return its summary. Expected failures are reported, never raised."""
    settings = rt.settings
    ledger: Any = _LockedLedger(rt.ledger)
    report = TickReport(request.at, request.trigger, request.dry_run or settings.dry_run, request.preview)
    report.problems.extend(catalog.problems)
    for problem in catalog.problems:
        logs.error("invalid_schedule", file=problem.file, schedule=problem.schedule, path=problem.path,
                   message=problem.message)
    schedules = [s for s in catalog.schedules if request.only is None or s.name in request.only]
    if request.only:
        for name in sorted(request.only - {s.name for s in schedules}):
            report.errors.append(f"schedule {name!r} not found or not valid")
    marks = ledger.watermarks()
    new_marks: dict[str, datetime] = {}
    works = _due_work(schedules, request, rt, ledger, marks, new_marks, report)
    if works:
        instances = _list_projects(works, rt)
        for work in works:
            _plan(work, instances, rt, ledger, request)
        _execute([w for w in works if not w.report.error], rt, ledger, request)
        for work in works:
            _finish(work, ledger, new_marks, request)
    if not (request.preview or report.dry_run):  # a dry-run tick (e.g. an observer timer) must not use up work
        ledger.advance_watermarks(new_marks)
    for gw in rt.gateways.values():
        for name, count in vars(gw.stats).items():
            report.api_calls[name] = report.api_calls.get(name, 0) + count
    summary = report.to_dict()
    logs.log("tick", tick=summary["tick"], trigger=request.trigger, ok=summary["ok"], counts=summary["counts"],
             idle=summary["idle"], problems=len(summary["problems"]), api_calls=summary["api_calls"])
    return summary


# -- 1. what is due ---------------------------------------------------------------------------
def _due_work(schedules: list[Schedule], request: TickRequest, rt: Runtime, ledger: Any,
              marks: dict[str, datetime], new_marks: dict[str, datetime], report: TickReport) -> list[Work]:
    settings, tick = rt.settings, request.at
    works: list[Work] = []
    settled_marks = _settled_marks(schedules, request, ledger)
    for schedule in schedules:
        if not request.manual and _idle(schedule, request, marks, new_marks, settled_marks, settings):
            report.idle += 1  # nothing to say: no report entry, no log line, no ledger round trip
            continue
        rep = ScheduleReport(schedule, report.dry_run or schedule.dry_run)
        report.add(rep)
        if not schedule.enabled:
            rep.decide("disabled", "enabled: false")
            continue
        project = schedule.project_id or settings.project_id or ""
        region = schedule.region or settings.region
        if request.manual:
            works.append(_manual_work(schedule, rep, project, region, tick))
            continue
        if schedule.is_window:
            mark = marks.get(schedule.name)
            if mark is not None and tick < mark and not request.preview:  # a stale copy must not undo a later one
                rep.decide("not_due", f"stale tick: a later one ({iso(mark)}) was already processed")
                continue
            new_marks[schedule.name] = tick
            desired = fastpath.window_desired(schedule, tick)
            if desired is None:
                rep.decide("not_due", "no stop or start occurrence at or before the tick")
                continue
            settled = settled_marks.get(schedule.name) == iso(desired.occurrence)
            if settled and not schedule.enforce:
                rep.decide("settled", f"{desired.state} since {iso(desired.occurrence)}; every instance done",
                           desired=desired.state)
                continue
            works.append(Work(schedule, rep, project, region, desired.occurrence, desired, rep.data["dry_run"]))
            continue
        due = one_shot_due(schedule, tick, marks.get(schedule.name), settings.tick_period)
        for occ, result, why in due.passed:
            rep.passed(occ, result, why)
        new_marks[schedule.name] = tick
        if due.fire is None:
            if due.passed:
                rep.decide("not_due", due.reason)
            continue
        works.append(Work(schedule, rep, project, region, due.fire, None, rep.data["dry_run"]))
    return works


def _settled_marks(schedules: list[Schedule], request: TickRequest, ledger: Any) -> dict[str, Optional[str]]:
    """Every window's settled marker in one ledger read (enforced windows act whatever it says)."""
    if request.manual:
        return {}
    names = [s.name for s in schedules if s.is_window and s.enabled]
    if not names:
        return {}
    keys = [f"settled:{name}" for name in names]
    get_metas = getattr(ledger, "get_metas", None)
    values = get_metas(keys) if get_metas is not None else {key: ledger.get_meta(key) for key in keys}
    return {name: values.get(key) for name, key in zip(names, keys, strict=True)}


def _idle(schedule: Schedule, request: TickRequest, marks: dict[str, datetime], new_marks: dict[str, datetime],
          settled_marks: dict[str, Optional[str]], settings: Settings) -> bool:
    """True for a schedule that _due_work would report as quiet (disabled, not due, settled), with the same
    watermark: the fast path, which skips the report entry, its log line and the cron evaluation."""
    tick = request.at
    if not schedule.enabled:
        return True
    mark = marks.get(schedule.name)
    if schedule.is_window:
        desired = fastpath.window_desired(schedule, tick)
        if desired is None or (not schedule.enforce and settled_marks.get(schedule.name) == iso(desired.occurrence)):
            if not (mark is not None and tick < mark and not request.preview):  # as _due_work: not for a stale tick
                new_marks[schedule.name] = tick
            return True
        return False
    if fastpath.quiet_one_shot(schedule, tick, mark, settings.tick_period):
        new_marks[schedule.name] = tick
        return True
    return False


def _manual_work(schedule: Schedule, rep: ScheduleReport, project: str, region: Optional[str],
                 tick: datetime) -> Work:
    """A manual run: the action now (once per minute, via its claim), or a window's state re-applied."""
    minute = tick.replace(second=0, microsecond=0)
    desired = window_desired(schedule, tick) if schedule.is_window else None
    if schedule.is_window and desired is None:
        desired = Desired(RUNNING, minute)
    return Work(schedule, rep, project, region, minute, desired, rep.data["dry_run"], manual=True)


# -- 2. instances, once per project ---------------------------------------------------------------
def _list_projects(works: list[Work], rt: Runtime) -> dict[tuple[str, Optional[str]], Any]:
    """List each project's instances once, projects concurrently; an error is kept per project."""
    keys = sorted({(w.project, w.region) for w in works}, key=lambda k: (k[0], k[1] or ""))

    def list_one(key: tuple[str, Optional[str]]) -> Any:
        try:
            return rt.gateway(*key).list_instances()
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


# -- 3. targets and eligibility (pure decisions) -----------------------------------------------------
def _plan(work: Work, instances: dict[tuple[str, Optional[str]], Any], rt: Runtime, ledger: Any,
          request: TickRequest) -> None:
    schedule, rep = work.schedule, work.report
    listed = instances.get((work.project, work.region))
    if isinstance(listed, BaseException) or listed is None:
        work.pending = True
        rep.fail(f"could not list instances of project {work.project or '(none)'}: {listed}")
        return
    selection = select(schedule, listed, rt.settings.protect_tag)
    action_word = ACTION_FOR_STATE[work.desired.state] if work.desired else schedule.action
    for iid, name, why in selection.skipped:
        rep.instance(iid, name, action_word, "skipped", why, work.occurrence)
    if selection.error:
        rep.fail(selection.error)
        return
    if schedule.is_window:
        _plan_window(work, selection.targets, ledger, request)
    else:
        _plan_one_shot(work, selection.targets, ledger)
    what = f"{len(work.intents)} instance(s) to {action_word}" if work.intents else "no instance to act on"
    rep.decide("due", f"{what} for occurrence {iso(work.occurrence)}", work.occurrence,
               desired=work.desired.state if work.desired else None)


def _plan_one_shot(work: Work, targets: tuple[Instance, ...], ledger: Any) -> None:
    """Claims first: an instance already acted on for this occurrence (still RESTARTING from it, say) is done,
    not transitional; then eligibility for the rest."""
    schedule, rep, action = work.schedule, work.report, work.schedule.action or ""
    occurrence_key = f"manual@{iso(work.occurrence)}" if work.manual else iso(work.occurrence)
    keys = {inst.instance_id: claim_key(schedule.name, occurrence_key, inst.instance_id, action) for inst in targets}
    done = ledger.get_claims(list(keys.values())) if keys else {}
    for inst in targets:
        key = keys[inst.instance_id]
        record = done.get(key)
        if record is not None:
            rep.instance(inst.instance_id, inst.name, action, "skipped", f"already handled by request "
                         f"{record.holder} ({record.outcome}): not sent again", work.occurrence)
            continue
        verdict = eligibility(action, inst, schedule.allow_flush)
        if not verdict.ok:
            work.pending |= verdict.retry
            rep.instance(inst.instance_id, inst.name, action, "skipped", verdict.reason, work.occurrence)
            continue
        work.intents.append(Intent(work, inst, action, key, work.occurrence))


def _plan_window(work: Work, targets: tuple[Instance, ...], ledger: Any, request: TickRequest) -> None:
    schedule, desired, rep = work.schedule, work.desired, work.report
    assert desired is not None
    last = ledger.window_states(schedule.name)
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


# -- 4. claims and calls ----------------------------------------------------------------------------
def _execute(works: list[Work], rt: Runtime, ledger: Any, request: TickRequest) -> None:
    live: dict[tuple[str, Optional[str], str], list[Intent]] = defaultdict(list)
    for work in works:
        for intent in work.intents:
            if work.dry_run or request.dry_run or request.preview:
                _report_dry(intent, ledger)
            else:
                live[(work.project, work.region, intent.action)].append(intent)
    by_project: dict[tuple[str, Optional[str]], list[list[Intent]]] = defaultdict(list)
    for (project, region, _action), intents in sorted(live.items(), key=lambda kv: (kv[0][0], kv[0][1] or "",
                                                                                    kv[0][2])):
        size = rt.settings.batch_size
        # Several schedules may want the same instance (same action, same tick): keep them in one chunk, where
        # the instance is sent once (DCS fails a repeated id, and two chunks would act twice).
        same: dict[str, list[Intent]] = defaultdict(list)
        for it in intents:
            same[it.instance.instance_id].append(it)
        groups = list(same.values())
        by_project[(project, region)].extend([it for g in groups[i:i + size] for it in g]
                                             for i in range(0, len(groups), size))
    if not by_project:
        return

    def run_project(key: tuple[str, Optional[str]]) -> None:
        for chunk in by_project[key]:
            _send_chunk(rt.gateway(*key), chunk, rt, ledger, request)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(rt.settings.max_parallel_projects, len(by_project))) as pool:
        for future in [pool.submit(contextvars.copy_context().run, run_project, key) for key in by_project]:
            future.result()


def _report_dry(intent: Intent, ledger: Any) -> None:
    existing = ledger.get_claims([intent.key]).get(intent.key)
    rep, inst = intent.work.report, intent.instance
    if existing:
        rep.instance(inst.instance_id, inst.name, intent.action, "skipped",
                     f"already handled by request {existing.holder} ({existing.outcome})", intent.occurrence)
    else:
        rep.instance(inst.instance_id, inst.name, intent.action, "skipped",
                     f"dry run: would {intent.action} ({inst.status})", intent.occurrence)


def _send_chunk(gateway: DcsGateway, chunk: list[Intent], rt: Runtime, ledger: Any, request: TickRequest) -> None:
    """Budget and deadline checks, claim, ONE status call, record every outcome."""
    settings, action = rt.settings, chunk[0].action
    if rt.remaining() < settings.call_budget:
        for it in chunk:
            it.work.pending = True
            it.work.report.instance(it.instance.instance_id, it.instance.name, action, "skipped",
                                    "deferred: not enough time left in this invocation; the next tick picks it up",
                                    it.occurrence)
        return
    now = clock.now()
    ready: list[Intent] = []
    for it in chunk:
        if action == "flush" and not (it.work.schedule.allow_flush and it.work.schedule.action == "flush"):
            # Defence in depth: validation and eligibility already refuse this; never send it if they did not.
            logs.error("flush_refused", schedule=it.work.schedule.name, instance_id=it.instance.instance_id)
            it.work.report.instance(it.instance.instance_id, it.instance.name, action, "skipped",
                                    "refused: flush without allow_flush: true", it.occurrence)
            continue
        # A manual run's occurrence is the current minute (its claim's scope), not a due time: never "late".
        late = not it.work.manual and too_late(it.work.schedule, it.occurrence, now)
        if not it.work.schedule.is_window and late:
            it.work.report.instance(it.instance.instance_id, it.instance.name, action, "missed",
                                    f"older than starting_deadline {it.work.schedule.starting_deadline} by the wall "
                                    f"clock at {iso(now)}", it.occurrence)
        else:
            ready.append(it)
    try:
        won = ledger.claim_many([it.key for it in ready], logs.request_id()) if ready else []
    except LedgerError as exc:  # no claim, no call: the next tick tries again within the deadline
        for it in ready:
            it.work.pending = True
            it.work.report.instance(it.instance.instance_id, it.instance.name, action, "skipped",
                                    f"not sent: the ledger could not take the claim ({exc})", it.occurrence)
        return
    claimed = [it for it, ok in zip(ready, won, strict=False) if ok]
    lost = [it for it, ok in zip(ready, won, strict=False) if not ok]
    if lost:
        records = ledger.get_claims([it.key for it in lost])
        for it in lost:
            rec = records.get(it.key)
            holder = f"request {rec.holder} ({rec.outcome})" if rec else "another invocation"
            it.work.report.instance(it.instance.instance_id, it.instance.name, action, "skipped",
                                    f"already handled by {holder}: not sent again", it.occurrence)
            if it.work.desired and rec and rec.outcome in APPLIED_OUTCOMES:
                it.work.applied[it.instance.instance_id] = WindowState(it.work.desired.state, it.occurrence)
    if not claimed:
        return
    try:
        outcomes = {o.instance_id: o for o in gateway.change_status(action, list(dict.fromkeys(
            it.instance.instance_id for it in claimed)))}
    except Exception as exc:  # a bug or an unexpected SDK error: the outcome is unknown, never re-sent
        outcomes = {it.instance.instance_id: Outcome(it.instance.instance_id, "unknown", f"{exc}")
                    for it in claimed}
    retry = [it for it in claimed if outcomes[it.instance.instance_id].not_executed]
    if retry:  # certainly never executed (throttled, refused before sending): free the claims for a later tick
        _release(retry, outcomes, ledger)
        claimed = [it for it in claimed if not outcomes[it.instance.instance_id].not_executed]
    try:
        ledger.record_many({it.key: (outcomes[it.instance.instance_id].result,
                                     outcomes[it.instance.instance_id].reason) for it in claimed})
    except LedgerError as exc:  # the claims stay taken (never re-sent); only their outcome is not stored
        logs.error("ledger_record_failed", action=action, error=str(exc))
        outcomes = {iid: Outcome(iid, o.result, f"{o.reason} (outcome not recorded in the ledger: {exc})")
                    for iid, o in outcomes.items()}
    for it in claimed:
        outcome = outcomes[it.instance.instance_id]
        it.work.report.instance(it.instance.instance_id, it.instance.name, action, outcome.result, outcome.reason,
                                it.occurrence)
        if it.work.desired and outcome.result in APPLIED_OUTCOMES:
            it.work.applied[it.instance.instance_id] = WindowState(it.work.desired.state, it.occurrence)


def _release(intents: list[Intent], outcomes: dict[str, Outcome], ledger: Any) -> None:
    """Give back the claims of a call that never executed; the next tick sends them (within the deadline)."""
    try:
        ledger.release_many([it.key for it in intents], logs.request_id())
        later = "claim released: the next tick tries again within starting_deadline"
    except LedgerError as exc:  # the claims stay: never sent twice, but not retried either
        later = f"claim not released ({exc}): not retried"
    for it in intents:
        it.work.pending = True
        it.work.report.instance(it.instance.instance_id, it.instance.name, it.action, "skipped",
                                f"{outcomes[it.instance.instance_id].reason}; {later}", it.occurrence)


# -- 5. ledger bookkeeping ----------------------------------------------------------------------------
def _finish(work: Work, ledger: Any, new_marks: dict[str, datetime], request: TickRequest) -> None:
    if request.preview or request.dry_run or work.dry_run:
        return
    name = work.schedule.name
    if work.manual:
        if work.applied:
            ledger.set_window_states(name, work.applied)
        return
    if work.desired is None:
        if work.pending:  # hold the watermark just before the occurrence so the next tick sees it again
            new_marks[name] = work.occurrence - PENDING_HOLD
        return
    if work.applied:
        ledger.set_window_states(name, work.applied)
    if not work.pending and not work.report.error:
        ledger.set_meta(f"settled:{name}", iso(work.occurrence))

