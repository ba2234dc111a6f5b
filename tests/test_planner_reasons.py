"""The planner's answers word for word (issue 16's mutation run of planner.py): the reasons an operator reads in
the summary, the window's edges (active_from on the local date, a skipped stop, a tie) and how a name selector
compares. Each row names the mutants it kills; the survivors that cannot change behaviour are listed in
scripts/mutation_equivalents/planner.txt."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from conftest import t

from dcs_maintenance import dcs_rules
from dcs_maintenance.model import RUNNING, STOPPED, Instance, Schedule, Selector, Window
from dcs_maintenance.planner import (
    Desired,
    eligibility,
    matches,
    one_shot_due,
    select,
    window_desired,
    window_step,
)

FIVE = timedelta(minutes=5)
PROTECT = ("maintenance-protect", "true")


def one_shot(cron: str = "0 3 * * *", **kw) -> Schedule:
    return Schedule(name="s", source="x.yaml", instances=Selector(tags=(("env", "x"),)), action="restart", cron=cron,
                    timezone=kw.pop("tz", "UTC"), **kw)


def window(stop: str, start: str, tz: str = "UTC", **kw) -> Schedule:
    return Schedule(name="w", source="x.yaml", instances=Selector(tags=(("env", "x"),)), window=Window(stop, start),
                    timezone=tz, **kw)


# (case, schedule, tick, watermark, reason, passed [(occurrence, result, reason)])
REASONS = [
    # kills one_shot_due 7 (`low >= tick` -> `>`), 8 and 10 (the reason dropped)
    ("a watermark at the tick: already processed", one_shot(), "2026-12-01T03:00:00Z", "2026-12-01T03:00:00Z",
     "already processed up to 2026-12-01T03:00:00Z", []),
    # kills 64, 74, 77 (the due reason dropped)
    ("due", one_shot(), "2026-12-01T03:00:00Z", None, "occurrence 2026-12-01T03:00:00Z is due", []),
    # kills 69-71 ("not due" changed or dropped)
    ("nothing in the window", one_shot(), "2026-12-01T02:00:00Z", None, "not due", []),
    # kills 66-68 and the missed reason
    ("only a missed one", one_shot(), "2026-12-01T03:15:00Z", "2026-12-01T02:55:00Z",
     "no occurrence to run in this tick's window",
     [("2026-12-01T03:00:00Z", "missed", "older than starting_deadline 0:10:00 at tick")]),
    # kills 51 (`occ < deadline` -> `<=`: an occurrence exactly at the deadline, not the latest, is superseded, not
    # "older than") and 58 (the superseded reason changed)
    ("superseded exactly at the deadline", one_shot("*/5 * * * *"), "2026-12-01T03:10:00Z", "2026-12-01T02:55:00Z",
     "occurrence 2026-12-01T03:10:00Z is due",
     [("2026-12-01T03:00:00Z", "missed", "superseded by a later occurrence in the same tick window"),
      ("2026-12-01T03:05:00Z", "missed", "superseded by a later occurrence in the same tick window")]),
    # kills local_date_reason 5 (`day in skip_dates` -> `not in`: before active_from would read "is in skip_dates")
    ("before active_from says so", one_shot(active_from=date(2026, 12, 2)), "2026-12-01T03:00:00Z", None,
     "no occurrence to run in this tick's window",
     [("2026-12-01T03:00:00Z", "skipped", "2026-12-01 is before active_from 2026-12-02")]),
]


@pytest.mark.parametrize("case,schedule,tick,watermark,reason,passed", REASONS, ids=[r[0] for r in REASONS])
def test_one_shot_reasons_word_for_word(case, schedule, tick, watermark, reason, passed):
    due = one_shot_due(schedule, t(tick), t(watermark) if watermark else None, FIVE)
    assert due.reason == reason
    assert [(o.strftime("%Y-%m-%dT%H:%M:%SZ"), r, why) for o, r, why in due.passed] == passed


def test_window_active_from_is_judged_on_the_schedules_local_date():
    """01:00 in Shanghai on active_from's own date is active, though it is still the day before in UTC.
    kills window_desired 3 (the machine's zone instead of the schedule's), 4 (no zone) and 5 (`<` -> `<=`)."""
    schedule = window("0 20 * * *", "0 7 * * *", tz="Asia/Shanghai", active_from=date(2026, 12, 2))
    assert window_desired(schedule, t("2026-12-01T15:00:00Z")) is None  # 23:00 on Dec 1 local
    desired = window_desired(schedule, t("2026-12-01T17:00:00Z"))  # 01:00 on Dec 2 local
    # Dec 1's 20:00 stop is before active_from (stops are dated), Dec 1's 07:00 start is not: running.
    assert desired == Desired(RUNNING, t("2026-11-30T23:00:00Z"))


def test_a_skipped_stop_falls_back_to_the_previous_active_one():
    """Tuesday 2026-12-01's stop is skipped: Monday's stop (after Monday's start) still holds.
    kills _latest_active 20 (`occ - 1s` -> `occ + 1s`: the search never moves back and finds no stop)."""
    schedule = window("0 20 * * *", "0 7 * * 1", skip_dates=frozenset({date(2026, 12, 1)}))
    assert window_desired(schedule, t("2026-12-01T21:00:00Z")) == Desired(STOPPED, t("2026-11-30T20:00:00Z"))


def test_stops_suppressed_for_longer_than_the_lookback_leave_the_start_in_force():
    """active_until long past: no stop is found within the lookback, the latest start still counts (availability
    first). kills window_desired 26 (`and` -> `or`) and 28 (`start is None` -> `is not None`)."""
    schedule = window("0 20 * * *", "0 7 * * *", active_until=date(2026, 1, 1))
    assert window_desired(schedule, t("2026-12-01T21:00:00Z")) == Desired(RUNNING, t("2026-12-01T07:00:00Z"))


def test_a_stop_and_start_at_the_same_minute_is_running():
    """A tie goes to running. kills window_desired 33 (`stop > start` -> `>=`)."""
    schedule = window("0 20 * * *", "0 20 * * *")
    assert window_desired(schedule, t("2026-12-01T21:00:00Z")) == Desired(RUNNING, t("2026-12-01T20:00:00Z"))


STOP = Desired(STOPPED, t("2026-12-01T20:00:00Z"))


@pytest.mark.parametrize("instance,reason", [
    # kills window_step 28 (the status check dropped: the reason would be the generic one)
    (Instance("i-1", "a", status="WEIRD"), dcs_rules.status_problem("WEIRD")),
    # kills 37 and 41 (settled None / False)
    (Instance("i-1", "a", service_upgrade=True), dcs_rules.SERVICE_UPGRADE),
    # kills 43-51 (the reason or settled changed)
    (Instance("i-1", "a", status="ERROR"), "stop needs status RUNNING, is ERROR"),
])
def test_window_steps_that_do_nothing_say_why_and_are_settled(instance, reason):
    step = window_step(STOP, instance, None, enforce=False)
    assert (step.action, step.reason, step.settled, step.applied) == (None, reason, True, False)


@pytest.mark.parametrize("glob,name,expected", [
    ("web-1", "web-1", True),     # kills _name_matches 13 (`==` -> `!=`)
    ("web-1", "web-10", False),
    ("web-?", "web-1", True),     # kills 1 and 5 (`?` not seen as a wildcard) and 6
    ("web-?", "web-?", True),
    ("web-[12]", "web-2", True),  # kills 7 and 8 (`[` not seen as a wildcard)
    ("web-[12]", "web-3", False),
    ("WEB-1", "web-1", False),    # case matters (fnmatchcase, as DCS names are case-sensitive)
])
def test_name_selectors_compare_literally_or_as_globs(glob, name, expected):
    assert matches(Selector(names=(glob,)), Instance("i-1", name)) is expected


def test_select_reports_excluded_and_unknown_ids_word_for_word():
    """kills select 10 (`continue` -> `break`: an instance after a non-matching one would be lost), 22 (the exclude
    reason), 35 and 36 (the unknown id's name and reason)."""
    schedule = Schedule(name="s", source="x.yaml", action="restart", cron="0 3 * * *", timezone="UTC",
                        instances=Selector(ids=("i-1", "i-2", "i-9")), exclude=Selector(ids=("i-2",)))
    instances = [Instance("i-0", "other"), Instance("i-1", "a"), Instance("i-2", "b")]
    selection = select(schedule, instances, PROTECT)
    assert [i.instance_id for i in selection.targets] == ["i-1"]
    assert selection.skipped == (("i-2", "b", "excluded by the schedule's exclude selector"),
                                 ("i-9", "", "instance id not found in the project"))


@pytest.mark.parametrize("version,reason", [
    ("", "flush needs Redis 4.0 or later, is unknown"),  # kills eligibility 64-66
    ("3.0", "flush needs Redis 4.0 or later, is 3.0"),
])
def test_flush_on_an_old_or_unknown_redis_says_which(version, reason):
    assert eligibility("flush", Instance("i-1", "a", engine_version=version), allow_flush=True).reason == reason


def test_an_instance_dcs_is_upgrading_is_not_eligible():
    """kills eligibility 18 (`ok` None instead of False)."""
    verdict = eligibility("restart", Instance("i-1", "a", service_upgrade=True))
    assert verdict.ok is False and verdict.reason == dcs_rules.SERVICE_UPGRADE


def test_flush_is_refused_unless_allow_flush_is_passed():
    """The safe default: a caller that forgets the opt-in gets a refusal. kills eligibility 1 (default True)."""
    assert eligibility("flush", Instance("i-1", "a")).reason == "flush needs allow_flush: true"


def test_every_instance_whose_tags_could_not_be_read_is_reported():
    """kills select 10 (`continue` -> `break` after the first such instance: the second would go unreported)."""
    schedule = Schedule(name="s", source="x.yaml", action="restart", cron="0 3 * * *", timezone="UTC",
                        instances=Selector(names=("a*",)))
    instances = [Instance("i-1", "a1", tags_known=False), Instance("i-2", "a2", tags_known=False)]
    selection = select(schedule, instances, PROTECT)
    assert selection.retry and [s[0] for s in selection.skipped] == ["i-1", "i-2"]
