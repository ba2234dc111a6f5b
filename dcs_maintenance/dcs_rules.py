"""What DCS itself allows, refuses and warns about, as pure decisions (issue 11): no I/O, no SDK.

Each function returns a value and a plain-English reason; gateway.py reads what they need, sending.py and the
routes carry them out. The function must not import the emulator, so the facts are written here again, each with
its source (the emulator's README, "Behaviours and their documents", lists the same ones):
- API-status: DCS API reference, "DCS Instance Statuses" (dcs-api-0312047),
  https://support.huaweicloud.com/api-dcs/dcs-api-0312047.html (16 values; the English page lists the first 9);
- SDK: huaweicloudsdkdcs 3.1.219 models (`StatusStatistic`: paying, freezing, migrating counts;
  `ListInstancesRequest.tags`: "key=value" pairs, comma-separated, all must match; `InstanceListInfo.service_upgrade`:
  "whether the instance has an upgrade task"; `BackupRecordResponse.status`);
- API-errors: DCS API reference, "Error Codes" (dcs-api-0312044), and TF-common: terraform-provider-huaweicloud
  `huaweicloud/services/dcs/common.go`, `operateErrorCode`: the 400 codes the provider retries (DCS is busy);
- UG-start: user guide, "Starting an Instance",
  https://support.huaweicloud.com/intl/en-us/usermanual-dcs/dcs-ug-0713007.html: only old DCS Redis instances can
  be started or stopped;
- UG-restart: user guide, "Restarting a DCS Instance",
  https://support.huaweicloud.com/intl/en-us/usermanual-dcs/dcs-ug-0713008.html: restarting a single-node instance,
  or one without AOF persistence, loses its data; a restart during a backup cancels it or fails;
- FAQ-persist: "Do DCS Redis Instances Support Data Persistence?" (single-node: no persistence; `appendonly` is
  not available for single-node instances);
- API-configs: "Querying DCS Instance Configuration Parameters" (ListConfigurations),
  https://support.huaweicloud.com/intl/en-us/ally-visitor-1-api-dcs/ListConfigurations.html: `status` PAYING is
  "the order has not been paid";
- API-backups: "Listing DCS Instance Backup Records" (ListBackupRecords),
  https://support.huaweicloud.com/intl/en-us/api-dcs/ListBackupRecords.html: status waiting/backuping/succeed/
  failed/expired/deleted; `limit` 1-1000.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional

from dcs_maintenance.model import Instance, Schedule

# -- statuses (API-status, SDK StatusStatistic) ----------------------------------------------------------------
STATUS_DOC = "https://support.huaweicloud.com/api-dcs/dcs-api-0312047.html"
DOCUMENTED_STATUSES = ("CREATING", "CREATEFAILED", "RUNNING", "ERROR", "RESTARTING", "FROZEN", "EXTENDING",
                       "RESTORING", "FLUSHING", "CLOSING", "STARTING", "CLOSED", "DELETED", "UPGRADING",
                       "ROLLBACKING", "IPEXCHANGING")
COUNTED_ONLY = ("PAYING", "FREEZING", "MIGRATING")  # StatusStatistic counts them; the status table does not list them
# States DCS leaves on its own, soon: an occurrence is held for them (retried within starting_deadline, a window
# is not settled). FREEZING is "on the way to FROZEN" (DCS.4120 "the instance is Freezing.", a code the
# Terraform provider retries); it ends in FROZEN, which is not eligible, so holding costs at most the deadline.
TRANSITIONAL = frozenset({"CREATING", "RESTARTING", "EXTENDING", "RESTORING", "FLUSHING", "CLOSING", "STARTING",
                          "UPGRADING", "ROLLBACKING", "IPEXCHANGING", "FREEZING"})
# Not eligible and not held: an order not paid yet (API-configs) may stay so for days; MIGRATING has a count but no
# documented meaning. Holding either would keep a window unsettled (a list call every tick) for nothing.
NOT_HELD = {
    "PAYING": "status PAYING: the instance's order has not been paid (ListConfigurations' status values): not "
              "eligible",
    "MIGRATING": "status MIGRATING: counted by DCS's status statistics (migrating_count) but not in its status "
                 "table: not eligible",
}


def status_problem(status: str) -> Optional[str]:
    """Why a status that is neither documented nor transitional makes an instance ineligible, or None for a
    documented one. An unknown status is named, so that an operator can report it."""
    if status in NOT_HELD:
        return NOT_HELD[status]
    if status in DOCUMENTED_STATUSES or status in TRANSITIONAL:
        return None
    return (f"status {status or '(empty)'!r} is not a documented DCS instance status ({STATUS_DOC}): not eligible, "
            "not retried; please report it")


SERVICE_UPGRADE = ("DCS has an upgrade task for this instance (service_upgrade: true): left alone so as not to "
                   "collide with it")


# -- stop/start (UG-start) ---------------------------------------------------------------------------------------
STOP_START_DOC = "https://support.huaweicloud.com/intl/en-us/usermanual-dcs/dcs-ug-0713007.html"
STOP_START_LIMIT = f"only old DCS Redis instances can be stopped or started (user guide, Starting an Instance: " \
                   f"{STOP_START_DOC})"
STOP_START_NOTE = (f"DCS accepts stop/start only on some instance types: {STOP_START_LIMIT}; a refusal is reported "
                   "once, then remembered")
WINDOW_ACTIONS = ("stop", "start")
# A status call naming more instances is refused whole with DCS.4100 (API reference, Error Codes, dcs-api-0312044).
MAX_IDS_PER_CALL = 50
REFUSAL_MEMORY = timedelta(days=7)


# -- whole-request refusals (API-errors, TF-common) ------------------------------------------------------------------
# 400 codes the Terraform provider retries: the instance is busy (restarting, backing up, resizing, ...) and
# will accept the action later.
BUSY_CODES = frozenset({"DCS.4026", "DCS.4049", "DCS.4096", "DCS.4097", "DCS.4111", "DCS.4113", "DCS.4114",
                        "DCS.4115", "DCS.4116", "DCS.4117", "DCS.4118", "DCS.4120", "DCS.4121", "DCS.4231",
                        "DCS.4975"})
# Codes about the request itself, not about an instance in it (project id, body, action, parameters): splitting
# the request cannot help.
REQUEST_CODES = frozenset({"DCS.4002", "DCS.4004", "DCS.4005", "DCS.4064", "DCS.4065", "DCS.4800"})
AUTH_STATUSES = (401, 403)


@dataclass(frozen=True)
class RefusalStep:
    """What to do with a request DCS refused as a whole (nothing executed): `split` it into halves, `hold` its one
    instance (busy: like a transitional state), or `fail` it (permanent, with DCS's code and message)."""

    kind: str  # "split" | "hold" | "fail"
    reason: str


def refusal_step(action: str, count: int, status: int, code: str, message: str) -> RefusalStep:
    """A whole-request 4xx (not auth, not 429) for `count` instances: split until the refused ones stand alone."""
    said = f"HTTP {status} {code}: {message}".strip()
    if code in REQUEST_CODES:
        return RefusalStep("fail", f"DCS refused the {action} request itself ({said}): not executed")
    if count > 1:
        return RefusalStep("split", f"DCS refused the whole {action} request ({said}): not executed; split")
    if code in BUSY_CODES:
        return RefusalStep("hold", f"DCS refused {action} for now ({said}): the instance is busy; not executed, "
                                   "held like a transitional state")
    return RefusalStep("fail", refusal_reason(action, code, message, status))


def refusal_reason(action: str, code: str, message: str, status: Optional[int] = None) -> str:
    """DCS's permanent refusal of one instance, in its own words."""
    text = f"DCS refused {action} for this instance: {code} {message}".rstrip()
    return f"{text} (HTTP {status}, not executed)" if status is not None else text


def entry_refusal_reason(action: str) -> str:
    """A `failed` result entry: DCS gives no reason. For stop/start the documented limit is the likely one (the
    instance's status was checked just before the call)."""
    if action in WINDOW_ACTIONS:
        return (f"DCS refused {action} for this instance: DCS gave no reason (result: failed); {STOP_START_LIMIT}")
    return f"{action} refused by DCS (result: failed)"


# -- remembered stop/start refusals ---------------------------------------------------------------------------------
def refusal_key(schedule: str, instance_id: str, action: str) -> str:
    """The ledger meta key of a remembered refusal."""
    return f"refused:{schedule}:{instance_id}:{action}"


def schedule_fingerprint(schedule: Schedule) -> str:
    """A short hash of the Schedule value (its file, selectors, crons, ...): any change to the schedule as loaded
    gives a new fingerprint. Canonical (sets sorted), so it is the same in every process."""
    import hashlib

    text = json.dumps(_canonical(schedule), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (frozenset, set)):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def remember(reason: str, at: datetime, fingerprint: str) -> str:
    """The ledger value of a remembered refusal."""
    return json.dumps({"reason": reason, "at": _iso(at), "fingerprint": fingerprint})


@dataclass(frozen=True)
class Remembered:
    reason: str  # DCS's refusal, as first reported
    at: datetime
    until: datetime


def remembered(raw: Optional[str], now: datetime, fingerprint: str) -> Optional[Remembered]:
    """A stored refusal that still holds: younger than REFUSAL_MEMORY and for the schedule as it is now. Anything
    else (none, expired, the schedule changed, unreadable) means: try again, once."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        at = datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
        reason, stored = str(data["reason"]), str(data["fingerprint"])
    except (ValueError, KeyError, TypeError):
        return None
    until = at + REFUSAL_MEMORY
    if stored != fingerprint or not at <= now < until:
        return None
    return Remembered(reason, at, until)


def remembered_skip(action: str, memory: Remembered) -> str:
    """The reason a later transition skips the instance without a call."""
    return (f"not sent: DCS refused {action} for this instance at {_iso(memory.at)} (remembered: no call until "
            f"{_iso(memory.until)} or until the schedule changes): {memory.reason}")


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- backups in progress (UG-restart, API-backups) ------------------------------------------------------------------
BACKUP_ACTIONS = ("restart", "soft_restart", "flush")
BACKUP_IN_PROGRESS = ("waiting", "backuping")
BACKUP_PAGE = 100  # records read per instance (one call; ListBackupRecords allows 1-1000)


@dataclass(frozen=True)
class BackupRecord:
    backup_id: str
    status: str
    created_at: str = ""


@dataclass(frozen=True)
class BackupVerdict:
    hold: bool
    reason: str  # the fact ("a backup is in progress (...)"); callers say what follows from it


def backup_verdict(records: Iterable[BackupRecord]) -> BackupVerdict:
    """Hold an instance whose backup is waiting or running: a restart would cancel it or fail (UG-restart), and DCS
    refuses a flush meanwhile. The next tick (within starting_deadline) tries again."""
    running = [r for r in records if (r.status or "").lower() in BACKUP_IN_PROGRESS]
    if not running:
        return BackupVerdict(False, "no backup in progress")
    first = running[0]
    since = f" since {first.created_at}" if first.created_at else ""
    more = f" (and {len(running) - 1} more)" if len(running) > 1 else ""
    return BackupVerdict(True, f"a backup is in progress (backup {first.backup_id} {first.status}{since}{more})")


BACKUP_HOLD = "held like a transitional state, retried next tick"


# -- restarts that lose data (UG-restart, FAQ-persist) ------------------------------------------------------------
DATA_LOSS_ACTIONS = ("restart", "soft_restart")
SINGLE_NODE = "restart empties this instance: single-node"
AOF_OFF = "restart empties this instance: AOF off"
NO_PERSISTENCE = "restart empties this instance: Memcached keeps no data"


@dataclass(frozen=True)
class DataLoss:
    """A restart's data-loss mark: known from the listing (`mark`), or `read_configs` (ask ListConfigurations)."""

    mark: Optional[str]
    read_configs: bool = False


def data_loss(instance: Instance) -> DataLoss:
    """What the list entry tells: a single-node spec code (`redis.single.*`, v1's `dcs.single_node`) or a
    Memcached engine loses everything on restart; any other Redis needs its `appendonly` parameter."""
    if "single" in (instance.spec_code or "").lower():
        return DataLoss(SINGLE_NODE)
    if instance.engine.lower() == "memcached":
        return DataLoss(NO_PERSISTENCE)
    return DataLoss(None, read_configs=True)


def unread_aof_mark(why: str) -> str:
    """A restart whose persistence could not be read may empty the instance: say so rather than nothing."""
    return f"restart may empty this instance: its AOF setting could not be read ({why})"


def aof_mark(config: Mapping[str, str]) -> Optional[str]:
    """From ListConfigurations' `redis_config` (name -> value): `appendonly no` loses the data on restart. Absent
    (not reported for this instance type): no mark."""
    value = config.get("appendonly")
    if value is not None and value.strip().lower() == "no":
        return AOF_OFF
    return None


# -- tags: fail closed (SDK ListInstancesRequest.tags) ----------------------------------------------------------------
TagPairs = tuple[tuple[str, str], ...]


def tag_filters(schedules: Iterable[Schedule], protect_tag: tuple[str, str]) -> frozenset[TagPairs]:
    """The tag filters that decide these schedules' targets when list entries carry no tags: each selector's and
    exclude's tag pairs (one filter each: all pairs must match), and the protect tag."""
    found: set[TagPairs] = {(protect_tag,)}
    for schedule in schedules:
        for selector in (schedule.instances, schedule.exclude):
            if selector.tags:
                found.add(tuple(sorted(selector.tags)))
    return frozenset(found)


def filter_text(pairs: TagPairs) -> str:
    """ListInstances' `tags` query value: `k1=v1,k2=v2`."""
    return ",".join(f"{key}={value}" for key, value in pairs)


def resolve_tags(instances: list[Instance], found: Mapping[TagPairs, frozenset[str]],
                 error: Optional[str] = None) -> list[Instance]:
    """Instances whose list entry had no tags get the pairs of every filter that listed them: exactly the pairs
    the selectors and the protect tag ask about (every pair given is really on the instance, and every filter
    asked is answered). Where a filter failed (`error`), they stay unknown: fail closed."""
    out = []
    for inst in instances:
        if inst.tags_known:
            out.append(inst)
        elif error is not None:
            out.append(replace(inst, tags_note=error))
        else:
            pairs = sorted({pair for filt, ids in found.items() if inst.instance_id in ids for pair in filt})
            out.append(replace(inst, tags=tuple(pairs), tags_known=True, tags_note="read through tag filters"))
    return out


TAGS_UNREAD = "the list entry carries no tags and no tag filter was asked"


def unreadable(instance: Instance) -> str:
    """The reason an instance whose tags are unknown is not touched."""
    return f"not touched: its tags could not be read ({instance.tags_note or TAGS_UNREAD})"
