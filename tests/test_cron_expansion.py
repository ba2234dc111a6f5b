"""cronrules expands the fields itself (issue 15: croniter.expand costs 100 us per expression and croniter's
import, with python-dateutil, a third of a cold start). croniter stays the reference for what a field means:
on random accepted expressions, the minutes, hours, months and the days of every month of four years (the
day-of-month OR day-of-week rule, L, weekday#n and weekdayL included) are the same as from croniter.expand.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from conftest import ROOT
from croniter import croniter

from dcs_maintenance import cronrules
from dcs_maintenance.cronrules import CronError, check_cron

pytestmark = pytest.mark.usefixtures("fresh_cronrules_caches")

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def _field(rng: random.Random, lo: int, hi: int, size: int, names: list[str] | None = None) -> str:
    def value(v: int) -> str:
        return names[v - lo] if names and v - lo < len(names) and rng.random() < 0.3 else str(v)

    items = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.random()
        if kind < 0.15:
            return "*"
        if kind < 0.35:
            items.append(f"*/{rng.randint(1, size)}")
        elif kind < 0.6:
            a, b = rng.randint(lo, hi), rng.randint(lo, hi)
            step = f"/{rng.randint(1, 7)}" if rng.random() < 0.3 and a < b else ""
            items.append(f"{value(a)}-{value(b)}{step}")
        else:
            items.append(value(rng.randint(lo, hi)))
    return ",".join(items)


def _expression(rng: random.Random) -> str:
    minute, hour = _field(rng, 0, 59, 60), _field(rng, 0, 23, 24)
    month = _field(rng, 1, 12, 12, MONTHS)
    special = rng.random()
    if special < 0.08:
        days = rng.sample(DAYS + ["0", "5", "7"], rng.randint(1, 2))
        dow = ",".join(f"{d}#{rng.randint(1, 5)}" for d in days)
        return f"{minute} {hour} * {month} {dow}"
    if special < 0.14:
        dow = rng.choice(["5L", "friL", "L5", "0L", "7L", "L1,L3", "mon#1,L6"])
        return f"{minute} {hour} * {month} {dow}"
    dom = _field(rng, 1, 31, 31)
    if special < 0.22:
        dom = rng.choice(["L", "1,L", "15,L", f"{rng.randint(1, 30)}-L", f"{rng.randint(1, 20)}-L/{rng.randint(2, 9)}"])
    dow = _field(rng, 0, 7, 7, DAYS)
    return f"{minute} {hour} {dom} {month} {dow}"


def test_the_expansion_is_croniters():
    rng = random.Random(15)
    checked = refused = 0
    while checked < 1500:
        expr = _expression(rng)
        try:
            check_cron(expr)
        except CronError:
            refused += 1
            continue
        ours = cronrules._parse(expr)
        reference = cronrules._Spec(expr, *croniter.expand(" ".join(cronrules._check_fields(expr))))
        assert ours.minutes == reference.minutes, expr
        assert ours.hours == reference.hours, expr
        assert ours.month_ok[1:] == reference.month_ok[1:], expr
        for year in (2026, 2027, 2028, 2029):
            for month in range(1, 13):
                assert ours.month_mask(year, month) == reference.month_mask(year, month), (expr, year, month)
        checked += 1
    assert refused < checked  # the generator mostly writes accepted expressions


def test_cronrules_does_not_import_croniter():
    code = ("import sys; from dcs_maintenance.cronrules import CronRule; from datetime import datetime, timezone; "
            "CronRule('0 0 31 2 0', 'Europe/Berlin').next_after(datetime(2026, 1, 1, tzinfo=timezone.utc)); "
            "print(sorted(m for m in sys.modules if m.startswith(('croniter', 'dateutil'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
