"""The demo's rolling restart (issue 13): a canary, waves of two, web-05 never comes back, the rest is halted; its
claims table is checked from the emulator's own request log and status samples."""

from __future__ import annotations

import json
import os

import pytest

from dcs_maintenance import rollout_runner
from dcs_maintenance.tools import cli, demo

WINDOW = ["--from", "2026-12-06T22:00:00Z", "--hours", "1.5"]  # Sunday 22:30 UTC is the rollout's occurrence


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in demo.ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    yield
    for key in demo.ENV_KEYS:
        assert key not in os.environ, key


def run(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    return code, capsys.readouterr().out


def test_the_rolling_restart_holds_its_claims(capsys):
    code, out = run(capsys, "--json", "demo", *WINDOW, "--no-redis")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    rollout = report["rollout"]
    assert rollout["waves_planned"] == [["web-01"], ["web-02", "web-03"], ["web-04", "web-05"], ["web-06", "web-07"],
                                        ["web-08"]]
    assert rollout["waves_sent"] == rollout["waves_planned"][:3]  # web-05 never came back: halted after wave 3
    assert rollout["ran"] and rollout["peak_not_running"] == 2 and rollout["batch"] == 2
    assert rollout["halted"] == ["web-06", "web-07", "web-08"]
    assert [c["ok"] for c in rollout["claims"]] == [True, True, True, True]
    # the halt went into its tick's summary as a failure (ok false)
    halting = [s for s in report["active"] if s["counts"]["halted"]]
    assert len(halting) == 1 and halting[0]["ok"] is False and halting[0]["counts"]["halted"] == 3
    # the night project's own calls are listed apart: only the weeknight stop (in force since Friday) of dev-api
    # and dev-search, which DCS refuses to stop (DCS.4007, the whole request): one call, then each half alone
    assert [(c["action"], len(c["instances"])) for c in report["status_calls"]] == [("stop", 2), ("stop", 1),
                                                                                   ("stop", 1)]


def test_the_text_output_states_the_rollout_claims(capsys):
    code, out = run(capsys, "demo", *WINDOW, "--no-redis")
    assert code == 0
    assert "never more than batch (2) down at once ok: most instances not RUNNING in one sample: 2" in out
    assert "the halt stopped the rest              ok: web-05 never came back" in out
    assert "4 of 4 rollout claims hold" in out


def test_a_rollout_claim_that_does_not_hold_fails_the_demo(capsys, monkeypatch):
    """Without its health gate (every instance read as RUNNING, trusted at once) the waves overlap: the claims
    read from the emulator's samples say so, and the demo fails."""
    real = rollout_runner.next_step

    def no_gate(state, now, statuses, frozen_by=None, **kwargs):
        everyone = {iid: "RUNNING" for wave in state.waves for iid in wave.instance_ids}
        return real(state, now, everyone, frozen_by, settle=rollout_runner.timedelta(0))

    monkeypatch.setattr(rollout_runner, "next_step", no_gate)
    code, out = run(capsys, "demo", *WINDOW, "--no-redis")
    assert code == 1
    assert "one wave down at a time                FAILED" in out
    assert "never more than batch (2) down at once FAILED" in out


def test_hours_without_the_rollout_claim_nothing_about_it(capsys):
    code, out = run(capsys, "--json", "demo", "--from", "2026-12-06T18:45:00Z", "--hours", "1", "--no-redis")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert report["rollout"]["ran"] is False and report["rollout"]["claims"] == []
