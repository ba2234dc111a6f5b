"""PUT /instances/status: the seed API (RestartOrFlushInstances) for the function's project, with guard rails.

Body `{"instances": [ids], "action": "restart|soft_restart|flush|stop|start", "confirm": "<action>",
"dry_run": bool, "override_freeze": bool}` (`confirm` is required for flush, optional otherwise; `dry_run`
optional; inside a freeze for the action the request is refused with 409 unless `override_freeze` is true). Answer 200
`{"results": [{"instance", "result"}], "details": [{"instance", "name", "status", "result", "reason"}], ...}`
with one entry per distinct id, in the request's order, whatever happened to each.

In order:
1. the body, strictly: unknown fields or wrong types -> 400 naming the field; ids deduplicated, at most
   MAX_IDS; flush without `"confirm": "flush"` -> 400. Nothing is listed or sent for a refused body;
2. the project's instances, listed once (a read). Claims first: an instance this request (its
   `Idempotency-Key`, else its APIG request id) already claimed is answered with that claim's outcome, even
   while it is still FLUSHING or RESTARTING from it. Then unknown ids, protected instances (PROTECT_TAG) and
   ineligible ones (planner.eligibility, the schedules' rules) are reported `failed` with the reason;
3. per chunk of BATCH_SIZE eligible instances: a ledger claim per (request, instance, action) BEFORE the
   call, so a replayed APIG request (same requestContext.requestId) or a retry with the same
   `Idempotency-Key` header never sends twice; ONE status call; every entry read; outcomes recorded.
   A chunk is sent only with the time for one call left before the API Gateway's backend timeout
   (APIG_TIMEOUT) and the function's own: otherwise it is reported "not sent" and nothing is claimed, so a
   retry with the same Idempotency-Key sends it. A call that certainly never reached DCS (throttled, refused
   before sending) gives its claims back for the same reason.
4. issue 11: where list entries carry no tags, the protect tag is read with ListInstances' tag filter (an
   instance whose tags cannot be read is refused); before a restart, soft restart or flush an instance being
   backed up is not sent ("send it again"); a 4xx for the whole call is split as on a tick (sending.send_split).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Optional

from dcs_maintenance import clock, dcs_rules, history, logs
from dcs_maintenance.gateway import DcsGateway, GatewayError
from dcs_maintenance.http_api import (
    CONFIRMATION_REQUIRED,
    INVALID_FIELD,
    INVALID_PARAMETER,
    LEDGER_DOWN,
    MISCONFIGURED,
    UPSTREAM,
    HttpError,
    Request,
    Response,
)
from dcs_maintenance.ledger.base import CLAIMED, ClaimRecord, LedgerError, claim_key
from dcs_maintenance.model import ALL_ACTIONS, Instance, Outcome
from dcs_maintenance.planner import eligibility, is_protected
from dcs_maintenance.routes import common
from dcs_maintenance.runner import Runtime
from dcs_maintenance.sending import backup_checks, send_split
from dcs_maintenance.settings import Settings, SettingsError

MAX_IDS = 1000
FIELDS = {"instances": list, "action": str, "confirm": str, "dry_run": bool, "override_freeze": bool}
CLAIM_SCOPE = "http"  # the claim key's "schedule" part for this route
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_IDEMPOTENCY_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class Entry:
    """One requested instance and what became of it."""

    instance: str
    name: str = ""
    status: str = ""  # as listed before the call
    result: str = ""  # success | failed | unknown | skipped (dry run)
    reason: str = ""

    def set(self, result: str, reason: str) -> None:
        self.result, self.reason = result, reason


def change_status(request: Request) -> Response:
    body = request.json_object(FIELDS)
    ids, action, dry_run = _parse_body(body)
    scope = _claim_scope(request)
    settings = common.settings()
    dry_run = dry_run or settings.dry_run
    if not dry_run:  # inside a freeze for the action: 409, unless "override_freeze": true (logged)
        common.check_freeze(common.catalog(settings).freezes, action, clock.now(),
                            bool(body.get("override_freeze", False)), route="instances/status",
                            instances=ids[:20])
    if not settings.project_id:
        raise HttpError(500, MISCONFIGURED, "no project id: set DCS_PROJECT_ID or RUNTIME_PROJECT_ID")
    rt = common.runtime(settings, request)
    gateway = _gateway(rt, settings)
    try:  # where list entries carry no tags, the protect tag is read through ListInstances' tag filter
        listed = {inst.instance_id: inst for inst in gateway.list_instances([(settings.protect_tag,)])}
    except GatewayError as exc:
        raise HttpError(502, UPSTREAM, f"could not list the project's instances; nothing was sent: {exc}") from None
    entries = [Entry(iid) for iid in ids]
    keys = {iid: claim_key(CLAIM_SCOPE, scope, iid, action) for iid in ids}
    fresh = _already_handled(entries, keys, listed, rt)
    eligible = _check(fresh, listed, action, settings)
    if dry_run:
        for entry, inst in eligible:
            entry.set("skipped", f"dry run: would {action} ({inst.status})")
    else:
        _send(eligible, action, keys, rt, gateway, settings)
    for entry in entries:
        level = logging.WARNING if entry.result in ("failed", "unknown") else logging.INFO
        logs.log("instance_status", level, action=action, instance_id=entry.instance, result=entry.result,
                 reason=entry.reason, dry_run=dry_run or None)
    body = {
        "action": action,
        "project_id": settings.project_id,
        "dry_run": dry_run,
        "request_id": request.request_id,
        "results": [{"instance": e.instance, "result": e.result} for e in entries],
        "details": [vars(e) for e in entries],
    }
    history.attach_status_change(body, rt.ledger, settings.history_retention, rt.remaining)  # never raises
    return Response(200, body)


# -- 1. the body ------------------------------------------------------------------------------------
def _parse_body(body: dict[str, Any]) -> tuple[list[str], str, bool]:
    if "instances" not in body:
        raise HttpError(400, INVALID_FIELD, "instances: required (a list of instance ids)")
    raw = body["instances"]
    if not raw:
        raise HttpError(400, INVALID_FIELD, "instances: give at least one instance id")
    if len(raw) > MAX_IDS:
        raise HttpError(400, INVALID_FIELD, f"instances: at most {MAX_IDS} ids, got {len(raw)}")
    for index, iid in enumerate(raw):
        if not isinstance(iid, str) or not _ID_RE.fullmatch(iid):
            shown = repr(iid)[:60] if isinstance(iid, str) else type(iid).__name__
            raise HttpError(400, INVALID_FIELD, f"instances[{index}]: expected an instance id (letters, digits, "
                                                f"'.', '_', '-'; at most 128), got {shown}")
    action = body.get("action")
    if action is None:
        raise HttpError(400, INVALID_FIELD, f"action: required, one of {', '.join(ALL_ACTIONS)}")
    if action not in ALL_ACTIONS:
        raise HttpError(400, INVALID_FIELD, f"action: expected one of {', '.join(ALL_ACTIONS)}, got {action[:40]!r}")
    confirm = body.get("confirm")
    if action == "flush" and confirm != "flush":
        raise HttpError(400, CONFIRMATION_REQUIRED, 'flush deletes all data in the instances: add "confirm": '
                                                    '"flush" to the body to confirm; nothing was sent')
    if confirm is not None and confirm != action:
        raise HttpError(400, INVALID_FIELD, f"confirm: must repeat the action {action!r}, got {confirm[:40]!r}")
    return list(dict.fromkeys(raw)), action, bool(body.get("dry_run", False))


def _claim_scope(request: Request) -> str:
    """Whose claims these are: the Idempotency-Key header where given, else the APIG request id."""
    key = request.header("idempotency-key").strip()
    if key:
        if not _IDEMPOTENCY_RE.fullmatch(key):
            raise HttpError(400, INVALID_PARAMETER, "header Idempotency-Key: 1-128 letters, digits, '.', '_', "
                                                    "':' or '-'")
        return f"key:{key}"
    return "request:" + request.request_id.replace("|", "_")


def _gateway(rt: Runtime, settings: Settings) -> DcsGateway:
    try:
        return rt.gateway(settings.project_id or "", settings.region)
    except (GatewayError, SettingsError) as exc:  # no region, no credentials
        raise HttpError(500, MISCONFIGURED, str(exc)) from None


# -- 2. which instances may be sent ------------------------------------------------------------------
def _already_handled(entries: list[Entry], keys: dict[str, str], listed: dict[str, Instance],
                     rt: Runtime) -> list[Entry]:
    """Entries this request's scope has claimed before (a retry with the same Idempotency-Key, a replayed APIG
    request) get that claim's outcome, before any eligibility check: the instance may still be FLUSHING from
    the first request, which is its success, not a reason to refuse. Returns the entries not claimed yet."""
    try:
        records = rt.ledger.get_claims(list(keys.values()))
    except LedgerError as exc:  # nothing sent yet: the service is unavailable, as on every route reading it
        raise HttpError(503, LEDGER_DOWN, f"the ledger is unavailable, nothing was sent: {exc}") from None
    fresh = []
    for entry in entries:
        record = records.get(keys[entry.instance])
        if record is None:
            fresh.append(entry)
            continue
        inst = listed.get(entry.instance)
        if inst is not None:
            entry.name, entry.status = inst.name, inst.status
        _report_claim(entry, record)
    return fresh


def _check(entries: list[Entry], listed: dict[str, Instance], action: str,
           settings: Settings) -> list[tuple[Entry, Instance]]:
    eligible = []
    key, value = settings.protect_tag
    for entry in entries:
        inst = listed.get(entry.instance)
        if inst is None:
            entry.set("failed", f"not found in project {settings.project_id}")
            continue
        entry.name, entry.status = inst.name, inst.status
        if not inst.tags_known:  # fail closed: it may be protected
            entry.set("failed", dcs_rules.unreadable(inst))
            continue
        if is_protected(inst, settings.protect_tag):
            entry.set("failed", f"protected by tag {key}={value}: never touched")
            continue
        verdict = eligibility(action, inst, allow_flush=True)  # flush was confirmed in the body
        if not verdict.ok:
            why = f"status {inst.status} is transitional: send it again later" if verdict.retry else verdict.reason
            entry.set("failed", f"not eligible: {why}")
            continue
        eligible.append((entry, inst))
    return eligible


# -- 3. claims and calls -------------------------------------------------------------------------------
NO_TIME = ("not sent: not enough time left to call DCS before the API Gateway's backend timeout (APIG_TIMEOUT) "
           "or the function's; nothing was claimed: send it again (the same Idempotency-Key is safe)")


def _send(eligible: list[tuple[Entry, Instance]], action: str, all_keys: dict[str, str], rt: Runtime,
          gateway: DcsGateway, settings: Settings) -> None:
    size = settings.batch_size
    for chunk in (eligible[i:i + size] for i in range(0, len(eligible), size)):
        if rt.remaining() < settings.call_budget:
            for entry, _ in chunk:
                entry.set("failed", NO_TIME)
            continue
        chunk = _without_backups_in_progress(chunk, action, rt, gateway)
        if chunk and rt.remaining() < settings.call_budget:  # the reads may have used the time up
            for entry, _ in chunk:
                entry.set("failed", NO_TIME)
            continue
        if not chunk:
            continue
        keys = {entry.instance: all_keys[entry.instance] for entry, _ in chunk}
        try:
            won = rt.ledger.claim_many(list(keys.values()), logs.request_id())
        except LedgerError as exc:  # a claim may or may not have been taken: send none of them
            for entry, _ in chunk:
                entry.set("failed", f"not sent: the ledger is unavailable ({exc})")
            continue
        claimed = [entry for (entry, _), ok in zip(chunk, won, strict=True) if ok]
        _report_replays([entry for (entry, _), ok in zip(chunk, won, strict=True) if not ok], keys, rt)
        if claimed:
            _call(claimed, action, keys, rt, gateway)


def _without_backups_in_progress(chunk: list[tuple[Entry, Instance]], action: str, rt: Runtime,
                                 gateway: DcsGateway) -> list[tuple[Entry, Instance]]:
    """Before a restart, soft restart or flush: an instance being backed up is not sent (DCS would cancel the
    backup or refuse); the caller sends it again later. Nothing is claimed for it."""
    if action not in dcs_rules.BACKUP_ACTIONS:
        return chunk
    checks = backup_checks(gateway, [entry.instance for entry, _ in chunk], rt)
    kept = []
    for entry, inst in chunk:
        kind, why = checks[entry.instance]
        if kind == "hold":
            entry.set("failed", f"not sent: {why}; send it again once the backup has ended")
        elif kind == "no_time":
            entry.set("failed", NO_TIME)
        else:
            kept.append((entry, inst))
    return kept


def _report_replays(lost: list[Entry], keys: dict[str, str], rt: Runtime) -> None:
    """Entries another invocation already claimed: report its outcome, never send again."""
    if not lost:
        return
    try:
        records = rt.ledger.get_claims([keys[e.instance] for e in lost])
    except LedgerError:
        records = {}
    for entry in lost:
        _report_claim(entry, records.get(keys[entry.instance]))


def _report_claim(entry: Entry, rec: Optional[ClaimRecord]) -> None:
    outcome = rec.outcome if rec and rec.outcome in ("success", "failed") else "unknown"
    holder = f"request {rec.holder} ({rec.outcome if rec.outcome != CLAIMED else 'in progress'})" if rec \
        else "another request"
    entry.set(outcome, f"already handled by {holder}: not sent again")


def _call(claimed: list[Entry], action: str, keys: dict[str, str], rt: Runtime, gateway: DcsGateway) -> None:
    ids = [entry.instance for entry in claimed]
    # ONE status call; a whole-request refusal is split as on a tick (sending.send_split), within the time left.
    outcomes = send_split(gateway, action, ids, lambda: rt.remaining() >= rt.settings.call_budget)
    unsent = [iid for iid in ids if outcomes[iid].not_executed]
    if unsent:  # certainly never reached DCS: give the claims back, so that a retry (same key) may send them
        try:
            rt.ledger.release_many([keys[iid] for iid in unsent], logs.request_id())
            again, released = "claim released: send it again (the same Idempotency-Key is safe)", True
        except LedgerError as exc:  # the claims stay (recorded below): never sent twice, not retried either
            again, released = f"claim not released ({exc}): this request will not send it again", False
        for iid in unsent:
            outcomes[iid] = Outcome(iid, "failed", f"not sent: {outcomes[iid].reason}; {again}", not_executed=True)
        if released:
            ids = [iid for iid in ids if iid not in unsent]
    try:
        if ids:
            rt.ledger.record_many({keys[iid]: (outcomes[iid].result, outcomes[iid].reason) for iid in ids})
    except LedgerError as exc:  # the claims stand (nothing is re-sent); only the outcome text is lost
        logs.error("ledger_record", error=str(exc), instances=ids)
    for entry in claimed:
        outcome = outcomes[entry.instance]
        entry.set(outcome.result, outcome.reason)
