"""Issue 16, planner gaps: the pure decisions each existing table left one mutant alive for.

Each test names the mutant of dcs_maintenance/planner.py it kills (seen failing on it, passing on the code).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from conftest import t

from dcs_maintenance.model import Instance, Schedule, Selector
from dcs_maintenance.planner import one_shot_due, select

FIVE = timedelta(minutes=5)
PROTECT = ("maintenance-protect", "true")


def inst(iid: str, **tags: str) -> Instance:
    return Instance(iid, f"name-{iid}", "Redis", "5.0", "RUNNING", tuple(sorted(tags.items())))


def test_passed_occurrences_are_in_time_order_when_missed_and_skipped_interleave():
    """Berlin's 2026-03-29 (the 23-hour DST day) is a skip date; a tick one day after its watermark sees a missed
    occurrence of the day before, the skipped ones of the 29th, then a missed one of the 30th: the report lists
    them as they happened, not grouped by result.

    kills: planner.py one_shot_due `passed.sort(key=lambda p: p[0])` deleted (skipped ones come first, then the
    missed ones).
    """
    schedule = Schedule(name="s", source="x.yaml", instances=Selector(tags=(("env", "x"),)), action="restart",
                        cron="*/20 * * * *", timezone="Europe/Berlin", skip_dates=frozenset({date(2026, 3, 29)}))
    due = one_shot_due(schedule, t("2026-03-29T22:30:00Z"), t("2026-03-28T22:00:00Z"), FIVE)
    assert due.fire == t("2026-03-29T22:20:00Z")  # 00:20 CEST on the 30th, inside the 10-minute deadline
    occurrences = [p[0] for p in due.passed]
    results = [p[1] for p in due.passed]
    assert occurrences == sorted(occurrences)
    # 23:40 CET on the 28th missed; every 20 minutes of the 23-hour 29th skipped; 00:00 CEST on the 30th missed.
    assert occurrences[0] == t("2026-03-28T22:40:00Z") and occurrences[-1] == t("2026-03-29T22:00:00Z")
    assert results == ["missed"] + ["skipped"] * 69 + ["missed"]


def test_a_selector_with_two_tag_pairs_selects_only_instances_with_both():
    """kills: planner.py matches `any(tags.get(k) != v ...)` -> `all(...)` (one matching pair would do)."""
    fleet = [inst("i-both", env="prod", role="web"), inst("i-env", env="prod", role="db"),
             inst("i-role", env="dev", role="web"), inst("i-neither", env="dev"), inst("i-untagged")]
    schedule = Schedule("s", "x.yaml", Selector(tags=(("env", "prod"), ("role", "web"))), action="restart",
                        cron="0 3 * * *")
    selection = select(schedule, fleet, PROTECT)
    assert [i.instance_id for i in selection.targets] == ["i-both"]
    assert selection.skipped == () and selection.error is None


@pytest.mark.parametrize("count, selected", [(2, True), (3, False)], ids=["exactly-max", "one-over"])
def test_exactly_max_instances_matches_is_allowed(count, selected):
    """kills: planner.py select `len(targets) > schedule.max_instances` -> `>=`."""
    fleet = [inst(f"i-{n}", env="x") for n in range(count)]
    schedule = Schedule("s", "x.yaml", Selector(tags=(("env", "x"),)), action="restart", cron="0 3 * * *",
                        max_instances=2)
    selection = select(schedule, fleet, PROTECT)
    if selected:
        assert [i.instance_id for i in selection.targets] == ["i-0", "i-1"] and selection.error is None
    else:
        assert selection.targets == ()
        assert selection.error == "selector matched 3 instances, more than max_instances 2: nothing done"
