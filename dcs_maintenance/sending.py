"""Claims and status calls: the only place a tick changes anything in DCS.

For each (project, region, action) chunk of BATCH_SIZE: check the time budget and each occurrence's deadline by
the wall clock, claim the keys in the ledger, send ONE status call, and give every intent its outcome. A claim is
taken before the call, so a duplicate event, an overlapping invocation or a retry after a crash never sends the
same action twice; a claim someone else holds is judged by guards.judge_claim (done, in flight, or unknown).
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

from dcs_maintenance import clock, logs
from dcs_maintenance.guards import judge_claim
from dcs_maintenance.ledger.base import LedgerError, WindowState
from dcs_maintenance.model import Outcome
from dcs_maintenance.planner import STATUS_OF_STATE, too_late
from dcs_maintenance.tick import PENDING_HOLD, Intent, Runtime, TickRequest, Work

if TYPE_CHECKING:
    from dcs_maintenance.gateway import DcsGateway

# A window action counts as applied (what the schedule last did) when it succeeded or may have run (unknown): a
# later transition must still act (start in the morning what a lost-answer stop did stop). A claim with no outcome
# counts as nothing yet: its invocation is in flight (guards.judge_claim decides when it becomes unknown).
APPLIED_OUTCOMES = ("success", "unknown")


def execute(works: list[Work], rt: Runtime, ledger: Any, request: TickRequest, marks: dict[str, datetime]) -> None:
    """Dry-run intents are reported; the rest go out in chunks, projects concurrently."""
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
    else:
        intent.report("skipped", f"dry run: would {intent.action} ({intent.instance.status})")


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
    claimed = _claim(ready, ledger, now, timedelta(seconds=settings.call_budget))
    if not claimed:
        return
    try:
        outcomes = {o.instance_id: o for o in gateway.change_status(action, list(dict.fromkeys(
            it.instance.instance_id for it in claimed)))}
    except Exception as exc:  # a bug or an unexpected SDK error: the outcome is unknown, never re-sent
        outcomes = {it.instance.instance_id: Outcome(it.instance.instance_id, "unknown", f"{exc}")
                    for it in claimed}
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
    for it in claimed:
        outcome = outcomes[it.instance.instance_id]
        it.report(outcome.result, outcome.reason)
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
        records = ledger.get_claims([it.key for it in lost], now=now)
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
    return [it for it, ok in zip(ready, won, strict=True) if ok]


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
