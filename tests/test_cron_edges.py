"""Cron edges of issue 12 ("Cron edges"), each as a table: what cronrules accepts, refuses and answers.

- day-of-month OR day-of-week: a day that never occurs in the named months does not make an expression
  impossible when the day-of-week field is restricted too (it still fires on those weekdays);
- `upcoming(t, n)` returns n occurrences whenever they exist (the 50-year bound is per gap, not in total);
- only space and tab separate fields: any other whitespace (no-break space, U+3000, ...) is refused by name;
- steps as large as their field (`*/60`, `*/24`) are read as cron reads them (the field's first value);
  larger ones are refused with what to write instead; `a-L` in day-of-month means day a to the month's end.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dcs_maintenance.cronrules import CronError, CronRule, check_cron
from dcs_maintenance.describe import describe
from dcs_maintenance.schedule_checks import cron_problem

pytestmark = pytest.mark.usefixtures("fresh_cronrules_caches")

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------------------
# Day-of-month OR day-of-week: impossible only when neither can match

OR_RULE = [
    pytest.param("0 0 31 2 0", [utc(2026, 2, 1), utc(2026, 2, 8), utc(2026, 2, 15), utc(2026, 2, 22),
                                utc(2027, 2, 7)], id="31 February or Sunday: every Sunday in February"),
    pytest.param("0 0 30 2 mon", [utc(2026, 2, 2), utc(2026, 2, 9), utc(2026, 2, 16), utc(2026, 2, 23),
                                  utc(2027, 2, 1)], id="30 February or Monday"),
    pytest.param("0 0 31 4,6,9,11 1-5", [utc(2026, 4, 1), utc(2026, 4, 2), utc(2026, 4, 3), utc(2026, 4, 6),
                                         utc(2026, 4, 7)], id="31 in 30-day months or weekdays"),
    pytest.param("0 9 31 2,4 fri", [utc(2026, 2, 6, 9), utc(2026, 2, 13, 9), utc(2026, 2, 20, 9),
                                    utc(2026, 2, 27, 9), utc(2026, 4, 3, 9)], id="31 Feb/Apr or Friday"),
]


@pytest.mark.parametrize(("expr", "expected"), OR_RULE)
def test_an_impossible_day_with_a_weekday_fires_on_the_weekdays(expr, expected):
    check_cron(expr)
    assert cron_problem(expr) is None
    assert CronRule(expr, "UTC").upcoming(utc(2026, 1, 1), len(expected)) == expected


@pytest.mark.parametrize(("expr", "message"), [
    ("0 0 31 2 *", "impossible date: day 31 never occurs in February"),
    ("0 0 30 2 *", "impossible date: day 30 never occurs in February"),
    ("0 0 30,31 2 *", "days 30 and 31 never occur in February"),
    ("0 0 31 4,6,9,11 *", "day 31 never occurs in April, June, September and November"),
])
def test_an_impossible_day_without_a_weekday_is_still_refused(expr, message):
    with pytest.raises(CronError, match=message):
        check_cron(expr)


def test_the_or_rule_is_described():
    assert describe("0 0 31 2 0") == "at 00:00 on day 31 of the month and on Sunday in February"


# ---------------------------------------------------------------------------------------------------------------
# upcoming(t, n): n occurrences whenever they exist

def test_upcoming_returns_n_occurrences_of_a_sparse_expression():
    got = CronRule("0 0 29 2 *", "UTC").upcoming(utc(2026, 1, 1), 20)
    assert len(got) == 20
    assert got[:2] == [utc(2028, 2, 29), utc(2032, 2, 29)]
    assert got[17:] == [utc(2096, 2, 29), utc(2104, 2, 29), utc(2108, 2, 29)]  # 2100 is not a leap year


def test_upcoming_far_ahead_and_at_the_end_of_time():
    rule = CronRule("0 0 * 2 mon#5", "Europe/Berlin")  # a fifth Monday in February: a leap year starting on Monday
    got = rule.upcoming(utc(2026, 1, 1), 4)
    assert [t.year for t in got] == [2044, 2072, 2112, 2140]
    assert CronRule("0 0 29 2 *", "UTC").upcoming(utc(9990, 1, 1), 5) == [utc(9992, 2, 29), utc(9996, 2, 29)]


def test_next_after_still_answers_none_when_nothing_comes():
    assert CronRule("0 0 1 1 *", "UTC").next_after(utc(9999, 6, 1)) is None


# ---------------------------------------------------------------------------------------------------------------
# Field separators: space and tab only

@pytest.mark.parametrize(("char", "name"), [
    ("\u00a0", "U+00A0 (NO-BREAK SPACE)"),
    ("\u3000", "U+3000 (IDEOGRAPHIC SPACE)"),
    ("\u2003", "U+2003 (EM SPACE)"),
    ("\u0085", "U+0085 (NEXT LINE)"),
    ("\n", "U+000A (LINE FEED)"),
])
@pytest.mark.parametrize("where", ["between", "trailing", "leading"])
def test_other_whitespace_is_refused_by_name(char, name, where):
    expr = {"between": f"0{char}2 * * *", "trailing": f"0 2 * * *{char}", "leading": f"{char}0 2 * * *"}[where]
    with pytest.raises(CronError) as info:
        check_cron(expr)
    message = str(info.value)
    assert name in message and "spaces or tabs" in message, message
    assert cron_problem(expr) == message


def test_spaces_and_tabs_still_separate_fields():
    for expr in ("0 2 * * *", "0\t2\t*\t*\t*", "  0  2 *\t * *  "):
        check_cron(expr)
        assert CronRule(expr, "UTC").next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 2)


# ---------------------------------------------------------------------------------------------------------------
# Steps as large as the field; L at the end of a day-of-month range

STEPS = [
    pytest.param("*/60 * * * *", utc(2026, 1, 1, 10, 1), [utc(2026, 1, 1, 11), utc(2026, 1, 1, 12)],
                 "every hour", id="*/60 is minute 0"),
    pytest.param("0 */24 * * *", utc(2026, 1, 1, 10), [utc(2026, 1, 2), utc(2026, 1, 3)],
                 "at 00:00 every day", id="*/24 is hour 0"),
    pytest.param("0 0 */31 * *", utc(2026, 1, 1, 10), [utc(2026, 2, 1), utc(2026, 3, 1)],
                 "at 00:00 on day 1 of the month", id="*/31 is day 1"),
    pytest.param("0 0 1 */12 *", utc(2026, 1, 1, 10), [utc(2027, 1, 1), utc(2028, 1, 1)],
                 "at 00:00 on day 1 of the month in January", id="*/12 is January"),
    pytest.param("0 0 * * */7", utc(2026, 1, 1, 10), [utc(2026, 1, 4), utc(2026, 1, 11)],
                 "at 00:00 on Sunday", id="*/7 is Sunday"),
    pytest.param("0 0 29-L * *", utc(2026, 1, 28), [utc(2026, 1, 29), utc(2026, 1, 30), utc(2026, 1, 31),
                                                   utc(2026, 3, 29)],
                 "at 00:00 on days 29 through the last day of the month", id="29-L: 29th to the month's end"),
    pytest.param("0 0 29-L 2 *", utc(2026, 1, 1), [utc(2028, 2, 29), utc(2032, 2, 29)],
                 "at 00:00 on days 29 through the last day of the month in February", id="29-L in February"),
    pytest.param("0 0 1-l/10 * *", utc(2026, 1, 1, 10), [utc(2026, 1, 11), utc(2026, 1, 21), utc(2026, 1, 31),
                                                        utc(2026, 2, 1)],
                 "at 00:00 on days 1, 11, 21 and 31 of the month", id="1-L/10 with a step"),
]


@pytest.mark.parametrize(("expr", "start", "expected", "words"), STEPS)
def test_steps_as_large_as_the_field_and_ranges_to_l(expr, start, expected, words):
    check_cron(expr)
    assert CronRule(expr, "UTC").upcoming(start, len(expected)) == expected
    assert describe(expr) == words


@pytest.mark.parametrize(("expr", "message"), [
    ("*/90 * * * *", "write '0' for minute 0 once an hour"),
    ("0 */25 * * *", "write '0' for hour 0 once a day"),
    ("0 0 */32 * *", "write '1' for day 1 once a month"),
    ("0 0 31-L * *", "equal range '31-L'"),
    ("0 0 L-5 * *", "L can only end a day-of-month range"),
    ("0 0 1-L * mon#2", "cannot be combined with a day-of-month"),
])
def test_larger_steps_and_odd_l_forms_say_what_to_write(expr, message):
    with pytest.raises(CronError, match=message):
        check_cron(expr)


def test_a_step_as_large_as_the_field_is_a_wildcard_job_for_dst():
    """`*/60 2 * * *` fires at 02:00 like `0 2 * * *`, but its minute field starts with '*': by cron's DST rule it
    follows real time, so on the day 02:00 is skipped it does not fire (the fixed-time job fires at the jump)."""
    start, end = utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)
    assert CronRule("*/60 2 * * *", "Europe/Berlin").between(start, end) == [utc(2026, 3, 30, 0)]
    assert CronRule("0 2 * * *", "Europe/Berlin").between(start, end) == [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)]


def test_schedule_files_follow_the_same_rules():
    """Through the loader: the OR rule and '29-L' are valid schedules; a no-break space is a problem at the
    cron's path, named."""
    from dcs_maintenance.loader import parse_document

    doc = """
schedules:
  - {name: feb-sundays, action: restart, cron: "0 0 31 2 0", instances: {names: [a]}}
  - {name: month-end, action: restart, cron: "0 3 29-L * *", instances: {names: [a]}}
  - {name: hourly, action: restart, cron: "*/60 * * * *", instances: {names: [a]}}
  - {name: nbsp, action: restart, cron: "0\u00a03 * * *", instances: {names: [a]}}
"""
    schedules, problems = parse_document(doc, "edges.yaml")
    assert [s.name for s in schedules] == ["feb-sundays", "month-end", "hourly"]
    assert len(problems) == 1 and problems[0].path == "$.schedules[3].cron", problems
    assert "U+00A0 (NO-BREAK SPACE)" in problems[0].message
