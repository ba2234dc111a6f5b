"""The HTTP routes (SPEC 5), as one table read top to bottom; each route is a plain function; and the entry
that turns an APIG event into a response through them (http_api.py holds the request, auth and errors).

Paths match on their END (see http_api), so `/any/base/path/health` reaches `health`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dcs_maintenance import __version__, logs
from dcs_maintenance.http_api import INTERNAL, HttpError, Request, Resolver, Response, dispatch, parse_event
from dcs_maintenance.routes import calendar, history, instances, plan, schedules


def health(request: Request) -> Response:
    """Liveness: no token, no settings, no secrets."""
    return Response(200, {"status": "ok", "version": __version__})


resolver = Resolver()
resolver.add("GET", "/health", health, public=True)
resolver.add("GET", "/schedules", schedules.list_schedules)
resolver.add("POST", "/schedules/validate", schedules.validate)
resolver.add("POST", "/schedules/{name}/run", schedules.run)
resolver.add("GET", "/plan", plan.plan)
resolver.add("PUT", "/instances/status", instances.change_status)
resolver.add("GET", "/history", history.list_history)
resolver.add("GET", "/calendar.ics", calendar.calendar_feed, calendar_token=True)  # also ?token=CALENDAR_TOKEN



def handle_http(event: dict, context: Any) -> dict[str, Any]:
    """An APIG event in, an APIG response out. Never raises."""
    started = time.monotonic()
    method, path, pattern, request_id = event.get("httpMethod"), event.get("path"), None, None
    try:
        request = parse_event(event, context)
        method, path, request_id = request.method, request.path, request.request_id
        match = resolver.resolve(request.method, request.path)
        pattern = match.route.pattern if match.route else None
        response = dispatch(request, match)
    except HttpError as exc:
        response = exc.response()
    except Exception as exc:  # a bug: log it, answer 500 without details
        logs.error("unexpected_error", kind="http", error=f"{type(exc).__name__}: {exc}")
        response = HttpError(500, INTERNAL, "internal error; see the function's logs").response()
    level = logging.ERROR if response.status >= 500 else logging.INFO
    logs.log("http", level, method=str(method)[:16], path=str(path)[:200], route=pattern or "-",
             status=response.status, apig_request_id=request_id,
             duration_ms=round((time.monotonic() - started) * 1000, 1))
    return response.to_apig()


__all__ = ["handle_http", "resolver"]
