"""The tick summary (SPEC 5) and its log lines, built as the tick goes.

Every decision is added here once: it becomes one entry of the returned summary and one
JSON log line, so the two can never disagree.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any, Optional

from dcs_maintenance import logs
from dcs_maintenance.model import Problem, Schedule
from dcs_maintenance.planner import iso

# frozen: an occurrence inside a freeze (freezes.py), held back on purpose: not a failure.
# halted: an instance a rollout did not reach because its error budget was exceeded (rollout.py): a failure.
RESULTS = ("success", "failed", "skipped", "unknown", "missed", "frozen", "halted")
BAD_RESULTS = ("failed", "unknown", "halted")


class ScheduleReport:
    """One schedule's decision and its per-instance results."""

    def __init__(self, schedule: Schedule, dry_run: bool) -> None:
        self.schedule = schedule
        self.data: dict[str, Any] = {
            "name": schedule.name,
            "file": schedule.source,
            "kind": "window" if schedule.is_window else "one_shot",
            "action": schedule.action,
            "timezone": schedule.timezone,
            "decision": "not_due",
            "reason": "",
            "dry_run": dry_run,
            "occurrences": [],
            "instances": [],
        }
        self.error: Optional[str] = None

    def decide(self, decision: str, reason: str, occurrence: Optional[datetime] = None, **extra: Any) -> None:
        self.data["decision"] = decision
        self.data["reason"] = reason
        if occurrence is not None:
            self.data["occurrence"] = iso(occurrence)
        self.data.update(extra)
        level = logging.ERROR if decision == "error" else logging.INFO
        logs.log("schedule", level, schedule=self.schedule.name, file=self.schedule.source, decision=decision,
                 reason=reason, occurrence=self.data.get("occurrence"), dry_run=self.data["dry_run"] or None, **extra)

    def fail(self, reason: str) -> None:
        self.error = reason
        self.decide("error", reason)

    def passed(self, occurrence: datetime, result: str, reason: str) -> None:
        """An occurrence that did not run: missed (too old, superseded) or skipped (skip date)."""
        self.data["occurrences"].append({"occurrence": iso(occurrence), "result": result, "reason": reason})
        logs.log("occurrence", schedule=self.schedule.name, occurrence=iso(occurrence), result=result, reason=reason)

    def instance(self, instance_id: str, name: str, action: Optional[str], result: str, reason: str,
                 occurrence: Optional[datetime] = None, **extra: Any) -> None:
        """One instance's result. `extra` (set keys only): `handled_by` (the request whose claim decided this
        result: the action was not sent by this invocation), `not_sent` (nothing reached DCS: retry),
        `retry_after` (seconds, where DCS said)."""
        assert result in RESULTS, result
        entry = {"instance_id": instance_id, "name": name, "action": action, "result": result, "reason": reason}
        if occurrence is not None:
            entry["occurrence"] = iso(occurrence)
        entry.update((key, value) for key, value in extra.items() if value not in (None, False))
        self.data["instances"].append(entry)
        level = logging.WARNING if result in BAD_RESULTS else logging.INFO
        logs.log("instance", level, schedule=self.schedule.name, instance_id=instance_id, name=name or None,
                 action=action, result=result, reason=reason, occurrence=entry.get("occurrence"))

    @property
    def is_quiet(self) -> bool:
        """Nothing to say: not due, no passed occurrences, no instances, no error."""
        d = self.data
        return d["decision"] in ("not_due", "settled", "disabled") and not d["occurrences"] and not d["instances"]


class TickReport:
    """The whole tick: the schedules with something to say, counts, problems, ok."""

    def __init__(self, tick: datetime, trigger: str, dry_run: bool, preview: bool = False) -> None:
        self.tick = tick
        self.trigger = trigger
        self.dry_run = dry_run
        self.preview = preview
        self.schedules: list[ScheduleReport] = []
        self.problems: list[Problem] = []
        self.errors: list[str] = []
        self.api_calls: dict[str, int] = {}
        self.idle = 0  # schedules found idle without a ScheduleReport (the runner's fast path): counted, not listed

    def add(self, report: ScheduleReport) -> ScheduleReport:
        self.schedules.append(report)
        return report

    def to_dict(self) -> dict[str, Any]:
        counts: Counter[str] = Counter({r: 0 for r in RESULTS})
        for rep in self.schedules:
            counts.update(i["result"] for i in rep.data["instances"])
            counts.update(o["result"] for o in rep.data["occurrences"])
        quiet = [r.schedule.name for r in self.schedules if r.is_quiet]
        failing = any(counts[r] for r in BAD_RESULTS) or any(r.error for r in self.schedules)
        return {
            "ok": not (failing or self.problems or self.errors),
            "tick": iso(self.tick),
            "trigger": self.trigger,
            "request_id": logs.request_id(),
            "dry_run": self.dry_run,
            "preview": self.preview,
            "counts": dict(counts),
            "schedules": [r.data for r in self.schedules if not r.is_quiet],
            "idle": len(quiet) + self.idle,
            "problems": [p.to_dict() for p in self.problems],
            "errors": list(self.errors),
            "api_calls": dict(self.api_calls),
        }
