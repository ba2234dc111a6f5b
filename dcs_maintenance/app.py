"""Wiring for one invocation: settings, credentials, ledger, gateways, then the tick.

Process-wide caches (the ledger connection, parsed schedule files, compiled cron rules)
live across warm invocations; credentials never do: an agency's keys are read from each
invocation's context.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Optional

from dcs_maintenance import logs
from dcs_maintenance.events import EventError, event_kind, parse_timer
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.ledger.base import Ledger, LedgerError
from dcs_maintenance.loader import load_catalog
from dcs_maintenance.runner import Runtime, TickRequest, run_tick
from dcs_maintenance.settings import Settings, SettingsError, context_value, load_credentials, load_settings

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


def runtime(settings: Settings, context: Any = None, ledger: Optional[Ledger] = None) -> Runtime:
    """The invocation's Runtime; gateways (and credentials) are only made when a tick needs the API."""
    remaining = remaining_seconds(context)

    def gateway_factory(project: str, region: Optional[str]) -> DcsGateway:
        from dcs_maintenance.gateway import DcsGateway

        credentials = load_credentials(context)
        logs.add_secrets(credentials.secrets())
        return DcsGateway(settings, credentials, project, region, remaining)

    return Runtime(settings, ledger or ledger_for(settings), gateway_factory, remaining)


def error_summary(message: str, trigger: str = "timer") -> dict[str, Any]:
    logs.error("invocation", trigger=trigger, error=message)
    return {"ok": False, "tick": None, "trigger": trigger, "request_id": logs.request_id(), "counts": {},
            "schedules": [], "problems": [], "errors": [message]}


def redacted(value: Any) -> Any:
    """`value` with every bound secret masked: an SDK or DCS error message quoted in a result may hold one."""
    if isinstance(value, str):
        return logs.redact(value)
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redacted(item) for item in value]
    return value


def handle(event: Any, context: Any) -> dict[str, Any]:
    """The FunctionGraph entry: dispatch on the event kind. Never raises; secrets never leave in the result."""
    return redacted(_dispatch(event, context))


def _dispatch(event: Any, context: Any) -> dict[str, Any]:
    level = (os.environ.get("LOG_LEVEL") or "INFO").upper()
    logs.configure(level if level in logs.LEVELS else "INFO")
    logs.bind(request_id(context), [os.environ.get("API_TOKEN", ""), os.environ.get("HUAWEICLOUD_SDK_SK", ""),
                                    os.environ.get("HUAWEICLOUD_SDK_AK", ""),
                                    os.environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN", "")])
    # The agency's keys are masked from the start, not only once a gateway is built; no credentials at all is
    # reported where a tick needs them.
    with contextlib.suppress(Exception):
        logs.add_secrets(load_credentials(context).secrets())
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
    try:
        rt = runtime(settings, context)
        summary = run_tick(catalog, request, rt)
    except (LedgerError, ValueError) as exc:  # a bad LEDGER_URL or an unreachable ledger: nothing can be claimed
        return error_summary(f"ledger unavailable, nothing sent after the failure: {exc}")
    if not summary.get("ok") and settings.notify_topic:  # one SMN message; the SDK is only imported here
        from dcs_maintenance.notify import notify_tick

        summary["notification"] = notify_tick(summary, settings, context, rt.ledger, rt.remaining)
    return summary
