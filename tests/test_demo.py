"""The README's demo: a short window around the interesting occurrences, and its claims about real Redis data.

The window 2026-12-06 18:45Z + 11.5 h covers: dev-api stopped at the first tick (the weeknight window has
been "stop" since Friday) while DCS refuses to stop dev-search (only old instances can be stopped: the seed's
modes, issue 11; the whole request is refused, then split), the 03:00 Shanghai restart of staging-api (AOF) and
staging-worker (no persistence) at 19:00Z, the 05:00 Shanghai flush of cache-sessions at 21:00Z, and dev-api's
start on Monday 07:00 Berlin (06:00Z).
"""

from __future__ import annotations

import json
import os

import pytest

from dcs_maintenance.tools import cli, demo

WINDOW = ["--from", "2026-12-06T18:45:00Z", "--hours", "11.5"]
needs_redis = pytest.mark.skipif(demo.redis_available() is None, reason="redis-server is not installed")


def run(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    return code, capsys.readouterr().out


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in demo.ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    yield
    for key in demo.ENV_KEYS:  # the demo restores the environment it changed
        assert key not in os.environ, key


@needs_redis
def test_the_real_redis_demo_checks_what_dcs_promises(capsys):
    code, out = run(capsys, "--json", "demo", *WINDOW, "--redis")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["redis"]
    actions = [c["action"] for c in report["status_calls"]]
    assert actions == ["stop", "stop", "stop", "restart", "flush", "start"]  # the refused stop, split in two
    [refusal] = report["refusals"]
    assert refusal["instance"] == "dev-search" and refusal["action"] == "stop"
    assert refusal["reason"].startswith("DCS refused stop for this instance: DCS.4007")
    data = {c["instance"]: c for c in report["claims"] if c["kind"] == "data"}
    # the flushed instance is empty
    assert data["cache-sessions"]["expected"] == "emptied" and data["cache-sessions"]["keys_after"] == 0
    # a restart keeps AOF data and loses the rest, as on DCS
    assert data["staging-api"]["persistence"] == "aof" and data["staging-api"]["actions"] == ["restart"]
    assert data["staging-api"]["keys_after"] == data["staging-api"]["keys_before"] == demo.KEYS_PER_INSTANCE + 1
    assert data["staging-worker"]["persistence"] == "none" and data["staging-worker"]["keys_after"] == 0
    # untouched instances (protected, excluded, too old to flush) keep their data
    for name in ("prod-orders", "cache-legacy", "cache-catalog", "dev-ci-runner", "staging-session-store",
                 "dev-search"):
        assert data[name]["actions"] == [] and data[name]["keys_after"] == demo.KEYS_PER_INSTANCE + 1, name
    assert "DCS refused its stop" in data["dev-search"]["why"]
    # the stopped instance refused connections while stopped, then answered again after its start
    [stopped] = [c for c in report["claims"] if c["kind"] == "stopped"]
    assert stopped["instance"] == "dev-api" and stopped["probe"]["refused"] and stopped["ok"]
    assert stopped["probe"]["tick"].startswith("2026-12-06T18:45")
    assert data["dev-api"]["actions"] == ["stop", "start"] and data["dev-api"]["keys_after"] == 0
    assert set(report["final"].values()) == {"RUNNING"}
    assert all(c["ok"] for c in report["claims"])


@needs_redis
def test_the_text_output_states_each_claim(capsys):
    code, out = run(capsys, "demo", *WINDOW)  # real Redis is the default where redis-server is installed
    assert code == 0
    assert "one redis-server each" in out
    assert "probe: dev-api is CLOSED" in out and "connection refused" in out
    assert "cache-sessions         none        flush" in out and "emptied   ok" in out
    assert "11 of 11 claims hold" in out
    assert "refused by DCS" in out and "dev-search: DCS refused stop for this instance: DCS.4007" in out


@needs_redis
def test_a_claim_that_does_not_hold_fails_the_demo(capsys, monkeypatch):
    from dcs_emulator import redis_backend

    real_apply = redis_backend.RedisBackend.apply

    def no_flush(self, instance_id, action):
        if action != "flush":
            real_apply(self, instance_id, action)

    monkeypatch.setattr(redis_backend.RedisBackend, "apply", no_flush)
    code, out = run(capsys, "demo", *WINDOW, "--redis")
    assert code == 1
    assert "emptied   FAILED" in out and "10 of 11 claims hold: SEE FAILED LINES ABOVE" in out


def test_the_demo_without_redis(capsys):
    code, out = run(capsys, "--json", "demo", *WINDOW, "--no-redis")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["redis"] is False and report["claims"] == []
    assert [c["action"] for c in report["status_calls"]] == ["stop", "stop", "stop", "restart", "flush", "start"]
    ticks = {s["tick"] for s in report["active"]}
    assert {"2026-12-06T18:45:00Z", "2026-12-06T19:00:00Z", "2026-12-06T21:00:00Z",
            "2026-12-07T06:00:00Z"} <= ticks


def test_the_full_default_night_runs(capsys):
    code, out = run(capsys, "--json", "demo", "--no-redis")
    report = json.loads(out)
    assert code == 0 and report["ticks"] == 456
    assert [c["action"] for c in report["status_calls"]] == ["stop", "stop", "stop", "restart", "soft_restart",
                                                             "restart", "flush", "start"]


def test_keep_leaves_the_nights_ledger_for_history_and_calendar(capsys, tmp_path):
    kept = tmp_path / "night"
    code, out = run(capsys, "demo", *WINDOW, "--no-redis", "--keep", str(kept))
    assert code == 0
    assert f"LEDGER_URL=sqlite:///{kept / 'ledger.sqlite3'} .venv/bin/python -m dcs_maintenance history" in out
    assert f"--schedules {kept / 'schedules'} calendar --days 7" in out
    os.environ["LEDGER_URL"] = f"sqlite:///{kept / 'ledger.sqlite3'}"  # clean_env removes it again
    try:
        code, out = run(capsys, "--json", "history", "--result", "success", "--limit", "1000")
    finally:
        del os.environ["LEDGER_URL"]
    entries = json.loads(out)["entries"]
    assert code == 0
    assert {(e["instance_name"], e["action"]) for e in entries} == {
        ("dev-api", "stop"), ("staging-api", "restart"), ("staging-worker", "restart"),
        ("cache-sessions", "flush"), ("dev-api", "start"),
        *((f"web-0{n}", "restart") for n in range(1, 6))}  # the rolling restart's waves, up to its halt
    assert sorted(p.name for p in (kept / "schedules").iterdir()) == sorted(
        [p.name for p in (demo.ROOT / "schedules").glob("*.y*ml")]
        + [p.name for p in demo.DEMO_SCHEDULES.glob("*.y*ml")])


def test_keep_refuses_a_folder_holding_an_earlier_night(capsys, tmp_path):
    (tmp_path / "ledger.sqlite3").write_text("an earlier night")
    code = cli.main(["demo", *WINDOW, "--no-redis", "--keep", str(tmp_path)])
    assert code == 2
    assert f"--keep {tmp_path}: the folder is not empty" in capsys.readouterr().err
    assert (tmp_path / "ledger.sqlite3").read_text() == "an earlier night"
