"""The maintenance calendar: upcoming occurrences, window stops and starts, and freezes, as an iCalendar feed.

Occurrences come from `schedule_info.iter_occurrences`, the same source as `next` and GET /schedules, so the
feed and `next` always agree (skip dates and active ranges included). Each event is written in its schedule's
time zone with the zone's VTIMEZONE definition (RFC 5545 3.6.5). A local time that a fall-back repeats reads
as its FIRST pass in iCalendar (RFC 5545 3.3.5), so an occurrence on the second pass (`*/15 * * * *` at
02:15+01:00 on 2026-10-25 in Berlin) is written in UTC instead: the instant is what matters. Events carry a
DURATION rather than an end time, which could fall into such a repeated hour on its own.

UIDs are stable per (schedule, occurrence): `<schedule>-<UTC occurrence>[-stop|-start]@dcs-maintenance`, so a
calendar client updates an event on refresh instead of adding a copy. Building the events is pure; `render`
imports `icalendar` (only there: it costs about 0.1 s) and `resolve_targets` lists instances (one list call
per project).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Optional, Union
from zoneinfo import ZoneInfo

from dcs_maintenance.durations import format_duration
from dcs_maintenance.model import Schedule, Selector
from dcs_maintenance.planner import iso, select
from dcs_maintenance.schedule_info import describe_schedule, iter_occurrences

PRODID = "-//dcs-maintenance//maintenance calendar//EN"
CALENDAR_NAME = "DCS maintenance"
UID_DOMAIN = "dcs-maintenance"
DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_EVENTS_PER_SCHEDULE = 1000  # a `*/5` cron over 30 days would be 8,640 events: clients choke long before
EVENT_DURATION_RANGE = (timedelta(minutes=5), timedelta(hours=1))
REFRESH = timedelta(hours=1)  # how often clients should fetch the feed again

When = Union[date, datetime]


@dataclass(frozen=True)
class FeedEvent:
    """One calendar event. `start` is aware (schedule zone, or UTC) or a date (an all-day freeze)."""

    uid: str
    start: When
    summary: str
    description: str
    categories: tuple[str, ...]
    duration: Optional[timedelta] = None  # occurrences
    end: Optional[When] = None  # freezes (exclusive for dates)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"uid": self.uid, "summary": self.summary, "start": self.start.isoformat(),
                                "description": self.description, "categories": list(self.categories)}
        if isinstance(self.start, datetime):
            data["start_utc"] = iso(self.start)
        if self.duration is not None:
            data["duration"] = format_duration(self.duration)
        if self.end is not None:
            data["end"] = self.end.isoformat()
        return data


# -- occurrences --------------------------------------------------------------------------------------
def selector_text(selector: Selector) -> str:
    parts = []
    if selector.ids:
        parts.append("ids " + ", ".join(selector.ids))
    if selector.names:
        parts.append("names " + ", ".join(selector.names))
    if selector.tags:
        parts.append("tags " + ", ".join(f"{k}={v}" for k, v in selector.tags))
    return "; ".join(parts) or "(none)"


def schedule_description(schedule: Schedule, targets: Optional[str] = None) -> str:
    """What a reader of the calendar needs: the schedule's own words, its rule, selector, scope and targets."""
    lines = [schedule.description.strip()] if schedule.description.strip() else []
    rule_text = describe_schedule(schedule)
    lines.append(rule_text[:1].upper() + rule_text[1:] + ".")
    lines.append(f"Instances: {selector_text(schedule.instances)}")
    if not schedule.exclude.is_empty():
        lines.append(f"Exclude: {selector_text(schedule.exclude)}")
    if schedule.project_id or schedule.region:
        own = "(the function's)"
        lines.append(f"Project: {schedule.project_id or own}, region {schedule.region or own}")
    if schedule.dry_run:
        lines.append("Dry run: decisions are reported, nothing is changed.")
    if targets:
        lines.append(targets)
    lines.append(f"Schedule file: {schedule.source}")
    return "\n".join(lines)


def event_start(when: datetime, tz: ZoneInfo) -> datetime:
    """`when` on the zone's wall clock, or in UTC where that wall time is a fall-back's second pass."""
    local = when.astimezone(tz)
    if local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset():
        return when.astimezone(timezone.utc)
    return local


def occurrence_uid(schedule: str, when: datetime, edge: Optional[str] = None) -> str:
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{schedule}-{stamp}{'-' + edge if edge else ''}@{UID_DOMAIN}"


def schedule_events(schedule: Schedule, after: datetime, until: datetime,
                    targets: Optional[str] = None) -> list[FeedEvent]:
    """The schedule's occurrences in (after, until], at most MAX_EVENTS_PER_SCHEDULE; none when disabled."""
    if not schedule.enabled:
        return []
    tz = ZoneInfo(schedule.timezone)
    low, high = EVENT_DURATION_RANGE
    duration = min(max(schedule.starting_deadline, low), high)  # an action is sent within its deadline
    description = schedule_description(schedule, targets)
    events: list[FeedEvent] = []
    for when, action in iter_occurrences(schedule, after):
        if when > until or len(events) >= MAX_EVENTS_PER_SCHEDULE:
            break
        edge = action if schedule.is_window else None
        summary = f"{action}: {schedule.name}" + (" (dry run)" if schedule.dry_run else "")
        events.append(FeedEvent(occurrence_uid(schedule.name, when, edge), event_start(when, tz), summary,
                                description, (action, "maintenance"), duration=duration))
    return events


# -- freezes --------------------------------------------------------------------------------------------
# Freezes are the top-level `freezes` list of schedule files: `{name, from, until, timezone, reason, actions?}`.
# The builder takes any object with those fields (attributes or mapping keys; `from` may be spelt `from_` or
# `start`, `until` `end`), with dates (all-day, `until` inclusive) or date-times (naive: on the freeze's zone).
_ALIASES = {"from": ("from", "from_", "start", "starts"), "until": ("until", "until_", "end", "ends")}


def _field(freeze: Any, name: str) -> Any:
    for key in _ALIASES.get(name, (name,)):
        value = freeze.get(key) if isinstance(freeze, Mapping) else getattr(freeze, key, None)
        if value is not None:
            return value
    return None


def _when(value: Any, tz: ZoneInfo, what: str) -> When:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}: {value!r} is not an ISO 8601 date or date-time") from None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return value
    raise ValueError(f"{what}: expected a date or a date-time, got {type(value).__name__}")


def freeze_events(freezes: Iterable[Any], after: datetime, until: datetime) -> list[FeedEvent]:
    """One event per freeze overlapping (after, until]. A freeze that cannot be read is left out (the loader
    reports it); a freeze with dates is an all-day event through its last day."""
    events = []
    for freeze in freezes:
        name = str(_field(freeze, "name") or "freeze")
        tz = ZoneInfo(str(_field(freeze, "timezone") or "UTC"))
        try:
            start, end = _when(_field(freeze, "from"), tz, "from"), _when(_field(freeze, "until"), tz, "until")
        except ValueError:
            continue
        if isinstance(start, datetime) != isinstance(end, datetime):  # one date, one date-time: midnight
            start = start if isinstance(start, datetime) else datetime.combine(start, time(), tz)
            end = end if isinstance(end, datetime) else datetime.combine(end + timedelta(days=1), time(), tz)
        elif not isinstance(end, datetime):
            end = end + timedelta(days=1)  # DTEND of an all-day event is exclusive; `until` is the last day
        first = start if isinstance(start, datetime) else datetime.combine(start, time(), tz)
        last = end if isinstance(end, datetime) else datetime.combine(end, time(), tz)
        if last <= after or first > until or last <= first:
            continue
        actions = _field(freeze, "actions")
        lines = [str(_field(freeze, "reason") or "").strip()] if _field(freeze, "reason") else []
        lines.append("No maintenance action runs during this freeze." if not actions else
                     f"Frozen actions: {', '.join(map(str, actions))}.")
        stamp = (first.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
        events.append(FeedEvent(f"freeze-{name}-{stamp}@{UID_DOMAIN}", start, f"freeze: {name}", "\n".join(lines),
                                ("freeze", "maintenance"), end=end))
    return events


# -- the feed --------------------------------------------------------------------------------------------
def build_events(schedules: Iterable[Schedule], after: datetime, days: int = DEFAULT_DAYS,
                 targets: Optional[Mapping[str, str]] = None, freezes: Iterable[Any] = ()) -> list[FeedEvent]:
    """Every event from `after` for `days` days: schedules by name, then freezes."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be within 1..{MAX_DAYS}, got {days}")
    until = after + timedelta(days=days)
    events: list[FeedEvent] = []
    for schedule in sorted(schedules, key=lambda s: s.name):
        events += schedule_events(schedule, after, until, (targets or {}).get(schedule.name))
    return events + freeze_events(freezes, after, until)


def resolve_targets(schedules: Iterable[Schedule], default_project: Optional[str], default_region: Optional[str],
                    protect_tag: tuple[str, str], list_instances: Callable[[str, Optional[str]], list[Any]],
                    now: datetime) -> dict[str, str]:
    """schedule name -> a "Targets" paragraph: one list call per (project, region), then the schedule's selector
    (exclude and protection included) on what it returned."""
    chosen = [s for s in schedules if s.enabled]
    scope = {s.name: (s.project_id or default_project or "", s.region or default_region) for s in chosen}
    listed: dict[tuple[str, Optional[str]], Any] = {}
    for key in sorted(set(scope.values()), key=lambda k: (k[0], k[1] or "")):
        try:
            listed[key] = list_instances(*key)
        except Exception as exc:  # a listing error is shown in the events, never fatal for the feed
            listed[key] = exc
    notes = {}
    for schedule in chosen:
        project, _ = scope[schedule.name]
        got = listed[scope[schedule.name]]
        if isinstance(got, BaseException):
            notes[schedule.name] = f"Targets: could not list the instances of project {project or '(none)'}: {got}"
            continue
        selection = select(schedule, got, protect_tag)
        listed_at = f"Targets as listed at {iso(now)}"
        if selection.error or not selection.targets:
            lines = [f"{listed_at}: {selection.error or 'none'}"]
        else:
            lines = [f"{listed_at} ({len(selection.targets)}): "
                     + ", ".join(f"{i.name} ({i.instance_id})" for i in selection.targets)]
        if selection.skipped:
            lines.append("Left alone: " + "; ".join(f"{name or iid} ({iid}): {why}"
                                                    for iid, name, why in selection.skipped))
        notes[schedule.name] = "\n".join(lines)
    return notes


def render(events: list[FeedEvent], generated_at: datetime, after: datetime, days: int) -> bytes:
    """The iCalendar text (CRLF lines, folded at 75 octets) with a VTIMEZONE for every zone used."""
    import icalendar  # only here: the feed is the one place that needs it

    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", CALENDAR_NAME)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})  # RFC 7986
    cal.add("x-published-ttl", "PT1H")  # the same for clients that predate RFC 7986
    stamp = generated_at.astimezone(timezone.utc)
    for item in events:
        event = icalendar.Event()
        event.add("uid", item.uid)
        event.add("dtstamp", stamp)
        event.add("dtstart", item.start)
        if item.duration is not None:
            event.add("duration", item.duration)
        if item.end is not None:
            event.add("dtend", item.end)
        event.add("summary", item.summary)
        event.add("description", item.description)
        event.add("categories", list(item.categories))
        event.add("transp", "TRANSPARENT")  # maintenance does not make anyone busy
        cal.add_component(event)
    first = min([after.date()] + [e.start if not isinstance(e.start, datetime) else e.start.date() for e in events])
    cal.add_missing_timezones(first_date=first - timedelta(days=1),
                              last_date=(after + timedelta(days=days + 2)).date())
    return cal.to_ical()
