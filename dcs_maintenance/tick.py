"""What one tick carries through its steps: the request, the invocation's I/O, and the work in flight.

Plain values shared by runner.py (what is due, what to do) and sending.py (claims and status calls).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

from dcs_maintenance.ledger.base import Ledger, WindowState
from dcs_maintenance.model import Instance, Schedule
from dcs_maintenance.planner import Desired
from dcs_maintenance.report import ScheduleReport
from dcs_maintenance.settings import Settings

if TYPE_CHECKING:  # the gateway (and the SDK behind it) is imported only when a tick has work
    from dcs_maintenance.gateway import DcsGateway

GatewayFactory = Callable[[str, Optional[str]], "DcsGateway"]
# A watermark held "just before" an occurrence, so that the next tick's window (W, T] contains it again.
PENDING_HOLD = timedelta(seconds=1)


@dataclass(frozen=True)
class TickRequest:
    """What to run: the tick time and the invocation's options."""

    at: datetime
    trigger: str = "timer"
    dry_run: bool = False  # decide and report, change nothing in DCS
    only: Optional[frozenset[str]] = None  # restrict to these schedule names
    preview: bool = False  # read-only everywhere, ledger included (GET /plan)
    manual: bool = False  # run the chosen schedules now (POST /schedules/{name}/run), whatever their cron
    window_at: Optional[datetime] = None  # set by run_tick: the instant windows are judged at (guards)
    # A dry run whose bookkeeping is written as if every action it would send had succeeded: `run --until
    # --dry-run` rehearses many ticks on a scratch ledger (tools/rehearsal.py), so a window's state carries from
    # tick to tick (one stop and one start over a night, not a stop at every tick). Never claims, never calls.
    rehearse: bool = False

    @property
    def writes(self) -> bool:
        """False for previews and tick-level dry runs: they leave the ledger as it was."""
        return not (self.preview or self.dry_run)

    @property
    def books(self) -> bool:
        """Whether the tick's bookkeeping (watermarks, window states, settled markers) is written."""
        return self.writes or self.rehearse


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
    rollout: Any = None  # a schedule with a rollout block: its rollout_runner.RolloutWork (carried out there)


@dataclass
class Intent:
    """One action on one instance, for one schedule occurrence, not yet sent."""

    work: Work
    instance: Instance
    action: str
    key: str
    occurrence: datetime
    # False where the caller judged the deadline already: a rollout's later waves run under the rollout's own
    # deadline, not the occurrence's starting_deadline.
    late_check: bool = True
    data_loss: Optional[str] = None  # a restart that empties the instance says so (sending: dcs_rules marks)
    note: str = ""  # something the summary entry should add to DCS's answer (e.g. a check that could not run)
    remembered: str = ""  # a stop/start DCS refused for this instance before: the reason it is not sent again

    def report(self, result: str, reason: str, **extra: Any) -> None:
        self.work.report.instance(self.instance.instance_id, self.instance.name, self.action, result, reason,
                                  self.occurrence, **extra)


@dataclass
class Bookkeeping:
    """The ledger writes a tick makes after its calls: collected, then written in one guarded step, so that a
    ledger failure after calls were sent is reported beside their results instead of replacing them."""

    marks: dict[str, datetime] = field(default_factory=dict)
    window_states: dict[str, dict[str, WindowState]] = field(default_factory=dict)
    settled: dict[str, str] = field(default_factory=dict)


class LockedLedger:
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
