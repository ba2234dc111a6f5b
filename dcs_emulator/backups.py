"""Backup records: DCS has no BACKING_UP instance status; a backup is a record with its own status.

``GET /v2/{project_id}/instances/{instance_id}/backups`` (ListBackupRecords) answers ``total_num`` and
``backup_record_response`` items (BackupRecordResponse); a record's status is waiting, backuping, succeed, failed,
expired or deleted (API reference, "Listing DCS Instance Backup Records"). Like instance transitions, a record's
progress is a plan of (status, due time) steps settled lazily on read.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import errors
from .params import int_param

STATUSES = ("waiting", "backuping", "succeed", "failed", "expired", "deleted")
IN_PROGRESS = frozenset({"waiting", "backuping"})
QUERY_TIME = "%Y%m%d%H%M%S"  # begin_time / end_time: yyyyMMddHHmmss, UTC


def iso(wall: float) -> str:
    """``2019-05-10T08:31:16.166Z``, the API's timestamp style."""
    return datetime.fromtimestamp(wall, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Backup:
    info: dict[str, Any]  # BackupRecordResponse fields
    plan: list[tuple[str, float]] = field(default_factory=list)  # (status, due on the state's clock), in order

    @property
    def in_progress(self) -> bool:
        return self.info["status"] in IN_PROGRESS

    def settle(self, now: float, wall: float) -> None:
        while self.plan and now >= self.plan[0][1]:
            status, _ = self.plan.pop(0)
            self.info["status"] = status
            if status == "backuping":
                self.info["execution_at"] = iso(wall)
            elif status == "succeed":
                self.info.update(progress="100.00", updated_at=iso(wall))

    def cancel(self, wall: float) -> None:
        """A restart during the backup interrupted it (user guide, "Configuration Notice")."""
        self.plan.clear()
        self.info.update(status="failed", updated_at=iso(wall))

    def view(self) -> dict[str, Any]:
        return copy.deepcopy(self.info)


def new_backup(
    instance_id: str,
    now: float,
    wall: float,
    seconds: float | None,
    wait_seconds: float | None = 0.0,
    status: str | None = None,
    **fields: Any,
) -> Backup:
    """A record that is ``waiting`` for ``wait_seconds``, ``backuping`` for ``seconds``, then ``succeed``.

    ``None`` for either duration means the record stays in that state. With an explicit ``status`` other than
    waiting/backuping (a seeded finished backup) there is no plan.
    """
    if seconds is not None and seconds < 0 or wait_seconds is not None and wait_seconds < 0:
        raise ValueError("backup seconds and wait_seconds must be >= 0 (or None: stays in that state)")
    if status is None:
        status = "waiting" if wait_seconds else "backuping"
    if status not in STATUSES:
        raise ValueError(f"backup status must be one of {', '.join(STATUSES)}, not {status!r}")
    backup_id = str(fields.pop("backup_id", None) or uuid.uuid4())
    info: dict[str, Any] = {
        "backup_id": backup_id,
        "period": None,
        "backup_name": f"backup_{datetime.fromtimestamp(wall, timezone.utc).strftime(QUERY_TIME)}",
        "instance_id": instance_id,
        "size": 0,
        "backup_type": "manual",
        "created_at": iso(wall),
        "updated_at": None,
        "progress": "0.00",
        "error_code": None,
        "remark": None,
        "status": status,
        "is_support_restore": "TRUE",
        "backup_format": "rdb",
        "execution_at": iso(wall) if status == "backuping" else None,
    }
    if status in ("succeed", "failed", "expired", "deleted"):
        info.update(updated_at=iso(wall), progress="100.00" if status != "failed" else "0.00")
    info.update(copy.deepcopy(fields))
    plan: list[tuple[str, float]] = []
    if status == "waiting" and wait_seconds is not None:
        plan.append(("backuping", now + wait_seconds))
    if status in IN_PROGRESS and seconds is not None and (status == "backuping" or plan):
        start = plan[-1][1] if plan else now
        plan.append(("succeed", start + seconds))
    return Backup(info, plan)


def from_seed(instance_id: str, data: Mapping[str, Any], now: float, wall: float) -> Backup:
    """A seeded record: BackupRecordResponse fields plus optional ``seconds`` / ``wait_seconds`` (remaining time in
    backuping / waiting; absent: it stays there). Status defaults to ``succeed``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a backup is an object of BackupRecordResponse fields, not {data!r}")
    fields = dict(data)
    seconds = fields.pop("seconds", None)
    wait_seconds = fields.pop("wait_seconds", None)
    status = fields.pop("status", "succeed")
    fields.pop("instance_id", None)
    return new_backup(instance_id, now, wall, seconds, wait_seconds, status=status, **fields)


def page(backups: list[Backup], query: Mapping[str, str]) -> dict[str, Any]:
    """ListBackupRecords: newest first (unverified), filtered by created_at within [begin_time, end_time]."""
    offset = int_param(query, "offset", 0, minimum=0)
    limit = int_param(query, "limit", 10, minimum=1, maximum=1000)
    begin, end = _query_time(query, "begin_time"), _query_time(query, "end_time")
    chosen = []
    for backup in backups:
        created = _parse_iso(backup.info.get("created_at"))
        if created is not None and ((begin and created < begin) or (end and created > end)):
            continue
        chosen.append(backup)
    chosen = sorted(chosen, key=lambda b: str(b.info.get("created_at") or ""), reverse=True)
    return {"total_num": len(chosen), "backup_record_response": [b.view() for b in chosen[offset : offset + limit]]}


def _query_time(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return datetime.strptime(raw, QUERY_TIME).replace(tzinfo=timezone.utc)
    except ValueError:
        raise errors.invalid(name, f"Expected yyyyMMddHHmmss (UTC), got {raw!r}.") from None


def _parse_iso(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
