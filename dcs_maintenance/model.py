"""The schedule and instance model: plain frozen values, no I/O, no SDK.

Everything the planner decides on is one of these types, so decisions can be tested
without a network and compared by value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Optional

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

    @property
    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)

    def to_dict(self) -> dict:
        return {"instance_id": self.instance_id, "name": self.name, "engine": self.engine,
                "engine_version": self.engine_version, "status": self.status, "tags": dict(self.tags)}


@dataclass(frozen=True)
class Outcome:
    """What a status call did to one instance: success, failed or unknown, with a reason."""

    instance_id: str
    result: str
    reason: str = ""
    not_executed: bool = False  # evidence says DCS did not act (refused before sending; 429 and status unchanged)
    retry_after: Optional[float] = None  # seconds, where the answer said (a 429's Retry-After)


__all__ = [
    "ALL_ACTIONS", "ONE_SHOT_ACTIONS", "WINDOW_ACTIONS", "STOPPED", "RUNNING",
    "Selector", "Window", "Schedule", "Problem", "Instance", "Outcome",
]
