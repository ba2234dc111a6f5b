"""Previews that say what they see (issue 12): a dry run over many ticks carries a window's state from tick to
tick, and a preview of a time the ledger has already passed says who handled it, instead of showing nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import NIGHTS_AND_HOURLY, PROJECT, ROOT, status_calls, t

from dcs_maintenance.tools.local import LocalContext


@pytest.fixture
def fleet(emulator):
    emulator.add_instance(PROJECT, instance_id="i-dev", name="dev-api")
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    return emulator


def run(*argv: str) -> tuple[int, dict]:
    """The real command line, in a subprocess, with the test's settings (the emulator, the ledger)."""
    proc = subprocess.run([sys.executable, "-m", "dcs_maintenance", *argv], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, json.loads(proc.stdout)


def test_a_dry_run_over_a_night_shows_one_stop_and_one_start(fleet, function_env, write_schedules):
    write_schedules(NIGHTS_AND_HOURLY)
    code, data = run("run", "--at", "2026-06-01T19:00:00Z", "--until", "2026-06-02T08:00:00Z",
                     "--dry-run", "--schedule", "nights", "--json")
    assert code == 0 and data["ticks"] == 13 * 12 + 1
    would = [(summary["tick"], e["reason"]) for summary in data["active"] for s in summary["schedules"]
             for e in s["instances"] if e["reason"].startswith("dry run: would")]
    assert would == [("2026-06-01T20:00:00Z", "dry run: would stop (RUNNING)"),
                     ("2026-06-02T07:00:00Z", "dry run: would start (CLOSED)")]  # as the stop would leave it
    assert status_calls(fleet) == [] and fleet.get_instance(PROJECT, "i-dev")["status"] == "RUNNING"
    from dcs_maintenance.ledger import open_ledger

    with open_ledger(function_env["LEDGER_URL"]) as ledger:  # the rehearsal wrote nothing real
        assert ledger.watermarks() == {} and ledger.window_states("nights") == {}


def test_a_plan_at_a_time_already_handled_says_by_whom(fleet, function_env, write_schedules, tick):
    write_schedules(NIGHTS_AND_HOURLY)
    tick(t("2026-06-01T10:00:00Z"), context=LocalContext(request_id="req-the-tick"))
    assert len(status_calls(fleet, "restart")) == 1
    code, summary = run("plan", "--at", "2026-06-01T10:00:00Z", "--json")
    [hourly] = [s for s in summary["schedules"] if s["name"] == "hourly"]
    assert hourly["decision"] == "handled"
    assert hourly["reason"] == ("already handled up to 2026-06-01T10:00:00Z: occurrence 2026-06-01T10:00:00Z by "
                                "request req-the-tick (1 success)")
    dry = tick(t("2026-06-01T10:00:00Z"), user_event='{"dry_run": true}')
    assert [s["decision"] for s in dry["schedules"] if s["name"] == "hourly"] == ["handled"]
    assert len(status_calls(fleet, "restart")) == 1
