"""Cron evaluation on a schedule's wall clock, with cron's (Vixie/Debian) rules across DST changes.

Pure: no I/O; the standard library only. Fields mean what croniter reads them as (names, ranges, steps,
``L``, ``#``, the day-of-month OR day-of-week rule): the expansion is computed here, in croniter.expand's
shape, and the tests compare the two on random expressions; croniter itself is not imported at run time
(it costs 100 us per expression and, with python-dateutil, a third of a cold start's imports). Neither
ever sees a datetime here: a fixed-offset tzinfo would freeze the offset, and croniter's own DST handling
is not cron's. The matching walls are enumerated from the expansion (naive wall minutes), then mapped
to real instants with zoneinfo offsets:

* fixed-time jobs (neither the minute nor the hour field starts with ``*``): a wall time skipped by a
  spring-forward jump fires once, at the jump (several skipped times, or a skipped and a regular time
  landing on that instant, fire once); a wall time repeated by a fall-back fires once, on its first pass;
* jobs whose minute or hour field starts with ``*`` follow real time: they fire at every instant whose
  wall time matches (twice in a repeated hour) and never in a gap (nothing is invented there).

Assumption: an offset change is at most 3 hours (DST shifts are 30 minutes to 2 hours), and a zone has at
most one offset change within about 18 hours. Rare one-off changes of a zone's standard offset can break
it (Samoa skipped a whole day in 2011): around such a change results may be off.

Every result is an aware datetime in UTC, ascending; compare instants in UTC only (two aware datetimes
in the same ZoneInfo zone compare by wall time and ignore ``fold``).
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from typing import Optional, Union

__all__ = ["CronError", "CronRule", "check_cron", "is_fixed_time", "to_utc"]

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MIN_ORDINAL = date.min.toordinal()
_MAX_ORDINAL = date.max.toordinal()
_MINUTE = timedelta(minutes=1)
_SECOND = timedelta(seconds=1)

# The largest offset change handled (see the module docstring), and the derived margins.
_MAX_SHIFT = timedelta(hours=3)
_SHIFT_MINUTES = 180
_SKIP_MARGIN = _MAX_SHIFT + timedelta(hours=1)
# Instants are computed in chunks of at most this length; a chunk looks _MAX_SHIFT either side of itself.
_CHUNK = timedelta(hours=12)
# Like croniter's max_years_between_matches: the longest gap searched between two occurrences.
MAX_YEARS_BETWEEN_MATCHES = 50
_HORIZON = timedelta(days=366 * MAX_YEARS_BETWEEN_MATCHES)
_MAX_MONTHS = 12 * MAX_YEARS_BETWEEN_MATCHES + 1
_END_OF_TIME = datetime.max.replace(tzinfo=UTC) - _CHUNK - _SKIP_MARGIN
# next_after steps straight to the next matching wall time when it is at most this far (a week and a day); beyond, it
# searches chunk by chunk.
_STEP_LIMIT = timedelta(days=8)


class CronError(ValueError):
    """An expression or time zone that this module does not accept; the message says why."""


def to_utc(t: datetime) -> datetime:
    """An aware datetime as the same instant in UTC; a naive one is a ValueError."""
    if not isinstance(t, datetime):
        raise TypeError(f"expected a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: give an aware datetime (a time zone or UTC offset)")
    return t.astimezone(UTC)


# ---------------------------------------------------------------------------------------------------------------
# Validation

_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_COUNTS = (60, 24, 31, 12, 7)
_MONTH_NAMES = {n: i for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_DOW_NAMES = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_NAMES = ({}, {}, {}, _MONTH_NAMES, _DOW_NAMES)
_USAGE = "use 5 fields: minute hour day-of-month month day-of-week"

# How a step larger than its field reads: (the value it means, how often, the cycle it does not carry into).
_FIRST_VALUE = (("minute 0", "an hour", "hour"), ("hour 0", "a day", "day"), ("day 1", "a month", "month"),
                ("January", "a year", "year"), ("Sunday", "a week", "week"))
# Separators: cron splits fields on spaces and tabs only (Vixie cron's get_string/skip_comments); any other
# whitespace is refused first.
_OTHER_SPACE = re.compile(r"[^\S \t]")  # whitespace (str.isspace) other than space and tab
_CONTROL_NAMES = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x0b": "LINE TABULATION", "\x0c": "FORM FEED",
                  "\x1c": "FILE SEPARATOR", "\x1d": "GROUP SEPARATOR", "\x1e": "RECORD SEPARATOR",
                  "\x1f": "UNIT SEPARATOR", "\x85": "NEXT LINE"}

_VALUE = r"([0-9]+|[a-z]+)"
_RE_DOM_TO_LAST = re.compile(r"^([0-9]+)-l(/.*)?$")
_RE_STEP = re.compile(r"^(.*)/(.*)$")
_RE_RANGE = re.compile(rf"^{_VALUE}-{_VALUE}$")
_RE_VALUE = re.compile(rf"^{_VALUE}$")
_RE_NTH = re.compile(rf"^{_VALUE}#([0-9]+)$")
_RE_LAST_DOW = re.compile(r"^(?:([0-9]+|[a-z]{3})l|l([0-9]+|[a-z]{3}))$")


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _value(index: int, text: str, item: str) -> int:
    field = _FIELD_NAMES[index]
    low = text.lower()
    if _is_number(low):
        n = int(low)
    elif low in _NAMES[index]:
        n = _NAMES[index][low]
    elif _NAMES[index]:
        raise CronError(f"{field} field: unknown name {text!r} in {item!r}")
    else:
        raise CronError(f"{field} field: {text!r} in {item!r} is not a number")
    lo, hi = _BOUNDS[index]
    if not lo <= n <= hi:
        raise CronError(f"{field} field: {n} in {item!r} is out of range {lo}-{hi}")
    return n


class _Item:
    """One checked list item: the item as croniter reads it (lower-case; day-of-month 'a-L' as 'a-31'), and what
    it matches: `values` (ints, weekdays 0-6; 'l' for the last day of the month; None for a bare '*') and, for
    weekday#n and weekdayL (the only items that have them), `nth` (weekday, n or 'l') pairs."""

    __slots__ = ("low", "values", "nth")

    def __init__(self, low: str, values: Optional[list], nth: tuple = ()) -> None:
        self.low, self.values, self.nth = low, values, nth


def _check_item(index: int, item: str) -> _Item:
    """Check one list item of a field and expand it (the same values croniter.expand gives; tests compare)."""
    low = item.lower()
    if index == 2:
        m = _RE_DOM_TO_LAST.match(low)
        if m:
            # Day a to the end of each month: days past a month's end never match, so 'a-31' says the same.
            low = f"{m.group(1)}-31{m.group(2) or ''}"
    return _check_value_item(index, item, low)


def _span(index: int, a: int, b: int, step: int = 1) -> list[int]:
    """The values from a to b by step; a range that wraps (b < a, e.g. fri-mon or 22-2) goes on from the
    field's minimum; weekday 7 is Sunday (0)."""
    lo, hi = _BOUNDS[index]
    values = list(range(a, b + 1, step)) if a <= b else list(range(a, hi + 1)) + list(range(lo, b + 1))
    return [v % 7 for v in values] if index == 4 else values


def _check_value_item(index: int, item: str, low: str) -> _Item:
    field = _FIELD_NAMES[index]
    lo, hi = _BOUNDS[index]
    if low == "":
        raise CronError(f"{field} field: empty list item")
    if low[0] == "h":
        raise CronError(f"{field} field: H (hashed) values such as {item!r} are not supported")
    if low[0] == "r":
        raise CronError(f"{field} field: R (random) values such as {item!r} are not supported")
    if "?" in low:
        raise CronError(f"{field} field: '?' is not supported; use '*'")
    if index == 2:
        if "w" in low:
            raise CronError(f"{field} field: W (nearest weekday) in {item!r} is not supported")
        if low == "l":
            return _Item(low, ["l"])
        if low.startswith("l-"):
            raise CronError(f"{field} field: L can only end a day-of-month range ('25-L': day 25 to the end of the "
                            f"month), not start one ({item!r})")
        if "l" in low:
            raise CronError(f"{field} field: L (last day of the month) must stand alone or end a range ('25-L'), "
                            f"not {item!r}")
    if index == 4:
        m = _RE_NTH.match(low)
        if m:
            day = _value(4, m.group(1), item) % 7
            if not 1 <= int(m.group(2)) <= 5:
                raise CronError(f"{field} field: the n in {item!r} (n-th weekday of the month) must be 1-5")
            return _Item(low, [day], ((day, int(m.group(2))),))
        m = _RE_LAST_DOW.match(low)
        if m:
            day = _value(4, m.group(1) or m.group(2), item) % 7
            return _Item(low, [day], ((day, "l"),))
        if low == "l":
            raise CronError(f"{field} field: 'L' needs a weekday, e.g. '5L' for the last Friday of the month")
        if "#" in low:
            raise CronError(f"{field} field: {item!r} is not of the form weekday#n (e.g. 'mon#2')")
    step_match = _RE_STEP.match(low)
    base = step_match.group(1) if step_match else low
    step = 1
    if step_match:
        step_text = step_match.group(2)
        if not _is_number(step_text) or int(step_text) < 1:
            raise CronError(f"{field} field: the step in {item!r} must be a whole number of at least 1")
        step = int(step_text)
        if base == "*" and step > _COUNTS[index]:
            # '*/60' (as large as the field) is the field's first value in every cron, as the reader expects
            # (once an hour); '*/90' is that too, which is never what its writer meant (every 90 minutes).
            first, per, cycle = _FIRST_VALUE[index]
            raise CronError(
                f"{field} field: step {step} in {item!r} is larger than the field's {_COUNTS[index]} values "
                f"({lo}-{hi}): cron reads it as {first} alone, since steps do not carry over into the next {cycle}; "
                f"write '{lo}' for {first} once {per}, or use a step of at most {_COUNTS[index]}")
        if _RE_VALUE.match(base):
            # A decision: rather than guess, reject. Vixie cron reads 'a/n' as 'a' alone, croniter 7 as a-max/n
            # (so '59/15' is minute 59 only), other crons differ again.
            start = item.split("/")[0]
            top = _COUNTS[index] - 1 + lo  # 59, 23, 31, 12, 6
            if _value(index, base, item) >= top:
                hint = f"write '{start}' for that value only"
            else:
                top_text = top if _is_number(base) else next(k for k, v in _NAMES[index].items() if v == top)
                hint = (f"write '{start}-{top_text}/{step}' for every {step} from {start}, "
                        f"or '{start}' for that value only")
            raise CronError(
                f"{field} field: {item!r} is a step without a range, which cron implementations read differently "
                f"(as '{start}' alone, or as every {step} from {start} to the end of the field); {hint}")
    if base == "*":
        if not step_match:
            return _Item(low, None)
        return _Item(low, _span(index, lo, hi, step))
    m = _RE_RANGE.match(base)
    if m:
        a, b = _value(index, m.group(1), item), _value(index, m.group(2), item)
        if a == b or (index == 4 and (a, b) == (7, 0)):  # 7-0 is Sunday to Sunday too; 0-7 is the whole week
            raise CronError(
                f"{field} field: equal range {item!r} is not supported (croniter reads it as the whole cycle); "
                f"write '{item.split('-')[0]}' for that value only")
        if step_match and b < a:
            # croniter restarts the step after the wrap inconsistently ('50-10/7' gives 50,57,5, not 50,57,4).
            raise CronError(f"{field} field: a wrapping range with a step ({item!r}) is not supported; "
                            "split it into two ranges")
        return _Item(low, _span(index, a, b, step))
    if _RE_VALUE.match(base):
        value = _value(index, base, item)
        return _Item(low, [value % 7 if index == 4 else value])
    raise CronError(f"{field} field: {item!r} is not a value, a range a-b, '*' or a step form ('*/n', 'a-b/n')")


def _check_fields(expr: str) -> list[str]:
    """Check the grammar; return the five fields as croniter should read them (lower-case, 'L5' forms)."""
    return [",".join(item.low for item in field) for field in _checked_fields(expr)]


def _checked_fields(expr: str) -> list[list[_Item]]:
    """Check the grammar of a string (`_parse` refuses any other type); return each field's checked items (their
    `low` texts are croniter's reading)."""
    odd = _OTHER_SPACE.search(expr)
    if odd:
        raise CronError(f"cron {expr!r} contains {_char_name(odd.group())} at position {odd.start() + 1}: cron fields "
                        "are separated by spaces or tabs only; type a plain space")
    fields = expr.split()  # spaces and tabs: the only whitespace left
    if not fields:
        raise CronError(f"cron is empty; {_USAGE}")
    if fields[0].startswith("@"):
        raise CronError(f"macros such as {fields[0]!r} are not supported; write the 5 fields, "
                        f"e.g. '0 0 * * *' for @daily ({_USAGE})")
    if len(fields) in (6, 7):
        raise CronError(f"{len(fields)}-field cron (with seconds or years) is not supported; {_USAGE}")
    if len(fields) != 5:
        raise CronError(f"cron has {len(fields)} field{'s' if len(fields) != 1 else ''}; {_USAGE}")
    checked = []
    for index, field in enumerate(fields):
        items = field.split(",")
        checked.append([_check_item(index, item) for item in items])
        if len(items) > 1 and "*" in items:
            raise CronError(f"{_FIELD_NAMES[index]} field: '*' cannot be part of a list ({field!r})")
    nth_items = [item for item in checked[4] if item.nth]  # weekday#n and weekdayL
    if nth_items:
        if len(nth_items) < len(checked[4]):
            raise CronError("day-of-week field: cannot mix plain weekdays with weekday#n or weekdayL forms "
                            f"({fields[4]!r})")
        if fields[2] != "*":
            raise CronError("day-of-week forms weekday#n and weekdayL cannot be combined with a day-of-month "
                            f"other than '*' ({fields[2]!r})")
    for item in checked[4]:  # croniter spells "last Friday" L5; accept the usual 5L / friL as well
        item.low = _to_croniter_last(item.low)
    return checked


def _expand(checked: list[list[_Item]]) -> tuple[list, dict]:
    """The fields' values in croniter.expand's shape: ['*'] for a bare '*', else the sorted values (day-of-month
    'l' last, weekdays 0-6); and weekday -> {n or 'l'} for the weekday#n and weekdayL forms. Computed here,
    not by croniter: the same answer (tests/test_cronrules.py compares them on random expressions), without
    importing croniter (and python-dateutil) on a cold start or spending 100 us per expression."""
    expanded: list = []
    nth: dict = {}
    texts = [",".join(item.low for item in field) for field in checked]
    for index, field in enumerate(checked):
        if field[0].values is None:
            expanded.append(["*"])
            continue
        values = {v for item in field for v in item.values}
        if len(values) == _COUNTS[index] and not any(item.nth for item in field) and not (
                (index == 2 and "*" not in texts[4]) or (index == 4 and "*" not in texts[2])):
            # croniter's rule: a field listing every value is '*', but a day field only when the other day field
            # has a '*' in it ('0 0 1-31 * mon' stays a union with Mondays, so every day; '0 0 */2 * 0-6' does not).
            # Never a field of weekday#n / weekdayL forms: '0L,...,6L' is the month's last week (issue 16).
            expanded.append(["*"])
            continue
        last = ["l"] if "l" in values else []
        expanded.append(sorted(v for v in values if v != "l") + last)
        for item in field:
            for day, n in item.nth:
                nth.setdefault(day, set()).add(n)
    return expanded, nth


def _char_name(char: str) -> str:
    """'U+00A0 (NO-BREAK SPACE)': the code point and its Unicode name, for a message."""
    import unicodedata

    name = unicodedata.name(char, "") or _CONTROL_NAMES.get(char, "a control character")
    return f"U+{ord(char):04X} ({name})"


def _to_croniter_last(item: str) -> str:
    m = _RE_LAST_DOW.match(item)
    if not m:
        return item
    day = m.group(1) or m.group(2)
    return "l" + str(_DOW_NAMES.get(day, day))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


_LONGEST_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: 29 in leap years
_MONTH_TITLES = ("", "January", "February", "March", "April", "May", "June", "July", "August", "September",
                 "October", "November", "December")  # not calendar.month_name: no locale (nor its import) involved


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return _LONGEST_MONTH[month]


def _impossible_date_message(spec: _Spec) -> Optional[str]:
    """Why no day can ever match ('day 31 never occurs in February'), or None when some day can.

    Only a restricted day-of-month with an unrestricted day-of-week can be impossible: with both restricted,
    cron's rule is day-of-month OR day-of-week, and every weekday occurs in every month ('0 0 31 2 0' fires
    on the Sundays of February); weekday#n and weekdayL need day-of-month '*' (checked with the grammar).
    """
    if spec.dom_star or not spec.dow_star or spec.dom_last:
        return None
    months = [m for m in range(1, 13) if spec.month_ok[m]]
    if any(d <= _LONGEST_MONTH[m] for d in spec.dom_days for m in months):
        return None
    days = sorted(spec.dom_days)
    month_names = [_MONTH_TITLES[m] for m in months]
    day_words = _join([str(d) for d in days])
    verb = "never occurs" if len(days) == 1 else "never occur"
    return f"impossible date: day{'s' if len(days) > 1 else ''} {day_words} {verb} in {_join(month_names)}"


def check_cron(expr: str) -> None:
    """Raise CronError, saying what is wrong, unless `expr` is a 5-field cron this module evaluates faithfully.

    Accepted: fields separated by spaces and tabs; numbers, names (jan, mon), lists, ranges a-b (also
    wrapping, fri-mon), steps */n and a-b/n ('*/60' is minute 0, as in every cron), L (last day of the
    month) alone or ending a range (25-L) in day-of-month, 5L / friL (last Friday) and mon#2 (second Monday)
    in day-of-week. Rejected: other whitespace (a no-break space), 6/7-field forms, @macros, H/R, '?', W,
    equal ranges (9-9), a step without a range (59/15), '*/n' with n larger than the field (*/90), and days
    that can never occur (0 0 31 2 *; but 0 0 31 2 0 fires on February's Sundays: day-of-month OR weekday).
    """
    _parse(expr)


def is_fixed_time(expr: str) -> bool:
    """True when neither the minute nor the hour field starts with '*' (cron's rule for DST handling)."""
    fields = expr.split()
    return len(fields) >= 2 and not fields[0].startswith("*") and not fields[1].startswith("*")


# ---------------------------------------------------------------------------------------------------------------
# Matching wall times (naive, as minute numbers since 1970-01-01 00:00 wall time)


class _Spec:
    """A parsed expression: which wall minutes match. Shared by every CronRule with the same expression."""

    __slots__ = ("fixed_time", "minute_ok", "hour_ok", "minutes", "hours", "month_ok", "dom_star",
                 "dom_days", "dom_last", "dow_star", "dow_days", "nth", "every_day", "_masks")

    def __init__(self, expr: str, expanded: list, nth: dict) -> None:
        self.fixed_time = is_fixed_time(expr)
        minute, hour, dom, month, dow = expanded
        self.minutes = list(range(60)) if minute == ["*"] else sorted(minute)
        self.hours = list(range(24)) if hour == ["*"] else sorted(hour)
        self.minute_ok = _flags(60, tuple(self.minutes))
        self.hour_ok = _flags(24, tuple(self.hours))
        self.month_ok = _flags(13, tuple(range(13)) if month == ["*"] else tuple(month))
        self.dom_star = dom == ["*"]
        self.dom_days = frozenset(d for d in dom if isinstance(d, int))
        self.dom_last = "l" in dom
        self.dow_star = dow == ["*"]
        self.dow_days = frozenset(d for d in dow if isinstance(d, int))  # 0-6, as croniter.expand gives them
        self.nth = {wd: frozenset(ns) for wd, ns in nth.items()}
        self.every_day = self.dom_star and self.dow_star and month == ["*"]
        self._masks: dict[int, int] = {}

    # Days -------------------------------------------------------------------------------------------------------

    def month_mask(self, year: int, month: int) -> int:
        """Bit d is set when day d of that month matches (day-of-month, month, day-of-week, L, #)."""
        key = year * 16 + month
        mask = self._masks.get(key)
        if mask is None:
            mask = self._compute_mask(year, month)
            if len(self._masks) >= 4096:
                self._masks.clear()
            self._masks[key] = mask
        return mask

    def _compute_mask(self, year: int, month: int) -> int:
        if not self.month_ok[month]:
            return 0
        ndays = _days_in_month(year, month)
        full = (1 << (ndays + 1)) - 2
        if self.every_day:
            return full
        if self.dom_star:
            dom_mask = full
        else:
            dom_mask = 0
            for d in self.dom_days:
                if d <= ndays:
                    dom_mask |= 1 << d
            if self.dom_last:
                dom_mask |= 1 << ndays
        if self.dow_star:
            dow_mask = full
        else:
            first_wd = date(year, month, 1).isoweekday()  # cron's numbering modulo 7 (Sunday: 7, i.e. 0)
            dow_mask = 0
            if self.nth:
                for wd, ns in self.nth.items():
                    days = range(1 + (wd - first_wd) % 7, ndays + 1, 7)
                    for n in ns:
                        if n == "l":
                            dow_mask |= 1 << days[-1]
                        elif n <= len(days):
                            dow_mask |= 1 << days[n - 1]
            else:
                for wd in self.dow_days:
                    for d in range(1 + (wd - first_wd) % 7, ndays + 1, 7):
                        dow_mask |= 1 << d
        if self.dom_star or self.dow_star:
            return dom_mask & dow_mask
        # Both restricted: cron's (and croniter's) rule is day-of-month OR day-of-week.
        return dom_mask | dow_mask

    def day_ok(self, day: int) -> bool:
        if self.every_day:
            return True
        d = date.fromordinal(_EPOCH_ORDINAL + day)
        return bool(self.month_mask(d.year, d.month) >> d.day & 1)

    def next_day(self, day: int, limit: Optional[int] = None) -> Optional[int]:
        """The first matching day number after `day` (and not after `limit`), or None."""
        if self.every_day:
            return day + 1 if limit is None or day + 1 <= limit else None
        ordinal = _EPOCH_ORDINAL + day
        if ordinal >= _MAX_ORDINAL:
            return None
        d = date.fromordinal(ordinal)
        year, month, start = d.year, d.month, d.day + 1
        limit_key = None
        if limit is not None:
            ld = date.fromordinal(min(_MAX_ORDINAL, max(_MIN_ORDINAL, _EPOCH_ORDINAL + limit)))
            limit_key = ld.year * 12 + ld.month
        for _ in range(_MAX_MONTHS):
            if limit_key is not None and year * 12 + month > limit_key:
                return None
            mask = self.month_mask(year, month) >> start
            if mask:
                found = date(year, month, start + (mask & -mask).bit_length() - 1).toordinal() - _EPOCH_ORDINAL
                return found if limit is None or found <= limit else None
            start = 1
            month += 1
            if month == 13:
                month, year = 1, year + 1
                if year > 9999:
                    return None
        return None

    def prev_day(self, day: int) -> Optional[int]:
        """The last matching day number before `day`, or None."""
        if self.every_day:
            return day - 1
        ordinal = _EPOCH_ORDINAL + day
        if ordinal <= _MIN_ORDINAL:
            return None
        d = date.fromordinal(ordinal)
        year, month, end = d.year, d.month, d.day - 1
        for _ in range(_MAX_MONTHS):
            if end >= 1:
                mask = self.month_mask(year, month) & ((2 << end) - 1)
                if mask:
                    return date(year, month, mask.bit_length() - 1).toordinal() - _EPOCH_ORDINAL
            month -= 1
            if month == 0:
                month, year = 12, year - 1
                if year < 1:
                    return None
            end = 31
        return None

    # Wall minutes ------------------------------------------------------------------------------------------------

    def next_wall(self, k: int) -> Optional[int]:
        """The first matching wall minute strictly after wall minute `k`, or None within the search bound."""
        k += 1
        day, tod = divmod(k, 1440)
        if self.day_ok(day):
            found = self._next_tod(tod)
            if found is not None:
                return day * 1440 + found
        day = self.next_day(day)
        if day is None:
            return None
        return day * 1440 + self.hours[0] * 60 + self.minutes[0]

    def prev_wall(self, k: int) -> Optional[int]:
        """The last matching wall minute at or before wall minute `k`, or None within the search bound."""
        day, tod = divmod(k, 1440)
        if self.day_ok(day):
            found = self._prev_tod(tod)
            if found is not None:
                return day * 1440 + found
        day = self.prev_day(day)
        if day is None:
            return None
        return day * 1440 + self.hours[-1] * 60 + self.minutes[-1]

    def _next_tod(self, tod: int) -> Optional[int]:
        hour, minute = divmod(tod, 60)
        hours, minutes = self.hours, self.minutes
        i = bisect_left(hours, hour)
        if i < len(hours) and hours[i] == hour:
            j = bisect_left(minutes, minute)
            if j < len(minutes):
                return hour * 60 + minutes[j]
            i += 1
        if i < len(hours):
            return hours[i] * 60 + minutes[0]
        return None

    def _prev_tod(self, tod: int) -> Optional[int]:
        hour, minute = divmod(tod, 60)
        hours, minutes = self.hours, self.minutes
        i = bisect_right(hours, hour) - 1
        if i >= 0 and hours[i] == hour:
            j = bisect_right(minutes, minute) - 1
            if j >= 0:
                return hour * 60 + minutes[j]
            i -= 1
        if i >= 0:
            return hours[i] * 60 + minutes[-1]
        return None

    def walls(self, lo: int, hi: int) -> list[int]:
        """Every matching wall minute in [lo, hi], ascending."""
        if hi < lo:
            return []
        if hi - lo < 16:  # the common tick: a handful of minutes, usually rejected by the minute table
            minute_ok, hour_ok = self.minute_ok, self.hour_ok
            return [k for k in range(lo, hi + 1)
                    if minute_ok[k % 60] and hour_ok[k // 60 % 24] and self.day_ok(k // 1440)]
        out: list[int] = []
        last_day = hi // 1440
        day: Optional[int] = lo // 1440
        if not self.day_ok(day):
            day = self.next_day(day, last_day)
        while day is not None and day <= last_day:
            base = day * 1440
            t_lo, t_hi = max(lo - base, 0), min(hi - base, 1439)
            for hour in self.hours:
                hb = hour * 60
                if hb > t_hi:
                    break
                if hb + 59 < t_lo:
                    continue
                for minute in self.minutes:
                    tod = hb + minute
                    if tod > t_hi:
                        break
                    if tod >= t_lo:
                        out.append(base + tod)
            day = self.next_day(day, last_day)
        return out

    def any_wall(self, lo: int, hi: int) -> bool:
        k = self.next_wall(lo - 1)
        return k is not None and k <= hi


@functools.lru_cache(maxsize=1024)
def _flags(size: int, values: tuple) -> tuple[bool, ...]:
    """(value in values for every value below size): shared by every expression with the same field."""
    present = set(values)
    return tuple(v in present for v in range(size))


def _parse(expr: str) -> _Spec:
    if not isinstance(expr, str):
        raise CronError(f"cron must be a string, not {type(expr).__name__}")
    return _parse_cached(expr)


@functools.lru_cache(maxsize=32768)
def _parse_cached(expr: str) -> _Spec:
    checked = _checked_fields(expr)
    # Impossible dates are judged on the expansion, not by croniter's strict mode: that refuses '0 0 31 2 0'
    # (which fires on the Sundays of February) and '0 0 31,L 2 *'.
    spec = _Spec(expr, *_expand(checked))
    message = _impossible_date_message(spec)
    if message:
        raise CronError(f"invalid cron {expr.strip(' ')!r}: {message}")
    return spec


# ---------------------------------------------------------------------------------------------------------------
# From walls to instants


def _offset(t: datetime, zone: zoneinfo.ZoneInfo) -> timedelta:
    return t.astimezone(zone).utcoffset()  # type: ignore[return-value]


def _wall_floor(t: datetime, offset: timedelta) -> int:
    """The wall minute number of instant `t` at `offset`, rounded down."""
    return (t - _EPOCH + offset) // _MINUTE


def _wall_ceil(t: datetime, offset: timedelta) -> int:
    return -((_EPOCH - t - offset) // _MINUTE)


_TRANSITIONS: dict[zoneinfo.ZoneInfo, list[tuple[datetime, timedelta, timedelta]]] = {}


def _transition(zone: zoneinfo.ZoneInfo, a: datetime, b: datetime, off_a: timedelta, off_b: timedelta) -> datetime:
    """The instant in (a, b] at which `zone`'s offset changes from off_a (at a) to off_b (at b)."""
    known = _TRANSITIONS.setdefault(zone, [])
    for t, before, after in known:
        if a < t <= b and before == off_a and after == off_b:
            return t
    lo = (a - _EPOCH) // _SECOND  # offset off_a here: transitions fall on whole seconds
    hi = -((_EPOCH - b) // _SECOND)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(_EPOCH + timedelta(seconds=mid), zone) == off_a:
            lo = mid
        else:
            hi = mid
    t = _EPOCH + timedelta(seconds=hi)
    if len(known) >= 256:
        known.clear()
    known.append((t, off_a, off_b))
    return t


def _zone(tz: object) -> zoneinfo.ZoneInfo:
    if isinstance(tz, zoneinfo.ZoneInfo):
        return tz
    if isinstance(tz, str):
        try:
            return zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise CronError(f"unknown time zone {tz!r}: use an IANA zone name such as 'Europe/Berlin'") from None
    raise CronError(
        f"time zone must be an IANA zone name or a zoneinfo.ZoneInfo, not {type(tz).__name__} ({tz!r}): "
        "a fixed UTC offset would ignore daylight saving time")


class CronRule:
    """A validated cron expression read on the wall clock of an IANA zone."""

    __slots__ = ("expr", "tz", "fixed_time", "_spec", "_last_next", "_last_between")

    def __init__(self, expr: str, tz: Union[str, zoneinfo.ZoneInfo]) -> None:
        self._spec = _parse(expr)
        self.expr: str = expr
        self.tz: zoneinfo.ZoneInfo = _zone(tz)
        self.fixed_time: bool = self._spec.fixed_time
        # The last question and answer: schedules sharing a rule (planner.rule) ask the same one in a tick.
        self._last_next: tuple = (None, None)
        self._last_between: tuple = (None, None, ())

    def __repr__(self) -> str:
        return f"CronRule({self.expr!r}, {self.tz.key!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronRule) and (self.expr, self.tz) == (other.expr, other.tz)

    def __hash__(self) -> int:
        return hash((self.expr, self.tz))

    # Public API ----------------------------------------------------------------------------------------------------

    def next_after(self, t: datetime) -> Optional[datetime]:
        """The first fire instant strictly after `t` (aware), in UTC; None if there is none in 50 years.

        A step, not a search, when no offset change is near: the next matching wall minute after t's, read
        at t's offset, is the answer when the offset stays the same from 3 hours before t to 3 hours after
        that instant (`_chunk`'s one-offset case). So a frequent schedule's next fire costs a few
        microseconds, whatever its step, and a daily or weekly one a few more.
        """
        s = to_utc(t)  # UTC: the memo's comparison is then between instants
        last = self._last_next
        if last[0] == s:
            return last[1]
        found = self._step_after(s)
        self._last_next = (s, found)
        return found

    def _step_after(self, s: datetime) -> Optional[datetime]:
        zone = self.tz
        try:
            offset = _offset(s - _MAX_SHIFT, zone)
            k = self._spec.next_wall(_wall_floor(s, offset))
            if k is not None:
                found = _EPOCH + _MINUTE * k - offset
                if found - s <= _STEP_LIMIT:
                    # Walls and instants correspond one to one while the offset stays the same from 3 hours before
                    # s to 3 hours after `found`. Samples 12 hours apart see any change in between: a zone keeps an
                    # offset for more than 18 hours (the module's assumption).
                    t, low = found + _MAX_SHIFT, s - _MAX_SHIFT
                    while t > low and _offset(t, zone) == offset:
                        t -= _CHUNK
                    if t <= low:
                        return found
        except OverflowError:
            pass
        return next(self._iter_after(s), None)

    def upcoming(self, t: datetime, n: int) -> list[datetime]:
        """The next `n` fire instants after `t`, in UTC: fewer only when the search reaches the year 9999 or
        a gap of 50 years between two occurrences."""
        return list(islice(self._iter_after(to_utc(t)), max(n, 0)))

    def between(self, start: datetime, end: datetime) -> list[datetime]:
        """Fire instants in (start, end], ascending, in UTC."""
        s, e = to_utc(start), to_utc(end)
        if e <= s:
            return []
        last = self._last_between
        if last[0] == s and last[1] == e:
            return list(last[2])
        found = self._chunk(s, e) if e - s <= _CHUNK else list(self._iter_after(s, e))
        self._last_between = (s, e, tuple(found))
        return found

    def prev_at_or_before(self, t: datetime) -> Optional[datetime]:
        """The latest fire instant at or before `t`, in UTC; None if there is none in 50 years."""
        spec, zone = self._spec, self.tz
        e = to_utc(t)
        try:
            lower = e - _HORIZON
        except OverflowError:
            lower = datetime.min.replace(tzinfo=UTC)
        try:
            while e > lower:
                offset = _offset(e, zone)
                # Any instant <= e has a wall time (or, for a collapsed gap, a skipped wall time) <= wall(e) + 3h.
                k = spec.prev_wall(_wall_floor(e, offset) + _SHIFT_MINUTES + 1)
                if k is None:
                    return None
                latest = _EPOCH + _MINUTE * k - offset + _SKIP_MARGIN
                if latest < e:
                    e = latest
                s = e - _CHUNK
                found = self._chunk(s, e)
                if found:
                    return found[-1]
                e = s
        except OverflowError:
            return None
        return None

    # Internals -----------------------------------------------------------------------------------------------------

    def _iter_after(self, t: datetime, limit: Optional[datetime] = None) -> Iterator[datetime]:
        """Fire instants after `t` (and at or before `limit`), ascending. Without a limit it ends at the end of
        time, or where no wall time matches within 50 years of the last one (`next_wall`'s search bound)."""
        spec, zone = self._spec, self.tz
        if limit is None:
            limit = _END_OF_TIME
        s = t
        try:
            while s < limit:
                offset = _offset(s, zone)
                # Any instant > s has a wall time (or, for a collapsed gap, a skipped wall time) > wall(s) - 3h:
                # skip straight to the chunk that can hold the first candidate.
                k = spec.next_wall(_wall_floor(s, offset) - _SHIFT_MINUTES - 1)
                if k is None:
                    return
                earliest = _EPOCH + _MINUTE * k - offset - _SKIP_MARGIN
                if earliest > s:
                    s = earliest
                if s >= limit:
                    return
                e = min(s + _CHUNK, limit)
                yield from self._chunk(s, e)
                s = e
        except OverflowError:
            return

    def _chunk(self, s: datetime, e: datetime) -> list[datetime]:
        """Fire instants in (s, e] for e - s <= _CHUNK: at most one offset change in [s - 3h, e + 3h]."""
        spec, zone = self._spec, self.tz
        off_b = _offset(s - _MAX_SHIFT, zone)
        off_a = _offset(e + _MAX_SHIFT, zone)
        if off_b == off_a:
            # Fast path: one offset throughout, so walls and instants correspond one to one (no wall near
            # here is skipped or repeated: that would need an offset change within 3 hours).
            lo, hi = _wall_floor(s, off_b) + 1, _wall_floor(e, off_b)
            if hi < lo:
                return []
            return [_EPOCH + _MINUTE * k - off_b for k in spec.walls(lo, hi)]
        tr = _transition(zone, s - _MAX_SHIFT, e + _MAX_SHIFT, off_b, off_a)
        # Instants before the change: wall = instant + off_b, walls < tr + off_b.
        lo = _wall_floor(s, off_b) + 1
        hi = min(_wall_floor(e, off_b), _wall_ceil(tr, off_b) - 1)
        out = [_EPOCH + _MINUTE * k - off_b for k in spec.walls(lo, hi)]
        # Instants from the change on: wall = instant + off_a, walls >= tr + off_a.
        lo = max(_wall_floor(s, off_a) + 1, _wall_ceil(tr, off_a))
        if spec.fixed_time and off_a < off_b:
            # Fall-back: walls in [tr + off_a, tr + off_b) come round again; a fixed-time job ran on the first pass.
            lo = max(lo, _wall_ceil(tr, off_b))
        hi = _wall_floor(e, off_a)
        after = [_EPOCH + _MINUTE * k - off_a for k in spec.walls(lo, hi)]
        if (spec.fixed_time and off_a > off_b and s < tr <= e
                and spec.any_wall(_wall_ceil(tr, off_b), _wall_ceil(tr, off_a) - 1)
                and not (after and after[0] == tr)):
            # Spring-forward: walls in [tr + off_b, tr + off_a) never happen; a fixed-time job runs once at the jump.
            out.append(tr)
        out.extend(after)
        return out
