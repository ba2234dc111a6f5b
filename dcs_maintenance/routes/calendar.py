"""GET /calendar.ics: the maintenance calendar as an iCalendar (RFC 5545) feed, for calendar subscriptions.

Calendar clients cannot send an Authorization header: besides the bearer token this route (only this one)
accepts `?token=<CALENDAR_TOKEN>`, a separate read-only secret (http_api.calendar_token_ok, constant time). The
token is registered for masking in every log line, and our own request log line never includes the query
string; API Gateway's access log does, so give CALENDAR_TOKEN no other power than reading this feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcs_maintenance import clock, dcs_rules, logs
from dcs_maintenance.http_api import INVALID_PARAMETER, HttpError, Request, Response
from dcs_maintenance.routes import common

PARAMETERS = ("days", "resolve", "token")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


@dataclass(frozen=True)
class TextResponse(Response):
    """A non-JSON answer (the .ics text), secrets masked like every JSON answer."""

    content_type: str = "text/plain; charset=utf-8"

    def to_apig(self) -> dict[str, Any]:
        return {"statusCode": self.status, "headers": {"Content-Type": self.content_type, **self.headers},
                "body": logs.redact(str(self.body)), "isBase64Encoded": False}


def calendar_feed(request: Request) -> Response:
    """`?days=30` (1-366) of upcoming events and the schedule files' freezes; `?resolve=true` lists each
    project's instances once and names the targets in every event's description."""
    from dcs_maintenance.calendar_feed import DEFAULT_DAYS, MAX_DAYS, build_events, render, resolve_targets

    unknown = sorted(set(request.query) - set(PARAMETERS))
    if unknown:
        raise HttpError(400, INVALID_PARAMETER, f"unknown query parameter(s) {', '.join(unknown)}; known: "
                                                f"{', '.join(PARAMETERS)}")
    raw_days = request.query.get("days", str(DEFAULT_DAYS)).strip()
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= MAX_DAYS:
        raise HttpError(400, INVALID_PARAMETER, f"query parameter days: a whole number within 1..{MAX_DAYS}")
    resolve = request.query.get("resolve", "").strip().lower()
    if resolve not in _TRUE + _FALSE:
        raise HttpError(400, INVALID_PARAMETER, "query parameter resolve: true or false")
    settings = common.settings()
    catalog = common.catalog(settings)
    now, days = clock.now(), int(raw_days)
    targets = None
    if resolve in _TRUE:
        rt = common.runtime(settings, request)
        tags = dcs_rules.tag_filters(catalog.schedules, settings.protect_tag)  # list entries without tags (issue 11)
        targets = resolve_targets(catalog.schedules, settings.project_id, settings.region, settings.protect_tag,
                                  lambda project, region: rt.gateway(project, region).list_instances(tags), now)
    events = build_events(catalog.schedules, now, days, targets, catalog.freezes)  # frozen occurrences marked
    text = render(events, now, now, days).decode("utf-8")
    return TextResponse(200, text, {"Content-Disposition": 'inline; filename="dcs-maintenance.ics"',
                                    "Cache-Control": "private, max-age=300"},
                        content_type="text/calendar; charset=utf-8")
