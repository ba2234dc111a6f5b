"""GET /plan?at=<ISO 8601>: what a tick at that time would do, calling nothing that changes state."""

from __future__ import annotations

import re
from datetime import timedelta

from dcs_maintenance import clock
from dcs_maintenance.events import EventError, parse_time
from dcs_maintenance.http_api import INVALID_PARAMETER, HttpError, Request, Response
from dcs_maintenance.routes import common
from dcs_maintenance.runner import TickRequest

MAX_DISTANCE = timedelta(days=3660)  # ten years either way: further is a typo, and cron search gets slow
# A "+" in a query string reads as a space: "...T19:00:00 08:00" means "+08:00".
_SPACED_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")


def plan(request: Request) -> Response:
    """A preview tick: read APIs only (instance listing), no status call, no ledger write.

    `at` is the tick time (default now); the summary says per schedule what would be done and why.
    """
    now = clock.now()
    raw = request.query.get("at")
    if raw is None:
        at = now
    elif len(raw) > 64:
        raise HttpError(400, INVALID_PARAMETER, "query parameter at: expected an ISO 8601 time, got 64+ characters")
    else:
        text = _SPACED_OFFSET.sub(r"+\1", raw.strip())
        try:
            at = parse_time(text, "at")
        except EventError as exc:
            raise HttpError(400, INVALID_PARAMETER, f"query parameter {exc}") from None
        if abs(at - now) > MAX_DISTANCE:
            raise HttpError(400, INVALID_PARAMETER, "query parameter at: must be within ten years of now")
    settings = common.settings()
    tick = TickRequest(at, "plan", True, None, preview=True)
    return Response(200, common.tick(common.catalog(settings), tick, settings, request, read_only=True))
