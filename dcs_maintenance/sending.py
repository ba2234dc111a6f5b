"""Claims and status calls: the only place a tick changes anything in DCS.

For each (project, region, action) chunk of BATCH_SIZE: check the time budget and each occurrence's deadline by
the wall clock, claim the keys in the ledger, send ONE status call, and give every intent its outcome. A claim is
taken before the call, so a duplicate event, an overlapping invocation or a retry after a crash never sends the
same action twice; a claim someone else holds is judged by guards.judge_claim (done, in flight, or unknown).

What DCS itself allows (issue 11; decisions in dcs_rules): before a restart, soft restart or flush each instance's
backup records are read (one in progress holds it like a transitional state), and after a restart its data-loss
mark is read; a 4xx for the whole call is split (send_split) until the refused instances stand alone; a stop/start DCS
refused for an instance is remembered in the ledger, and later transitions skip it without a call.
"""

from __future__ import annotations

import contextvars
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

from dcs_maintenance import clock, dcs_rules, logs
from dcs_maintenance.guards import judge_claim
from dcs_maintenance.ledger.base import LedgerError, WindowState
from dcs_maintenance.model import Outcome
from dcs_maintenance.planner import STATUS_OF_STATE, too_late
from dcs_maintenance.tick import PENDING_HOLD, Intent, Runtime, TickRequest, Work

if TYPE_CHECKING:
    from dcs_maintenance.gateway import DcsGateway
    from dcs_maintenance.model import Instance

# A window action counts as applied (what the schedule last did) when it succeeded or may have run (unknown): a
# later transition must still act (start in the morning what a lost-answer stop did stop). A claim with no outcome
# counts as nothing yet: its invocation is in flight (guards.judge_claim decides when it becomes unknown).
APPLIED_OUTCOMES = ("success", "unknown")


def execute(works: list[Work], rt: Runtime, ledger: Any, request: TickRequest, marks: dict[str, datetime]) -> None:
    """Dry-run intents are reported; the rest go out in chunks, projects concurrently."""
    _prepare(works, rt, ledger, request)  # remembered stop/start refusals; dry runs' data-loss marks (issue 11)
    live: dict[tuple[str, Optional[str], str], list[Intent]] = defaultdict(list)
    for work in works:
        for intent in work.intents:
            if work.dry_run or not request.writes:
                _report_dry(intent, ledger)
                if request.rehearse and work.desired:  # a rehearsal goes on as if it had been done
                    work.applied[intent.instance.instance_id] = WindowState(work.desired.state, intent.occurrence)
                    assumed = getattr(rt.ledger, "assumed", None)
                    if assumed is not None:
                        assumed[intent.instance.instance_id] = STATUS_OF_STATE[work.desired.state]
            else:
                live[(work.project, work.region, intent.action)].append(intent)
    if not live:
        return
    live = _without_remembered(live)  # a stop/start DCS refused for this instance before: no call, no alert
    if not live:
        return
    if not _mark_first_sight(live, ledger, marks):
        return
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

    def run_project(key: tuple[str, Optional[str]]) -> None:
        for chunk in by_project[key]:
            _send_chunk(rt.gateway(*key), chunk, rt, ledger)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(rt.settings.max_parallel_projects, len(by_project))) as pool:
        # Each worker runs in a copy of this context: the request id and the secrets to redact are context
        # variables, which a bare pool thread does not inherit.
        for future in [pool.submit(contextvars.copy_context().run, run_project, key) for key in by_project]:
            future.result()


def _mark_first_sight(live: dict[Any, list[Intent]], ledger: Any, marks: dict[str, datetime]) -> bool:
    """Before a schedule's first claims, store a watermark just before its occurrence: without one, the next
    tick's window (T - TICK_PERIOD, T] may not reach back to an occurrence whose invocation died after claiming,
    and it would vanish from every report. Once per schedule; False (nothing sent) when the ledger fails."""
    first = {it.work.schedule.name: it.occurrence - PENDING_HOLD for intents in live.values() for it in intents
             if not (it.work.manual or it.work.desired) and it.work.schedule.name not in marks}
    if not first:
        return True
    try:
        ledger.advance_watermarks(first)
    except LedgerError as exc:
        for intents in live.values():
            for it in intents:
                it.work.pending = True
                it.report("skipped", f"not sent: the ledger could not be written ({exc})", not_sent=True)
        return False
    marks.update(first)
    return True


def _report_dry(intent: Intent, ledger: Any) -> None:
    existing = ledger.get_claims([intent.key], now=clock.now()).get(intent.key)
    if existing:
        intent.report("skipped", f"already handled by request {existing.holder} ({existing.outcome})",
                      handled_by=existing.holder)
    elif intent.remembered:
        intent.report("skipped", f"dry run: {intent.remembered}")
    else:
        note = dcs_rules.STOP_START_NOTE if intent.action in dcs_rules.WINDOW_ACTIONS else None
        intent.report("skipped", f"dry run: would {intent.action} ({intent.instance.status})",
                      data_loss=intent.data_loss, note=note)


def _send_chunk(gateway: DcsGateway, chunk: list[Intent], rt: Runtime, ledger: Any) -> None:
    """Budget and deadline checks, claim, ONE status call, record every outcome."""
    settings, action = rt.settings, chunk[0].action
    if rt.remaining() < settings.call_budget:  # checked before any claim: nothing is left half-claimed
        for it in chunk:
            it.work.pending = True
            it.report("skipped", "not sent: not enough time left to call DCS before the API Gateway's backend "
                                 "timeout (APIG_TIMEOUT) or the function's own; nothing was claimed: run it again"
                      if it.work.manual else
                      "deferred: not enough time left in this invocation; the next tick picks it up", not_sent=True)
        return
    now, judge = clock.now(), clock.as_of()
    ready: list[Intent] = []
    for it in chunk:
        if action == "flush" and not (it.work.schedule.allow_flush and it.work.schedule.action == "flush"):
            # Defence in depth: validation and eligibility already refuse this; never send it if they did not.
            logs.error("flush_refused", schedule=it.work.schedule.name, instance_id=it.instance.instance_id)
            it.report("skipped", "refused: flush without allow_flush: true")
            continue
        # A manual run's occurrence is the current minute (its claim's scope), not a due time: never "late".
        if (it.late_check and not (it.work.manual or it.work.schedule.is_window)
                and too_late(it.work.schedule, it.occurrence, judge)):
            it.report("missed", f"older than starting_deadline {it.work.schedule.starting_deadline} by the wall "
                                f"clock at {judge.strftime('%Y-%m-%dT%H:%M:%SZ')}")
        else:
            ready.append(it)
    if not ready:
        return
    ready = _check_before_sending(gateway, ready, rt)  # backups in progress, then the budget again
    if not ready:
        return
    claimed = _claim(ready, ledger, now, timedelta(seconds=settings.call_budget))
    if not claimed:
        return
    # ONE status call; a whole-request refusal executed nothing, so its halves go out under these same claims.
    outcomes = send_split(gateway, action, list(dict.fromkeys(it.instance.instance_id for it in claimed)),
                          lambda: rt.remaining() >= settings.call_budget)
    retry = [it for it in claimed if outcomes[it.instance.instance_id].not_executed]
    if retry:  # evidence says DCS did not act: free the claims for a later tick (or the caller's retry)
        _release(retry, outcomes, ledger)
        claimed = [it for it in claimed if not outcomes[it.instance.instance_id].not_executed]
    try:
        ledger.record_many({it.key: (outcomes[it.instance.instance_id].result,
                                     outcomes[it.instance.instance_id].reason) for it in claimed})
    except LedgerError as exc:  # the claims stay taken (never re-sent); only their outcome is not stored
        logs.error("ledger_record_failed", action=action, error=str(exc))
        outcomes = {iid: Outcome(iid, o.result, f"{o.reason} (outcome not recorded in the ledger: {exc})")
                    for iid, o in outcomes.items()}
        for it in claimed:  # ok false: the operator hears of a failing ledger now, not at the next tick's `unknown`
            it.work.report.error = it.work.report.error or f"the ledger failed to record this tick's outcomes: {exc}"
    remembered = _after_sending(gateway, claimed, outcomes, ledger, rt)  # refusals remembered, data-loss marks
    for it in claimed:
        outcome = outcomes[it.instance.instance_id]
        it.report(outcome.result, _entry_reason(it, outcome, it.key in remembered),
                  data_loss=it.data_loss if outcome.result in APPLIED_OUTCOMES else None)
        if it.work.desired and outcome.result in APPLIED_OUTCOMES:
            it.work.applied[it.instance.instance_id] = WindowState(it.work.desired.state, it.occurrence)


def _claim(ready: list[Intent], ledger: Any, now: datetime, in_flight: timedelta) -> list[Intent]:
    """Claim every ready intent; report the ones someone else holds as their claim says. Returns those won."""
    holder = logs.request_id()
    keys = [it.key for it in ready]
    try:
        won = ledger.claim_many(keys, holder, now=now)
    except LedgerError as exc:  # no claim known, no call. Its reply may be what was lost: give back what we hold
        try:
            ledger.release_many(keys, holder)
            later = "claims given back: the next tick tries again within starting_deadline"
        except LedgerError as again:
            later = (f"the claims could not be given back either ({again}): a later tick reports them unknown, "
                     "never sends them")
        for it in ready:
            it.work.pending = True
            it.report("skipped", f"not sent: the ledger could not take the claim ({exc}); {later}", not_sent=True)
        return []
    lost = [it for it, ok in zip(ready, won, strict=True) if not ok]
    if lost:
        _report_lost(lost, ledger, now, in_flight)
    return [it for it, ok in zip(ready, won, strict=True) if ok]


def _report_lost(lost: list[Intent], ledger: Any, now: datetime, in_flight: timedelta) -> None:
    """Claims another invocation won: reported as their records say (in flight, done, or unknown when stale)."""
    try:
        records = ledger.get_claims([it.key for it in lost], now=now)
    except LedgerError as exc:  # never sent by us; whoever holds them is judged at a later tick
        for it in lost:
            it.work.pending = True
            it.work.report.error = it.work.report.error or f"the ledger failed during this tick: {exc}"
            it.report("skipped", f"not sent: claimed by another invocation, whose claim could not be read "
                                 f"({exc}); looked at again next tick")
        return
    stale: dict[str, tuple[str, str]] = {}
    for it in lost:
        record = records.get(it.key)
        if record is None:  # expired or released between the claim and the read: looked at next tick
            it.work.pending = True
            it.report("skipped", "claimed by another invocation a moment ago: looked at again next tick")
            continue
        verdict = judge_claim(record, now, in_flight, it.instance.status)
        it.report(verdict.result, verdict.reason, handled_by=record.holder)
        it.work.pending |= verdict.hold
        if verdict.stale:
            stale[it.key] = ("unknown", verdict.reason)
        if it.work.desired and verdict.applied:
            it.work.applied[it.instance.instance_id] = WindowState(it.work.desired.state, it.occurrence)
    record_stale(stale, ledger)


def record_stale(stale: dict[str, tuple[str, str]], ledger: Any) -> None:
    """An outcome-less claim judged unknown gets that outcome, unless its own invocation recorded one meanwhile."""
    if not stale:
        return
    try:
        ledger.record_many(stale, only_claimed=True)
    except LedgerError as exc:  # reported unknown anyway; the next tick judges the claim again
        logs.error("ledger_record_failed", what="stale claims", error=str(exc))


def _release(intents: list[Intent], outcomes: dict[str, Outcome], ledger: Any) -> None:
    """Give back the claims of a call that DCS did not act on: the next tick (or the caller) sends it again."""
    try:
        ledger.release_many([it.key for it in intents], logs.request_id())
        released = True
    except LedgerError as exc:  # the claims stay: never sent twice, but not retried either
        released = False
        failure = f"claim not released ({exc}): not retried"
    for it in intents:
        outcome = outcomes[it.instance.instance_id]
        it.work.pending = True
        if not released:
            later = failure
        elif it.work.manual:
            later = "nothing was done: retry the request" + (
                f" after {int(outcome.retry_after)}s" if outcome.retry_after else "")
        else:
            later = "claim released: the next tick tries again within starting_deadline"
        it.report("skipped", f"not sent: {outcome.reason}; {later}", not_sent=True, retry_after=outcome.retry_after)


# -- what DCS itself allows (issue 11; the decisions are in dcs_rules) ------------------------------------------------
MAX_PARALLEL_READS = 8  # per-instance reads (backups, configs) in flight at once for one chunk
NO_TIME = "not enough time left in this invocation for the call"


def send_split(gateway: DcsGateway, action: str, instance_ids: list[str],
               can_send: Callable[[], bool]) -> dict[str, Outcome]:
    """One status call for `instance_ids`; where DCS refuses the whole request (a 4xx other than auth and 429:
    nothing executed), its halves are sent, and theirs, until the refused instances stand alone, as the Instance
    Scheduler on AWS bisects failed batches. Each further call needs `can_send()` (one call budget); what cannot
    be sent is answered not executed (its claim is given back). A lone refused instance is held when DCS says it
    is busy (dcs_rules.BUSY_CODES: like a transitional state) and failed otherwise, with DCS's code and message.

    Exactly once: every id is in one executed request at most: a request refused with a 4xx executed nothing
    (the error codes DCS answers it with are all "not allowed now" or "invalid": dcs_rules), and each id goes
    into one half only, under the claims its caller already holds. Shared by the ticks (_send_chunk) and
    PUT /instances/status (routes/instances.py)."""
    outcomes: dict[str, Outcome] = {}
    parts, first = [list(instance_ids)], True
    while parts:
        part = parts.pop(0)
        if not first and not can_send():
            outcomes.update((iid, Outcome(iid, "failed", f"part of a request DCS refused as a whole, {NO_TIME}",
                                          not_executed=True)) for iid in part)
            continue
        first = False
        try:
            got = {o.instance_id: o for o in gateway.change_status(action, part)}
        except Exception as exc:  # a bug or an unexpected SDK error: the outcome is unknown, never re-sent
            got = {iid: Outcome(iid, "unknown", f"{exc}") for iid in part}
        refusal = next((o.refusal for o in got.values() if o.refusal is not None), None)
        if refusal is None:
            outcomes.update(got)
            continue
        step = dcs_rules.refusal_step(action, len(part), refusal.status, refusal.code, refusal.message)
        logs.log("status_refused", action=action, instances=len(part), code=refusal.code, step=step.kind)
        if step.kind == "split":
            half = (len(part) + 1) // 2
            parts[0:0] = [part[:half], part[half:]]
        else:
            held = step.kind == "hold"
            outcomes.update((iid, Outcome(iid, "failed", step.reason, not_executed=held, refused=not held))
                            for iid in part)
    return outcomes


def read_each(read: Callable[[str], Any], keys: list[str], rt: Runtime) -> dict[str, Any]:
    """`read(key)` for each key, a few at a time: its answer, its exception, or NO_TIME where less than one call
    budget was left (no read is started then)."""
    def one(key: str) -> Any:
        if rt.remaining() < rt.settings.call_budget:
            return NO_TIME
        try:
            return read(key)
        except Exception as exc:  # GatewayError after retries, or a bug: reported per instance
            return exc

    if len(keys) <= 1:
        return {key: one(key) for key in keys}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_READS, len(keys))) as pool:
        futures = {key: pool.submit(contextvars.copy_context().run, one, key) for key in keys}
        return {key: future.result() for key, future in futures.items()}


def backup_checks(gateway: DcsGateway, instance_ids: list[str], rt: Runtime) -> dict[str, tuple[str, str]]:
    """Before a restart, soft restart or flush: one ListBackupRecords call per instance about to be acted on.
    instance id -> ("go" | "hold" | "no_time", reason). A read that fails does not stop the action (the reason
    says so): DCS itself refuses it (DCS.4096, held by send_split) or cancels the backup (user guide)."""
    out: dict[str, tuple[str, str]] = {}
    for iid, got in read_each(gateway.backup_records, instance_ids, rt).items():
        if got is NO_TIME:
            out[iid] = ("no_time", NO_TIME)
        elif isinstance(got, Exception):
            logs.log("backup_check_failed", logging.WARNING, instance_id=iid, error=str(got))
            out[iid] = ("go", f"backup records not read ({got}): sent without that check")
        else:
            verdict = dcs_rules.backup_verdict(got)
            out[iid] = ("hold" if verdict.hold else "go", verdict.reason if verdict.hold else "")
    return out


def data_loss_marks(gateway: DcsGateway, instances: list[Instance], rt: Runtime) -> dict[str, Optional[str]]:
    """instance id -> what a restart does to its data (dcs_rules.data_loss), reading ListConfigurations only for
    the instances whose list entry does not tell (not single-node, not Memcached), at most one read each."""
    marks: dict[str, Optional[str]] = {}
    need: list[str] = []
    for inst in instances:
        verdict = dcs_rules.data_loss(inst)
        marks[inst.instance_id] = verdict.mark
        if verdict.read_configs and inst.instance_id not in need:
            need.append(inst.instance_id)
    for iid, got in read_each(gateway.redis_config, need, rt).items():
        if got is NO_TIME or isinstance(got, Exception):
            marks[iid] = dcs_rules.unread_aof_mark(str(got))
        else:
            marks[iid] = dcs_rules.aof_mark(got)
    return marks


def _check_before_sending(gateway: DcsGateway, ready: list[Intent], rt: Runtime) -> list[Intent]:
    """The reads a chunk needs before its call (issue 11): a backup in progress holds an instance like a
    transitional state (pending: the next tick tries again within starting_deadline). Then the time budget is
    checked again: the reads may have used it up."""
    action = ready[0].action
    ids = list(dict.fromkeys(it.instance.instance_id for it in ready))
    kept = ready
    if action in dcs_rules.BACKUP_ACTIONS:
        checks = backup_checks(gateway, ids, rt)
        kept = []
        for it in ready:
            kind, why = checks[it.instance.instance_id]
            if kind == "hold":
                it.work.pending = True
                it.report("skipped", f"{why}: {dcs_rules.BACKUP_HOLD}")
            elif kind == "no_time":
                _defer([it])
            else:
                it.note = why
                kept.append(it)
    if kept and rt.remaining() < rt.settings.call_budget:
        _defer(kept)
        return []
    return kept


def _defer(intents: list[Intent]) -> None:
    for it in intents:
        it.work.pending = True
        it.report("skipped", "not sent: not enough time left to call DCS before the API Gateway's backend "
                             "timeout (APIG_TIMEOUT) or the function's own; nothing was claimed: run it again"
                  if it.work.manual else
                  "deferred: not enough time left in this invocation; the next tick picks it up", not_sent=True)


def _prepare(works: list[Work], rt: Runtime, ledger: Any, request: TickRequest) -> None:
    """Before anything is reported or sent: each stop/start DCS refused before for its instance gets the
    remembered reason (Intent.remembered), and dry runs' restarts their data-loss mark."""
    intents = [it for work in works for it in work.intents]
    memories = _remembered(intents, ledger)
    for it in intents:
        if it.key in memories:
            it.remembered = dcs_rules.remembered_skip(it.action, memories[it.key])
    _mark_dry_data_loss([it for it in intents if it.work.dry_run or not request.writes], rt)


def _without_remembered(live: dict[Any, list[Intent]]) -> dict[Any, list[Intent]]:
    """Live intents minus those skipped for a remembered refusal (reported skipped, not pending: nothing to
    retry before the memory ends)."""
    kept: dict[Any, list[Intent]] = {}
    for key, intents in live.items():
        for it in intents:
            if it.remembered:
                it.report("skipped", it.remembered)
        rest = [it for it in intents if not it.remembered]
        if rest:
            kept[key] = rest
    return kept


def _mark_dry_data_loss(dry: list[Intent], rt: Runtime) -> None:
    """Dry runs and GET /plan say which restarts would empty their instance (read APIs only)."""
    by_project: dict[tuple[str, Optional[str]], list[Intent]] = defaultdict(list)
    for it in dry:
        if it.action in dcs_rules.DATA_LOSS_ACTIONS:
            by_project[(it.work.project, it.work.region)].append(it)
    for key, intents in by_project.items():
        marks = data_loss_marks(rt.gateway(*key), [it.instance for it in intents], rt)
        for it in intents:
            it.data_loss = marks.get(it.instance.instance_id)


def _entry_reason(it: Intent, outcome: Outcome, remembered: bool) -> str:
    reason = outcome.reason
    if it.note:
        reason = f"{reason}; {it.note}"
    if it.data_loss and outcome.result in APPLIED_OUTCOMES:
        reason = f"{reason} ({it.data_loss})"
    if remembered:
        reason += (f"; remembered: later transitions skip it without a call for "
                   f"{dcs_rules.REFUSAL_MEMORY.days} days or until the schedule changes")
    return reason


def _remembered(intents: list[Intent], ledger: Any) -> dict[str, dcs_rules.Remembered]:
    """claim key -> a stop/start refusal DCS gave for this schedule and instance that still holds (one ledger
    read for all). Manual runs always try."""
    wanted: dict[str, tuple[Intent, str]] = {}
    prints: dict[str, str] = {}
    for it in intents:
        if it.action in dcs_rules.WINDOW_ACTIONS and not it.work.manual:
            schedule = it.work.schedule
            if schedule.name not in prints:
                prints[schedule.name] = dcs_rules.schedule_fingerprint(schedule)
            wanted[it.key] = (it, dcs_rules.refusal_key(schedule.name, it.instance.instance_id, it.action))
    if not wanted:
        return {}
    keys = sorted({meta for _, meta in wanted.values()})
    try:
        values = ledger.get_metas(keys)
    except LedgerError as exc:  # nothing remembered can be read: try (DCS refuses again, reported again)
        logs.error("ledger_read_failed", what="remembered refusals", error=str(exc))
        return {}
    now = clock.now()
    found = {}
    for claim, (it, meta) in wanted.items():
        memory = dcs_rules.remembered(values.get(meta), now, prints[it.work.schedule.name])
        if memory is not None:
            found[claim] = memory
    return found


def _after_sending(gateway: DcsGateway, claimed: list[Intent], outcomes: dict[str, Outcome], ledger: Any,
                   rt: Runtime) -> set[str]:
    """After the call: stop/start refusals are remembered (the claim keys stored are returned), and restarts that
    went out get their data-loss mark. The mark is read only now, for the instances restarted, so that it never
    delays a restart; where the time left is short it says it was not read."""
    restarted = {it.instance.instance_id: it.instance for it in claimed if it.action in dcs_rules.DATA_LOSS_ACTIONS
                 and outcomes[it.instance.instance_id].result in APPLIED_OUTCOMES}
    if restarted:
        marks = data_loss_marks(gateway, list(restarted.values()), rt)
        for it in claimed:
            it.data_loss = marks.get(it.instance.instance_id)
    return _remember_refusals(claimed, outcomes, ledger)


def _remember_refusals(claimed: list[Intent], outcomes: dict[str, Outcome], ledger: Any) -> set[str]:
    """Store each stop/start DCS refused for good (a failed entry, or a lone instance's 4xx), so that later
    transitions skip it: claim keys stored."""
    stored: set[str] = set()
    now = clock.now()
    for it in claimed:
        outcome = outcomes[it.instance.instance_id]
        if it.action not in dcs_rules.WINDOW_ACTIONS or not outcome.refused or outcome.result != "failed":
            continue
        schedule = it.work.schedule
        try:
            ledger.set_meta(dcs_rules.refusal_key(schedule.name, it.instance.instance_id, it.action),
                            dcs_rules.remember(outcome.reason, now, dcs_rules.schedule_fingerprint(schedule)))
            stored.add(it.key)
        except LedgerError as exc:  # reported as refused anyway; the next transition asks DCS again
            logs.error("ledger_record_failed", what="refusal", instance_id=it.instance.instance_id, error=str(exc))
    return stored
