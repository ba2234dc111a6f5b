"""CronRule.next_after as a step (issue 15): the next fire from the last one without building a chunk of wall
times, exactly the search's answer. Checked against `between` (the chunk-by-chunk search) from every minute and
at odd seconds around 2026's DST changes, for frequent, daily, weekly and monthly crons in zones with 1-hour,
30-minute and no changes; a frequent schedule stepping from fire to fire meets every occurrence once."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from dcs_maintenance.cronrules import CronRule

pytestmark = pytest.mark.usefixtures("fresh_cronrules_caches")

UTC = timezone.utc
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Australia/Sydney", "America/Sao_Paulo",
         "Asia/Kolkata", "UTC")
CRONS = ("*/5 * * * *", "*/10 * * * *", "*/15 * * * *", "*/30 * * * *", "* * * * *", "0 2 * * *", "30 2 * * *",
         "0,30 2 * * *", "59 1 * * *", "15 3 * * sun", "0 2 * * 6", "45 2 1 * *", "0 0 L * *", "*/20 2 * * *",
         "0 */2 * * *", "30 1-3 * * *", "0 9 * * mon-fri")
# Around the changes of 2026 (both hemispheres) and an ordinary week.
SPANS = ((datetime(2026, 3, 7, 12, tzinfo=UTC), datetime(2026, 3, 9, 12, tzinfo=UTC)),
         (datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC)),
         (datetime(2026, 4, 4, 6, tzinfo=UTC), datetime(2026, 4, 6, 6, tzinfo=UTC)),
         (datetime(2026, 10, 3, 6, tzinfo=UTC), datetime(2026, 10, 5, 6, tzinfo=UTC)),
         (datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC)),
         (datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 11, 2, 12, tzinfo=UTC)))


def _search(rule: CronRule, t: datetime):
    """The next occurrence by the chunk-by-chunk search (between over a long window, no step involved)."""
    fresh = CronRule(rule.expr, rule.tz)
    for horizon in (timedelta(hours=2), timedelta(days=1), timedelta(days=40)):
        found = fresh.between(t, t + horizon)
        if found:
            return found[0]
    return None


@pytest.mark.parametrize("zone", ZONES)
def test_next_after_is_the_search_answer(zone):
    rng = random.Random(zone)
    for expr in CRONS:
        rule = CronRule(expr, zone)
        for start, end in SPANS:
            t = start
            while t < end:
                assert rule.next_after(t) == _search(rule, t), (expr, zone, t)
                t += timedelta(minutes=rng.choice((7, 29, 61, 97)), seconds=rng.choice((0, 0, 1, 59)))


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expr", ["*/5 * * * *", "*/15 * * * *", "*/30 * * * *", "0,30 2 * * *", "0 2 * * *"])
def test_stepping_from_fire_to_fire_meets_every_occurrence_once(zone, expr):
    rule = CronRule(expr, zone)
    for start, end in SPANS:
        expected = rule.between(start, end)
        got, t = [], start
        while True:
            t = rule.next_after(t)
            if t is None or t > end:
                break
            got.append(t)
        assert got == expected, (expr, zone, start)


def test_the_memo_answers_each_question_exactly():
    """Schedules sharing a rule ask the same question in a tick; a different one (another instant, the same wall
    time on the other pass of a repeated hour) is never answered from the memo."""
    rule = CronRule("*/15 * * * *", "Europe/Berlin")
    first_pass = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 02:50+02:00
    second_pass = datetime(2026, 10, 25, 1, 50, tzinfo=UTC)  # 02:50+01:00
    assert rule.next_after(first_pass) == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert rule.next_after(first_pass) == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert rule.next_after(second_pass) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
    window = (datetime(2026, 10, 25, 0, 40, tzinfo=UTC), datetime(2026, 10, 25, 1, 10, tzinfo=UTC))
    once = rule.between(*window)
    once.append("changed by the caller")
    assert rule.between(*window) == [datetime(2026, 10, 25, 0, 45, tzinfo=UTC),
                                     datetime(2026, 10, 25, 1, 0, tzinfo=UTC)]
