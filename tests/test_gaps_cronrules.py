"""Issue 16, cronrules: behaviour the mutation round found unpinned, each as a table.

- The messages of CronError are what a schedule author reads (via check_cron, the loader and the HTTP API):
  each refusal is pinned as the whole message, not a fragment of it.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Optional
from zoneinfo import ZoneInfo

import pytest

from dcs_maintenance.cronrules import CronError, CronRule, check_cron, is_fixed_time, to_utc

pytestmark = pytest.mark.usefixtures("fresh_cronrules_caches")

USAGE = "use 5 fields: minute hour day-of-month month day-of-week"
STEP_LESS = "is a step without a range, which cron implementations read differently"

# ---------------------------------------------------------------------------------------------------------------
# Every refusal, as the whole message

MESSAGES = [
    ("0 0 0 * * *", f"6-field cron (with seconds or years) is not supported; {USAGE}"),
    ("0 0 0 * * * 2026", f"7-field cron (with seconds or years) is not supported; {USAGE}"),
    ("0 0 * *", f"cron has 4 fields; {USAGE}"),
    ("0", f"cron has 1 field; {USAGE}"),
    ("0 0 * * * * * *", f"cron has 8 fields; {USAGE}"),
    ("", f"cron is empty; {USAGE}"),
    (" \t ", f"cron is empty; {USAGE}"),
    ("@daily", f"macros such as '@daily' are not supported; write the 5 fields, e.g. '0 0 * * *' for @daily ({USAGE})"),
    ("@every 5m", "macros such as '@every' are not supported; write the 5 fields, e.g. '0 0 * * *' for @daily "
                  f"({USAGE})"),
    ("H 2 * * *", "minute field: H (hashed) values such as 'H' are not supported"),
    ("0 0 * * Hx", "day-of-week field: H (hashed) values such as 'Hx' are not supported"),
    ("r 2 * * *", "minute field: R (random) values such as 'r' are not supported"),
    ("0 0 ? * *", "day-of-month field: '?' is not supported; use '*'"),
    ("0 0 15W * *", "day-of-month field: W (nearest weekday) in '15W' is not supported"),
    ("0 0 L-5 * *", "day-of-month field: L can only end a day-of-month range ('25-L': day 25 to the end of the "
                    "month), not start one ('L-5')"),
    ("0 0 5L * *", "day-of-month field: L (last day of the month) must stand alone or end a range ('25-L'), "
                   "not '5L'"),
    ("0 0 * * L", "day-of-week field: 'L' needs a weekday, e.g. '5L' for the last Friday of the month"),
    ("0 0 * * mon#6", "day-of-week field: the n in 'mon#6' (n-th weekday of the month) must be 1-5"),
    ("0 0 * * mon#0", "day-of-week field: the n in 'mon#0' (n-th weekday of the month) must be 1-5"),
    ("0 0 * * *#2", "day-of-week field: '*#2' is not of the form weekday#n (e.g. 'mon#2')"),
    ("0 0 * * 5#x", "day-of-week field: '5#x' is not of the form weekday#n (e.g. 'mon#2')"),
    ("0 0 * * mon#2,fri", "day-of-week field: cannot mix plain weekdays with weekday#n or weekdayL forms "
                          "('mon#2,fri')"),
    ("0 0 1 * mon#2", "day-of-week forms weekday#n and weekdayL cannot be combined with a day-of-month other "
                      "than '*' ('1')"),
    ("0 0 L * 5L", "day-of-week forms weekday#n and weekdayL cannot be combined with a day-of-month other "
                   "than '*' ('L')"),
    ("5,* * * * *", "minute field: '*' cannot be part of a list ('5,*')"),
    ("0,,5 * * * *", "minute field: empty list item"),
    ("*/90 * * * *", "minute field: step 90 in '*/90' is larger than the field's 60 values (0-59): cron reads it "
                     "as minute 0 alone, since steps do not carry over into the next hour; write '0' for minute 0 "
                     "once an hour, or use a step of at most 60"),
    ("0 */25 * * *", "hour field: step 25 in '*/25' is larger than the field's 24 values (0-23): cron reads it "
                     "as hour 0 alone, since steps do not carry over into the next day; write '0' for hour 0 once "
                     "a day, or use a step of at most 24"),
    ("0 0 */32 * *", "day-of-month field: step 32 in '*/32' is larger than the field's 31 values (1-31): cron "
                     "reads it as day 1 alone, since steps do not carry over into the next month; write '1' for "
                     "day 1 once a month, or use a step of at most 31"),
    ("0 0 * */13 *", "month field: step 13 in '*/13' is larger than the field's 12 values (1-12): cron reads it "
                     "as January alone, since steps do not carry over into the next year; write '1' for January "
                     "once a year, or use a step of at most 12"),
    ("0 0 * * */8", "day-of-week field: step 8 in '*/8' is larger than the field's 7 values (0-7): cron reads "
                    "it as Sunday alone, since steps do not carry over into the next week; write '0' for Sunday "
                    "once a week, or use a step of at most 7"),
    ("*/0 * * * *", "minute field: the step in '*/0' must be a whole number of at least 1"),
    ("*/x * * * *", "minute field: the step in '*/x' must be a whole number of at least 1"),
    ("59/15 * * * *", f"minute field: '59/15' {STEP_LESS} (as '59' alone, or as every 15 from 59 to the end of "
                      "the field); write '59' for that value only"),
    ("58/15 * * * *", f"minute field: '58/15' {STEP_LESS} (as '58' alone, or as every 15 from 58 to the end of "
                      "the field); write '58-59/15' for every 15 from 58, or '58' for that value only"),
    ("10/15 * * * *", f"minute field: '10/15' {STEP_LESS} (as '10' alone, or as every 15 from 10 to the end of "
                      "the field); write '10-59/15' for every 15 from 10, or '10' for that value only"),
    ("0 0 * jan/2 *", f"month field: 'jan/2' {STEP_LESS} (as 'jan' alone, or as every 2 from jan to the end of "
                      "the field); write 'jan-dec/2' for every 2 from jan, or 'jan' for that value only"),
    ("0 0 * Jan/2 *", f"month field: 'Jan/2' {STEP_LESS} (as 'Jan' alone, or as every 2 from Jan to the end of "
                      "the field); write 'Jan-dec/2' for every 2 from Jan, or 'Jan' for that value only"),
    ("0 0 * dec/2 *", f"month field: 'dec/2' {STEP_LESS} (as 'dec' alone, or as every 2 from dec to the end of "
                      "the field); write 'dec' for that value only"),
    ("0 0 * * sat/2", f"day-of-week field: 'sat/2' {STEP_LESS} (as 'sat' alone, or as every 2 from sat to the "
                      "end of the field); write 'sat' for that value only"),
    ("0 0 * * mon/2", f"day-of-week field: 'mon/2' {STEP_LESS} (as 'mon' alone, or as every 2 from mon to the "
                      "end of the field); write 'mon-sat/2' for every 2 from mon, or 'mon' for that value only"),
    ("0 0 * * 5/2", f"day-of-week field: '5/2' {STEP_LESS} (as '5' alone, or as every 2 from 5 to the end of "
                    "the field); write '5-6/2' for every 2 from 5, or '5' for that value only"),
    ("0 23/2 * * *", f"hour field: '23/2' {STEP_LESS} (as '23' alone, or as every 2 from 23 to the end of the "
                     "field); write '23' for that value only"),
    ("0 22/2 * * *", f"hour field: '22/2' {STEP_LESS} (as '22' alone, or as every 2 from 22 to the end of the "
                     "field); write '22-23/2' for every 2 from 22, or '22' for that value only"),
    ("0 0 31/2 * *", f"day-of-month field: '31/2' {STEP_LESS} (as '31' alone, or as every 2 from 31 to the end "
                     "of the field); write '31' for that value only"),
    ("0 0 30/2 * *", f"day-of-month field: '30/2' {STEP_LESS} (as '30' alone, or as every 2 from 30 to the end "
                     "of the field); write '30-31/2' for every 2 from 30, or '30' for that value only"),
    ("0 9-9 * * *", "hour field: equal range '9-9' is not supported (croniter reads it as the whole cycle); "
                    "write '9' for that value only"),
    ("0 0 * * 7-0", "day-of-week field: equal range '7-0' is not supported (croniter reads it as the whole "
                    "cycle); write '7' for that value only"),
    ("0 0 * * 7-sun", "day-of-week field: equal range '7-sun' is not supported (croniter reads it as the whole "
                      "cycle); write '7' for that value only"),
    ("0 0 * * 1-8", "day-of-week field: 8 in '1-8' is out of range 0-7"),
    ("50-10/7 * * * *", "minute field: a wrapping range with a step ('50-10/7') is not supported; split it into "
                        "two ranges"),
    ("0 0 31 2 *", "invalid cron '0 0 31 2 *': impossible date: day 31 never occurs in February"),
    (" 0 0 31 2 * ", "invalid cron '0 0 31 2 *': impossible date: day 31 never occurs in February"),
    ("0 0 30,31 2 *", "invalid cron '0 0 30,31 2 *': impossible date: days 30 and 31 never occur in February"),
    ("0 0 31 4,6,9,11 *", "invalid cron '0 0 31 4,6,9,11 *': impossible date: day 31 never occurs in April, "
                          "June, September and November"),
    ("0 0 31 2,4 *", "invalid cron '0 0 31 2,4 *': impossible date: day 31 never occurs in February and April"),
    ("60 * * * *", "minute field: 60 in '60' is out of range 0-59"),
    ("70-80 * * * *", "minute field: 70 in '70-80' is out of range 0-59"),
    ("5-80 * * * *", "minute field: 80 in '5-80' is out of range 0-59"),
    ("70/15 * * * *", "minute field: 70 in '70/15' is out of range 0-59"),
    ("0 0 * * 9#2", "day-of-week field: 9 in '9#2' is out of range 0-7"),
    ("0 0 * * 9L", "day-of-week field: 9 in '9L' is out of range 0-7"),
    ("0 0 * * xyz#2", "day-of-week field: unknown name 'xyz' in 'xyz#2'"),
    ("0 0 * * X", "day-of-week field: unknown name 'x' in 'X'"),
    ("0 0 0 * *", "day-of-month field: 0 in '0' is out of range 1-31"),
    ("0 0 * foo *", "month field: unknown name 'foo' in 'foo'"),
    ("0 0 * jan-foo *", "month field: unknown name 'foo' in 'jan-foo'"),
    ("mon 0 * * *", "minute field: 'mon' in 'mon' is not a number"),
    ("-5 * * * *", "minute field: '-5' is not a value, a range a-b, '*' or a step form ('*/n', 'a-b/n')"),
    ("0\u00a00 * * *", "cron '0\\xa00 * * *' contains U+00A0 (NO-BREAK SPACE) at position 2: cron fields are "
                       "separated by spaces or tabs only; type a plain space"),
    ("0 0 * * *\n", "cron '0 0 * * *\\n' contains U+000A (LINE FEED) at position 10: cron fields are separated "
                    "by spaces or tabs only; type a plain space"),
    (None, "cron must be a string, not NoneType"),
    (5, "cron must be a string, not int"),
]


@pytest.mark.parametrize(("expr", "message"), MESSAGES)
def test_each_refusal_says_exactly_why(expr, message):
    """The whole message, as check_cron and CronRule raise it.

    kills: every string mutant of the messages (e.g. cronrules.py `f"cron has {len(fields)} field..."` ->
    `"XX..."`), `len(fields) != 1` -> `== 1` (the plural), `_value(...) >= top` -> `> top` (the hint for the
    field's last value) and `_COUNTS[index] - 1 + lo` -> `+ 1 + lo`, `expr.strip(' ')` -> `expr.strip()`, each
    `_value(index, text, item)` -> `_value(index, text, None)` (the item an out-of-range or unknown value is
    named in: '9#2', '9L', '70/15', '70-80')..."""
    with pytest.raises(CronError) as info:
        check_cron(expr)
    assert str(info.value) == message
    with pytest.raises(CronError) as again:
        CronRule(expr, "UTC")
    assert str(again.value) == message


@pytest.mark.parametrize(("tz", "message"), [
    (8, "time zone must be an IANA zone name or a zoneinfo.ZoneInfo, not int (8): a fixed UTC offset would ignore "
        "daylight saving time"),
    ("Not/A_Zone", "unknown time zone 'Not/A_Zone': use an IANA zone name such as 'Europe/Berlin'"),
    ("", "unknown time zone '': use an IANA zone name such as 'Europe/Berlin'"),
    ("+01:00", "unknown time zone '+01:00': use an IANA zone name such as 'Europe/Berlin'"),
])
def test_a_refused_zone_says_exactly_why(tz, message):
    """kills: the string mutants of `_zone`'s two messages."""
    with pytest.raises(CronError) as info:
        CronRule("0 0 * * *", tz)
    assert str(info.value) == message


# ---------------------------------------------------------------------------------------------------------------
# A rule's identity: the expression and the zone (planner shares rules by it)

def test_rules_are_equal_and_hash_alike_exactly_when_expression_and_zone_are():
    """kills: cronrules.py `CronRule.__eq__` `isinstance(...) and (...) == (...)` -> `or`, and `__hash__`
    `hash((self.expr, self.tz))` -> `hash(None)` (a dict keyed by rules would then hold one entry per bucket)."""
    berlin = CronRule("0 2 * * *", "Europe/Berlin")
    same = CronRule("0 2 * * *", ZoneInfo("Europe/Berlin"))
    assert berlin == same and hash(berlin) == hash(same)
    assert berlin != CronRule("0 3 * * *", "Europe/Berlin")
    assert berlin != CronRule("0 2 * * *", "Europe/Paris")
    assert berlin != "0 2 * * *" and berlin != ("0 2 * * *", ZoneInfo("Europe/Berlin"))
    assert hash(berlin) == hash(("0 2 * * *", ZoneInfo("Europe/Berlin")))
    assert len({berlin, same, CronRule("0 3 * * *", "Europe/Berlin")}) == 2
    assert repr(berlin) == "CronRule('0 2 * * *', 'Europe/Berlin')"


# ---------------------------------------------------------------------------------------------------------------
# prev_at_or_before across months, years and the beginning of the calendar

def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(("expr", "t", "expected"), [
    ("0 0 31 12 *", _utc(2026, 6, 1), _utc(2025, 12, 31)),
    ("0 12 1 * *", _utc(2026, 1, 1), _utc(2025, 12, 1, 12)),
    ("0 12 1 * *", _utc(2026, 3, 1, 11, 59), _utc(2026, 2, 1, 12)),
    ("0 0 * 2 mon#5", _utc(2026, 1, 1), _utc(2016, 2, 29)),
    ("0 0 * 2 mon#5", _utc(2000, 1, 1), _utc(1988, 2, 29)),
    ("0 0 29 2 *", _utc(5, 3, 1), _utc(4, 2, 29)),
    ("0 0 1 1 *", _utc(2, 6, 1), _utc(2, 1, 1)),
    ("0 0 1 6 *", _utc(2, 3, 1), _utc(1, 6, 1)),
    ("0 0 29 2 *", _utc(3, 1, 1), None),
    ("0 0 1 1 *", _utc(1, 6, 1), None),
])
def test_the_previous_occurrence_across_months_years_and_year_one(expr, t, expected):
    """kills: cronrules.py `_Spec.prev_day`'s month roll-over (`month == 0` -> `month == 1`, `12, year - 1` ->
    `13, ...`/`12, year + 1`), its `year < 1` -> `year < 2` / `year <= 1` stop (June of year 1 is found) and
    `end = 31` -> `end = 30` (the last day of the month before), and `prev_at_or_before`'s walk back chunk by chunk."""
    assert CronRule(expr, "UTC").prev_at_or_before(t) == expected


# ---------------------------------------------------------------------------------------------------------------
# A skipped fixed time at the very end of the gap; upcoming's count

@pytest.mark.parametrize(("expr", "zone", "start", "end", "expected"), [
    ("59 2 * * *", "Europe/Berlin", _utc(2026, 3, 28, 12), _utc(2026, 3, 30, 12),
     [_utc(2026, 3, 29, 1), _utc(2026, 3, 30, 0, 59)]),
    ("29 2 * * *", "Australia/Lord_Howe", _utc(2026, 10, 3, 6), _utc(2026, 10, 5, 6),
     [_utc(2026, 10, 3, 15, 30), _utc(2026, 10, 4, 15, 29)]),
])
def test_a_fixed_time_in_the_last_minute_of_a_gap_fires_at_the_jump(expr, zone, start, end, expected):
    """02:59 in Berlin (02:29 on Lord Howe's 30-minute jump) is the last skipped wall minute: it fires at the jump.

    kills: cronrules.py `_Spec.any_wall` `k <= hi` -> `k < hi` (the gap's last minute would not count)."""
    assert CronRule(expr, zone).between(start, end) == expected


def test_upcoming_gives_at_most_n_and_nothing_for_n_below_one():
    """kills: cronrules.py `CronRule.upcoming` `max(n, 0)` -> `None` (every occurrence to the end of time) and
    `max(n, 1)` (one for n <= 0)."""
    rule = CronRule("0 0 29 2 *", "UTC")
    start = _utc(9990, 1, 1)
    assert rule.upcoming(start, 1) == [_utc(9992, 2, 29)]
    assert rule.upcoming(start, 0) == [] and rule.upcoming(start, -1) == []
    assert rule.upcoming(start, 5) == [_utc(9992, 2, 29), _utc(9996, 2, 29)]


# ---------------------------------------------------------------------------------------------------------------
# Zone transitions are remembered per instant and per offset pair

def test_each_years_changes_are_found_with_earlier_ones_remembered():
    """One rule through two years of Berlin's changes (the transitions remembered as it goes): each spring's 02:00
    fires at that year's jump, each autumn's on the first pass.

    kills: cronrules.py `_transition`'s memo lookup `a < t <= b and before == off_a and after == off_b` -> `... or
    after == off_b` and -> `a < t <= b or ...` (2027's jump answered with 2026's), and the bisection's
    `lo = mid` / `hi = mid` / `(lo + hi) // 2` mutants that find another instant."""
    rule = CronRule("0 2 * * *", "Europe/Berlin")
    days = [(_utc(2026, 3, 28, 12), [_utc(2026, 3, 29, 1), _utc(2026, 3, 30, 0)]),
            (_utc(2026, 10, 24, 12), [_utc(2026, 10, 25, 0), _utc(2026, 10, 26, 1)]),
            (_utc(2027, 3, 27, 12), [_utc(2027, 3, 28, 1), _utc(2027, 3, 29, 0)]),
            (_utc(2027, 10, 30, 12), [_utc(2027, 10, 31, 0), _utc(2027, 11, 1, 1)])]
    for start, expected in days:
        assert rule.between(start, start + timedelta(days=2)) == expected, start


def test_a_transition_remembered_for_one_zone_never_answers_for_another():
    """Beirut (00:00 -> 01:00, 22:00 UTC) and Helsinki (03:00 -> 04:00, 01:00 UTC) both go from +02 to +03 on
    29 March 2026, three hours apart: schedules in both zones in one tick each fire at their own zone's jump.

    kills: cronrules.py `_transition`'s `_TRANSITIONS.setdefault(zone, [])` -> `setdefault(None, [])` (one memo
    for every zone: Helsinki's skipped 03:00 would fire at Beirut's change, 00:00 UTC)."""
    start, end = _utc(2026, 3, 28, 18), _utc(2026, 3, 29, 6)
    assert CronRule("0 0 * * *", "Asia/Beirut").between(start, end) == [_utc(2026, 3, 28, 22)]
    assert CronRule("0 3 * * *", "Europe/Helsinki").between(start, end) == [_utc(2026, 3, 29, 1)]


# ---------------------------------------------------------------------------------------------------------------
# Instants in; the fixed-time rule on short texts

class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: Python treats such a datetime as naive."""

    def utcoffset(self, dt: Optional[datetime]) -> None:
        return None


@pytest.mark.parametrize(("value", "error", "message"), [
    (date(2026, 1, 1), TypeError, "expected a datetime, got date"),
    ("2026-01-01T00:00Z", TypeError, "expected a datetime, got str"),
    (datetime(2026, 3, 29, 3, 0), ValueError,
     "naive datetime 2026-03-29T03:00:00: give an aware datetime (a time zone or UTC offset)"),
    (datetime(2026, 3, 29, 3, 0, tzinfo=_NoOffset()), ValueError,
     "naive datetime 2026-03-29T03:00:00: give an aware datetime (a time zone or UTC offset)"),
])
def test_only_aware_datetimes_are_instants(value, error, message):
    """kills: cronrules.py `to_utc`'s messages (string mutants) and `t.tzinfo is None or t.utcoffset() is None`
    -> `and` (a tzinfo without an offset would be read as the machine's local time)."""
    with pytest.raises(error) as info:
        to_utc(value)
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "fixed"), [("0 2", True), ("0", False), ("", False), ("*", False),
                                             ("0 *", False), ("* 2", False), ("0 2 * * *", True)])
def test_fixed_time_needs_a_minute_and_an_hour_field(text, fixed):
    """kills: cronrules.py `is_fixed_time` `len(fields) >= 2` -> `> 2` / `>= 3` and the `and`s -> `or`."""
    assert is_fixed_time(text) is fixed


# ---------------------------------------------------------------------------------------------------------------
# Forms at the edge of the grammar that are accepted, and what they match

@pytest.mark.parametrize(("expr", "start", "expected"), [
    ("*/1 * * * *", _utc(2026, 1, 1), [_utc(2026, 1, 1, 0, 1), _utc(2026, 1, 1, 0, 2)]),
    ("0-59/1 * * * *", _utc(2026, 1, 1), [_utc(2026, 1, 1, 0, 1), _utc(2026, 1, 1, 0, 2)]),
    ("0 0 * * */1", _utc(2026, 1, 1), [_utc(2026, 1, 2), _utc(2026, 1, 3)]),
    ("0 0 * * */7", _utc(2026, 1, 1), [_utc(2026, 1, 4), _utc(2026, 1, 11)]),
    ("0 0 * * */6", _utc(2026, 1, 1), [_utc(2026, 1, 3), _utc(2026, 1, 4)]),
    ("0 0 * * 0-7", _utc(2026, 1, 1), [_utc(2026, 1, 2), _utc(2026, 1, 3)]),
    ("0 0 * * 7-1", _utc(2026, 1, 1), [_utc(2026, 1, 4), _utc(2026, 1, 5)]),
    ("0 0 * * 6-sun", _utc(2026, 1, 1), [_utc(2026, 1, 3), _utc(2026, 1, 4)]),
    ("0 7-0 * * *", _utc(2026, 1, 1, 1), [_utc(2026, 1, 1, 7), _utc(2026, 1, 1, 8)]),
    ("0 0 1,L * *", _utc(2026, 1, 15), [_utc(2026, 1, 31), _utc(2026, 2, 1), _utc(2026, 2, 28), _utc(2026, 3, 1)]),
    ("0 0 L,1 * *", _utc(2026, 2, 15), [_utc(2026, 2, 28), _utc(2026, 3, 1)]),
    ("0 0 */2 * 0,1,2,3,4,5,6,7", _utc(2026, 1, 1), [_utc(2026, 1, 3), _utc(2026, 1, 5)]),
])
def test_edge_forms_are_accepted_and_match_what_they_say(expr, start, expected):
    """A step of 1 is the range itself ('*/1', 'a-b/1'); weekday 7 is Sunday, so '*/7' is Sundays, '0-7' every day
    and '7-1' Sunday and Monday; a wrapping hour range '7-0'; 'L' listed with a day is both days; weekdays 0-7
    listed one by one are the 7 weekdays, so all of them, '*' by croniter's rule: '*/2' days alone, not OR every day.

    kills: cronrules.py `_check_value_item`'s step check `int(step_text) < 1` -> `<= 1` / `< 2` ('*/1' refused),
    the equal-range check `(a, b) == (7, 0)` -> `(7, 1)` / `(8, 0)` / `index == 4 or ...`, and `_Spec._compute_mask`
    `dom_mask |= 1 << ndays` -> `dom_mask = 1 << ndays` (the last day would drop the 1st), and a weekday's `value % 7`
    -> `value % 8` (7 would be an eighth weekday)."""
    check_cron(expr)
    assert CronRule(expr, "UTC").upcoming(start, len(expected)) == expected


# ---------------------------------------------------------------------------------------------------------------
# The end of the calendar, and before 1970

def test_an_occurrence_in_the_year_9999_is_found():
    """The search runs through December 9998 into 9999 (and stops after it).

    kills: cronrules.py `_Spec.next_day`'s `year > 9999` -> `year >= 9999` (nothing in 9999)."""
    rule = CronRule("0 0 1 1 *", "UTC")
    assert rule.next_after(_utc(9998, 6, 1)) == _utc(9999, 1, 1)
    assert rule.upcoming(_utc(9998, 6, 1), 3) == [_utc(9999, 1, 1)]
    assert rule.next_after(_utc(9999, 1, 1)) is None


def test_occurrences_before_1970_are_found():
    """Wall minutes before the epoch are negative numbers: the skip ahead to the first candidate works on them too.

    kills: cronrules.py `_iter_after`'s `_EPOCH + _MINUTE * k` -> `_MINUTE / k` (a skip to 1970)."""
    assert CronRule("0 0 * * *", "UTC").upcoming(_utc(1960, 1, 1), 2) == [_utc(1960, 1, 2), _utc(1960, 1, 3)]
    assert CronRule("30 12 * * *", "Europe/Berlin").between(_utc(1960, 1, 1), _utc(1960, 1, 3)) == [
        _utc(1960, 1, 1, 11, 30), _utc(1960, 1, 2, 11, 30)]


# ---------------------------------------------------------------------------------------------------------------
# between: its memo, and long spans across two changes

def test_between_answers_each_window_for_itself():
    """The same end with another start is another question (the memo keys on both).

    kills: cronrules.py `CronRule.between`'s memo `last[0] == s and last[1] == e` -> `last[0] != s and ...`."""
    rule = CronRule("0 * * * *", "UTC")
    end = _utc(2026, 1, 1, 4)
    assert rule.between(_utc(2026, 1, 1), end) == [_utc(2026, 1, 1, h) for h in (1, 2, 3, 4)]
    assert rule.between(_utc(2026, 1, 1, 2), end) == [_utc(2026, 1, 1, 3), _utc(2026, 1, 1, 4)]
    assert rule.between(_utc(2026, 1, 1, 2), end) == [_utc(2026, 1, 1, 3), _utc(2026, 1, 1, 4)]


def test_a_year_long_window_follows_both_changes():
    """Berlin's offset is +01:00 at both ends of 2026 but +02:00 from March to October: a year in one call reads
    each day at its own offset.

    kills: cronrules.py `CronRule.between`'s `e - s <= _CHUNK` -> `... or True` (one chunk for a year, read at
    the offset of its ends)."""
    found = CronRule("0 2 * * *", "Europe/Berlin").between(_utc(2026, 1, 1), _utc(2027, 1, 1))
    assert len(found) == 365
    assert found[0] == _utc(2026, 1, 1, 1) and found[-1] == _utc(2026, 12, 31, 1)
    assert _utc(2026, 3, 29, 1) in found and _utc(2026, 6, 1) in found and _utc(2026, 10, 25) in found
    assert _utc(2026, 6, 1, 1) not in found


# ---------------------------------------------------------------------------------------------------------------
# The minutes next to a jump, and a 3-hour fall-back

def test_a_fixed_time_just_after_a_jump_fires_once_at_its_own_time():
    """03:01 in Berlin exists on the spring-forward day (02:00-02:59 are skipped): it fires at 03:01, and nothing
    fires at the jump, since no job's time was skipped.

    kills: cronrules.py `_chunk`'s `any_wall(_wall_ceil(tr, off_b), _wall_ceil(tr, off_a) - 1)` -> `+ 1` (03:00
    and 03:01 counted as skipped)."""
    assert CronRule("1 3 * * *", "Europe/Berlin").between(_utc(2026, 3, 28, 12), _utc(2026, 3, 29, 12)) == [
        _utc(2026, 3, 29, 1, 1)]


def test_a_three_hour_fall_back_repeats_a_real_time_job():
    """Casey (Antarctica) went from +11 to +08 at 15:00 UTC on 4 March 2010, a 3-hour fall-back (the largest shift the
    module handles): the wall times 23:00-01:59 came round again, so a job following real time at minute 0 of hour
    23 fires on both passes, the second at 15:00 UTC, one minute after the question's instant.

    kills: cronrules.py `_iter_after`'s first candidate `_wall_floor(s, offset) - _SHIFT_MINUTES - 1` -> `+ 1`
    (23:00 is exactly 3 hours before 01:59, the wall time of 14:59 UTC: it would be skipped to the next day)."""
    rule = CronRule("*/60 23 * * *", "Antarctica/Casey")
    assert rule.upcoming(_utc(2010, 3, 4, 11), 2) == [_utc(2010, 3, 4, 12), _utc(2010, 3, 4, 15)]
    assert rule.upcoming(_utc(2010, 3, 4, 14, 59), 2) == [_utc(2010, 3, 4, 15), _utc(2010, 3, 5, 15)]
    assert rule.next_after(_utc(2010, 3, 4, 14, 59)) == _utc(2010, 3, 4, 15)


# ---------------------------------------------------------------------------------------------------------------
# The machine's own time zone plays no part

@pytest.fixture
def local_zone(monkeypatch):
    """Set the process's local time zone (POSIX TZ, no zone files needed); restored after the test."""

    def set_zone(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_results_do_not_depend_on_the_machines_time_zone(local_zone):
    """With the machine on +01:00 all year (as Lagos), Berlin's rules are still Berlin's: to_utc gives UTC, and a
    02:30 job fires at the jump in spring and on the first pass in autumn, also when asked just after the change
    (where the machine's offset equals Berlin's new one).

    kills: cronrules.py `to_utc`'s `astimezone(UTC)` -> `astimezone(None)` (the local zone), `_step_after`'s
    `_offset(s - _MAX_SHIFT, zone)` -> `_offset(..., None)` and its check `_offset(t, zone) == offset` ->
    `_offset(t, None)` (both would trust the machine's +01:00 across Berlin's change)."""
    local_zone("WAT-1")
    t = to_utc(datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert t == _utc(2026, 6, 1, 4) and t.tzinfo is timezone.utc
    rule = CronRule("30 2 * * *", "Europe/Berlin")
    assert rule.next_after(_utc(2026, 3, 28, 12)) == _utc(2026, 3, 29, 1)
    assert CronRule("30 2 * * *", "Europe/Berlin").next_after(_utc(2026, 10, 25, 1, 10)) == _utc(2026, 10, 26, 1, 30)


# ---------------------------------------------------------------------------------------------------------------
# A defect the mutation round found (issue 16)


@pytest.mark.parametrize(("expr", "expected"), [
    ("0 0 * * 0L,1L,2L,3L,4L,5L,6L", [_utc(2026, 1, d) for d in (25, 26, 27, 28, 29, 30, 31)] + [_utc(2026, 2, 22)]),
    ("0 0 * * 0#1,1#1,2#1,3#1,4#1,5#1,6#1", [_utc(2026, 1, d) for d in (2, 3, 4, 5, 6, 7)] + [_utc(2026, 2, 1)]),
])
def test_every_weekdays_nth_or_last_is_a_week_of_the_month_not_every_day(expr, expected):
    """The last of each weekday is the month's last 7 days (croniter fires on those); ours fired every day, since
    the 7 distinct weekdays made _expand's field '*' (the fix: no '*' for a field with weekday#n/weekdayL items).
    Only this defect told apart `_check_value_item`'s weekday#n and weekdayL `% 7` -> `% 8` (x__check_value_item
    __mutmut_57 and _92: '0L,...,6L,7L' would be 8 weekdays, so not '*'); with it fixed they are equivalent (a
    weekday is only read modulo 7 in `_compute_mask`)."""
    assert CronRule(expr, "UTC").upcoming(_utc(2026, 1, 1), len(expected)) == expected
