"""guards.py as tables: the wall-clock bound, watermark bounds, the instant windows are judged at, and what an
existing claim means (done, in flight, unknown)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dcs_maintenance.guards import MAX_CLOCK_SKEW, bounded_marks, judge_claim, judging_instant, tick_refusal
from dcs_maintenance.ledger.base import ClaimRecord

UTC = timezone.utc
WALL = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
BUDGET = timedelta(seconds=40)


def at(**delta) -> datetime:
    return WALL + timedelta(**delta)


@pytest.mark.parametrize("tick, dry_run, refused", [
    (at(), False, False),
    (at(seconds=30), False, False),  # clock skew between the timer and the function
    (at(seconds=60), False, False),  # exactly the allowance
    (at(seconds=61), False, True),
    (at(hours=36), False, True),
    (at(days=365 * 300), False, True),
    (at(hours=36), True, False),  # a dry run or preview may look at any time
    (at(hours=-36), False, False),  # late is judged elsewhere (deadlines), never refused here
])
def test_tick_refusal(tick, dry_run, refused):
    why = tick_refusal(tick, WALL, dry_run)
    assert (why is not None) is refused
    if refused:
        assert "ahead of the wall clock" in why and "nothing sent" in why


def test_bounded_marks_never_pass_the_wall_clock_plus_skew():
    marks = {"past": at(hours=-1), "now": WALL, "skewed": at(seconds=30), "future": at(hours=36)}
    assert bounded_marks(marks, WALL) == {"past": at(hours=-1), "now": WALL, "skewed": at(seconds=30),
                                          "future": WALL + MAX_CLOCK_SKEW}


@pytest.mark.parametrize("tick, expected", [
    (at(hours=-11, minutes=-30), WALL),  # a late event: the present
    (WALL, WALL),
    (at(seconds=20), at(seconds=20)),  # a little early (skew): the tick's own time
])
def test_judging_instant(tick, expected):
    assert judging_instant(tick, WALL) == expected


def claim(outcome: str, age: timedelta, detail: str = "") -> ClaimRecord:
    return ClaimRecord("s|2026-06-01T09:55:00Z|i-a|restart", outcome, detail, "req-1", WALL - age)


@pytest.mark.parametrize("record, result, hold, applied, stale, words", [
    (claim("success", timedelta(minutes=5)), "skipped", False, True, False, "already handled by request req-1"),
    (claim("failed", timedelta(minutes=5)), "skipped", False, False, False, "(failed)"),
    (claim("unknown", timedelta(minutes=5), "read timeout"), "unknown", False, True, False, "read timeout"),
    (claim("claimed", timedelta(seconds=3)), "skipped", True, False, False, "in flight"),
    (claim("claimed", BUDGET), "skipped", True, False, False, "in flight"),  # exactly one budget: still in flight
    (claim("claimed", timedelta(seconds=-5)), "skipped", True, False, False, "0s ago"),  # a claimer's clock ahead
    (claim("claimed", BUDGET + timedelta(seconds=1)), "unknown", False, True, True, "no outcome was ever recorded"),
    (claim("claimed", timedelta(days=2)), "unknown", False, True, True, "status now CLOSED"),
])
def test_judge_claim(record, result, hold, applied, stale, words):
    verdict = judge_claim(record, WALL, BUDGET, status="CLOSED")
    assert (verdict.result, verdict.hold, verdict.applied, verdict.stale) == (result, hold, applied, stale)
    assert words in verdict.reason and "req-1" in verdict.reason
