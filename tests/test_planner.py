"""The pure decisions, as tables: due windows, selectors, eligibility, window steps."""

from __future__ import annotations

from datetime import date, timedelta, timezone

import pytest
from conftest import t

from dcs_maintenance.model import RUNNING, STOPPED, Instance, Schedule, Selector, Window
from dcs_maintenance.planner import (
    Desired,
    eligibility,
    one_shot_due,
    select,
    too_late,
    window_desired,
    window_step,
)

UTC = timezone.utc
FIVE = timedelta(minutes=5)
PROTECT = ("maintenance-protect", "true")


def one_shot(cron: str = "0 3 * * *", tz: str = "UTC", **kw) -> Schedule:
    return Schedule(name="s", source="x.yaml", instances=Selector(tags=(("env", "x"),)), action="restart", cron=cron,
                    timezone=tz, **kw)


def window(stop: str, start: str, tz: str = "UTC", **kw) -> Schedule:
    return Schedule(name="w", source="x.yaml", instances=Selector(tags=(("env", "x"),)), window=Window(stop, start),
                    timezone=tz, **kw)


# (schedule, tick, watermark, expected fire, expected passed [(occurrence, result)])
DUE_TABLE = [
    ("fires at its minute", one_shot(), "2026-12-01T03:00:00Z", None, "2026-12-01T03:00:00Z", []),
    ("late tick inside the deadline still fires", one_shot(), "2026-12-01T03:07:00Z", "2026-12-01T02:58:00Z",
     "2026-12-01T03:00:00Z", []),
    ("not due before", one_shot(), "2026-12-01T02:55:00Z", None, None, []),
    ("watermark past the occurrence: nothing", one_shot(), "2026-12-01T03:05:00Z", "2026-12-01T03:00:00Z", None, []),
    ("a dropped tick heals at the next inside the deadline", one_shot(), "2026-12-01T03:05:00Z",
     "2026-12-01T02:55:00Z", "2026-12-01T03:00:00Z", []),
    ("older than the deadline is missed", one_shot(), "2026-12-01T03:15:00Z", "2026-12-01T02:55:00Z", None,
     [("2026-12-01T03:00:00Z", "missed")]),
    ("several in the window: only the latest runs", one_shot("*/2 * * * *"), "2026-12-01T03:05:00Z",
     "2026-12-01T03:00:00Z", "2026-12-01T03:04:00Z", [("2026-12-01T03:02:00Z", "missed")]),
    ("skip_dates on the local date", one_shot("0 3 * * *", "Asia/Shanghai", skip_dates=frozenset({date(2026, 12, 2)})),
     "2026-12-01T19:00:00Z", None, None, [("2026-12-01T19:00:00Z", "skipped")]),
    ("active_until is inclusive", one_shot(active_until=date(2026, 12, 1)), "2026-12-01T03:00:00Z", None,
     "2026-12-01T03:00:00Z", []),
    ("after active_until", one_shot(active_until=date(2026, 11, 30)), "2026-12-01T03:00:00Z", None, None,
     [("2026-12-01T03:00:00Z", "skipped")]),
    ("before active_from", one_shot(active_from=date(2026, 12, 2)), "2026-12-01T03:00:00Z", None, None,
     [("2026-12-01T03:00:00Z", "skipped")]),
    ("custom starting_deadline", one_shot(starting_deadline=timedelta(hours=2)), "2026-12-01T04:30:00Z",
     "2026-12-01T02:00:00Z", "2026-12-01T03:00:00Z", []),
    # The boundary, decided once (issue 16): only an occurrence OLDER than starting_deadline is missed.
    ("exactly starting_deadline old still fires", one_shot(), "2026-12-01T03:10:00Z", "2026-12-01T02:55:00Z",
     "2026-12-01T03:00:00Z", []),
    ("a second older than starting_deadline is missed", one_shot(), "2026-12-01T03:10:01Z", "2026-12-01T02:55:00Z",
     None, [("2026-12-01T03:00:00Z", "missed")]),
]


@pytest.mark.parametrize("label, schedule, tick, mark, fire, passed", DUE_TABLE, ids=[r[0] for r in DUE_TABLE])
def test_one_shot_due(label, schedule, tick, mark, fire, passed):
    due = one_shot_due(schedule, t(tick), t(mark) if mark else None, FIVE)
    assert (due.fire and due.fire.isoformat()) == (fire and t(fire).isoformat())
    assert [(p[0], p[1]) for p in due.passed] == [(t(o), r) for o, r in passed]
    assert all(p[2] for p in due.passed)  # every passed occurrence has a reason


def test_too_late_by_the_wall_clock():
    s = one_shot()
    assert not too_late(s, t("2026-12-01T03:00:00Z"), t("2026-12-01T03:10:00Z"))
    assert too_late(s, t("2026-12-01T03:00:00Z"), t("2026-12-01T03:10:01Z"))


@pytest.mark.parametrize("tick", ["2026-12-01T03:10:00Z", "2026-12-01T03:09:59Z", "2026-12-01T03:10:01Z"])
def test_the_planner_and_the_wall_clock_judge_lateness_alike(tick):
    """One boundary everywhere: what the planner fires, the wall-clock check at the same instant sends."""
    s, occurrence = one_shot(), t("2026-12-01T03:00:00Z")
    fires = one_shot_due(s, t(tick), t("2026-12-01T02:55:00Z"), FIVE).fire == occurrence
    assert fires is not too_late(s, occurrence, t(tick))


WINDOW_TABLE = [
    ("overnight: evening is stopped", window("0 20 * * *", "0 7 * * *", "Europe/Berlin"), "2026-12-01T19:30:00Z",
     STOPPED, "2026-12-01T19:00:00Z"),
    ("overnight: after midnight still stopped", window("0 20 * * *", "0 7 * * *", "Europe/Berlin"),
     "2026-12-02T02:00:00Z", STOPPED, "2026-12-01T19:00:00Z"),
    ("overnight: morning is running", window("0 20 * * *", "0 7 * * *", "Europe/Berlin"), "2026-12-02T06:00:00Z",
     RUNNING, "2026-12-02T06:00:00Z"),
    ("weekend: Saturday is stopped", window("0 20 * * fri", "0 7 * * mon", "Europe/Berlin"), "2026-12-05T12:00:00Z",
     STOPPED, "2026-12-04T19:00:00Z"),
    ("weekend: Monday noon is running", window("0 20 * * fri", "0 7 * * mon", "Europe/Berlin"),
     "2026-12-07T12:00:00Z", RUNNING, "2026-12-07T06:00:00Z"),
    ("weekend: Wednesday is running", window("0 20 * * fri", "0 7 * * mon", "Europe/Berlin"),
     "2026-12-02T12:00:00Z", RUNNING, "2026-11-30T06:00:00Z"),
    ("a stop on a skip date does not happen", window("0 20 * * *", "0 7 * * *", "UTC",
                                                       skip_dates=frozenset({date(2026, 12, 1)})),
     "2026-12-01T21:00:00Z", RUNNING, "2026-12-01T07:00:00Z"),
]


@pytest.mark.parametrize("label, schedule, tick, state, occurrence", WINDOW_TABLE, ids=[r[0] for r in WINDOW_TABLE])
def test_window_desired(label, schedule, tick, state, occurrence):
    desired = window_desired(schedule, t(tick))
    assert desired == Desired(state, t(occurrence))


def inst(status="RUNNING", engine="Redis", version="5.0", name="a", iid="i-1", **tags) -> Instance:
    return Instance(iid, name, engine, version, status, tuple(sorted(tags.items())))


ELIGIBILITY = [
    ("restart", inst(), False, True),
    ("restart", inst("ERROR"), False, True),
    ("restart", inst("CLOSED"), False, False),
    ("soft_restart", inst("FROZEN"), False, False),
    ("flush", inst(), True, True),
    ("flush", inst(), False, False),
    ("flush", inst(version="3.0"), True, False),
    ("flush", inst(version="4.0"), True, True),
    ("flush", inst(engine="Memcached", version="1.5"), True, False),
    ("flush", inst("ERROR"), True, False),
    ("stop", inst(), False, True),
    ("stop", inst("CLOSED"), False, False),
    ("start", inst("CLOSED"), False, True),
    ("start", inst(), False, False),
]


@pytest.mark.parametrize("action, instance, allow_flush, ok", ELIGIBILITY)
def test_eligibility(action, instance, allow_flush, ok):
    verdict = eligibility(action, instance, allow_flush)
    assert verdict.ok is ok and verdict.reason


@pytest.mark.parametrize("status", ["RESTARTING", "FLUSHING", "CLOSING", "STARTING", "EXTENDING", "UPGRADING"])
def test_transitional_states_are_retried(status):
    verdict = eligibility("restart", inst(status))
    assert not verdict.ok and verdict.retry


def test_select_matches_every_kind_given_minus_exclude_and_protected():
    fleet = [inst(name="web-1", iid="i-1", env="prod"), inst(name="web-2", iid="i-2", env="prod"),
             inst(name="db-1", iid="i-3", env="prod"), inst(name="web-3", iid="i-4", env="dev"),
             inst(name="web-4", iid="i-5", env="prod", **{"maintenance-protect": "true"})]
    s = Schedule("s", "x", Selector(names=("web-*",), tags=(("env", "prod"),), ids=("i-1", "i-2", "i-5", "i-9")),
                 action="restart", cron="0 3 * * *", exclude=Selector(ids=("i-2",)))
    sel = select(s, fleet, PROTECT)
    assert [i.instance_id for i in sel.targets] == ["i-1"]
    reasons = {iid: why for iid, _, why in sel.skipped}
    assert set(reasons) == {"i-2", "i-5", "i-9"}
    assert "exclude" in reasons["i-2"] and "protected" in reasons["i-5"] and "not found" in reasons["i-9"]


def test_select_over_max_instances_is_an_error_and_selects_nothing():
    fleet = [inst(iid=f"i-{n}", env="x") for n in range(3)]
    sel = select(one_shot(max_instances=2), fleet, PROTECT)
    assert sel.targets == () and "max_instances" in (sel.error or "")


STEPS = [
    # desired, status, last applied, enforce -> action, settled, applied
    (STOPPED, "RUNNING", None, False, "stop", True, False),
    (STOPPED, "CLOSED", None, False, None, True, True),
    (STOPPED, "RUNNING", STOPPED, False, None, True, False),  # started by hand: left alone
    (STOPPED, "RUNNING", STOPPED, True, "stop", True, False),  # enforce overrides
    (STOPPED, "RUNNING", RUNNING, False, "stop", True, False),
    (STOPPED, "RESTARTING", None, False, None, False, False),
    (RUNNING, "CLOSED", STOPPED, False, "start", True, False),
    (RUNNING, "RUNNING", STOPPED, False, None, True, True),
    (RUNNING, "CLOSING", STOPPED, False, None, False, False),
]


@pytest.mark.parametrize("desired, status, last, enforce, action, settled, applied", STEPS)
def test_window_step(desired, status, last, enforce, action, settled, applied):
    step = window_step(Desired(desired, t("2026-12-01T19:00:00Z")), inst(status), last, enforce)
    assert (step.action, step.settled, step.applied) == (action, settled, applied) and step.reason


def _select_by_matches(schedule: Schedule, instances: list[Instance]) -> tuple[list[str], list[str]]:
    """The selection spelt out with `matches` alone, instance by instance: the oracle for select's name index."""
    from dcs_maintenance.planner import is_protected, matches

    picked = [i for i in instances if i.tags_known and matches(schedule.instances, i)]
    return ([i.instance_id for i in picked if not matches(schedule.exclude, i) and not is_protected(i, PROTECT)],
            [i.instance_id for i in picked if matches(schedule.exclude, i) or is_protected(i, PROTECT)])


@pytest.mark.parametrize("names", [("web-1",), ("web-1", "web-3", "nope"), ("web-*",), ("web-1", "db-?"), ("nope",)])
@pytest.mark.parametrize("ids", [(), ("i-1", "i-4", "i-missing")])
def test_select_passes_over_other_names_as_matches_would(names, ids):
    """select skips instances whose name no exact selector name equals (planner._exact_names) before any other
    check: the answer is the one `matches` gives, for exact names, globs, ids beside them, excludes, protection,
    unknown tags (an instance named otherwise can never be a target, so it never blocks the schedule) and ids not
    found."""
    instances = [inst(name=f"web-{k}", iid=f"i-{k}", env="x") for k in range(1, 6)]
    instances += [inst(name="db-1", iid="i-6"), inst(name="web-5", iid="i-7", **{"maintenance-protect": "true"})]
    instances.append(Instance("i-8", "other", "Redis", "5.0", "RUNNING", (), tags_known=False))
    schedule = Schedule(name="s", source="x.yaml", instances=Selector(ids=ids, names=names), action="restart",
                        cron="0 3 * * *", exclude=Selector(names=("web-3",)))
    got = select(schedule, instances, PROTECT)
    targets, left = _select_by_matches(schedule, instances)
    assert got.error is None and [i.instance_id for i in got.targets] == targets
    assert [iid for iid, _, why in got.skipped if "not found" not in why] == left
    assert [iid for iid, _, why in got.skipped if "not found" in why] == [i for i in ids if i == "i-missing"]
