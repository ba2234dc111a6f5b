"""Scheduling decisions: pure functions of (schedule, time, stored state, instances).

Each returns a small value with a plain-English reason; the runner only carries them out.
Nothing here does I/O or imports the SDK, so every rule is testable in microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Optional
from zoneinfo import ZoneInfo

from dcs_maintenance import dcs_rules
from dcs_maintenance.cronrules import CronRule
from dcs_maintenance.model import RUNNING, STOPPED, Instance, Schedule, Selector

# How far back a tick lists missed occurrences after a long outage (older ones are summarised).
MAX_REPORT_SPAN = timedelta(days=1)
# How many earlier occurrences a window looks through for one not on a skip date.
MAX_WINDOW_LOOKBACK = 64

STABLE_OK = {"restart": ("RUNNING", "ERROR"), "soft_restart": ("RUNNING", "ERROR"), "flush": ("RUNNING",),
             "stop": ("RUNNING",), "start": ("CLOSED",)}
# DCS's documented transitional statuses (dcs_rules: the API reference's status table, with FREEZING from the SDK's
# StatusStatistic). There is no BACKING_UP status (a backup is a record: dcs_rules.backup_verdict) nor MIGRATING.
TRANSITIONAL = dcs_rules.TRANSITIONAL
ACTION_FOR_STATE = {STOPPED: "stop", RUNNING: "start"}
STATUS_OF_STATE = {STOPPED: "CLOSED", RUNNING: "RUNNING"}


@lru_cache(maxsize=65536)
def rule(expr: str, tz: str) -> CronRule:
    """Compiled cron rules, shared by every tick of a warm function instance."""
    return CronRule(expr, tz)


@lru_cache(maxsize=8192)  # a tick formats the same few instants (its time, occurrences) for many schedules
def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_date_reason(schedule: Schedule, occurrence: datetime) -> Optional[str]:
    """Why an occurrence does not fire on its local date (skip_dates, active_from/until), or None."""
    day = occurrence.astimezone(ZoneInfo(schedule.timezone)).date()
    if schedule.active_on(day):
        return None
    if day in schedule.skip_dates:
        return f"{day} is in skip_dates"
    if schedule.active_from and day < schedule.active_from:
        return f"{day} is before active_from {schedule.active_from}"
    return f"{day} is after active_until {schedule.active_until}"


# -- one-shot schedules ----------------------------------------------------------------------
@dataclass(frozen=True)
class Due:
    """A one-shot schedule at a tick: the occurrence to run, and the others with their reasons."""

    fire: Optional[datetime]
    passed: tuple[tuple[datetime, str, str], ...] = ()  # (occurrence, result "missed"/"skipped", reason)
    reason: str = ""


def one_shot_due(schedule: Schedule, tick: datetime, watermark: Optional[datetime], tick_period: timedelta) -> Due:
    """SPEC 3: occurrences in (W, T], never earlier than T - starting_deadline; only the latest runs."""
    assert schedule.cron is not None
    low = watermark if watermark is not None else tick - tick_period
    if low >= tick:
        return Due(None, reason=f"already processed up to {iso(low)}")
    report_from = max(low, tick - MAX_REPORT_SPAN)
    occurrences = rule(schedule.cron, schedule.timezone).between(report_from, tick)
    deadline = tick - schedule.starting_deadline
    passed: list[tuple[datetime, str, str]] = []
    active: list[datetime] = []
    for occ in occurrences:
        why = local_date_reason(schedule, occ)
        if why:
            passed.append((occ, "skipped", why))
        else:
            active.append(occ)
    # The one boundary (README: "an occurrence OLDER than starting_deadline is missed"), as too_late judges it.
    fire = active[-1] if active and active[-1] >= deadline else None
    for occ in active:
        if occ is fire:
            continue
        if occ < deadline:
            passed.append((occ, "missed", f"older than starting_deadline {schedule.starting_deadline} at tick"))
        else:
            passed.append((occ, "missed", "superseded by a later occurrence in the same tick window"))
    passed.sort(key=lambda p: p[0])
    if fire is not None:
        reason = f"occurrence {iso(fire)} is due"
    elif passed:
        reason = "no occurrence to run in this tick's window"
    else:
        reason = "not due"
    return Due(fire, tuple(passed), reason)


def too_late(schedule: Schedule, occurrence: datetime, now: datetime) -> bool:
    """An occurrence older than starting_deadline by the wall clock when the call would be sent."""
    return now - occurrence > schedule.starting_deadline


# -- windows -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Desired:
    state: str  # STOPPED | RUNNING
    occurrence: datetime  # the stop/start occurrence that set it (UTC)


def _latest_active(schedule: Schedule, expr: str, tick: datetime, dated: bool) -> Optional[datetime]:
    """The latest occurrence at or before the tick; with `dated`, the latest on an active local date."""
    cron = rule(expr, schedule.timezone)
    t = tick
    for _ in range(MAX_WINDOW_LOOKBACK):
        occ = cron.prev_at_or_before(t)
        if occ is None or not dated or local_date_reason(schedule, occ) is None:
            return occ
        t = occ - timedelta(seconds=1)
    return None


def window_desired(schedule: Schedule, tick: datetime) -> Optional[Desired]:
    """SPEC 3: the state of the latest stop or start occurrence at or before the tick.

    skip_dates and active_until suppress stops only: a start always counts, so an instance is
    never left stopped because its start fell on a skipped date. Before active_from the
    window does nothing at all.
    """
    assert schedule.window is not None
    if schedule.active_from and tick.astimezone(ZoneInfo(schedule.timezone)).date() < schedule.active_from:
        return None
    stop = _latest_active(schedule, schedule.window.stop, tick, dated=True)
    start = _latest_active(schedule, schedule.window.start, tick, dated=False)
    if stop is None and start is None:
        return None
    if start is None or (stop is not None and stop > start):
        return Desired(STOPPED, stop)  # type: ignore[arg-type]
    return Desired(RUNNING, start)  # a tie goes to running: availability first


@dataclass(frozen=True)
class WindowStep:
    """What one instance needs for a window: an action, or none with a reason."""

    action: Optional[str]
    reason: str
    settled: bool  # False: look again next tick (transitional state)
    applied: bool = False  # True: record the desired state as applied without a call


def window_step(desired: Desired, instance: Instance, last_applied: Optional[str], enforce: bool) -> WindowStep:
    """Act when the desired state differs from what this schedule last applied (first sight counts)."""
    if last_applied == desired.state and not enforce:
        return WindowStep(None, f"already {desired.state} by this schedule; manual changes are left alone", True)
    action = ACTION_FOR_STATE[desired.state]
    if instance.status == STATUS_OF_STATE[desired.state]:
        return WindowStep(None, f"already {instance.status}", True, applied=True)
    if instance.status in TRANSITIONAL:
        return WindowStep(None, f"status {instance.status} is transitional: retried next tick", False)
    problem = dcs_rules.status_problem(instance.status)
    if problem:
        return WindowStep(None, problem, True)
    if instance.service_upgrade:
        return WindowStep(None, dcs_rules.SERVICE_UPGRADE, True)
    if instance.status not in STABLE_OK[action]:
        return WindowStep(None, f"{action} needs status {' or '.join(STABLE_OK[action])}, is {instance.status}", True)
    return WindowStep(action, f"window wants {desired.state} since {iso(desired.occurrence)}", True)


# -- targets and eligibility -----------------------------------------------------------------
def matches(selector: Selector, instance: Instance) -> bool:
    """Every kind given must match: id in ids; name matches any glob; every tag pair present."""
    if selector.is_empty():
        return False
    if selector.ids and instance.instance_id not in selector.ids:
        return False
    if selector.names and not any(_name_matches(instance.name, glob) for glob in selector.names):
        return False
    if selector.tags:
        tags = instance.tag_map
        if any(tags.get(k) != v for k, v in selector.tags):
            return False
    return True


def _name_matches(name: str, glob: str) -> bool:
    """fnmatchcase, without compiling a pattern for a glob that has no wildcard: then it is plain equality
    (fnmatch treats only '*', '?' and '[' specially), and compiling thousands of names costs a first tick."""
    if "*" in glob or "?" in glob or "[" in glob:
        return fnmatchcase(name, glob)
    return name == glob


def _exact_names(selector: Selector) -> Optional[frozenset[str]]:
    """A selector's names when none is a glob: then an instance named otherwise can be passed over at once (a set
    lookup instead of `matches`: 2,500 due schedules over a project's listing are a tick's largest cost)."""
    if not selector.names or any("*" in g or "?" in g or "[" in g for g in selector.names):
        return None
    return frozenset(selector.names)


def is_protected(instance: Instance, protect_tag: tuple[str, str]) -> bool:
    """Fail closed: an instance whose tags could not be read counts as protected."""
    return not instance.tags_known or instance.tag_map.get(protect_tag[0]) == protect_tag[1]


@dataclass(frozen=True)
class Selection:
    targets: tuple[Instance, ...] = ()
    skipped: tuple[tuple[str, str, str], ...] = ()  # (instance_id, name, reason)
    error: Optional[str] = None
    retry: bool = False  # the error may pass (tags could not be read): look again next tick


def _may_match(selector: Selector, instance: Instance) -> bool:
    """`matches` without the tags: whether an instance whose tags are unknown could be selected."""
    if selector.is_empty() or (selector.ids and instance.instance_id not in selector.ids):
        return False
    return not (selector.names and not any(_name_matches(instance.name, glob) for glob in selector.names))


def select(schedule: Schedule, instances: list[Instance], protect_tag: tuple[str, str]) -> Selection:
    """The schedule's instances minus exclude and protected; unknown ids reported; max_instances enforced.

    Fail closed: an instance whose tags could not be read is never treated as untagged (it might be protected or
    excluded). If it might be a target, nothing is done for the schedule (error, retried next tick); where the
    selector names ids or globs, each such instance is reported.
    """
    targets: list[Instance] = []
    skipped: list[tuple[str, str, str]] = []
    unknown: list[Instance] = []
    named = _exact_names(schedule.instances)
    for inst in instances:
        if named is not None and inst.name not in named:  # neither matches nor _may_match could say yes
            continue
        if not inst.tags_known:
            if _may_match(schedule.instances, inst):
                unknown.append(inst)
            continue
        if not matches(schedule.instances, inst):
            continue
        if matches(schedule.exclude, inst):
            skipped.append((inst.instance_id, inst.name, "excluded by the schedule's exclude selector"))
        elif is_protected(inst, protect_tag):
            skipped.append((inst.instance_id, inst.name, f"protected by tag {protect_tag[0]}={protect_tag[1]}"))
        else:
            targets.append(inst)
    if schedule.instances.ids:
        known = {inst.instance_id for inst in instances}
        skipped.extend((iid, "", "instance id not found in the project") for iid in schedule.instances.ids
                       if iid not in known)
    if unknown:
        if schedule.instances.ids or schedule.instances.names:
            skipped.extend((inst.instance_id, inst.name, dcs_rules.unreadable(inst)) for inst in unknown)
        note = unknown[0].tags_note or dcs_rules.TAGS_UNREAD
        return Selection((), tuple(skipped), f"the tags of {len(unknown)} instance(s) this schedule may select "
                                             f"could not be read ({note}): nothing done, retried next tick",
                         retry=True)
    if len(targets) > schedule.max_instances:
        return Selection((), tuple(skipped), f"selector matched {len(targets)} instances, more than max_instances "
                                             f"{schedule.max_instances}: nothing done")
    return Selection(tuple(targets), tuple(skipped))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2])


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""
    retry: bool = False  # transitional: try again on a later tick


def eligibility(action: str, instance: Instance, allow_flush: bool = False) -> Verdict:
    """SPEC 3 eligibility: restart on RUNNING/ERROR; flush on RUNNING Redis >= 4.0 with allow_flush. Only DCS's
    documented statuses count: an unknown one is named and not eligible; an instance with an upgrade task of
    DCS's own (`service_upgrade`) is left alone."""
    if instance.status in TRANSITIONAL:
        return Verdict(False, f"status {instance.status} is transitional: retried on a later tick", retry=True)
    problem = dcs_rules.status_problem(instance.status)
    if problem:
        return Verdict(False, problem)
    if instance.service_upgrade:
        return Verdict(False, dcs_rules.SERVICE_UPGRADE)
    if instance.status not in STABLE_OK[action]:
        return Verdict(False, f"{action} needs status {' or '.join(STABLE_OK[action])}, is {instance.status}")
    if action == "flush":
        if not allow_flush:
            return Verdict(False, "flush needs allow_flush: true")
        if instance.engine.lower() != "redis":
            return Verdict(False, f"flush needs engine Redis, is {instance.engine}")
        version = _version(instance.engine_version)
        if not version or version < (4, 0):
            return Verdict(False, f"flush needs Redis 4.0 or later, is {instance.engine_version or 'unknown'}")
    return Verdict(True, f"{instance.status}, eligible for {action}")
