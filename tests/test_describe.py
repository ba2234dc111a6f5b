"""describe: cron in plain language, one row per shape."""

from __future__ import annotations

import itertools
import random

import pytest

from dcs_maintenance.cronrules import CronError, check_cron
from dcs_maintenance.describe import describe

DESCRIBED = [
    # fixed times
    ("0 2 * * *", "at 02:00 every day"),
    ("30 3 * * sun", "at 03:30 on Sunday"),
    ("30 3 * * SUN", "at 03:30 on Sunday"),
    ("0 20 * * mon-fri", "at 20:00 on Monday through Friday"),
    ("0 20 * * 1-5", "at 20:00 on Monday through Friday"),
    ("0 12 * * 6,0", "at 12:00 on Saturday and Sunday"),
    ("0 0 * * fri-mon", "at 00:00 on Friday through Monday"),
    ("0 9 * * 1-5/2", "at 09:00 on Monday, Wednesday and Friday"),
    ("0 8,12,18 * * *", "at 08:00, 12:00 and 18:00 every day"),
    ("0,30 8-10 * * *", "at 08:00, 08:30, 09:00, 09:30, 10:00 and 10:30 every day"),
    # day of month, L and #
    ("0 0 1 * *", "at 00:00 on day 1 of the month"),
    ("0 0 1,15 * *", "at 00:00 on days 1 and 15 of the month"),
    ("0 0 1-7 * *", "at 00:00 on days 1 through 7 of the month"),
    ("0 0 */2 * *", "at 00:00 on every 2nd day of the month"),
    ("0 0 L * *", "at 00:00 on the last day of the month"),
    ("0 0 1,L * *", "at 00:00 on day 1 and the last day of the month"),
    ("0 0 * * mon#2", "at 00:00 on the second Monday of the month"),
    ("0 0 * * mon#2,fri#4", "at 00:00 on the second Monday and the fourth Friday of the month"),
    ("0 4 * * 5L", "at 04:00 on the last Friday of the month"),
    ("0 4 * * friL", "at 04:00 on the last Friday of the month"),
    ("0 4 * * L5", "at 04:00 on the last Friday of the month"),
    ("0 0 13 * fri", "at 00:00 on day 13 of the month and on Friday"),
    # months
    ("0 2 * jan *", "at 02:00 every day in January"),
    ("0 9 1 1 *", "at 09:00 on day 1 of the month in January"),
    ("0 2 1 jan,jul *", "at 02:00 on day 1 of the month in January and July"),
    ("0 2 * */3 *", "at 02:00 every day in January, April, July and October"),
    ("0 0 * nov-feb *", "at 00:00 every day in November through February"),
    ("59 23 L 12 *", "at 23:59 on the last day of the month in December"),
    # repeating
    ("* * * * *", "every minute"),
    ("*/15 * * * *", "every 15 minutes"),
    ("*/20 * * * 0", "every 20 minutes on Sunday"),
    ("0 * * * *", "every hour"),
    ("30 * * * *", "every hour at minute 30"),
    ("0,30 * * * *", "every hour at minutes 0 and 30"),
    ("10-20 * * * *", "every hour at minutes 10 through 20"),
    ("*/7 * * * *", "every hour at minutes 0, 7, 14, 21, 28, 35, 42, 49 and 56"),
    ("0 */2 * * *", "every 2 hours"),
    ("30 */2 * * *", "every 2 hours at minute 30"),
    ("0 9-17 * * mon-fri", "every hour from 09:00 through 17:00 on Monday through Friday"),
    ("*/15 9-17 * * mon-fri", "every 15 minutes from 09:00 through 17:45 on Monday through Friday"),
    ("* 3 * * *", "every minute from 03:00 through 03:59"),
    ("*/10 22-2 * * *", "every 10 minutes from 22:00 through 02:50"),
    # field by field
    ("15 1-23/2 * * *", "at minute 15 past hours 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21 and 23"),
    ("5,10 */3 * * *", "at minutes 5 and 10 past hours 0, 3, 6, 9, 12, 15, 18 and 21"),
    ("*/5 1,13 * * *", "every 5 minutes during hours 1 and 13"),
    ("0 0 25-5 * *", "at 00:00 on days 25 through 31 and 1 through 5 of the month"),
]


@pytest.mark.parametrize(("expr", "expected"), DESCRIBED, ids=[row[0] for row in DESCRIBED])
def test_describe(expr, expected):
    check_cron(expr)  # every row is an expression the validator accepts
    assert describe(expr) == expected


def test_never_raises_for_accepted_expressions():
    rng = random.Random(7)
    minute = ["*", "0", "30", "*/5", "*/7", "0,30", "10-20", "10-50/20", "50-10", "59"]
    hour = ["*", "2", "*/2", "*/5", "9-17", "22-2", "1-23/2", "0,12", "8,9,10,11,12,13,14"]
    dom = ["*", "1", "L", "1,L", "1-7", "*/2", "25-5", "13", "1,15,28"]
    month = ["*", "jan", "*/3", "nov-feb", "1,7", "2-11/3"]
    dow = ["*", "mon", "mon-fri", "fri-mon", "0-7", "1-7/2", "mon#2", "5L", "friL", "L0", "mon#1,sun#5", "7"]
    combos = list(itertools.product(minute, hour, dom, month, dow))
    described = 0
    for fields in rng.sample(combos, 3000):
        expr = " ".join(fields)
        try:
            check_cron(expr)
        except CronError:
            continue
        text = describe(expr)
        assert text and isinstance(text, str), expr
        assert "'" not in text, (expr, text)  # not the raw fallback
        described += 1
    assert described > 1000


@pytest.mark.parametrize("expr", ["", "not a cron", "0 0 * *", "0 0 * * * *", "@daily", "x y z w v"])
def test_garbage_does_not_raise(expr):
    assert isinstance(describe(expr), str)
