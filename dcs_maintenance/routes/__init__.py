"""The HTTP routes (SPEC 5), as one table read top to bottom; each route is a plain function.

Paths match on their END (see http_api), so `/any/base/path/health` reaches `health`.
"""

from __future__ import annotations

from dcs_maintenance import __version__
from dcs_maintenance.http_api import Request, Resolver, Response
from dcs_maintenance.routes import instances, plan, schedules


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

__all__ = ["resolver"]
