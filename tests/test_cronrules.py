"""cronrules: cron on a wall clock with cron's (Vixie/Debian) DST rules (SPEC section 3, "Time").

Each table row reads as a line of the specification: the rule it shows, the expression, the zone, the
window (start, end] and the instants expected in it, written on the zone's wall clock with their offset.

2026 transitions used below (checked against zoneinfo in test_transition_dates):
  Europe/Berlin        2026-03-29 02:00 -> 03:00 (+01 -> +02)   2026-10-25 03:00 -> 02:00 (+02 -> +01)
  America/New_York     2026-03-08 02:00 -> 03:00 (-05 -> -04)   2026-11-01 02:00 -> 01:00 (-04 -> -05)
  Australia/Lord_Howe  2026-10-04 02:00 -> 02:30 (+10:30 -> +11) 2026-04-05 02:00 -> 01:30 (+11 -> +10:30)
  Asia/Shanghai and UTC: no transitions.
"""

from __future__ import annotations

import random
import timeit
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from dcs_maintenance import cronrules
from dcs_maintenance.cronrules import CronError, CronRule, check_cron, is_fixed_time, to_utc

pytestmark = pytest.mark.usefixtures("fresh_cronrules_caches")

UTC = timezone.utc
BERLIN, NEW_YORK, LORD_HOWE, SHANGHAI = "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Shanghai"


def at(text: str) -> datetime:
    """An instant written as local wall time with its offset, e.g. '2026-03-29T03:00+02:00'."""
    t = datetime.fromisoformat(text)
    assert t.tzinfo is not None, text
    return t.astimezone(UTC)


def ats(*texts: str) -> list[datetime]:
    return [at(t) for t in texts]


def test_transition_dates():
    """The transition instants the tables rely on, as zoneinfo has them."""
    def offset(zone: str, text: str) -> timedelta:
        return at(text).astimezone(ZoneInfo(zone)).utcoffset()

    assert offset(BERLIN, "2026-03-29T00:59:59+00:00") == timedelta(hours=1)
    assert offset(BERLIN, "2026-03-29T01:00+00:00") == timedelta(hours=2)
    assert offset(BERLIN, "2026-10-25T00:59:59+00:00") == timedelta(hours=2)
    assert offset(BERLIN, "2026-10-25T01:00+00:00") == timedelta(hours=1)
    assert offset(NEW_YORK, "2026-03-08T06:59:59+00:00") == timedelta(hours=-5)
    assert offset(NEW_YORK, "2026-03-08T07:00+00:00") == timedelta(hours=-4)
    assert offset(NEW_YORK, "2026-11-01T05:59:59+00:00") == timedelta(hours=-4)
    assert offset(NEW_YORK, "2026-11-01T06:00+00:00") == timedelta(hours=-5)
    assert offset(LORD_HOWE, "2026-04-04T14:59:59+00:00") == timedelta(hours=11)
    assert offset(LORD_HOWE, "2026-04-04T15:00+00:00") == timedelta(hours=10, minutes=30)
    assert offset(LORD_HOWE, "2026-10-03T15:29:59+00:00") == timedelta(hours=10, minutes=30)
    assert offset(LORD_HOWE, "2026-10-03T15:30+00:00") == timedelta(hours=11)


# ---------------------------------------------------------------------------------------------------------------
# between(start, end): occurrences in (start, end]

BETWEEN = [
    # --- SPEC examples
    pytest.param("0 2 * * *", BERLIN, "2026-03-28T12:00+01:00", "2026-03-30T12:00+02:00",
                 ["2026-03-29T03:00+02:00", "2026-03-30T02:00+02:00"],
                 id="spec: fixed 02:00 in Berlin's skipped hour fires at 03:00+02:00, right after the jump"),
    pytest.param("0 2 * * *", BERLIN, "2026-10-24T12:00+02:00", "2026-10-26T12:00+01:00",
                 ["2026-10-25T02:00+02:00", "2026-10-26T02:00+01:00"],
                 id="spec: fixed 02:00 in Berlin's repeated hour fires only on the first pass"),
    pytest.param("*/15 * * * *", BERLIN, "2026-10-25T01:45+02:00", "2026-10-25T02:45+01:00",
                 ["2026-10-25T02:00+02:00", "2026-10-25T02:15+02:00", "2026-10-25T02:30+02:00",
                  "2026-10-25T02:45+02:00", "2026-10-25T02:00+01:00", "2026-10-25T02:15+01:00",
                  "2026-10-25T02:30+01:00", "2026-10-25T02:45+01:00"],
                 id="spec: wildcard */15 fires 8 times from 02:00+02:00 to 02:45+01:00, both passes"),
    # --- Europe/Berlin, spring forward 2026-03-29 02:00 -> 03:00
    pytest.param("30 2 * * *", BERLIN, "2026-03-28T12:00+01:00", "2026-03-30T12:00+02:00",
                 ["2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00"],
                 id="berlin spring: fixed 02:30 (skipped) fires at the jump, 03:00+02:00, not at 03:30"),
    pytest.param("0,15,30,45 2 * * *", BERLIN, "2026-03-29T00:00+01:00", "2026-03-29T12:00+02:00",
                 ["2026-03-29T03:00+02:00"],
                 id="berlin spring: four skipped fixed times collapse into one firing at the jump"),
    pytest.param("0 2,3 * * *", BERLIN, "2026-03-29T00:00+01:00", "2026-03-29T12:00+02:00",
                 ["2026-03-29T03:00+02:00"],
                 id="berlin spring: skipped 02:00 and regular 03:00 land on the same instant and fire once"),
    pytest.param("59 1 * * *", BERLIN, "2026-03-29T00:00+01:00", "2026-03-29T12:00+02:00",
                 ["2026-03-29T01:59+01:00"],
                 id="berlin spring: fixed 01:59, the last minute before the gap, is untouched"),
    pytest.param("30 3 * * *", BERLIN, "2026-03-29T00:00+01:00", "2026-03-29T12:00+02:00",
                 ["2026-03-29T03:30+02:00"],
                 id="berlin spring: fixed 03:30, after the gap, is untouched"),
    pytest.param("30 */2 * * *", BERLIN, "2026-03-29T00:00+01:00", "2026-03-29T06:00+02:00",
                 ["2026-03-29T00:30+01:00", "2026-03-29T04:30+02:00"],
                 id="berlin spring: wildcard 30 */2 skips 02:30 and invents no 03:00"),
    pytest.param("0 * * * *", BERLIN, "2026-03-29T00:30+01:00", "2026-03-29T04:30+02:00",
                 ["2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00", "2026-03-29T04:00+02:00"],
                 id="berlin spring: wildcard hourly has no 02:00"),
    pytest.param("*/30 2 * * *", BERLIN, "2026-03-29T00:00+01:00", "2026-03-30T00:00+02:00", [],
                 id="berlin spring: minute wildcard */30 2 follows real time: nothing on the day 02:xx is skipped"),
    # --- Europe/Berlin, fall back 2026-10-25 03:00 -> 02:00
    pytest.param("30 2 * * *", BERLIN, "2026-10-25T00:00+02:00", "2026-10-25T12:00+01:00",
                 ["2026-10-25T02:30+02:00"],
                 id="berlin fall: fixed 02:30 (repeated) fires once, on the first pass"),
    pytest.param("0 3 * * *", BERLIN, "2026-10-25T00:00+02:00", "2026-10-25T12:00+01:00",
                 ["2026-10-25T03:00+01:00"],
                 id="berlin fall: fixed 03:00 happens once, after the repeated hour"),
    pytest.param("0 * * * *", BERLIN, "2026-10-25T00:30+02:00", "2026-10-25T03:30+01:00",
                 ["2026-10-25T01:00+02:00", "2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00",
                  "2026-10-25T03:00+01:00"],
                 id="berlin fall: wildcard hourly fires at 02:00 twice"),
    pytest.param("30 */2 * * *", BERLIN, "2026-10-25T00:00+02:00", "2026-10-25T05:00+01:00",
                 ["2026-10-25T00:30+02:00", "2026-10-25T02:30+02:00", "2026-10-25T02:30+01:00",
                  "2026-10-25T04:30+01:00"],
                 id="berlin fall: wildcard 30 */2 fires at 02:30 on both passes"),
    pytest.param("*/30 2 * * *", BERLIN, "2026-10-25T00:00+02:00", "2026-10-26T00:00+01:00",
                 ["2026-10-25T02:00+02:00", "2026-10-25T02:30+02:00", "2026-10-25T02:00+01:00",
                  "2026-10-25T02:30+01:00"],
                 id="berlin fall: minute wildcard */30 2 fires on both passes"),
    pytest.param("*/15 * * * *", BERLIN, "2026-10-25T02:40+02:00", "2026-10-25T02:10+01:00",
                 ["2026-10-25T02:45+02:00", "2026-10-25T02:00+01:00"],
                 id="berlin fall: across the change, the earlier wall time 02:00+01:00 comes after 02:45+02:00"),
    # --- America/New_York, spring forward 2026-03-08 02:00 -> 03:00
    pytest.param("30 2 * * *", NEW_YORK, "2026-03-07T12:00-05:00", "2026-03-09T12:00-04:00",
                 ["2026-03-08T03:00-04:00", "2026-03-09T02:30-04:00"],
                 id="new york spring: fixed 02:30 (skipped) fires at 03:00-04:00"),
    pytest.param("0 2 * * sun", NEW_YORK, "2026-03-01T00:00-05:00", "2026-03-16T00:00-04:00",
                 ["2026-03-01T02:00-05:00", "2026-03-08T03:00-04:00", "2026-03-15T02:00-04:00"],
                 id="new york spring: fixed Sunday 02:00 on the change day fires at the jump"),
    pytest.param("0 * * * *", NEW_YORK, "2026-03-08T00:00-05:00", "2026-03-08T04:00-04:00",
                 ["2026-03-08T01:00-05:00", "2026-03-08T03:00-04:00", "2026-03-08T04:00-04:00"],
                 id="new york spring: wildcard hourly has no 02:00"),
    # --- America/New_York, fall back 2026-11-01 02:00 -> 01:00
    pytest.param("30 1 * * *", NEW_YORK, "2026-10-31T12:00-04:00", "2026-11-02T12:00-05:00",
                 ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
                 id="new york fall: fixed 01:30 (repeated) fires on the first pass only"),
    pytest.param("*/30 1 * * *", NEW_YORK, "2026-11-01T00:00-04:00", "2026-11-01T03:00-05:00",
                 ["2026-11-01T01:00-04:00", "2026-11-01T01:30-04:00", "2026-11-01T01:00-05:00",
                  "2026-11-01T01:30-05:00"],
                 id="new york fall: minute wildcard */30 1 fires on both passes"),
    pytest.param("*/15 * * * *", NEW_YORK, "2026-11-01T01:30-04:00", "2026-11-01T01:15-05:00",
                 ["2026-11-01T01:45-04:00", "2026-11-01T01:00-05:00", "2026-11-01T01:15-05:00"],
                 id="new york fall: wildcard */15 across the change"),
    # --- Australia/Lord_Howe: 30-minute changes
    pytest.param("15 2 * * *", LORD_HOWE, "2026-10-03T12:00+10:30", "2026-10-05T12:00+11:00",
                 ["2026-10-04T02:30+11:00", "2026-10-05T02:15+11:00"],
                 id="lord howe spring: fixed 02:15 in the 30-minute gap fires at the jump, 02:30+11:00"),
    pytest.param("0,15 2 * * *", LORD_HOWE, "2026-10-04T00:00+10:30", "2026-10-04T12:00+11:00",
                 ["2026-10-04T02:30+11:00"],
                 id="lord howe spring: 02:00 and 02:15 (both skipped) collapse into one firing"),
    pytest.param("*/15 * * * *", LORD_HOWE, "2026-10-04T01:45+10:30", "2026-10-04T02:45+11:00",
                 ["2026-10-04T02:30+11:00", "2026-10-04T02:45+11:00"],
                 id="lord howe spring: wildcard */15 has no 02:00 or 02:15"),
    pytest.param("30 */2 * * *", LORD_HOWE, "2026-10-04T00:00+10:30", "2026-10-04T05:00+11:00",
                 ["2026-10-04T00:30+10:30", "2026-10-04T02:30+11:00", "2026-10-04T04:30+11:00"],
                 id="lord howe spring: wildcard 02:30, the first wall time after the gap, fires normally"),
    pytest.param("0 */2 * * *", LORD_HOWE, "2026-10-04T00:00+10:30", "2026-10-04T05:00+11:00",
                 ["2026-10-04T04:00+11:00"],
                 id="lord howe spring: wildcard 02:00 in the gap does not fire"),
    pytest.param("45 1 * * *", LORD_HOWE, "2026-04-04T12:00+11:00", "2026-04-06T12:00+10:30",
                 ["2026-04-05T01:45+11:00", "2026-04-06T01:45+10:30"],
                 id="lord howe fall: fixed 01:45 (repeated) fires on the first pass only"),
    pytest.param("*/15 * * * *", LORD_HOWE, "2026-04-05T01:15+11:00", "2026-04-05T02:00+10:30",
                 ["2026-04-05T01:30+11:00", "2026-04-05T01:45+11:00", "2026-04-05T01:30+10:30",
                  "2026-04-05T01:45+10:30", "2026-04-05T02:00+10:30"],
                 id="lord howe fall: wildcard */15 fires at 01:30 and 01:45 on both passes"),
    # --- zones without changes
    pytest.param("0 2 * * *", SHANGHAI, "2026-03-28T12:00+08:00", "2026-03-30T12:00+08:00",
                 ["2026-03-29T02:00+08:00", "2026-03-30T02:00+08:00"],
                 id="shanghai: no DST, 02:00 every day"),
    pytest.param("*/15 * * * *", SHANGHAI, "2026-10-25T02:00+08:00", "2026-10-25T03:00+08:00",
                 ["2026-10-25T02:15+08:00", "2026-10-25T02:30+08:00", "2026-10-25T02:45+08:00",
                  "2026-10-25T03:00+08:00"],
                 id="shanghai: */15 over an hour, start excluded, end included"),
    pytest.param("0 2 * * *", "UTC", "2026-10-24T12:00+00:00", "2026-10-26T12:00+00:00",
                 ["2026-10-25T02:00+00:00", "2026-10-26T02:00+00:00"],
                 id="utc: 02:00 every day"),
    # --- L and # day forms
    pytest.param("0 3 L * *", "UTC", "2026-01-31T03:00+00:00", "2026-05-01T00:00+00:00",
                 ["2026-02-28T03:00+00:00", "2026-03-31T03:00+00:00", "2026-04-30T03:00+00:00"],
                 id="L: last day of each month (the start instant itself is excluded)"),
    pytest.param("0 3 L 2 *", "UTC", "2027-03-01T00:00+00:00", "2029-01-01T00:00+00:00",
                 ["2028-02-29T03:00+00:00"],
                 id="L: last day of February in a leap year is the 29th"),
    pytest.param("0 4 * * 5L", BERLIN, "2026-01-01T00:00+01:00", "2026-04-01T00:00+02:00",
                 ["2026-01-30T04:00+01:00", "2026-02-27T04:00+01:00", "2026-03-27T04:00+01:00"],
                 id="5L: last Friday of the month"),
    pytest.param("0 4 * * mon#2", BERLIN, "2026-01-01T00:00+01:00", "2026-04-01T00:00+02:00",
                 ["2026-01-12T04:00+01:00", "2026-02-09T04:00+01:00", "2026-03-09T04:00+01:00"],
                 id="mon#2: second Monday of the month"),
    pytest.param("30 2 * * sun#5", BERLIN, "2026-03-01T00:00+01:00", "2026-04-01T00:00+02:00",
                 ["2026-03-29T03:00+02:00"],
                 id="sun#5: fifth Sunday of March 2026 is the change day, 02:30 fires at the jump"),
    pytest.param("30 2 * * 0L", BERLIN, "2026-10-01T00:00+02:00", "2026-11-01T00:00+01:00",
                 ["2026-10-25T02:30+02:00"],
                 id="0L: last Sunday of October is the change day, 02:30 fires on the first pass"),
    pytest.param("0 0 13 * fri", "UTC", "2026-04-01T00:00+00:00", "2026-04-30T00:00+00:00",
                 ["2026-04-03T00:00+00:00", "2026-04-10T00:00+00:00", "2026-04-13T00:00+00:00",
                  "2026-04-17T00:00+00:00", "2026-04-24T00:00+00:00"],
                 id="day-of-month and day-of-week both restricted: either matches (the 13th or a Friday)"),
    pytest.param("0 12 * jan,jul mon-fri", SHANGHAI, "2026-06-29T00:00+08:00", "2026-07-04T00:00+08:00",
                 ["2026-07-01T12:00+08:00", "2026-07-02T12:00+08:00", "2026-07-03T12:00+08:00"],
                 id="names: months and weekday range"),
    pytest.param("0 0 * * fri-mon", "UTC", "2026-04-01T00:00+00:00", "2026-04-08T00:00+00:00",
                 ["2026-04-03T00:00+00:00", "2026-04-04T00:00+00:00", "2026-04-05T00:00+00:00",
                  "2026-04-06T00:00+00:00"],
                 id="a wrapping weekday range fri-mon"),
]


@pytest.mark.parametrize(("expr", "zone", "start", "end", "expected"), BETWEEN)
def test_between(expr, zone, start, end, expected):
    got = CronRule(expr, zone).between(at(start), at(end))
    assert got == ats(*expected)
    assert all(t.tzinfo is UTC for t in got)


def test_between_empty_and_reversed_windows():
    rule = CronRule("* * * * *", "UTC")
    t = at("2026-06-01T12:00+00:00")
    assert rule.between(t, t) == []
    assert rule.between(t, t - timedelta(minutes=5)) == []
    assert rule.between(t - timedelta(seconds=59), t) == [t]
    assert rule.between(t, t + timedelta(seconds=59)) == []


# ---------------------------------------------------------------------------------------------------------------
# prev_at_or_before(t): the latest occurrence <= t (stop/start windows)

PREV = [
    pytest.param("0 2 * * *", BERLIN, "2026-03-29T03:00+02:00", "2026-03-29T03:00+02:00",
                 id="at-or-before includes t: the collapsed 02:00 at the jump"),
    pytest.param("0 2 * * *", BERLIN, "2026-03-29T00:59:59+00:00", "2026-03-28T02:00+01:00",
                 id="one second before the jump the skipped 02:00 has not happened yet"),
    pytest.param("0 2 * * *", BERLIN, "2026-10-25T02:30+01:00", "2026-10-25T02:00+02:00",
                 id="in the second pass the latest fixed 02:00 is the first pass"),
    pytest.param("*/15 * * * *", BERLIN, "2026-10-25T02:10+02:00", "2026-10-25T02:00+02:00",
                 id="wildcard in the first pass"),
    pytest.param("*/15 * * * *", BERLIN, "2026-10-25T02:10+01:00", "2026-10-25T02:00+01:00",
                 id="wildcard in the second pass: 02:00+01:00, not the earlier 02:00+02:00"),
    pytest.param("*/15 * * * *", BERLIN, "2026-10-25T02:05+01:00", "2026-10-25T02:00+01:00",
                 id="wildcard in the second pass, a later wall time (02:45+02:00) is an earlier instant"),
    pytest.param("30 */2 * * *", BERLIN, "2026-03-29T04:29+02:00", "2026-03-29T00:30+01:00",
                 id="wildcard 02:30 never existed on the spring day"),
    pytest.param("15 2 * * *", LORD_HOWE, "2026-10-04T02:30+11:00", "2026-10-04T02:30+11:00",
                 id="lord howe: the skipped 02:15 fires at the jump"),
    pytest.param("15 2 * * *", LORD_HOWE, "2026-10-03T15:29:59+00:00", "2026-10-03T02:15+10:30",
                 id="lord howe: just before the jump, the previous day's 02:15"),
    pytest.param("45 1 * * *", LORD_HOWE, "2026-04-05T01:50+10:30", "2026-04-05T01:45+11:00",
                 id="lord howe: in the second pass the fixed 01:45 is the first pass"),
    pytest.param("0 20 * * fri", BERLIN, "2026-03-30T06:59+02:00", "2026-03-27T20:00+01:00",
                 id="window stop (Fri 20:00) seen on Monday morning, across the change"),
    pytest.param("0 7 * * mon", BERLIN, "2026-03-30T06:59+02:00", "2026-03-23T07:00+01:00",
                 id="window start (Mon 07:00) one minute early: last week's"),
    pytest.param("0 0 1 1 *", "UTC", "2026-12-31T23:59+00:00", "2026-01-01T00:00+00:00",
                 id="yearly: almost a year back"),
    pytest.param("0 0 29 2 *", "UTC", "2031-01-01T00:00+00:00", "2028-02-29T00:00+00:00",
                 id="29 February: years back"),
    pytest.param("0 3 L * *", NEW_YORK, "2026-03-31T02:59-04:00", "2026-02-28T03:00-05:00",
                 id="L: the previous month's last day"),
]


@pytest.mark.parametrize(("expr", "zone", "t", "expected"), PREV)
def test_prev_at_or_before(expr, zone, t, expected):
    got = CronRule(expr, zone).prev_at_or_before(at(t))
    assert got == at(expected)
    assert got.tzinfo is UTC


# ---------------------------------------------------------------------------------------------------------------
# next_after(t) and upcoming(t, n)

NEXT = [
    pytest.param("0 2 * * *", BERLIN, "2026-03-28T02:00+01:00", "2026-03-29T03:00+02:00",
                 id="strictly after: the next day's 02:00, collapsed to the jump"),
    pytest.param("0 2 * * *", BERLIN, "2026-10-25T02:00+02:00", "2026-10-26T02:00+01:00",
                 id="fixed: no second firing in the repeated hour"),
    pytest.param("*/15 * * * *", BERLIN, "2026-10-25T02:45+02:00", "2026-10-25T02:00+01:00",
                 id="wildcard: after 02:45+02:00 comes the EARLIER wall time 02:00+01:00"),
    pytest.param("*/30 2 * * *", BERLIN, "2026-10-25T02:45+02:00", "2026-10-25T02:00+01:00",
                 id="wildcard: after the first pass's last 02:xx comes the second pass, not tomorrow"),
    pytest.param("0 2,3 * * *", BERLIN, "2026-03-29T03:00+02:00", "2026-03-30T02:00+02:00",
                 id="collapsed firing happened once: next is the next day"),
    pytest.param("30 1 * * *", NEW_YORK, "2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00",
                 id="new york fall: fixed 01:30 not repeated"),
    pytest.param("0 0 * 2 mon#5", "UTC", "2026-01-01T00:00+00:00", "2044-02-29T00:00+00:00",
                 id="sparse: a fifth Monday in February comes in 2044"),
    pytest.param("0 0 29 2 *", BERLIN, "2028-02-29T00:00+01:00", "2032-02-29T00:00+01:00",
                 id="29 February: four years on"),
]


@pytest.mark.parametrize(("expr", "zone", "t", "expected"), NEXT)
def test_next_after(expr, zone, t, expected):
    got = CronRule(expr, zone).next_after(at(t))
    assert got == at(expected)
    assert got.tzinfo is UTC


def test_upcoming():
    rule = CronRule("0 2 * * *", BERLIN)
    assert rule.upcoming(at("2026-03-27T12:00+01:00"), 3) == ats(
        "2026-03-28T02:00+01:00", "2026-03-29T03:00+02:00", "2026-03-30T02:00+02:00")
    assert rule.upcoming(at("2026-03-27T12:00+01:00"), 0) == []
    fall = CronRule("30 */2 * * *", BERLIN).upcoming(at("2026-10-25T02:00+02:00"), 3)
    assert fall == ats("2026-10-25T02:30+02:00", "2026-10-25T02:30+01:00", "2026-10-25T04:30+01:00")


def test_nothing_after_the_end_of_time():
    rule = CronRule("0 0 1 1 *", "UTC")
    assert rule.next_after(datetime(9999, 6, 1, tzinfo=UTC)) is None
    assert rule.upcoming(datetime(9999, 6, 1, tzinfo=UTC), 3) == []
    assert rule.prev_at_or_before(datetime(1, 6, 1, tzinfo=UTC)) is None


# ---------------------------------------------------------------------------------------------------------------
# Property: consecutive tick windows see every occurrence exactly once

PROPERTY_EXPRS = ["0 2 * * *", "30 2 * * *", "0,15,30,45 2 * * *", "0 2,3 * * *", "45 1 * * *", "*/15 * * * *",
                  "30 */2 * * *", "*/5 2 * * *", "* * * * *", "0 3 L * *", "0 2 * * 0L", "7 */3 * * *"]
PROPERTY_RANGES = [
    pytest.param(BERLIN, "2026-03-29T00:00+01:00", "2026-03-30T00:00+02:00", id="berlin-spring-day"),
    pytest.param(BERLIN, "2026-10-25T00:00+02:00", "2026-10-26T00:00+01:00", id="berlin-fall-day"),
    pytest.param(BERLIN, "2026-03-23T00:00+01:00", "2026-03-30T12:00+02:00", id="berlin-spring-week"),
    pytest.param(BERLIN, "2026-10-19T00:00+02:00", "2026-10-26T12:00+01:00", id="berlin-fall-week"),
    pytest.param(NEW_YORK, "2026-03-08T00:00-05:00", "2026-03-09T00:00-04:00", id="new-york-spring-day"),
    pytest.param(NEW_YORK, "2026-11-01T00:00-04:00", "2026-11-02T00:00-05:00", id="new-york-fall-day"),
    pytest.param(LORD_HOWE, "2026-04-04T12:00+11:00", "2026-04-06T00:00+10:30", id="lord-howe-fall"),
    pytest.param(LORD_HOWE, "2026-10-03T12:00+10:30", "2026-10-05T00:00+11:00", id="lord-howe-spring"),
    pytest.param(SHANGHAI, "2026-03-29T00:00+08:00", "2026-03-30T00:00+08:00", id="shanghai-day"),
    pytest.param("UTC", "2026-10-25T00:00+00:00", "2026-10-26T00:00+00:00", id="utc-day"),
]
TICK = timedelta(minutes=5)


def _tick_windows(start: datetime, end: datetime, jitter: random.Random | None):
    """(previous tick, tick] pairs covering (start, end]: ticks on the 5 minutes, optionally a bit late."""
    ticks = [start]
    t = start + TICK
    while t < end:
        late = timedelta(seconds=jitter.uniform(1, 60)) if jitter else timedelta(0)
        ticks.append(t + late)
        t += TICK
    ticks.append(end)
    return list(zip(ticks, ticks[1:], strict=False))


@pytest.mark.parametrize(("zone", "start", "end"), PROPERTY_RANGES)
@pytest.mark.parametrize("jitter", [False, True], ids=["on-the-5-minutes", "jittered"])
def test_ticks_see_each_occurrence_exactly_once(zone, start, end, jitter):
    start, end = at(start), at(end)
    rng = random.Random(f"{zone}{start}{jitter}") if jitter else None
    windows = _tick_windows(start, end, rng)
    if not jitter:
        assert all(b - a == TICK for a, b in windows)  # exactly (T-5m, T] on the 5 minutes
    for expr in PROPERTY_EXPRS:
        rule = CronRule(expr, zone)
        whole = rule.between(start, end)
        seen = [t for a, b in windows for t in rule.between(a, b)]
        assert seen == whole, expr  # the same instants, in order, none twice
        assert len(set(seen)) == len(seen), expr
        assert whole == reference(expr, zone, start, end), expr


# ---------------------------------------------------------------------------------------------------------------
# An independent reference: croniter's naive walls mapped through zoneinfo, wall by wall (slow, obvious)

def reference(expr: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Occurrences in (start, end] computed the obvious way, as SPEC section 3 states the rules."""
    z = ZoneInfo(zone)
    fixed = is_fixed_time(expr)
    expr = " ".join(expr.split()[:4] + [_croniter_dow(expr.split()[4])])
    wall_lo = start.astimezone(z).replace(tzinfo=None) - timedelta(hours=4)
    wall_hi = end.astimezone(z).replace(tzinfo=None) + timedelta(hours=4)
    it = croniter(expr, wall_lo)  # naive in, naive out: croniter never sees a zone
    found: set[datetime] = set()
    wall = it.get_next(datetime)
    while wall <= wall_hi:
        first = wall.replace(tzinfo=z, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=z, fold=1).astimezone(UTC)
        if first.astimezone(z).replace(tzinfo=None) != wall:  # skipped by a spring-forward jump
            if fixed:
                jump = min(first, second)
                before = jump.astimezone(z).utcoffset()
                while jump.astimezone(z).utcoffset() == before:
                    jump += timedelta(minutes=1)
                found.add(jump)
        elif first != second:  # repeated by a fall-back: fold=0 is the first pass
            found.add(first)
            if not fixed:
                found.add(second)
        else:
            found.add(first)
        wall = it.get_next(datetime)
    return sorted(t for t in found if start < t <= end)


def _croniter_dow(field: str) -> str:
    items = []
    for item in field.split(","):
        if item.lower().endswith("l") and len(item) > 1:
            item = "L" + item[:-1]
        items.append(item)
    return ",".join(items)


YEAR_EXPRS = ["0 2 * * *", "30 2 * * *", "0 2,3 * * *", "*/30 * * * *", "30 */2 * * *", "15 1-3 * * sun",
              "0 3 L * *", "0 2 * * 0L", "0 4 * * mon#2"]


@pytest.mark.slow
@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK, LORD_HOWE, SHANGHAI, "America/Santiago", "Europe/Dublin"])
def test_a_whole_year_matches_the_reference(zone):
    z = ZoneInfo(zone)
    start, end = datetime(2026, 1, 1, tzinfo=z).astimezone(UTC), datetime(2027, 1, 1, tzinfo=z).astimezone(UTC)
    for expr in YEAR_EXPRS:
        assert CronRule(expr, zone).between(start, end) == reference(expr, zone, start, end), expr


# ---------------------------------------------------------------------------------------------------------------
# Naive wall enumeration agrees with croniter's (naive) reading of the fields

def _random_expr(rng: random.Random) -> str:
    def field(lo: int, hi: int, names: list[str] | None = None) -> str:
        kind = rng.random()
        if kind < 0.25:
            return "*"
        if kind < 0.4:
            return f"*/{rng.randint(2, max(2, (hi - lo) // 2))}"
        if kind < 0.55:
            a = rng.randint(lo, hi - 1)
            b = rng.randint(a + 1, hi)
            return f"{a}-{b}" + (f"/{rng.randint(2, 5)}" if rng.random() < 0.4 else "")
        values = sorted(set(rng.randint(lo, hi) for _ in range(rng.randint(1, 3))))
        if names and rng.random() < 0.3:
            return ",".join(names[v - lo] for v in values)
        return ",".join(str(v) for v in values)

    minute, hour = field(0, 59), field(0, 23)
    month = field(1, 12, ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
    special = rng.random()
    if special < 0.1:
        return f"{minute} {hour} L {month} *"
    if special < 0.2:
        return f"{minute} {hour} * {month} {rng.choice(['mon', 'fri', '0', '3'])}#{rng.randint(1, 5)}"
    if special < 0.25:
        return f"{minute} {hour} * {month} L{rng.randint(0, 6)}"
    dom = field(1, 28)
    dow = field(0, 6, ["sun", "mon", "tue", "wed", "thu", "fri", "sat"])
    return f"{minute} {hour} {dom} {month} {dow}"


def test_wall_enumeration_agrees_with_croniter():
    rng = random.Random(20260329)
    checked = 0
    while checked < 300:
        expr = _random_expr(rng)
        try:
            check_cron(expr)
        except CronError:
            continue
        spec = cronrules._parse(expr)
        for _ in range(5):
            wall = datetime(2026, 1, 1) + timedelta(minutes=rng.randint(0, 3 * 365 * 1440))
            k = (wall - datetime(1970, 1, 1)) // timedelta(minutes=1)
            it = croniter(expr, wall)
            expected_next = [it.get_next(datetime) for _ in range(3)]
            got_next, kk = [], k
            for _ in range(3):
                kk = spec.next_wall(kk)
                got_next.append(datetime(1970, 1, 1) + timedelta(minutes=kk))
            assert got_next == expected_next, expr
            expected_prev = croniter(expr, wall).get_prev(datetime)  # strictly before a whole minute
            got_prev = datetime(1970, 1, 1) + timedelta(minutes=spec.prev_wall(k - 1))
            assert got_prev == expected_prev, expr
            # And the day-by-day enumeration used for windows agrees with stepping.
            assert spec.walls(k + 1, kk) == _stepped(spec, k, kk), expr
        checked += 1


def _stepped(spec, k: int, last: int) -> list[int]:
    out = []
    while True:
        k = spec.next_wall(k)
        if k is None or k > last:
            return out
        out.append(k)


# ---------------------------------------------------------------------------------------------------------------
# check_cron

REJECTED = [
    pytest.param("0 0 0 * * *", "6-field cron (with seconds or years) is not supported; use 5 fields: minute hour "
                 "day-of-month month day-of-week", id="6 fields"),
    pytest.param("0 0 0 * * * 2026", "7-field cron", id="7 fields"),
    pytest.param("0 0 * *", "cron has 4 fields; use 5 fields", id="4 fields"),
    pytest.param("", "cron is empty", id="empty"),
    pytest.param("@daily", "macros such as '@daily' are not supported", id="@daily macro"),
    pytest.param("@reboot", "macros such as '@reboot' are not supported", id="@reboot macro"),
    pytest.param("H 2 * * *", "minute field: H (hashed) values such as 'H' are not supported", id="H"),
    pytest.param("H(0-29)/10 * * * *", "H (hashed) values", id="H range step"),
    pytest.param("0 H * * *", "hour field: H (hashed)", id="H hour"),
    pytest.param("R 2 * * *", "R (random) values", id="R"),
    pytest.param("0 9-9 * * *", "hour field: equal range '9-9' is not supported (croniter reads it as the whole "
                 "cycle); write '9'", id="equal range 9-9"),
    pytest.param("0 0 * jan-jan *", "month field: equal range 'jan-jan'", id="equal range jan-jan"),
    pytest.param("0 0 * * 7-0", "day-of-week field: equal range '7-0'", id="equal range 7-0 (both Sunday)"),
    pytest.param("0 9-9/2 * * *", "equal range '9-9/2'", id="equal range with a step"),
    pytest.param("59/15 * * * *", "minute field: '59/15' is a step without a range", id="59/15"),
    pytest.param("10/15 * * * *", "write '10-59/15' for every 15 from 10, or '10' for that value only",
                 id="10/15"),
    pytest.param("0 0 * jan/2 *", "write 'jan-dec/2'", id="jan/2"),
    pytest.param("*/90 * * * *", "step 90 in '*/90' is larger than the field's 60 values", id="*/90"),
    pytest.param("*/0 * * * *", "the step in '*/0' must be a whole number of at least 1", id="*/0"),
    pytest.param("50-10/7 * * * *", "a wrapping range with a step ('50-10/7') is not supported", id="wrap step"),
    pytest.param("0 0 31 2 *", "impossible date: day 31 never occurs in February", id="31 February"),
    pytest.param("0 0 30 2 *", "impossible date: day 30 never occurs in February", id="30 February"),
    pytest.param("0 0 31 4,6,9,11 *", "day 31 never occurs in April, June, September and November",
                 id="31 in 30-day months"),
    pytest.param("60 * * * *", "minute field: 60 in '60' is out of range 0-59", id="minute 60"),
    pytest.param("0 24 * * *", "hour field: 24 in '24' is out of range 0-23", id="hour 24"),
    pytest.param("0 0 0 * *", "day-of-month field: 0 in '0' is out of range 1-31", id="day 0"),
    pytest.param("0 0 * 13 *", "month field: 13 in '13' is out of range 1-12", id="month 13"),
    pytest.param("0 0 * * 8", "day-of-week field: 8 in '8' is out of range 0-7", id="weekday 8"),
    pytest.param("0 0 * foo *", "month field: unknown name 'foo'", id="unknown month name"),
    pytest.param("0 0 * * monday", "day-of-week field: unknown name 'monday'", id="full weekday name"),
    pytest.param("mon 0 * * *", "minute field: 'mon' in 'mon' is not a number", id="name in minute"),
    pytest.param("-5 * * * *", "minute field: '-5' is not a value", id="negative"),
    pytest.param("0 0 ? * *", "'?' is not supported; use '*'", id="question mark"),
    pytest.param("0 0 15W * *", "W (nearest weekday) in '15W' is not supported", id="W"),
    pytest.param("0 0 5L * *", "L (last day of the month) must stand alone or end a range", id="L after a day"),
    pytest.param("0 0 * * L", "'L' needs a weekday, e.g. '5L'", id="L alone in day-of-week"),
    pytest.param("0 0 * * mon#6", "the n in 'mon#6' (n-th weekday of the month) must be 1-5", id="#6"),
    pytest.param("0 0 * * *#2", "'*#2' is not of the form weekday#n", id="*#2"),
    pytest.param("0 0 * * mon#2,fri", "cannot mix plain weekdays with weekday#n", id="mixed # and plain"),
    pytest.param("0 0 1 * mon#2", "cannot be combined with a day-of-month other than '*'", id="# with a day"),
    pytest.param("0 0 L * 5L", "cannot be combined with a day-of-month", id="5L with L"),
    pytest.param("5,* * * * *", "minute field: '*' cannot be part of a list", id="star in a list"),
    pytest.param("0,,5 * * * *", "minute field: empty list item", id="empty list item"),
    pytest.param(None, "cron must be a string", id="not a string"),
]


@pytest.mark.parametrize(("expr", "message"), REJECTED)
def test_check_cron_rejects(expr, message):
    with pytest.raises(CronError) as info:
        check_cron(expr)
    assert message in str(info.value)
    with pytest.raises(CronError):
        CronRule(expr, "UTC")


ACCEPTED = ["0 2 * * *", "*/15 * * * *", "0 20 * * mon-fri", "0 20 * * MON-FRI", "0 0 1 * *", "0 0 L * *",
            "0 0 1,15,L * *", "0 4 * * 5L", "0 4 * * friL", "0 4 * * L5", "0 4 * * mon#2", "0 4 * * mon#2,fri#4",
            "0 0 29 2 *", "0 0 L 2 *", "0 0 31 1-12 *", "0 22-2 * * *", "0 0 * * fri-mon", "0 0 * * 0-7",
            "0 0 * * 1-7/2", "10-50/15 * * * *", "*/59 * * * *", "0 0 * nov-feb *", "  0  2  *  *  *  ",
            "0\t2\t*\t*\t*", "0 0 13 * fri", "0 0 * * 7", "0 0 * * 7L", "0 0 * 2 mon#5"]


@pytest.mark.parametrize("expr", ACCEPTED)
def test_check_cron_accepts(expr):
    check_cron(expr)
    assert CronRule(expr, "UTC").next_after(at("2026-01-01T00:00+00:00")) is not None


FIXED = [("0 2 * * *", True), ("30 0-23/2 * * *", True), ("0,30 2,3 * * *", True), ("*/15 * * * *", False),
         ("30 */2 * * *", False), ("* 2 * * *", False), ("0 * * * *", False), ("*/5 2 * * *", False)]


@pytest.mark.parametrize(("expr", "fixed"), FIXED)
def test_is_fixed_time(expr, fixed):
    assert is_fixed_time(expr) is fixed
    assert CronRule(expr, "UTC").fixed_time is fixed


# ---------------------------------------------------------------------------------------------------------------
# Zones and instants: never a fixed offset

@pytest.mark.parametrize("tz", [timezone(timedelta(hours=1)), UTC, "+01:00", "CET+1", "Not/A_Zone", "", 8, None])
def test_fixed_offsets_and_unknown_zones_are_refused(tz):
    with pytest.raises(CronError):
        CronRule("0 2 * * *", tz)


def test_zone_given_by_name_or_zoneinfo():
    by_name = CronRule("0 2 * * *", BERLIN)
    assert isinstance(by_name.tz, ZoneInfo) and by_name.tz.key == BERLIN
    assert by_name.expr == "0 2 * * *" and by_name.fixed_time
    assert CronRule("0 2 * * *", ZoneInfo(BERLIN)) == by_name


def test_instants_in_any_offset_are_the_same_instants():
    """Inputs may carry any tzinfo (they are instants); the rule's own wall clock stays the ZoneInfo."""
    rule = CronRule("0 2 * * *", BERLIN)
    plus8 = timezone(timedelta(hours=8))
    start = at("2026-03-28T12:00+01:00").astimezone(plus8)
    end = at("2026-03-30T12:00+02:00").astimezone(plus8)
    assert rule.between(start, end) == ats("2026-03-29T03:00+02:00", "2026-03-30T02:00+02:00")


def test_croniter_never_sees_a_datetime(monkeypatch):
    """croniter only parses (croniter.expand); evaluation is done here, so no tzinfo can reach it."""
    def refuse(*args, **kwargs):
        raise AssertionError("croniter iteration must not be used")

    monkeypatch.setattr(croniter, "__init__", refuse)
    rule = CronRule("17 2 * * 1-5", BERLIN)  # an expression not parsed before in this session
    assert rule.next_after(at("2026-03-26T12:00+01:00")) == at("2026-03-27T02:17+01:00")
    assert rule.between(at("2026-03-29T00:00+01:00"), at("2026-03-31T00:00+02:00")) == ats("2026-03-30T02:17+02:00")
    assert rule.prev_at_or_before(at("2026-03-29T12:00+02:00")) == at("2026-03-27T02:17+01:00")


def test_to_utc():
    assert to_utc(at("2026-03-29T03:00+02:00")) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert to_utc(datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo(BERLIN))).hour == 1
    with pytest.raises(ValueError):
        to_utc(datetime(2026, 3, 29, 3, 0))
    rule = CronRule("0 2 * * *", BERLIN)
    with pytest.raises(ValueError):
        rule.between(datetime(2026, 3, 29), datetime(2026, 3, 30))
    with pytest.raises(ValueError):
        rule.next_after(datetime(2026, 3, 29))
    with pytest.raises(ValueError):
        rule.prev_at_or_before(datetime(2026, 3, 29))


# ---------------------------------------------------------------------------------------------------------------
# Cost: a tick checks up to 10,000 schedules with a 5-minute window and usually nothing due

def test_a_five_minute_window_with_nothing_due_is_cheap():
    rule = CronRule("0 2 * * *", BERLIN)
    end = at("2026-06-10T12:05+02:00")
    start = end - TICK
    n = 2000
    per_call = timeit.timeit(lambda: rule.between(start, end), number=n) / n
    assert per_call < 0.001, f"{per_call * 1e6:.1f} us per between()"  # typically well under 20 us
