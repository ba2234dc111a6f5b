"""What the race harness found in the function (issue 10's proof): each a test that fails on today's code.

Each was first marked xfail(strict=True) with the defect it shows, then fixed in the function (the marker gone).
"""

from __future__ import annotations

from conftest import PROJECT, status_calls, t
from simulation import is_pending

from dcs_emulator import Fault

SHORT_WINDOW = """
schedules:
  - name: short
    window: {stop: "0 20 * * *", start: "10 20 * * *"}
    instances: {ids: [i-a]}
"""


def test_a_window_transition_never_sent_before_the_next_one_is_reported(emulator, write_schedules, tick):
    emulator.add_instance(PROJECT, instance_id="i-a", name="dev-api")
    write_schedules(SHORT_WINDOW)
    tick(t("2026-06-01T19:55:00Z"))
    emulator.inject(Fault(endpoint="status", kind="throttle", times=2))  # DCS throttles the stop, twice
    for when in ("2026-06-01T20:00:00Z", "2026-06-01T20:05:00Z"):
        entry = tick(t(when))["schedules"][0]["instances"][0]
        assert entry["result"] == "skipped" and entry["not_sent"] and "next tick tries again" in entry["reason"]
    start = tick(t("2026-06-01T20:10:00Z"))  # the start supersedes the stop that never happened
    assert [c["action"] for c in status_calls(emulator)] == ["stop", "stop"]  # both throttled, nothing done
    assert emulator.get_instance(PROJECT, "i-a")["status"] == "RUNNING"
    # The stop of 20:00 was promised to "the next tick", which instead applied the start: some report must say
    # what became of it (e.g. missed, superseded by the start of 20:10), as a one-shot's superseded occurrence is.
    stop_reports = [e for s in start["schedules"] for e in s["instances"] + s["occurrences"]
                    if e.get("occurrence") == "2026-06-01T20:00:00Z"]
    assert stop_reports and not any(is_pending(e) for e in stop_reports), start
