"""The schedule and instance model: plain frozen values, no I/O, no SDK.

Everything the planner decides on is one of these types, so decisions can be tested
without a network and compared by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Optional, Union

ONE_SHOT_ACTIONS = ("restart", "soft_restart", "flush")
WINDOW_ACTIONS = ("stop", "start")
ALL_ACTIONS = ONE_SHOT_ACTIONS + WINDOW_ACTIONS

# Window desired states, named after the action that reaches them.
STOPPED = "stopped"
RUNNING = "running"


@dataclass(frozen=True)
class Selector:
    """Which instances: every kind given must match (ids, any name glob, all tag pairs)."""

    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    def is_empty(self) -> bool:
        return not (self.ids or self.names or self.tags)


@dataclass(frozen=True)
class Window:
    """A stop/start window: stopped from each `stop` occurrence until the next `start`."""

    stop: str
    start: str


@dataclass(frozen=True)
class Amount:
    """A count (`3`) or a percentage of a whole (`"25%"`), as a rollout's `batch` and `max_errors` are written.

    How a percentage becomes a count depends on what it limits (a batch rounds up, an error budget down):
    `rollout.batch_size` and `rollout.allowed_errors` decide.
    """

    value: int
    percent: bool = False

    @classmethod
    def parse(cls, raw: Union[int, float, str]) -> Amount:
        """`3` -> Amount(3); `"25%"` -> Amount(25, percent=True). Raises ValueError for anything else."""
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not a count or a percentage")
        if isinstance(raw, (int, float)):
            if raw != int(raw) or raw < 0:
                raise ValueError(f"{raw!r} is not a whole number >= 0")
            return cls(int(raw))
        text = raw.strip()
        if text.endswith("%") and text[:-1].isdigit():
            return cls(int(text[:-1]), percent=True)
        raise ValueError(f"{raw!r} is not a count or a percentage such as '25%'")

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


ORDERS = ("name", "listed")
DEFAULT_WAVE_TIMEOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class RolloutSpec:
    """A one-shot schedule's rollout block: its targets in waves, each gated on the previous one's health.

    `batch` None: one wave with every target (today's behaviour). `max_errors` counts failed calls, unknown
    outcomes and instances not back to RUNNING within `wave_timeout`; more than that halts the rollout.
    `timeout` None: the rollout may run until the schedule's next occurrence (`rollout.rollout_deadline`).
    """

    batch: Optional[Amount] = None
    canary: bool = False
    wave_timeout: timedelta = DEFAULT_WAVE_TIMEOUT
    max_errors: Amount = Amount(0)
    order: str = "name"  # "name" | "listed"
    timeout: Optional[timedelta] = None

    def to_dict(self) -> dict:
        return {"batch": str(self.batch) if self.batch is not None else None, "canary": self.canary,
                "wave_timeout": int(self.wave_timeout.total_seconds()), "max_errors": str(self.max_errors),
                "order": self.order,
                "timeout": int(self.timeout.total_seconds()) if self.timeout is not None else None}


@dataclass(frozen=True)
class Freeze:
    """A freeze (deny) period: no action in `actions` is sent from `start` (inclusive) to `end` (exclusive).

    `start`/`end` are UTC instants resolved from the local `local_from`/`local_until` on `timezone` by
    `freezes.local_instant` (DST rules there); the local texts are kept as written, for messages.
    """

    name: str
    source: str
    start: datetime
    end: datetime
    timezone: str
    local_from: str
    local_until: str
    reason: str
    actions: frozenset[str] = frozenset(ALL_ACTIONS)

    def covers(self, action: str) -> bool:
        return action in self.actions

    def active_at(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def to_dict(self) -> dict:
        def iso(t: datetime) -> str:
            return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        return {"name": self.name, "file": self.source, "from": self.local_from, "until": self.local_until,
                "timezone": self.timezone, "start": iso(self.start), "end": iso(self.end), "reason": self.reason,
                "actions": [a for a in ALL_ACTIONS if a in self.actions]}


@dataclass(frozen=True)
class Schedule:
    """One validated schedule. Exactly one of (action, cron) or window is set."""

    name: str
    source: str
    instances: Selector
    action: Optional[str] = None
    cron: Optional[str] = None
    window: Optional[Window] = None
    description: str = ""
    enabled: bool = True
    timezone: str = "UTC"
    enforce: bool = False
    exclude: Selector = field(default_factory=Selector)
    skip_dates: frozenset[date] = frozenset()
    active_from: Optional[date] = None
    active_until: Optional[date] = None
    starting_deadline: timedelta = timedelta(minutes=10)
    allow_flush: bool = False
    max_instances: int = 50
    project_id: Optional[str] = None
    region: Optional[str] = None
    dry_run: bool = False
    rollout: Optional[RolloutSpec] = None  # one-shot only: waves, health gates, an error budget
    within_maintenance_window: bool = False  # one-shot only: act on an instance only inside its DCS window

    @property
    def is_window(self) -> bool:
        return self.window is not None

    def active_on(self, local_day: date) -> bool:
        """skip_dates / active_from / active_until, all on the schedule's local date."""
        if local_day in self.skip_dates:
            return False
        if self.active_from is not None and local_day < self.active_from:
            return False
        return not (self.active_until is not None and local_day > self.active_until)


@dataclass(frozen=True)
class Problem:
    """A validation problem: where (file, schedule, JSON path) and what."""

    file: str
    message: str
    path: str = "$"
    schedule: Optional[str] = None

    def to_dict(self) -> dict:
        return {"file": self.file, "schedule": self.schedule, "path": self.path, "message": self.message}

    def __str__(self) -> str:
        where = self.file + (f" [{self.schedule}]" if self.schedule else "")
        return f"{where} {self.path}: {self.message}"


@dataclass(frozen=True)
class Instance:
    """The fields of a DCS instance that selection and eligibility read."""

    instance_id: str
    name: str
    engine: str = "Redis"
    engine_version: str = "5.0"
    status: str = "RUNNING"
    tags: tuple[tuple[str, str], ...] = ()
    maintain_begin: Optional[str] = None  # DCS's maintenance window, UTC time of day ("02:00:00"), as listed
    maintain_end: Optional[str] = None
    spec_code: str = ""  # e.g. redis.single.xu1.large.2: single-node instances lose their data on restart
    service_upgrade: bool = False  # DCS has an upgrade task for it (InstanceListInfo.service_upgrade)
    # False: the list entry carried no `tags` (None, not []): the instance is never treated as untagged
    # (dcs_rules.resolve_tags reads them through ListInstances' tag filter; where that fails it is not touched).
    tags_known: bool = True
    tags_note: str = ""  # where the tags came from, or why they could not be read

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)

    def to_dict(self) -> dict:
        return {"instance_id": self.instance_id, "name": self.name, "engine": self.engine,
                "engine_version": self.engine_version, "status": self.status, "tags": dict(self.tags),
                **({"maintain_begin": self.maintain_begin, "maintain_end": self.maintain_end}
                   if self.maintain_begin is not None or self.maintain_end is not None else {})}


@dataclass(frozen=True)
class Refusal:
    """DCS refused a whole status request with a 4xx other than auth (401/403) and throttling (429): the request
    executed nothing, so its instances may be sent again in smaller requests under the same claims."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """What a status call did to one instance: success, failed or unknown, with a reason."""

    instance_id: str
    result: str
    reason: str = ""
    not_executed: bool = False  # evidence says DCS did not act (refused before sending; 429 and status unchanged)
    retry_after: Optional[float] = None  # seconds, where the answer said (a 429's Retry-After)
    refusal: Optional[Refusal] = None  # the whole request was refused (result "failed"): sending.send_split splits
    refused: bool = False  # DCS refused this very instance for good (a failed entry, or a request of it alone)


__all__ = [
    "ALL_ACTIONS", "ONE_SHOT_ACTIONS", "WINDOW_ACTIONS", "STOPPED", "RUNNING",
    "Selector", "Window", "Schedule", "Problem", "Instance", "Outcome", "Refusal", "Amount", "RolloutSpec", "Freeze",
    "ORDERS",
    "DEFAULT_WAVE_TIMEOUT",
]
