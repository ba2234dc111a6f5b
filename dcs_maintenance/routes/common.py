"""What several routes need: the settings, the schedules and the invocation's runtime, as HTTP errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from dcs_maintenance import history, invocation, logs
from dcs_maintenance.deployment import unshared_ledger_problem
from dcs_maintenance.freezes import manual_verdict
from dcs_maintenance.http_api import FROZEN, LEDGER_DOWN, LEDGER_NOT_SHARED, MISCONFIGURED, HttpError, Request
from dcs_maintenance.ledger.base import LedgerError
from dcs_maintenance.loader import Catalog, load_catalog
from dcs_maintenance.model import Freeze
from dcs_maintenance.runner import Runtime, TickRequest, run_tick
from dcs_maintenance.settings import Settings, SettingsError, load_settings


def settings() -> Settings:
    """The function's settings; invalid ones are the operator's problem: 500 naming each."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise HttpError(500, MISCONFIGURED, str(exc)) from None


def catalog(current: Settings) -> Catalog:
    return load_catalog(current.schedules_dir, current.validation_context())


def runtime(current: Settings, request: Request, read_only: bool = False) -> Runtime:
    """The invocation's runtime for this request: the shared ledger, gateways made on first use, and a time
    budget that ends with the API Gateway's backend timeout (APIG_TIMEOUT from the request's arrival) or the
    function's, whichever comes first: a call that could not finish before APIG gives up is not started.

    A route that acts (claims in the ledger, sends a status call) is refused with 503 while the ledger is not
    shared by every instance that may run (deployment.unshared_ledger_problem); `read_only` routes go on.
    """
    unsafe = None if read_only else unshared_ledger_problem(current.ledger_url, current.max_instance_num)
    if unsafe:
        raise HttpError(503, LEDGER_NOT_SHARED, unsafe)
    try:
        return invocation.runtime(current, request.context, deadline=request.received + current.apig_timeout)
    except LedgerError as exc:
        raise HttpError(503, LEDGER_DOWN, f"the ledger is unavailable: {exc}") from None
    except ValueError as exc:  # a malformed LEDGER_URL
        raise HttpError(500, MISCONFIGURED, str(exc)) from None


def tick(catalog_: Catalog, tick_request: TickRequest, current: Settings, request: Request,
         read_only: bool = False, history_trigger: Optional[str] = None) -> dict:
    """run_tick for a route; a ledger that cannot be read is the service being unavailable (503), not a bug.
    With `history_trigger`, what the tick did is written to the history (never raising; dry runs write none)."""
    rt = runtime(current, request, read_only)
    try:
        summary = run_tick(catalog_, tick_request, rt)
    except LedgerError as exc:
        raise HttpError(503, LEDGER_DOWN, f"the ledger is unavailable, nothing was done: {exc}") from None
    if history_trigger:
        history.attach(summary, rt.ledger, current.history_retention, history_trigger, rt.remaining)
    return summary


def check_freeze(freezes: tuple[Freeze, ...], action: str, now: datetime, override: bool, **where: Any) -> None:
    """A manual action inside a freeze for it: 409 naming the freeze, unless the request said
    `"override_freeze": true`, which is allowed and logged (a WARNING line naming the freeze and the request)."""
    verdict = manual_verdict(freezes, action, now, override)
    if not verdict.allowed:
        assert verdict.freeze is not None
        raise HttpError(409, FROZEN, verdict.reason, freeze=verdict.freeze.to_dict())
    if verdict.overridden:
        assert verdict.freeze is not None
        logs.warning("freeze_overridden", action=action, freeze=verdict.freeze.name, reason=verdict.reason, **where)
