"""What fastpath promises (README "How a tick stays cheap"; issue 7): a warm instance remembers each schedule's next
fire and each window's desired state until its next transition, so a tick evaluates only what is due, and every
answer is exactly the planner's. Cost is behaviour here: it is counted through `fastpath.calls` (cron steps) and
through the number of times the planner is asked for a window's state. Each test names the mutants it kills.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dcs_maintenance import fastpath, planner
from dcs_maintenance.model import Schedule, Selector, Window

UTC = timezone.utc
PERIOD = timedelta(minutes=5)
T = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)  # an ordinary Wednesday, no offset change near


def one_shot(cron: str, zone: str = "UTC", name: str = "s") -> Schedule:
    return Schedule(name=name, source="t.yaml", instances=Selector(names=("*",)), action="restart", cron=cron,
                    timezone=zone)


def window(name: str = "w", zone: str = "UTC", **extra) -> Schedule:
    return Schedule(name=name, source="t.yaml", instances=Selector(names=("*",)),
                    window=Window("0 20 * * *", "0 7 * * *"), timezone=zone, **extra)


def planner_quiet(schedule: Schedule, tick: datetime, mark, period: timedelta = PERIOD) -> bool:
    due = planner.one_shot_due(schedule, tick, mark, period)
    return due.fire is None and not due.passed


def steps() -> int:
    return fastpath.calls["next_after"]


# -- one-shot schedules: quiet_one_shot ------------------------------------------------------------------------
def test_a_watermark_at_or_past_the_tick_is_quiet_without_a_cron_step():
    """one_shot_due answers "already processed" without looking at the cron: so does the fast path.
    kills: fastpath.py `if low >= tick_utc` -> `if low > tick_utc` (a watermark AT the tick then costs a step)."""
    schedule = one_shot("*/5 * * * *")
    before = steps()
    for mark in (T, T + timedelta(minutes=1)):
        assert planner_quiet(schedule, T, mark)
        assert fastpath.quiet_one_shot(schedule, T, mark, PERIOD) is True
    assert steps() == before and fastpath._next_fire == {}


class CountingTick(datetime):
    """A tick instant that counts its conversions to UTC (the once-per-tick work every schedule's check shares)."""

    conversions = 0

    def astimezone(self, tz=None):  # type: ignore[override]
        CountingTick.conversions += 1
        converted = super().astimezone(tz)
        return datetime.combine(converted.date(), converted.timetz())  # a plain datetime: only the tick counts


def test_a_ticks_instants_are_derived_once_per_tick_not_once_per_schedule():
    """10,000 idle schedules must cost a dictionary look-up each: the tick's UTC instant and its window bounds are
    derived once for all of them, again only for another tick or another tick period.
    kills: fastpath.py `memo[0] is not tick or memo[1] != tick_period` -> `memo[1] is not tick or ...`,
    -> `... or memo[2] != tick_period`, -> `... or memo[1] == tick_period` (each re-derives per schedule)."""
    CountingTick.conversions = 0
    tick = CountingTick(2026, 4, 15, 10, 0, tzinfo=UTC)
    schedules = [one_shot("0 3 * * *", name=f"s{i}") for i in range(50)]
    assert all(fastpath.quiet_one_shot(s, tick, None, PERIOD) for s in schedules)
    assert all(fastpath.quiet_one_shot(s, tick, None, PERIOD) for s in schedules)
    assert CountingTick.conversions == 1
    assert fastpath.quiet_one_shot(schedules[0], tick, None, timedelta(hours=8)) is False  # 03:00 is in (02:00, 10:00]
    assert CountingTick.conversions == 2


def test_an_idle_daily_schedule_costs_one_step_per_fire():
    """A daily schedule: one cron step at the first tick, none at repeated or later ticks until its fire, none at
    the fire (it is due, as the planner says), one at the tick after it.
    kills: fastpath.py `entry[2] <= start` -> `entry[2] < start` (a repeated tick steps again),
    `entry = _next_fire.get(schedule.name)` -> `= None` / `.get(None)`, `_next_fire[schedule.name] = (...)` -> `= None`
    (nothing remembered: a step per tick), `elif start < first` -> `elif start <= first` (after the 03:00 fire, a
    watermark AT 03:00 would still read 03:00 as next: not quiet at 03:05, which the planner says is quiet)."""
    schedule = one_shot("0 3 * * *")
    before = steps()
    assert fastpath.quiet_one_shot(schedule, T, None, PERIOD) is True
    assert fastpath.quiet_one_shot(schedule, T, None, PERIOD) is True  # the same tick re-delivered
    assert steps() - before == 1
    tick, mark = T, T
    while tick < datetime(2026, 4, 16, 2, 55, tzinfo=UTC):  # 10:00 to 02:55 next day, 5-minute ticks
        tick += PERIOD
        assert fastpath.quiet_one_shot(schedule, tick, mark, PERIOD) is True
        mark = tick
    assert steps() - before == 1
    fire = datetime(2026, 4, 16, 3, 0, tzinfo=UTC)
    assert not planner_quiet(schedule, fire, mark) and fastpath.quiet_one_shot(schedule, fire, mark, PERIOD) is False
    assert steps() - before == 1
    after = fire + PERIOD
    assert planner_quiet(schedule, after, fire) and fastpath.quiet_one_shot(schedule, after, fire, PERIOD) is True
    assert steps() - before == 2


@pytest.mark.parametrize("edited", [
    one_shot("0 10 * * *"),  # the cron edited: now fires at the tick
    one_shot("0 3 * * *", zone="America/New_York"),  # the zone edited: 03:00 in New York is 07:00Z, in the window
])
def test_an_edited_cron_or_zone_is_answered_afresh(edited):
    """Entries are keyed by what the answer depends on: an edited schedule of the same name is not answered from
    the old entry. kills: fastpath.py `entry[0] == cron` -> `entry[0] != cron`, `entry[1] == schedule.timezone` ->
    `entry[1] != schedule.timezone` (the old entry would answer "quiet" for the edited schedule)."""
    tick = T  # 10:00Z with an 8-hour tick period: (02:00Z, 10:00Z]
    period = timedelta(hours=8)
    original = one_shot("0 1 * * *")  # 01:00Z, before the window
    assert planner_quiet(original, tick, None, period)
    assert fastpath.quiet_one_shot(original, tick, None, period) is True
    assert not planner_quiet(edited, tick, None, period)
    assert fastpath.quiet_one_shot(edited, tick, None, period) is False
    assert fastpath.quiet_one_shot(original, tick, None, period) is True


def test_no_occurrence_left_is_remembered_too():
    """next_after answers None when no occurrence comes within 50 years (only near datetime's year 9999): such a
    schedule is quiet, and stays quiet without another step. kills: fastpath.py `if first is None: return True`
    -> `return False`, `start - entry[2] < NONE_VALID` -> `start + entry[2] ...` / `start - entry[3] ...` (errors)."""
    schedule = one_shot("0 0 * 2 mon#5")  # a fifth Monday in February: 9988 is the last before year 10000
    tick = datetime(9990, 1, 1, tzinfo=UTC)
    before = steps()
    assert fastpath.quiet_one_shot(schedule, tick, None, PERIOD) is True
    assert steps() - before == 1
    for minutes in (0, 5, 60 * 24 * 400):
        later = tick + timedelta(minutes=minutes)
        assert fastpath.quiet_one_shot(schedule, later, later - PERIOD, PERIOD) is True
    assert steps() - before == 1


def test_the_memo_is_cleared_once_it_holds_max_entries(monkeypatch):
    """MAX_ENTRIES bounds the memo: at that size it is cleared (not evicted), so a schedule remembered before costs
    a step again. kills: fastpath.py `len(_next_fire) >= MAX_ENTRIES` -> `> MAX_ENTRIES` and
    `len(_windows) >= MAX_ENTRIES` -> `> MAX_ENTRIES` (one entry past the bound)."""
    monkeypatch.setattr(fastpath, "MAX_ENTRIES", 2)
    first, second, third = (one_shot("0 3 * * *", name=n) for n in ("a", "b", "c"))
    before = steps()
    for schedule in (first, second, first, second):
        assert fastpath.quiet_one_shot(schedule, T, None, PERIOD) is True
    assert steps() - before == 2 and len(fastpath._next_fire) == 2
    assert fastpath.quiet_one_shot(third, T, None, PERIOD) is True  # full: cleared, then c remembered
    assert set(fastpath._next_fire) == {"c"}
    assert fastpath.quiet_one_shot(first, T, None, PERIOD) is True
    assert steps() - before == 4

    windows = [window(name=n) for n in ("a", "b", "c")]
    for schedule in windows:
        assert fastpath.window_desired(schedule, T) == planner.window_desired(schedule, T)
    assert [key[0] for key in fastpath._windows] == ["c"]


# -- windows: window_desired -----------------------------------------------------------------------------------
@pytest.fixture
def asked(monkeypatch) -> list:
    """The ticks at which the planner was asked for a window's desired state."""
    seen: list = []
    real = planner.window_desired

    def counting(schedule, tick):
        seen.append(tick)
        return real(schedule, tick)

    monkeypatch.setattr(planner, "window_desired", counting)
    return seen


@pytest.mark.parametrize("extra", [{}, {"active_from": date(2026, 4, 1)}], ids=["always", "active-since"])
def test_a_windows_state_is_asked_once_per_transition(asked, extra):
    """20:00 stop, 07:00 start: 5-minute ticks from 10:00 to 19:55 ask the planner once, the 20:00 stop once more,
    and every answer is the planner's. kills: fastpath.py `entry[0] <= at` -> `entry[0] < at` (a re-delivered tick
    asks again), `entry[1] <= at` for `entry[0] <= at`, `(entry[1] is None or at < entry[1])` ->
    `(entry[1] is None and at < entry[1])`, `entry = _windows.get(key)` -> `= None` / `.get(None)`,
    `_windows[key] = (...)` -> `= None`, and `desired is None and schedule.active_from is not None` ->
    `desired is None or ...` / `desired is not None and ...` (a window active since a past date not remembered)."""
    schedule = window(**extra)
    ticks = [T, T] + [T + PERIOD * i for i in range(1, 120)]  # 10:00 (twice) .. 19:55
    for tick in ticks:
        assert fastpath.window_desired(schedule, tick) == planner.Desired(planner.RUNNING,
                                                                          datetime(2026, 4, 15, 7, 0, tzinfo=UTC))
    assert asked == [T]
    stop = datetime(2026, 4, 15, 20, 0, tzinfo=UTC)
    assert fastpath.window_desired(schedule, stop) == planner.Desired(planner.STOPPED, stop)
    assert fastpath.window_desired(schedule, stop + PERIOD) == planner.Desired(planner.STOPPED, stop)
    assert asked == [T, stop]


def test_a_window_is_not_remembered_before_its_active_from_date(asked):
    """Before active_from the answer depends on the local date, not only on the next stop or start: at 23:00 the
    day before, nothing (None); at 00:30 on active_from, running since the previous 07:00 start, as the planner
    says. kills: fastpath.py `desired is None and schedule.active_from is not None` ->
    `desired is None and schedule.active_from is None` / `desired is not None and ...` (the None of the day before
    would be remembered until the 07:00 start)."""
    schedule = window(active_from=date(2026, 4, 16))
    eve = datetime(2026, 4, 15, 23, 0, tzinfo=UTC)
    assert planner.window_desired(schedule, eve) is None and fastpath.window_desired(schedule, eve) is None
    asked.clear()
    day = datetime(2026, 4, 16, 0, 30, tzinfo=UTC)
    expected = planner.Desired(planner.RUNNING, datetime(2026, 4, 15, 7, 0, tzinfo=UTC))
    assert fastpath.window_desired(schedule, day) == expected
    assert fastpath.window_desired(schedule, day + PERIOD) == expected
    assert len(asked) == 1  # from active_from on, remembered again


def test_a_window_with_no_occurrence_yet_is_remembered(asked):
    """At datetime's first minutes no stop or start has happened: None (the window does nothing), remembered until
    the next start or stop, then asked again. kills: fastpath.py
    `desired is None and schedule.active_from is not None` -> `desired is None and schedule.active_from is None`
    (a None answer would then be asked at every tick)."""
    schedule = window()
    tick = datetime(1, 1, 1, 0, 5, tzinfo=UTC)
    for i in range(5):
        assert fastpath.window_desired(schedule, tick + PERIOD * i) is None
    assert len(asked) == 1
    start = datetime(1, 1, 2, 7, 0, tzinfo=UTC)
    expected = planner.Desired(planner.RUNNING, start)
    assert fastpath.window_desired(schedule, start) == expected == planner.window_desired(schedule, start)


def test_a_window_with_no_transition_left_is_remembered_for_good(asked):
    """At datetime's last day neither cron has a next occurrence: the state is remembered with no end.
    kills: fastpath.py `min(nexts) if nexts else None` -> `min(nexts) if nexts or True else None` (min of nothing)."""
    schedule = window()
    tick = datetime(9999, 12, 31, 21, 0, tzinfo=UTC)
    expected = planner.window_desired(schedule, tick)
    assert expected is not None and fastpath.window_desired(schedule, tick) == expected
    assert fastpath.window_desired(schedule, tick + PERIOD) == expected
    assert len(asked) == 2  # the planner's own answer above, then none for the later tick
