"""An instance's own DCS maintenance window (`within_maintenance_window`), as tables; and the gateway maps it."""

from __future__ import annotations

import pytest
from conftest import PROJECT, t

from dcs_maintenance.maintenance_windows import (
    format_window,
    in_maintenance_window,
    seconds_of_day,
    window_verdict,
)
from dcs_maintenance.model import Instance

WINDOWS = [
    # begin, end, instant -> inside
    ("18:00:00", "22:00:00", "2026-12-01T18:00:00Z", True),  # begin is included
    ("18:00:00", "22:00:00", "2026-12-01T21:59:59Z", True),
    ("18:00:00", "22:00:00", "2026-12-01T22:00:00Z", False),  # end is not
    ("18:00:00", "22:00:00", "2026-12-01T17:59:59Z", False),
    ("18:00:00", "22:00:00", "2026-12-02T02:00:00+08:00", True),  # 18:00 UTC in Shanghai's clock
    ("22:00:00", "02:00:00", "2026-12-01T23:30:00Z", True),  # across midnight
    ("22:00:00", "02:00:00", "2026-12-02T00:00:00Z", True),
    ("22:00:00", "02:00:00", "2026-12-02T01:59:59Z", True),
    ("22:00:00", "02:00:00", "2026-12-02T02:00:00Z", False),
    ("22:00:00", "02:00:00", "2026-12-01T21:59:59Z", False),
    ("23", "00", "2026-12-01T23:15:00Z", True),  # the hour-only form of the API's examples
    ("23", "00", "2026-12-02T00:00:00Z", False),
    ("02:00", "06:00", "2026-12-01T05:59:00Z", True),
    ("02:00:00", "02:00:00", "2026-12-01T02:00:00Z", False),  # begin == end: an empty window
    ("02:00:00", "02:00:00", "2026-12-01T14:00:00Z", False),
    (None, "06:00:00", "2026-12-01T03:00:00Z", False),
    ("2am", "06:00:00", "2026-12-01T03:00:00Z", False),
    ("24:00:00", "06:00:00", "2026-12-01T03:00:00Z", False),
]


@pytest.mark.parametrize("begin, end, instant, inside", WINDOWS)
def test_in_maintenance_window(begin, end, instant, inside):
    assert in_maintenance_window(begin, end, t(instant)) is inside


@pytest.mark.parametrize("text, seconds", [("00:00:00", 0), ("18:30:15", 66615), ("18:30", 66600), ("18", 64800),
                                           (" 06:00:00 ", 21600), ("6:00", None), ("18:60", None), ("", None),
                                           (None, None), (1800, None)])
def test_seconds_of_day(text, seconds):
    assert seconds_of_day(text) == seconds


def mw(begin, end, name="cache-1") -> Instance:
    return Instance("i-1", name, maintain_begin=begin, maintain_end=end)


VERDICTS = [
    # instance, instant -> inside, reason
    (mw("18:00:00", "22:00:00"), "2026-12-01T19:00:00Z", True,
     "inside its maintenance window 18:00-22:00 UTC at 19:00 UTC"),
    (mw("18:00:00", "22:00:00"), "2026-12-01T03:00:00Z", False,
     "outside its maintenance window 18:00-22:00 UTC at 03:00 UTC"),
    (mw("22:00:00", "02:00:00"), "2026-12-01T23:00:00Z", True,
     "inside its maintenance window 22:00-02:00 UTC at 23:00 UTC"),
    (mw("02:00:30", "06:00:00"), "2026-12-01T01:00:00Z", False,
     "outside its maintenance window 02:00:30-06:00 UTC at 01:00 UTC"),
    (mw("02:00:00", "02:00:00"), "2026-12-01T02:00:00Z", False,
     "maintenance window 02:00-02:00 UTC is empty (begin equals end)"),
    (mw(None, None), "2026-12-01T02:00:00Z", False,
     "has no maintenance window in DCS (maintain_begin/maintain_end missing)"),
    (mw("late", "02:00:00"), "2026-12-01T02:00:00Z", False,
     "maintenance window 'late'-'02:00:00' is not readable as UTC times of day"),
]


@pytest.mark.parametrize("instance, instant, inside, reason", VERDICTS)
def test_window_verdict(instance, instant, inside, reason):
    verdict = window_verdict(instance, t(instant))
    assert (verdict.inside, verdict.reason) == (inside, reason)


def test_format_window():
    assert format_window("18:00:00", "22:00:00") == "18:00-22:00 UTC"
    assert format_window("23", "00") == "23:00-00:00 UTC"
    assert format_window(None, "x") == "?-'x' UTC"


def test_the_gateway_reads_the_window_from_the_list(emulator, function_env):
    from dcs_maintenance.gateway import DcsGateway
    from dcs_maintenance.settings import Credentials, load_settings

    emulator.add_instance(PROJECT, instance_id="i-mw", name="cache-mw", maintain_begin="22:00:00",
                          maintain_end="02:00:00")
    settings = load_settings()
    gw = DcsGateway(settings, Credentials(function_env["HUAWEICLOUD_SDK_AK"], function_env["HUAWEICLOUD_SDK_SK"]),
                    PROJECT, settings.region)
    [found] = [i for i in gw.list_instances() if i.instance_id == "i-mw"]
    assert (found.maintain_begin, found.maintain_end) == ("22:00:00", "02:00:00")
    assert found.to_dict()["maintain_begin"] == "22:00:00"
    assert window_verdict(found, t("2026-12-01T23:00:00Z")).inside
