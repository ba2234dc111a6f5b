"""Plain-language descriptions of 5-field cron expressions ("0 2 * * *" -> "at 02:00 every day").

Standard library only. Reads the forms that cronrules.check_cron accepts: numbers, names, lists, ranges
(also wrapping ones such as fri-mon), steps (*/n, a-b/n; */60 is minute 0), L in day-of-month (alone or
ending a range, 25-L), weekday#n and weekdayL in day-of-week. Common shapes get an idiomatic sentence;
anything else a faithful field-by-field one. Day fields follow cron's rule: when both day-of-month and
day-of-week are restricted, either one matching is enough ("on day 13 of the month and on Friday").
Never raises: text it cannot read is described as it is.
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["describe"]

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_ABBR = {m[:3].lower(): i for i, m in enumerate(_MONTHS, start=1)}
_DAY_ABBR = {d[:3].lower(): i for i, d in enumerate(_DAYS)}
_NTH_WORDS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
_RE_LAST_DOW = re.compile(r"^(?:(\d+|[a-z]{3})l|l(\d+|[a-z]{3}))$")
_MAX_LISTED = 12  # a step expands to an explicit list up to this many values
_TO_LAST = -1  # _Item.nth of a day-of-month range that ends with L ('25-L')


# Parsing ---------------------------------------------------------------------------------------------------------

class _Item:
    """One list item of a field: kind is 'all', 'value', 'range', 'last' (day-of-month L), 'nth' or 'last_dow'."""

    __slots__ = ("kind", "a", "b", "step", "nth")

    def __init__(self, kind: str, a: int = 0, b: int = 0, step: Optional[int] = None, nth: int = 0) -> None:
        self.kind, self.a, self.b, self.step, self.nth = kind, a, b, step, nth


def _number(index: int, text: str) -> int:
    if text.isdigit():
        return int(text)
    if index == 3:
        return _MONTH_ABBR[text]
    if index == 4:
        return _DAY_ABBR[text]
    raise ValueError(text)


def _parse_field(index: int, text: str) -> list[_Item]:
    items = []
    for raw in text.lower().split(","):
        step: Optional[int] = None
        if "/" in raw:
            raw, step_text = raw.split("/", 1)
            step = int(step_text)
        if index == 4 and "#" in raw:
            day, nth = raw.split("#", 1)
            items.append(_Item("nth", a=_number(4, day) % 7, nth=int(nth)))
            continue
        m = _RE_LAST_DOW.match(raw) if index == 4 else None
        if m:
            items.append(_Item("last_dow", a=_number(4, m.group(1) or m.group(2)) % 7))
            continue
        if index == 2 and raw == "l":
            items.append(_Item("last"))
            continue
        lo, hi = _BOUNDS[index]
        if raw == "*" and step is not None and step >= (7 if index == 4 else hi - lo + 1):
            items.append(_Item("value", lo))  # '*/60': a step as large as the field is its first value
        elif raw == "*":
            items.append(_Item("all", lo, 6 if index == 4 else hi, step))
        elif index == 2 and raw.endswith("-l"):  # '25-L': day 25 to the end of the month
            items.append(_Item("range", _number(index, raw[:-2]), hi, step, nth=_TO_LAST))
        elif "-" in raw:
            a, b = raw.split("-", 1)
            items.append(_Item("range", _number(index, a), _number(index, b), step))
        elif step is not None:  # 'a/n' (rejected by check_cron): croniter's reading, a through the maximum
            items.append(_Item("range", _number(index, raw), 6 if index == 4 else hi, step))
        else:
            items.append(_Item("value", _number(index, raw)))
    return items


def _values(index: int, item: _Item) -> list[int]:
    """The values of a value/range/all item, in cron order (a wrapping range continues from the minimum)."""
    if item.kind == "value":
        return [item.a % 7 if index == 4 else item.a]
    lo, hi = _BOUNDS[index]
    if index == 4:
        hi = 6
    a, b, step = item.a, item.b, item.step or 1
    if index == 4 and b == 7:
        values = list(range(a, 8, step))
    elif b >= a:
        values = list(range(a, b + 1, step))
    else:
        values = list(range(a, hi + 1, step)) + list(range(lo, b + 1, step))
    out: list[int] = []
    for v in values:
        v = v % 7 if index == 4 else v
        if v not in out:
            out.append(v)
    return out


def _is_all(items: list[_Item]) -> bool:
    return len(items) == 1 and items[0].kind == "all" and items[0].step is None


def _only_values(items: list[_Item]) -> bool:
    return all(i.kind == "value" for i in items)


def _explicit(items: list[_Item]) -> bool:
    """Values and ranges, no '*': small ones read best as a list of clock times."""
    return all(i.kind in ("value", "range") for i in items)


def _expand(index: int, items: list[_Item]) -> list[int]:
    out: set[int] = set()
    for item in items:
        out.update(_values(index, item))
    return sorted(out)


# Words -----------------------------------------------------------------------------------------------------------

def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return str(n) + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def _name(index: int, v: int) -> str:
    if index == 3:
        return _MONTHS[v - 1]
    if index == 4:
        return _DAYS[v % 7]
    return str(v)


def _item_words(index: int, item: _Item, unit: str) -> list[str]:
    """Words for one item: ['5'], ['5 through 10'], ['every 5th minute from 10 through 50'] or a value list."""
    if item.kind == "value":
        return [_name(index, item.a)]
    if item.step is None or item.step == 1:
        if item.kind == "all":
            return [f"every {unit}"]
        if index == 4 and item.a == 0 and item.b == 7:
            return [f"{_name(4, 0)} through {_name(4, 6)}"]
        if item.nth == _TO_LAST:
            return [f"{item.a} through the last day"]
        if item.b < item.a and index not in (3, 4):  # a wrapping range of numbers: say both parts
            lo, hi = _BOUNDS[index]
            return [f"{item.a} through {hi}", f"{lo} through {item.b}"]
        return [f"{_name(index, item.a)} through {_name(index, item.b)}"]
    values = _values(index, item)
    if len(values) <= _MAX_LISTED or index in (3, 4):
        return [_name(index, v) for v in values]
    if item.kind == "all":
        return [f"every {_ordinal(item.step)} {unit} from {values[0]}"]
    return [f"every {_ordinal(item.step)} {unit} from {item.a} through {item.b}"]


def _field_words(index: int, items: list[_Item], unit: str) -> tuple[str, bool]:
    """The items of a field joined; the flag says whether the phrase is plural ('minutes 0 and 30')."""
    words: list[str] = []
    for item in items:
        words.extend(_item_words(index, item, unit))
    plural = len(words) > 1 or any(" through " in w for w in words)
    return _join(words), plural


# Time of day -----------------------------------------------------------------------------------------------------

def _time_phrase(minutes: list[_Item], hours: list[_Item]) -> tuple[str, bool]:
    """(phrase, at_times): at_times when the phrase names clock times, so "every day" reads well after it."""
    minute_step = minutes[0].step if len(minutes) == 1 and minutes[0].kind == "all" else None
    every_minute = _is_all(minutes)
    even_minute_step = minute_step is not None and 60 % minute_step == 0
    if _explicit(minutes) and _explicit(hours):
        times = sorted((h, m) for h in _expand(1, hours) for m in _expand(0, minutes))
        if len(times) <= 8:
            return "at " + _join([_hhmm(h, m) for h, m in times]), True
    if _is_all(hours):
        if every_minute:
            return "every minute", False
        if even_minute_step:
            return f"every {minute_step} minutes", False
        if _only_values(minutes):
            values = _expand(0, minutes)
            if values == [0]:
                return "every hour", False
            return f"every hour at minute{'s' if len(values) > 1 else ''} {_join([str(v) for v in values])}", False
        words, plural = _field_words(0, minutes, "minute")
        return f"every hour at minute{'s' if plural else ''} {words}", False
    hour_step = hours[0].step if len(hours) == 1 and hours[0].kind == "all" else None
    if hour_step is not None and 24 % hour_step == 0 and _only_values(minutes) and len(_expand(0, minutes)) == 1:
        minute = _expand(0, minutes)[0]
        return f"every {hour_step} hours" + (f" at minute {minute}" if minute else ""), False
    if len(minutes) == 1 and minutes[0].kind == "value" and len(hours) == 1 and hours[0].kind == "range" \
            and not hours[0].step:
        minute = minutes[0].a
        return f"every hour from {_hhmm(hours[0].a, minute)} through {_hhmm(hours[0].b, minute)}", False
    if (every_minute or even_minute_step) and len(hours) == 1 and hours[0].kind in ("value", "range") \
            and not hours[0].step:
        first = hours[0].a
        last = hours[0].b if hours[0].kind == "range" else hours[0].a
        last_minute = 59 if every_minute else 60 - (minute_step or 1)
        what = "every minute" if every_minute else f"every {minute_step} minutes"
        return f"{what} from {_hhmm(first, 0)} through {_hhmm(last, last_minute)}", False
    # Field by field.
    if every_minute:
        minute_part = "every minute"
    elif even_minute_step:
        minute_part = f"every {minute_step} minutes"
    else:
        words, plural = _field_words(0, minutes, "minute")
        minute_part = f"at minute{'s' if plural else ''} {words}"
    words, plural = _field_words(1, hours, "hour")
    connector = " during" if minute_part.startswith("every") else " past"
    return f"{minute_part}{connector} hour{'s' if plural else ''} {words}", False


# Days ------------------------------------------------------------------------------------------------------------

def _dom_phrase(items: list[_Item]) -> str:
    last = any(i.kind == "last" for i in items)
    rest = [i for i in items if i.kind != "last"]
    if len(rest) == 1 and rest[0].kind == "all" and rest[0].step:
        step = rest[0].step
        phrase = f"every {_ordinal(step)} day of the month" if step > 1 else "every day of the month"
        return phrase + (" and on the last day of the month" if last else "")
    parts = []
    if rest:
        words, plural = _field_words(2, rest, "day")
        parts.append(f"day{'s' if plural else ''} {words}")
    if last:
        parts.append("the last day")
    return _join(parts) + " of the month"


def _dow_phrase(items: list[_Item]) -> str:
    special = [i for i in items if i.kind in ("nth", "last_dow")]
    if special:
        words = [f"the {'last' if i.kind == 'last_dow' else _NTH_WORDS.get(i.nth, _ordinal(i.nth))} {_DAYS[i.a]}"
                 for i in special]
        return _join(words) + " of the month"
    words, _ = _field_words(4, items, "day")
    return words


def _month_phrase(items: list[_Item]) -> str:
    words, _ = _field_words(3, items, "month")
    return words


# Public ----------------------------------------------------------------------------------------------------------

def describe(expr: str) -> str:
    """A plain-language description of a 5-field cron expression; never raises."""
    try:
        return _describe(expr)
    except Exception:  # a description must never break a listing
        return _raw(expr)


def _describe(expr: str) -> str:
    fields = expr.split()
    if len(fields) != 5:
        return _raw(expr)
    minutes, hours, doms, months, dows = (_parse_field(i, f) for i, f in enumerate(fields))
    time, at_times = _time_phrase(minutes, hours)
    dom_all, dow_all = _is_all(doms), _is_all(dows)
    if dom_all and dow_all:
        days = " every day" if at_times else ""
    elif dow_all:
        days = " on " + _dom_phrase(doms)
    elif dom_all:
        days = " on " + _dow_phrase(dows)
    else:  # both restricted: cron fires when either matches
        days = " on " + _dom_phrase(doms) + " and on " + _dow_phrase(dows)
    month = "" if _is_all(months) else " in " + _month_phrase(months)
    return time + days + month


def _raw(expr: object) -> str:
    fields = str(expr).split()
    if len(fields) == 5:
        return ", ".join(f"{name} {value}" for name, value in zip(_FIELDS, fields, strict=True))
    return f"cron {str(expr)!r}"
