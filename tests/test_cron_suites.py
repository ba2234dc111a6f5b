"""croniter's and cronsim's own test cases, run against cronrules where the semantics match ours (issue 12).

Sources, read and restated here as data (no code is copied): croniter's `src/croniter/tests/test_croniter.py`
(github.com/pallets-eco/croniter, commit 3dd4d14) and cronsim's `tests/test_cronsim.py` (github.com/cuu508/cronsim,
release 2.7). Each row names the test it comes from. Their naive datetimes are wall times without a zone:
here they are read in UTC; their aware ones keep their zone (written below with the offset they denote).

Both libraries answer "the next occurrence strictly after t" (`upcoming`) and "the previous one strictly
before t" (`prev_at_or_before(t - 1 microsecond)`, ours being at-or-before).

Cases left out: seconds and year fields (6/7 fields: we accept 5 only), croniter's options we do not have
(`day_or=False`, `implement_cron_bug`, `expand_from_start_time`, `max_years_between_matches`, hashed and random
`H`/`R` values), and its internal helpers. The cases that differ on purpose are in DIFFERS at the end,
each with what the library does, what we do, and why.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import product

import pytest

from dcs_maintenance.cronrules import CronError, CronRule, check_cron

UTC = timezone.utc
RIGA = "Europe/Riga"  # cronsim's DST zone: 2021-03-28 03:00 -> 04:00 (+02 -> +03), 2021-10-31 04:00 -> 03:00


def _t(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _days(year: int, month: int, *days: int, hour: int = 0, minute: int = 0) -> list[str]:
    return [f"{year:04d}-{month:02d}-{d:02d}T{hour:02d}:{minute:02d}" for d in days]


# ---------------------------------------------------------------------------------------------------------------
# The next occurrences after a start: (source, expression, zone, start, expected)

NEXT = [
    # croniter, test_croniter.py
    ("croniter test_minute", "*/5 * * * *", "UTC", "2010-01-23T12:18",
     [f"2010-01-23T12:{m}" for m in (20, 25, 30, 35, 40, 45, 50, 55)] + ["2010-01-23T13:00"]),
    ("croniter test_hour", "0 */3 * * *", "UTC", "2010-01-24T12:02",
     ["2010-01-24T15:00", "2010-01-24T18:00", "2010-01-24T21:00", "2010-01-25T00:00"]),
    ("croniter test_day", "0 0 */3 * *", "UTC", "2010-02-24T12:09", ["2010-02-25", "2010-02-28", "2010-03-01"]),
    ("croniter test_day (leap year)", "0 0 * * *", "UTC", "1996-02-27", ["1996-02-28", "1996-02-29"]),
    ("croniter test_day (2000 is a leap year)", "0 0 * * *", "UTC", "2000-02-27", ["2000-02-28", "2000-02-29"]),
    ("croniter test_weekday", "0 0 * * sat", "UTC", "2010-02-25", ["2010-02-27", "2010-03-06"]),
    ("croniter test_weekday (day 1 or Wednesday)", "0 0 1 * wed", "UTC", "2010-01-25",
     ["2010-01-27", "2010-02-01", "2010-02-03"]),
    ("croniter test_iso_weekday", "0 0 * * 6", "UTC", "2010-02-25", ["2010-02-27", "2010-03-06"]),
    ("croniter test_nth_weekday", "0 0 * * sat#1", "UTC", "2010-02-25", ["2010-03-06", "2010-04-03"]),
    ("croniter test_nth_weekday (fifth Wednesday)", "0 0 * * wed#5", "UTC", "2010-01-25",
     ["2010-03-31", "2010-06-30", "2010-09-29"]),
    ("croniter test_weekday_day_or_with_impossible_day_of_month", "0 0 31 2 0", "UTC", "2026-01-01",
     ["2026-02-01", "2026-02-08", "2026-02-15"]),
    ("croniter test_weekday_day_or_with_impossible_day_of_month", "0 0 30 2 0", "UTC", "2026-01-01",
     ["2026-02-01", "2026-02-08", "2026-02-15"]),
    ("croniter test_weekday_day_or_with_impossible_day_of_month", "0 0 31 4 0", "UTC", "2026-01-01",
     ["2026-04-05", "2026-04-12", "2026-04-19"]),
    ("croniter test_dom_dow_vixie_cron_bug (the union)", "0 16 */2 * sat", "UTC", "2023-05-02",
     ["2023-05-03T16:00", "2023-05-05T16:00", "2023-05-06T16:00", "2023-05-07T16:00"]),
    ("croniter test_month", "0 0 1 * *", "UTC", "2010-01-25",
     [f"2010-{m:02d}-01" for m in range(2, 13)] + ["2011-01-01"]),
    ("croniter test_last_day_of_month", "0 0 l * *", "UTC", "2015-09-04",
     ["2015-09-30", "2015-10-31", "2015-11-30", "2015-12-31"]),
    ("croniter test_last_day_of_month_with_leap_year", "0 0 l * *", "UTC", "2020-02-01", ["2020-02-29", "2020-03-31"]),
    ("croniter test_last_day_of_month_with_leap_year_century_exception", "0 0 l * *", "UTC", "2100-02-01",
     ["2100-02-28", "2100-03-31"]),
    ("croniter test_last_day_of_month_with_leap_year_century_exception", "0 0 l * *", "UTC", "2400-02-01",
     ["2400-02-29", "2400-03-31"]),
    ("croniter test_range_with_uppercase_last_day_of_month", "0 0 29-L * *", "UTC", "2015-09-04",
     ["2015-09-29", "2015-09-30"]),
    ("croniter test_sunday_to_thursday_with_alpha_conversion", "30 22 * * sun-thu", "UTC", "2010-08-25T15:56",
     ["2010-08-25T22:30"]),
    ("croniter test_bug2", "0 * * 3 *", "UTC", "2012-01-01",
     ["2012-03-01T00:00", "2012-03-01T01:00", "2012-03-01T02:00"]),
    ("croniter test_bug3", "00 03 16,30 * *", "UTC", "2013-03-01T12:17:34.257877",
     ["2013-03-16T03:00", "2013-03-30T03:00", "2013-04-16T03:00"]),
    ("croniter test_multiple_months", "0 0 1 3,6,9,12 *", "UTC", "2016-03-01", ["2016-06-01"]),
    ("croniter test_multiple_months", "0 0 1 3,6,9,12 *", "UTC", "2016-02-15", ["2016-03-01"]),
    ("croniter test_multiple_months", "0 0 1 3,6,9,12 *", "UTC", "2016-12-03T10:00", ["2017-03-01"]),
    ("croniter test_question_mark (written '*' here)", "0 0 1 * *", "UTC", "2010-08-25T15:56", ["2010-09-01"]),
    ("croniter test_lwom_friday", "0 0 * * L5", "UTC", "1987-01-15",
     ["1987-01-30", "1987-02-27", "1987-03-27", "1987-04-24", "1987-05-29", "1987-06-26", "1987-07-31",
      "1987-08-28", "1987-09-25", "1987-10-30", "1987-11-27", "1987-12-25"]),
    ("croniter test_lwom_friday_2hours", "0 1,5 * * L5", "UTC", "1987-01-15",
     [f"{d}T{h:02d}:00" for d in ("1987-01-30", "1987-02-27", "1987-03-27", "1987-04-24", "1987-05-29",
                                  "1987-06-26") for h in (1, 5)]),
    ("croniter test_lwom_friday_2xh_2xm", "0,30 1,5 * * L5", "UTC", "1987-01-15",
     [f"{d}T{h:02d}:{m:02d}" for d in ("1987-01-30", "1987-02-27", "1987-03-27") for h in (1, 5) for m in (0, 30)]),
    ("croniter test_lwom_tue_thu", "0 0 * * L2,L4", "UTC", "2016-06-01",
     ["2016-06-28", "2016-06-30", "2016-07-26", "2016-07-28", "2016-08-25", "2016-08-30", "2016-09-27",
      "2016-09-29", "2016-10-25", "2016-10-27"]),
    ("croniter test_hash_mixup_all_fri_3rd_sat", "0 0 * * 6#3", "UTC", "2021-03-01", ["2021-03-20"]),
    ("croniter test_hash_mixup_all_fri_3rd_sat", "0 0 * * 5", "UTC", "2021-03-01",
     ["2021-03-05", "2021-03-12", "2021-03-19", "2021-03-26"]),
    ("croniter test_lwom_mixup_all_fri_last_sat", "0 0 * * L6", "UTC", "2021-03-01", ["2021-03-27"]),
    ("croniter test_lwom_mixup_firstlast_sat", "0 0 * * L6,6#1", "UTC", "2021-03-01",
     ["2021-03-06", "2021-03-27", "2021-04-03", "2021-04-24", "2021-05-01", "2021-05-29"]),
    ("croniter test_lwom_mixup_4th_and_last", "0 0 * * 1#4,L1", "UTC", "2021-11-01",
     ["2021-11-22", "2021-11-29", "2021-12-27", "2022-01-24", "2022-01-31"]),
    ("croniter test_issue_2038y", "* * * * *", "UTC", "2040-01-01", ["2040-01-01T00:01"]),
    ("croniter test_sunday_ranges_to (Mon-Sun wraps to every day)", "0 0 * * Mon-Sun", "UTC", "2025-12-31",
     ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]),
    # croniter, DST (zoneinfo zones)
    ("croniter test_std_dst", "0 0 * * *", "Europe/Warsaw", "2017-03-26T00:00+01:00", ["2017-03-27T00:00+02:00"]),
    ("croniter test_std_dst", "0 * * * *", "Europe/Warsaw", "2017-03-26T01:00+01:00", ["2017-03-26T03:00+02:00"]),
    ("croniter test_std_dst", "0 0 * * *", "Europe/Warsaw", "2017-10-29T00:00+02:00", ["2017-10-30T00:00+01:00"]),
    ("croniter test_std_dst (wildcard hour: 02:00 on both passes)", "0 * * * *", "Europe/Warsaw",
     "2017-10-29T01:59+02:00",
     ["2017-10-29T02:00+02:00", "2017-10-29T02:00+01:00", "2017-10-29T03:00+01:00", "2017-10-29T04:00+01:00"]),
    *[("croniter test_std_dst2 (midnight fall-back)", "0 0 * * *", "America/Sao_Paulo", start, [expected])
      for start, expected in (
          ("2018-02-17T21:00-02:00", "2018-02-18T00:00-03:00"), ("2018-02-17T22:00-02:00", "2018-02-18T00:00-03:00"),
          ("2018-02-17T23:00-02:00", "2018-02-18T00:00-03:00"), ("2018-02-18T00:00-03:00", "2018-02-19T00:00-03:00"),
          ("2018-02-17T21:05-02:00", "2018-02-18T00:00-03:00"), ("2018-02-17T22:05-02:00", "2018-02-18T00:00-03:00"),
          ("2018-02-17T23:05-02:00", "2018-02-18T00:00-03:00"), ("2018-02-18T00:05-03:00", "2018-02-19T00:00-03:00"))],
    ("croniter test_std_dst3", "0 0 24 * *", "Australia/Adelaide", "2020-04-15T00:00+09:30",
     ["2020-04-24T00:00+09:30"]),
    ("croniter test_dst_daily", "7 0 * * *", "Europe/London", "2025-03-30T00:00+00:00",
     ["2025-03-30T00:07+00:00", "2025-03-31T00:07+01:00", "2025-04-01T00:07+01:00"]),
    ("croniter test_dst_hourly (no 01:07 in the gap)", "7 * * * *", "Europe/London", "2025-03-30T00:00+00:00",
     ["2025-03-30T00:07+00:00", "2025-03-30T02:07+01:00", "2025-03-30T03:07+01:00"]),
    ("croniter test_dst_issue90_st31ny (02:01 skipped: at the jump)", "1 2 * * *", "Europe/Paris",
     "2020-03-29T01:59:55+01:00", ["2020-03-29T03:00+02:00", "2020-03-30T02:01+02:00", "2020-03-31T02:01+02:00"]),
    ("croniter test_dst_iter (midnight skipped: at the jump)", "0 0 * * *", "Asia/Hebron", "2022-03-25T00:00+02:00",
     ["2022-03-26T00:00+02:00", "2022-03-27T01:00+03:00", "2022-03-28T00:00+03:00"]),
    # cronsim, tests/test_cronsim.py (TestIterator)
    ("cronsim test_it_handles_l", "1 1 L * *", "UTC", "2020-01-01", ["2020-01-31T01:01"]),
    ("cronsim test_it_handles_last_friday", "1 1 * * 5L", "UTC", "2020-01-01",
     [f"2020-{m:02d}-{d:02d}T01:01" for m, d in ((1, 31), (2, 28), (3, 27), (4, 24), (5, 29), (6, 26), (7, 31),
                                                  (8, 28), (9, 25), (10, 30), (11, 27), (12, 25))]),
    ("cronsim test_it_handles_last_sunday_two_notations", "1 1 * * 0L", "UTC", "2020-01-01", ["2020-01-26T01:01"]),
    ("cronsim test_it_handles_last_sunday_two_notations", "1 1 * * 7L", "UTC", "2020-01-01", ["2020-01-26T01:01"]),
    ("cronsim test_it_handles_nth_weekday", "1 1 * * 1#2", "UTC", "2020-01-01", ["2020-01-13T01:01"]),
    ("cronsim test_it_handles_every_x_weekdays", "1 1 * * */3", "UTC", "2020-01-01",
     _days(2020, 1, 1, 4, 5, 8, hour=1, minute=1)),
    # cronsim, TestDstTransitions (Europe/Riga 2021)
    ("cronsim test_001_every_hour_mar", "0 * * * *", RIGA, "2021-03-28T01:30+02:00",
     ["2021-03-28T02:00+02:00", "2021-03-28T04:00+03:00"]),
    ("cronsim test_001_every_hour_oct", "0 * * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T02:00+03:00", "2021-10-31T03:00+03:00", "2021-10-31T03:00+02:00", "2021-10-31T04:00+02:00"]),
    ("cronsim test_002_every_30_minutes_mar", "*/30 * * * *", RIGA, "2021-03-28T02:10+02:00",
     ["2021-03-28T02:30+02:00", "2021-03-28T04:00+03:00", "2021-03-28T04:30+03:00"]),
    ("cronsim test_002_every_30_minutes_oct", "*/30 * * * *", RIGA, "2021-10-31T02:10+03:00",
     ["2021-10-31T02:30+03:00", "2021-10-31T03:00+03:00", "2021-10-31T03:30+03:00", "2021-10-31T03:00+02:00",
      "2021-10-31T03:30+02:00", "2021-10-31T04:00+02:00"]),
    ("cronsim test_003_every_15_minutes_mar", "*/15 * * * *", RIGA, "2021-03-28T02:40+02:00",
     ["2021-03-28T02:45+02:00", "2021-03-28T04:00+03:00"]),
    ("cronsim test_003_every_15_minutes_oct", "*/15 * * * *", RIGA, "2021-10-31T02:40+03:00",
     ["2021-10-31T02:45+03:00"] + [f"2021-10-31T03:{m:02d}+03:00" for m in (0, 15, 30, 45)]
     + [f"2021-10-31T03:{m:02d}+02:00" for m in (0, 15, 30, 45)] + ["2021-10-31T04:00+02:00"]),
    ("cronsim test_004_every_2_hours_mar", "0 */2 * * *", RIGA, "2021-03-28T01:30+02:00",
     ["2021-03-28T02:00+02:00", "2021-03-28T04:00+03:00", "2021-03-28T06:00+03:00"]),
    ("cronsim test_004_every_2_hours_oct", "0 */2 * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T02:00+03:00", "2021-10-31T04:00+02:00", "2021-10-31T06:00+02:00"]),
    ("cronsim test_005_30_minutes_past_every_2_hours_mar", "30 */2 * * *", RIGA, "2021-03-28T01:30+02:00",
     ["2021-03-28T02:30+02:00", "2021-03-28T04:30+03:00"]),
    ("cronsim test_005_30_minutes_past_every_2_hours_oct", "30 */2 * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T02:30+03:00", "2021-10-31T04:30+02:00"]),
    ("cronsim test_006_every_3_hours_oct", "0 */3 * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T03:00+03:00", "2021-10-31T03:00+02:00", "2021-10-31T06:00+02:00"]),
    ("cronsim test_008_at_1_2_3_4_5_mar", "0 1,2,3,4,5 * * *", RIGA, "2021-03-28T01:30+02:00",
     ["2021-03-28T02:00+02:00", "2021-03-28T04:00+03:00", "2021-03-28T05:00+03:00"]),
    ("cronsim test_008_at_1_2_3_4_5_oct", "0 1,2,3,4,5 * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T02:00+03:00", "2021-10-31T03:00+03:00", "2021-10-31T04:00+02:00"]),
    ("cronsim test_009_30_past_1_2_3_4_5_mar", "30 1,2,3,4,5 * * *", RIGA, "2021-03-28T01:30+02:00",
     ["2021-03-28T02:30+02:00", "2021-03-28T04:00+03:00", "2021-03-28T04:30+03:00"]),
    ("cronsim test_009_30_past_1_2_3_4_5_oct", "30 1,2,3,4,5 * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T02:30+03:00", "2021-10-31T03:30+03:00", "2021-10-31T04:30+02:00"]),
    ("cronsim test_010_at_2_mar", "0 2 * * *", RIGA, "2021-03-28T01:30+02:00",
     ["2021-03-28T02:00+02:00", "2021-03-29T02:00+03:00"]),
    ("cronsim test_010_at_2_oct", "0 2 * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T02:00+03:00", "2021-11-01T02:00+02:00"]),
    ("cronsim test_011_at_3_mar", "0 3 * * *", RIGA, "2021-03-27T01:30+02:00",
     ["2021-03-27T03:00+02:00", "2021-03-28T04:00+03:00", "2021-03-29T03:00+03:00"]),
    ("cronsim test_011_at_3_oct", "0 3 * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T03:00+03:00", "2021-11-01T03:00+02:00"]),
    ("cronsim test_012_at_4_mar", "0 4 * * *", RIGA, "2021-03-27T01:30+02:00",
     ["2021-03-27T04:00+02:00", "2021-03-28T04:00+03:00", "2021-03-29T04:00+03:00"]),
    ("cronsim test_012_at_4_oct", "0 4 * * *", RIGA, "2021-10-30T01:30+03:00",
     ["2021-10-30T04:00+03:00", "2021-10-31T04:00+02:00", "2021-11-01T04:00+02:00"]),
    ("cronsim test_014_every_hour_enumerated_mar", "0 " + ",".join(map(str, range(24))) + " * * *", RIGA,
     "2021-03-28T01:30+02:00", ["2021-03-28T02:00+02:00", "2021-03-28T04:00+03:00", "2021-03-28T05:00+03:00"]),
    ("cronsim test_014_every_hour_enumerated_oct", "0 " + ",".join(map(str, range(24))) + " * * *", RIGA,
     "2021-10-31T01:30+03:00", ["2021-10-31T02:00+03:00", "2021-10-31T03:00+03:00", "2021-10-31T04:00+02:00"]),
    ("cronsim test_015_every_other_hour_enumerated_mar", "0 1,3,5,7,9,11,13,15,17,19,21,23 * * *", RIGA,
     "2021-03-28T00:30+02:00", ["2021-03-28T01:00+02:00", "2021-03-28T04:00+03:00", "2021-03-28T05:00+03:00"]),
    ("cronsim test_015_every_other_hour_enumerated_oct", "0 1,3,5,7,9,11,13,15,17,19,21,23 * * *", RIGA,
     "2021-10-31T00:30+03:00", ["2021-10-31T01:00+03:00", "2021-10-31T03:00+03:00", "2021-10-31T05:00+02:00"]),
    ("cronsim test_016_at_1_to_5_mar", "0 1-5 * * *", RIGA, "2021-03-28T01:30+02:00",
     ["2021-03-28T02:00+02:00", "2021-03-28T04:00+03:00", "2021-03-28T05:00+03:00"]),
    ("cronsim test_016_at_1_to_5_oct", "0 1-5 * * *", RIGA, "2021-10-31T01:30+03:00",
     ["2021-10-31T02:00+03:00", "2021-10-31T03:00+03:00", "2021-10-31T04:00+02:00"]),
    ("cronsim test_at_3_15_mar", "15 3 * * *", RIGA, "2021-03-27T00:00+02:00",
     ["2021-03-27T03:15+02:00", "2021-03-28T04:00+03:00", "2021-03-29T03:15+03:00"]),
    ("cronsim test_at_3_15_oct", "15 3 * * *", RIGA, "2021-10-30T00:00+03:00",
     ["2021-10-30T03:15+03:00", "2021-10-31T03:15+03:00", "2021-11-01T03:15+02:00"]),
    ("cronsim test_every_minute_mar", "* * * * *", RIGA, "2021-03-28T02:58+02:00",
     ["2021-03-28T02:59+02:00", "2021-03-28T04:00+03:00"]),
    ("cronsim test_every_minute_oct", "* * * * *", RIGA, "2021-10-31T03:58+03:00",
     ["2021-10-31T03:59+03:00", "2021-10-31T03:00+02:00", "2021-10-31T03:01+02:00"]),
    ("cronsim test_every_minute_from_1_to_6_mar", "* 1-6 * * *", RIGA, "2021-03-28T02:58+02:00",
     ["2021-03-28T02:59+02:00", "2021-03-28T04:00+03:00"]),
    ("cronsim test_every_minute_from_1_to_6_oct", "* 1-6 * * *", RIGA, "2021-10-31T03:58+03:00",
     ["2021-10-31T03:59+03:00", "2021-10-31T03:00+02:00", "2021-10-31T03:01+02:00"]),
]

# croniter test_issue_142_dow: '35 * 1-l/8 * *' from 2020-01-i (i = 1..30): days 1, 9, 17, 25, then 1 February.
NEXT += [("croniter test_issue_142_dow", "35 * 1-l/8 * *", "UTC", f"2020-01-{i:02d}",
          [f"2020-{'01' if i <= 25 else '02'}-{next(d for d in (1, 9, 17, 25, 33) if d >= i) % 32:02d}T00:35"])
         for i in range(1, 31)]


@pytest.mark.parametrize(("source", "expr", "zone", "start", "expected"), NEXT,
                         ids=[f"{row[0]} {row[1]!r} {row[3]}" for row in NEXT])
def test_next(source, expr, zone, start, expected):
    assert CronRule(expr, zone).upcoming(_t(start), len(expected)) == [_t(e).astimezone(UTC) for e in expected]


# ---------------------------------------------------------------------------------------------------------------
# The previous occurrences, strictly before a start

PREV = [
    ("croniter test_day2", "* * 29 2 *", "UTC", "2024-02-28", ["2020-02-29T23:59"]),
    ("croniter test_weekday_day_or_with_impossible_day_of_month_prev", "0 0 31 2 0", "UTC", "2026-03-01",
     ["2026-02-22", "2026-02-15", "2026-02-08"]),
    ("croniter test_prev_last_day_of_month", "0 0 l * *", "UTC", "2009-12-31T20:00", ["2009-12-31"]),
    ("croniter test_prev_last_day_of_month", "0 0 l * *", "UTC", "2009-12-31", ["2009-11-30"]),
    ("croniter test_prev_last_day_of_month", "0 0 l * *", "UTC", "2010-01-05",
     ["2009-12-31", "2009-11-30", "2009-10-31", "2009-09-30"]),
    ("croniter test_prev_last_day_of_month", "* * l * *", "UTC", "2010-01-31T00:02",
     ["2010-01-31T00:01", "2010-01-31T00:00", "2009-12-31T23:59", "2009-12-31T23:58"]),
    ("croniter test_bug1", "5 0 */2 * *", "UTC", "2012-02-24", ["2012-02-23T00:05"]),
    ("croniter test_multiple_months", "0 0 1 3,6,9,12 *", "UTC", "2016-03-01", ["2015-12-01"]),
    ("croniter test_multiple_months", "0 0 1,15,31 * *", "UTC", "2016-02-01", ["2016-01-31"]),
    ("croniter test_multiple_months", "0 0 1 3,6,9,12 *", "UTC", "2016-06-01", ["2016-03-01"]),
    ("croniter test_multiple_months", "0 0 1 1,3,6,9,12 *", "UTC", "2016-03-01", ["2016-01-01"]),
    ("croniter test_lwom_saturday_rev", "0 0 * * L6", "UTC", "2017-12-31",
     ["2017-12-30", "2017-11-25", "2017-10-28", "2017-09-30", "2017-08-26", "2017-07-29", "2017-06-24",
      "2017-05-27", "2017-04-29", "2017-03-25", "2017-02-25", "2017-01-28"]),
    ("croniter test_issue_47", "0 6 30 3 *", "UTC", "2021-03-30T04:00", ["2020-03-30T06:00"]),
    ("croniter test_bug_62_leap", "15 22 29 2 *", "UTC", "2024-02-29", ["2020-02-29T22:15"]),
    ("croniter test_get_prev_leap_year_feb29", "0 0 29 * *", "UTC", "2024-03-02", ["2024-02-29"]),
    ("croniter test_get_prev_leap_year_feb29", "0 0 29 * *", "UTC", "2024-03-15", ["2024-02-29"]),
    ("croniter test_get_prev_leap_year_feb29", "0 0 29 * *", "UTC", "2024-03-28", ["2024-02-29"]),
    ("croniter test_get_prev_leap_year_feb29", "0 0 29 * *", "UTC", "2024-01-15", ["2023-12-29"]),
    ("croniter test_std_dst3", "0 0 24 * *", "Australia/Adelaide", "2020-04-15T00:00+09:30",
     ["2020-03-24T00:00+10:30"]),
    ("croniter test_dst_issue90_st31ny (get_prev)", "1 2 * * *", "Europe/Paris", "2020-03-31T02:01+02:00",
     ["2020-03-30T02:01+02:00", "2020-03-29T03:00+02:00", "2020-03-28T02:01+01:00"]),
]


@pytest.mark.parametrize(("source", "expr", "zone", "start", "expected"), PREV,
                         ids=[f"{row[0]} {row[1]!r} {row[3]}" for row in PREV])
def test_prev(source, expr, zone, start, expected):
    rule, t, got = CronRule(expr, zone), _t(start), []
    for _ in expected:
        t = rule.prev_at_or_before(t - timedelta(microseconds=1))
        got.append(t)
    assert got == [_t(e).astimezone(UTC) for e in expected]


# ---------------------------------------------------------------------------------------------------------------
# Refused by the library and by us

REFUSED = [
    ("croniter test_impossible_day_of_month_alone_still_raises", "0 0 31 2 *"),
    ("croniter test_impossible_day_of_month_alone_still_raises", "0 0 30 2 *"),
    ("croniter test_bug34", "* * 31 2 *"),
    ("croniter test_is_valid_strict", "0 0 31 4 *"),
    ("croniter test_is_valid_strict", "0 0 31 6 *"),
    ("croniter test_error", "* * * *"),
    ("croniter test_error", "-90 * * * *"),
    ("croniter test_error", "a * * * *"),
    ("croniter test_error", "* * * janu-jun *"),
    ("croniter test_error", "1-1_0 * * * *"),
    ("croniter test_error", "0-10/error * * * *"),
    ("croniter test_error", "0-10/ * * * *"),
    ("croniter test_error", "0-1& * * * *"),
    ("croniter test_error", "* * 5-100 * *"),
    ("croniter test_overflow", "0-10000000 * * * *"),
    ("croniter test_issue_k6", "0 0 0 0 0"),
    ("croniter test_issue_k6", "0 0 0 1 0"),
    ("croniter test_issue_k34", "4 0 L/2 2 0"),
    ("croniter test_invalid_question_mark", "? * * * *"),
    ("croniter test_invalid_question_mark", "* ? * * *"),
    ("croniter test_invalid_question_mark", "* * ?,* * *"),
    ("croniter test_hash_mixup_all_fri_3rd_sat", "0 0 * * 5,6#3"),
    ("croniter test_lwom_mixup_all_fri_last_sat", "0 0 * * 5,L6"),
    ("croniter test_nth_weekday_with_restricted_day_of_month_still_raises", "0 0 1 2 fri#2"),
    ("croniter test_nth_weekday_with_restricted_day_of_month_still_raises", "0 0 15 * fri#2"),
    ("croniter test_nearest_weekday_with_restricted_day_of_week_still_raises", "0 0 31w 2 0"),
    ("cronsim test_it_rejects_4_components", "* * * *"),
    ("cronsim test_it_rejects_underscores", "1-1_0 * * * *"),
    ("cronsim test_it_rejects_zero_step", "*/0 * * * *"),
    ("cronsim test_it_rejects_zero_nth", "* * * * 1#0"),
    ("cronsim test_it_rejects_big_nth", "* * * * 1#6"),
    ("cronsim test_it_checks_day_of_month_range", "* * 30 2 *"),
    ("cronsim test_it_checks_day_of_month_range", "* * 31 4 *"),
    ("cronsim test_it_rejects_dow_l_range", "* * * * 5L-6"),
    ("cronsim test_it_rejects_dow_l_hash", "* * * * 5L#1"),
    ("cronsim test_it_rejects_dow_l_slash", "* * * * 5L/3"),
    ("cronsim test_it_handles_no_matches", "1 1 */100 * MON#4"),
]


@pytest.mark.parametrize(("source", "expr"), REFUSED, ids=[f"{row[0]} {row[1]!r}" for row in REFUSED])
def test_refused(source, expr):
    with pytest.raises(CronError):
        check_cron(expr)


def test_cronsim_bad_values_are_refused_in_every_field():
    """cronsim test_it_rejects_bad_values: every bad value in every position (5-field patterns; the 6- and
    7-field ones are refused for their length anyway)."""
    patterns = ("%s * * * *", "* %s * * *", "* * %s * *", "* * * %s * ", "* * * * %s", "1-%s * * * *",
                "%s-60 * * * *", "* * 1-%s * *", "* * 1,%s * *", "* * %s/1 * *", "* * * %s-DEC *", "* * * JAN-%s *",
                "* * * * %s-SUN", "* * * * MON-%s", "* * * * * %s", "1-%s * * * * *")
    bad = ("-1", "61", "ABC", "2/", "/2", "2#", "#2", "1##1", "1//2", "\u00b9", "LL", "LWX")
    accepted = []
    for pattern, value in product(patterns, bad):
        try:
            check_cron(pattern % value)
        except CronError:
            continue
        accepted.append(pattern % value)
    assert accepted == []


# ---------------------------------------------------------------------------------------------------------------
# Cases that differ on purpose: (source, expression, what the library does, our answer, why).
# Our answer is either "refused: <part of the message>" or the next occurrences after START_DIFFERS (UTC).

START_DIFFERS = "2020-01-01"
DIFFERS = [
    ("croniter test_bug57", "0 4/6 * * *", "hours 4, 10, 16, 22 (a step without a range: 4 to the end)",
     "refused: a step without a range",
     "cron implementations read 'a/n' differently (Vixie: 'a' alone; croniter: a to the maximum); we ask for "
     "'4-23/6' or '4'"),
    ("croniter test_bug57", "0 0/6 * * *", "hours 0, 6, 12, 18", "refused: a step without a range", "as above"),
    ("croniter test_step_from_field_max", "59/15 * * * *", "minute 59 (croniter 7: the start alone)",
     "refused: a step without a range", "as above"),
    ("cronsim test_it_parses_start_with_step", "5/15 * * * *", "minutes 5, 20, 35, 50",
     "refused: a step without a range", "as above"),
    ("croniter test_step_from_field_max", "5-5 * * * *", "the whole hour (an equal range is the whole cycle)",
     "refused: equal range", "'5-5' almost always means minute 5; we ask for '5'"),
    ("croniter test_sunday_ranges_to", "0 0 * * Sun-Sun", "every day", "refused: equal range", "as above"),
    ("croniter test_issue156", "* * * * *,0", "every minute", "refused: '*' cannot be part of a list",
     "a list holding '*' is '*'; writing both is a mistake worth saying"),
    ("croniter test_issue156", "0 0 * * *,sat#3", "every day", "refused: '*' cannot be part of a list",
     "as above"),
    ("croniter test_issue_k33", "30 23 1-7 JAN MON-FRI#1", "days 1-7 of January AND the first Monday-Friday",
     "refused: is not of the form weekday#n",
     "a range of weekday#n; and croniter intersects weekday#n with day-of-month where plain weekdays make a "
     "union: we refuse both (weekday#n needs day-of-month '*')"),
    ("croniter test_question_mark", "0 0 1 * ?", "day 1 ('?' as '*')", "refused: '?' is not supported",
     "'?' is Quartz syntax, not cron's"),
    ("croniter test_nearest_weekday_basic", "0 0 15W * *", "the weekday nearest the 15th",
     "refused: W (nearest weekday)", "not in Vixie cron; refused rather than half-supported"),
    ("cronsim test_it_handles_lw", "1 1 LW 5 *", "the last weekday of May", "refused: W (nearest weekday)",
     "as above"),
    ("cronsim test_it_accepts_l_with_step", "* * L/2 * *", "the last day", "refused: must stand alone",
     "a step on L means nothing"),
    ("cronsim test_it_handles_dom_star", "1 1 */100,1-7 * MON", "the first Monday (day-of-month not '*')",
     "refused: larger than the field's 31 values", "'*/100' is a trick for 'not *': we ask for what it means"),
    ("cronsim test_it_rejects_lopsided_range", "* * 5-1 * *", "refused", ["2020-01-01T00:01", "2020-01-01T00:02"],
     "a wrapping range is croniter's reading (fri-mon for a weekend window): here days 5-31 and day 1"),
    ("cronsim test_it_rejects_symbolic_dow_l", "0 0 * * MONL", "refused", ["2020-01-27"],
     "'friL' is a common spelling of '5L' (the last Friday): we accept it, as the README says"),
    ("cronsim test_it_handles_dow_star", "1 1 1-7 * */7", "the first Sunday (day-of-week starts with '*': Vixie's AND)",
     _days(2020, 1, 1, 2, 3, 4, hour=1, minute=1),
     "both day fields restricted means OR, as croniter reads it, also when one starts with '*' (README)"),
]


@pytest.mark.parametrize(("source", "expr", "theirs", "ours", "why"), DIFFERS,
                         ids=[f"{row[0]} {row[1]!r}" for row in DIFFERS])
def test_differs_on_purpose(source, expr, theirs, ours, why):
    if isinstance(ours, str):
        assert ours.startswith("refused: ")
        with pytest.raises(CronError) as info:
            check_cron(expr)
        assert ours[len("refused: "):] in str(info.value)
    else:
        got = CronRule(expr, "UTC").upcoming(_t(START_DIFFERS), len(ours))
        assert got == [_t(e) for e in ours]
