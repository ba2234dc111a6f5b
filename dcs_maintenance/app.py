"""The FunctionGraph entry's dispatch: a TIMER tick or an HTTP request, never an exception.

The invocation's wiring (ledger, gateways, time budget) is in invocation.py, shared with the routes.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from dcs_maintenance import gc_policy, history, logs
from dcs_maintenance.deployment import unshared_ledger_problem
from dcs_maintenance.events import EventError, event_kind, parse_timer
from dcs_maintenance.invocation import request_id, runtime
from dcs_maintenance.ledger.base import LedgerError
from dcs_maintenance.loader import load_catalog
from dcs_maintenance.runner import TickRequest, run_tick
from dcs_maintenance.settings import SettingsError, load_credentials, load_settings, missing_for_api, read_api_token


def error_summary(message: str, trigger: str = "timer", **extra: Any) -> dict[str, Any]:
    logs.error("invocation", trigger=trigger, error=message, **extra)
    return {"ok": False, "tick": None, "trigger": trigger, "request_id": logs.request_id(), "counts": {},
            "schedules": [], "problems": [], "errors": [message], **extra}


def redacted(value: Any) -> Any:
    """`value` with every bound secret masked inside its strings: an SDK or DCS error message quoted in a result
    may hold one. An APIG response's body is JSON text already masked value by value (Response.to_apig): masking
    that text again could change its structure, so only its headers are looked at."""
    if isinstance(value, dict) and "statusCode" in value and isinstance(value.get("body"), str):
        return {**value, "headers": logs.masked(value.get("headers"))}
    return logs.masked(value)


def handle(event: Any, context: Any) -> dict[str, Any]:
    """The FunctionGraph entry: dispatch on the event kind. Never raises; secrets never leave in the result."""
    try:
        with gc_policy.invocation():  # a cold start's collector pauses (issue 15): see gc_policy
            return redacted(_dispatch(event, context))
    finally:
        logs.flush()


def _api_token_secret() -> str:
    """API_TOKEN as the routes compare it, to be masked; nothing when it is invalid (too short to be a secret:
    masking `true` would change every answer that says true)."""
    try:
        return read_api_token(os.environ) or ""
    except SettingsError:
        return ""


def _dispatch(event: Any, context: Any) -> dict[str, Any]:
    level = (os.environ.get("LOG_LEVEL") or "INFO").upper()
    logs.configure(level if level in logs.LEVELS else "INFO")
    logs.bind(request_id(context), [_api_token_secret(), os.environ.get("HUAWEICLOUD_SDK_SK", ""),
                                    os.environ.get("HUAWEICLOUD_SDK_AK", ""),
                                    os.environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN", ""),
                                    os.environ.get("CALENDAR_TOKEN", "")])
    # The agency's keys are masked from the start, not only once a gateway is built; no credentials at all is
    # reported where a tick needs them.
    with contextlib.suppress(Exception):
        logs.add_secrets(load_credentials(context).secrets())
    kind = event_kind(event)
    try:
        if kind == "http":
            from dcs_maintenance.routes import handle_http

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
    """A TIMER tick: settings, event options, schedules, then run_tick; then history, metrics, notification."""
    started = time.monotonic()
    try:
        settings = load_settings()
        timer = parse_timer(event)
    except (SettingsError, EventError) as exc:
        return error_summary(str(exc))
    unsafe = unshared_ledger_problem(settings.ledger_url, settings.max_instance_num)
    if unsafe:  # several instances could claim the same work in ledgers that do not see each other
        return error_summary(unsafe)
    if timer.label:
        logs.log("timer_label", trigger_name=timer.trigger_name, label=timer.label)
    catalog = load_catalog(settings.schedules_dir, settings.validation_context())
    missing = missing_for_api(settings, context, catalog.schedules)
    if missing:  # at every tick, due or not: a deployment that cannot act says so at once
        return error_summary(f"missing settings: {'; '.join(missing)}; nothing was run", missing=missing)
    request = TickRequest(timer.time, "timer", timer.dry_run, timer.schedules)
    try:
        rt = runtime(settings, context)
        summary = run_tick(catalog, request, rt)
    except (LedgerError, ValueError) as exc:  # a bad LEDGER_URL or an unreachable ledger: nothing can be claimed
        return error_summary(f"ledger unavailable, nothing sent after the failure: {exc}")
    duration_ms = (time.monotonic() - started) * 1000.0
    history.attach(summary, rt.ledger, settings.history_retention, remaining=rt.remaining)  # never raises
    if settings.ces_namespace:  # Cloud Eye metrics; the CES SDK is only imported here; never raises
        from dcs_maintenance.metrics import send_tick_metrics

        summary["metrics"] = send_tick_metrics(summary, duration_ms, settings, context, rt.remaining)
    if not summary.get("ok") and settings.notify_topic:  # one SMN message; the SDK is only imported here
        from dcs_maintenance.notify import notify_tick

        summary["notification"] = notify_tick(summary, settings, context, rt.ledger, rt.remaining)
    return summary
