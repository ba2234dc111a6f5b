"""The maintenance calendar: upcoming occurrences, window stops and starts, and freezes, as an iCalendar feed.

Occurrences come from `schedule_info.iter_occurrences`, the same source as `next` and GET /schedules, so the
feed and `next` always agree (skip dates and active ranges included). Each event is written in its schedule's
time zone with the zone's VTIMEZONE definition (RFC 5545 3.6.5). A local time that a fall-back repeats reads
as its FIRST pass in iCalendar (RFC 5545 3.3.5), so an occurrence on the second pass (`*/15 * * * *` at
02:15+01:00 on 2026-10-25 in Berlin) is written in UTC instead: the instant is what matters. Occurrences carry a
DURATION rather than an end time, which could fall into such a repeated hour on its own.

Freezes (the catalog's, from the schedule files' `freezes` lists) are events too, on the freeze's own zone the
same way (their end, days away, is a DTEND: a DURATION of days is nominal, wrong across a DST change). An
occurrence a freeze will hold back stays in the feed with its summary prefixed `frozen: `, so the calendar shows
what was planned and that it will not be sent.

UIDs are stable per (schedule, occurrence): `<schedule>-<UTC occurrence>[-stop|-start]@dcs-maintenance`, so a
calendar client updates an event on refresh instead of adding a copy. Building the events is pure; `render`
imports `icalendar` (only there: it costs about 0.1 s) and `resolve_targets` lists instances (one list call
per project).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional
from zoneinfo import ZoneInfo

from dcs_maintenance.durations import format_duration
from dcs_maintenance.freezes import occurrence_verdict, window_verdict
from dcs_maintenance.model import ALL_ACTIONS, RUNNING, STOPPED, Freeze, Schedule, Selector
from dcs_maintenance.planner import eligibility, iso, select
from dcs_maintenance.schedule_info import describe_schedule, iter_occurrences

PRODID = "-//dcs-maintenance//maintenance calendar//EN"
CALENDAR_NAME = "DCS maintenance"
UID_DOMAIN = "dcs-maintenance"
DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_EVENTS_PER_SCHEDULE = 1000  # a `*/5` cron over 30 days would be 8,640 events: clients choke long before
EVENT_DURATION_RANGE = (timedelta(minutes=5), timedelta(hours=1))
REFRESH = timedelta(hours=1)  # how often clients should fetch the feed again
FROZEN_PREFIX = "frozen: "  # the summary of an occurrence a freeze will hold back: it stays in the feed, marked


@dataclass(frozen=True)
class FeedEvent:
    """One calendar event. `start` (and `end`) are aware: on the schedule's or freeze's zone, or UTC."""

    uid: str
    start: datetime
    summary: str
    description: str
    categories: tuple[str, ...]
    duration: Optional[timedelta] = None  # occurrences
    end: Optional[datetime] = None  # freezes (exclusive)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"uid": self.uid, "summary": self.summary, "start": self.start.isoformat(),
                                "start_utc": iso(self.start), "description": self.description,
                                "categories": list(self.categories)}
        if self.duration is not None:
            data["duration"] = format_duration(self.duration)
        if self.end is not None:
            data.update(end=self.end.isoformat(), end_utc=iso(self.end))
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
                    targets: Optional[str] = None, freezes: Sequence[Freeze] = ()) -> list[FeedEvent]:
    """The schedule's occurrences in (after, until], at most MAX_EVENTS_PER_SCHEDULE; none when disabled.

    An occurrence a freeze will hold back stays, its summary prefixed FROZEN_PREFIX: readers see that it was
    planned and will not happen (the freeze's own event, in the same feed, says which and why)."""
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
        if frozen_by(freezes, schedule, action, when) is not None:
            summary = FROZEN_PREFIX + summary
        events.append(FeedEvent(occurrence_uid(schedule.name, when, edge), event_start(when, tz), summary,
                                description, (action, "maintenance"), duration=duration))
    return events


# -- freezes --------------------------------------------------------------------------------------------
def freeze_description(freeze: Freeze) -> str:
    """The freeze's reason, what it holds back, its text as written and its file."""
    lines = [freeze.reason.strip()] if freeze.reason.strip() else []
    actions = [a for a in ALL_ACTIONS if freeze.covers(a)]
    held = ("No maintenance action is sent during this freeze" if len(actions) == len(ALL_ACTIONS) else
            f"Frozen actions: {', '.join(actions)}")
    lines.append(held + (" (window starts still go through)." if freeze.covers("stop") else "."))
    lines.append(f"From {freeze.local_from} until {freeze.local_until} (not included), {freeze.timezone}")
    lines.append(f"Schedule file: {freeze.source}")
    return "\n".join(lines)


def freeze_events(freezes: Iterable[Freeze], after: datetime, until: datetime) -> list[FeedEvent]:
    """One event per freeze overlapping (after, until], on the freeze's own zone like occurrences on theirs.

    The bounds are the loader's instants (freezes.local_instant: DST rules there), shown on the zone's wall
    clock; an end on a fall-back's second pass is written in UTC, as a second-pass occurrence is.
    """
    events = []
    for freeze in sorted(freezes, key=lambda f: (f.start, f.name)):
        if freeze.end <= after or freeze.start > until:
            continue
        tz = ZoneInfo(freeze.timezone)
        stamp = freeze.start.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        events.append(FeedEvent(f"freeze-{freeze.name}-{stamp}@{UID_DOMAIN}", event_start(freeze.start, tz),
                                f"freeze: {freeze.name}", freeze_description(freeze), ("freeze", "maintenance"),
                                end=event_start(freeze.end, tz)))
    return events


def frozen_by(freezes: Sequence[Freeze], schedule: Schedule, action: str, when: datetime) -> Optional[Freeze]:
    """The freeze that will hold this occurrence back, decided by the tick's own verdicts at the occurrence
    (freezes.occurrence_verdict for one-shots, window_verdict for a window's edges: its start always goes through)."""
    if schedule.is_window:
        verdict = window_verdict(freezes, STOPPED if action == "stop" else RUNNING, when, when)
    else:
        verdict = occurrence_verdict(freezes, action, when, when)
    return verdict.freeze if verdict.frozen else None


# -- the feed --------------------------------------------------------------------------------------------
def build_events(schedules: Iterable[Schedule], after: datetime, days: int = DEFAULT_DAYS,
                 targets: Optional[Mapping[str, str]] = None, freezes: Iterable[Freeze] = ()) -> list[FeedEvent]:
    """Every event from `after` for `days` days: schedules by name (occurrences a freeze holds back marked), then
    the freezes (the catalog's, as the loader made them)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be within 1..{MAX_DAYS}, got {days}")
    until, freezes = after + timedelta(days=days), tuple(freezes)
    events: list[FeedEvent] = []
    for schedule in sorted(schedules, key=lambda s: s.name):
        events += schedule_events(schedule, after, until, (targets or {}).get(schedule.name), freezes)
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
                     + ", ".join(_target_text(schedule, i) for i in selection.targets)]
        if selection.skipped:
            lines.append("Left alone: " + "; ".join(f"{name or iid} ({iid}): {why}"
                                                    for iid, name, why in selection.skipped))
        notes[schedule.name] = "\n".join(lines)
    return notes


def _target_text(schedule: Schedule, instance: Any) -> str:
    """A target, with the reason its action would skip it as listed now (a flush on Redis 3.0, say): the
    calendar must not promise what the tick will refuse. Windows are judged at each transition, not here."""
    text = f"{instance.name} ({instance.instance_id})"
    if schedule.action is None:
        return text
    verdict = eligibility(schedule.action, instance, schedule.allow_flush)
    return text if verdict.ok else f"{text} [not eligible as listed: {verdict.reason}]"


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
    first = min([after.date()] + [e.start.date() for e in events])  # a freeze may have begun before `after`
    last = max([(after + timedelta(days=days + 2)).date()] + [e.end.date() for e in events if e.end is not None])
    cal.add_missing_timezones(first_date=first - timedelta(days=1), last_date=last + timedelta(days=1))
    return cal.to_ical()
