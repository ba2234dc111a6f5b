"""What one invocation runs with: its request id, time budget, the shared ledger and the DCS gateways.

Both entries use it (app.py for TIMER ticks, routes/ for HTTP requests), so neither imports the other.
Process-wide caches (the ledger connection) live across warm invocations; credentials never do: an
agency's keys are read from each invocation's context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from dcs_maintenance import logs
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.ledger.base import Ledger
from dcs_maintenance.runner import Runtime
from dcs_maintenance.settings import Settings, context_value, load_credentials

if TYPE_CHECKING:  # imported when a tick needs the API: an idle cold start never loads the gateway (or the SDK)
    from dcs_maintenance.gateway import DcsGateway

_ledgers: dict[str, Ledger] = {}


def request_id(context: Any) -> str:
    value = context_value(context, "getRequestID")
    if value:
        return str(value)
    import uuid  # only without a platform request id (about 3 ms on a cold start)

    return uuid.uuid4().hex


def remaining_seconds(context: Any) -> Any:
    """A function returning the invocation's remaining time in seconds (inf without a context)."""
    getter = getattr(context, "getRemainingTimeInMilliSeconds", None)
    if getter is None:
        return lambda: float("inf")

    def remaining() -> float:
        try:
            return float(getter()) / 1000.0
        except Exception:
            return float("inf")

    return remaining


def ledger_for(settings: Settings) -> Ledger:
    """One ledger connection per URL per process, reused by warm invocations."""
    if settings.ledger_url not in _ledgers:
        _ledgers[settings.ledger_url] = open_ledger(settings.ledger_url)
    return _ledgers[settings.ledger_url]


def close_ledgers() -> None:
    for ledger in _ledgers.values():
        ledger.close()
    _ledgers.clear()


def capped(remaining: Callable[[], float], deadline: Optional[float]) -> Callable[[], float]:
    """`remaining`, but never past `deadline` (a time.monotonic() instant): an HTTP request must be answered
    before the API Gateway gives up on it (APIG_TIMEOUT), whatever time the function itself has left."""
    if deadline is None:
        return remaining
    return lambda: min(remaining(), deadline - time.monotonic())


def runtime(settings: Settings, context: Any = None, ledger: Optional[Ledger] = None,
            deadline: Optional[float] = None) -> Runtime:
    """The invocation's Runtime; gateways (and credentials) are only made when a tick needs the API.
    `deadline` (monotonic) caps the time budget (HTTP requests: received + APIG_TIMEOUT)."""
    remaining = capped(remaining_seconds(context), deadline)

    def gateway_factory(project: str, region: Optional[str]) -> DcsGateway:
        from dcs_maintenance.gateway import DcsGateway

        credentials = load_credentials(context)
        logs.add_secrets(credentials.secrets())
        return DcsGateway(settings, credentials, project, region, remaining)

    return Runtime(settings, ledger or ledger_for(settings), gateway_factory, remaining)
