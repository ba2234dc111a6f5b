"""Wiring for one invocation: settings, credentials, ledger, gateways, then the tick.

Process-wide caches (the ledger connection, parsed schedule files, compiled cron rules)
live across warm invocations; credentials never do: an agency's keys are read from each
invocation's context.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Optional

from dcs_maintenance import logs
from dcs_maintenance.events import EventError, event_kind, parse_timer
from dcs_maintenance.gateway import DcsGateway
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.ledger.base import Ledger
from dcs_maintenance.loader import load_catalog
from dcs_maintenance.runner import Runtime, TickRequest, run_tick
from dcs_maintenance.settings import Settings, SettingsError, load_credentials, load_settings

_ledgers: dict[str, Ledger] = {}


def request_id(context: Any) -> str:
    getter = getattr(context, "getRequestID", None)
    try:
        value = getter() if getter else None
    except Exception:
        value = None
    return str(value) if value else uuid.uuid4().hex


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


def runtime(settings: Settings, context: Any = None, ledger: Optional[Ledger] = None) -> Runtime:
    """The invocation's Runtime; gateways (and credentials) are only made when a tick needs the API."""
    remaining = remaining_seconds(context)

    def gateway_factory(project: str, region: Optional[str]) -> DcsGateway:
        credentials = load_credentials(context)
        logs.add_secrets(credentials.secrets())
        return DcsGateway(settings, credentials, project, region, remaining)

    return Runtime(settings, ledger or ledger_for(settings), gateway_factory, remaining)


def error_summary(message: str, trigger: str = "timer") -> dict[str, Any]:
    logs.error("invocation", trigger=trigger, error=message)
    return {"ok": False, "tick": None, "trigger": trigger, "request_id": logs.request_id(), "counts": {},
            "schedules": [], "problems": [], "errors": [message]}


def handle(event: Any, context: Any) -> dict[str, Any]:
    """The FunctionGraph entry: dispatch on the event kind. Never raises."""
    level = (os.environ.get("LOG_LEVEL") or "INFO").upper()
    logs.configure(level if level in logs.LEVELS else "INFO")
    logs.bind(request_id(context), [os.environ.get("API_TOKEN", ""), os.environ.get("HUAWEICLOUD_SDK_SK", ""),
                                    os.environ.get("HUAWEICLOUD_SDK_AK", ""),
                                    os.environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN", "")])
    kind = event_kind(event)
    try:
        if kind == "http":
            from dcs_maintenance.http_api import handle_http

            return handle_http(event, context)
        if kind == "timer":
            return timer_tick(event, context)
        return error_summary("unrecognised event: expected a FunctionGraph TIMER event (trigger_type TIMER) or an "
                             "API Gateway event (httpMethod, path)", "unknown")
    except Exception as exc:  # the platform would retry a raised tick: report instead
        logs.error("unexpected_error", kind=kind, error=f"{type(exc).__name__}: {exc}")
        if kind == "http":
            from dcs_maintenance.http_api import error_response

            return error_response(500, "DCSM.5000", "internal error; see the function's logs")
        return error_summary(f"internal error: {type(exc).__name__}: {exc}", kind)


def timer_tick(event: dict, context: Any) -> dict[str, Any]:
    """A TIMER tick: settings, event options, schedules, then run_tick."""
    try:
        settings = load_settings()
        timer = parse_timer(event)
    except (SettingsError, EventError) as exc:
        return error_summary(str(exc))
    if timer.label:
        logs.log("timer_label", trigger_name=timer.trigger_name, label=timer.label)
    catalog = load_catalog(settings.schedules_dir)
    request = TickRequest(timer.time, "timer", timer.dry_run, timer.schedules)
    summary = run_tick(catalog, request, runtime(settings, context))
    return summary
