"""`python -m dcs_maintenance`: every command, its --json output and its exit codes.

Most run through cli.main with capsys (same process, the emulator fixture); the long-running servers and
the module entry point run as subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import NIGHTLY, add_staging_pair, status_calls

from dcs_maintenance.tools import cli, progress

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["validate", "next", "plan", "run", "invoke", "serve", "emulator", "package", "demo"]


def main(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fleet(emulator):
    return add_staging_pair(emulator)


def sh(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcs_maintenance", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


# -- help and the entry point ----------------------------------------------------------------------------------
def test_every_command_is_there_with_help(capsys):
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(COMMANDS) <= set(commands)
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            cli.main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: python -m dcs_maintenance {name}"), name
    help_text = parser.format_help()
    assert "examples:" in help_text and "Exit codes" in help_text
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", help_text, re.M), f"{name} has no one-line help"


def test_the_module_entry_point_and_usage_errors():
    proc = sh("validate", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"] is True
    proc = sh("no-such-command")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = sh("plan", "--at", "yesterday")
    assert proc.returncode == 2 and "--at" in proc.stderr


# -- validate / next -----------------------------------------------------------------------------------------
def test_validate_the_examples_text_and_json_in_either_position(capsys):
    code, out, _ = main(capsys, "validate")
    assert code == 0 and "valid schedule(s)" in out and "staging-nightly-restart" in out
    for argv in (["--json", "validate"], ["validate", "--json"]):
        code, out, _ = main(capsys, *argv)
        data = json.loads(out)
        assert code == 0 and data["ok"] and "cache-weekly-flush" in data["schedules"]


def test_validate_fails_on_an_invalid_file(capsys, tmp_path):
    (tmp_path / "bad.yaml").write_text("schedules:\n  - name: x\n    action: reboot\n")
    code, out, _ = main(capsys, "validate", "--schedules", str(tmp_path), "--json")
    data = json.loads(out)
    assert code == 1 and not data["ok"] and data["problems"] and data["problems"][0]["file"].endswith("bad.yaml")
    code, out, _ = main(capsys, "--schedules", str(tmp_path), "validate")
    assert code == 1 and "INVALID" in out


def test_next_lists_occurrences(capsys):
    code, out, _ = main(capsys, "next", "staging-nightly-restart", "--count", "3", "--after", "2026-12-01T00:00:00Z",
                        "--json")
    [item] = json.loads(out)["schedules"]  # issue 12: an object, with unknown names and problems beside
    assert code == 0 and item["name"] == "staging-nightly-restart" and len(item["next"]) == 3
    code, out, _ = main(capsys, "next", "--count", "1")
    assert code == 0 and "dev-weeknight-stop" in out
    code, out, _ = main(capsys, "next", "no-such-schedule")
    assert code == 1


# -- plan / run / invoke against the emulator ---------------------------------------------------------------------
def test_plan_changes_nothing(capsys, fleet, function_env, write_schedules):
    write_schedules(NIGHTLY)
    code, out, _ = main(capsys, "plan", "--at", "2026-12-01T19:00:00Z", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["preview"] and status_calls(fleet) == []
    assert {i["instance_id"] for s in summary["schedules"] for i in s["instances"]} == {"i-stg-1", "i-stg-2"}
    code, out, _ = main(capsys, "plan", "--at", "2026-12-01T19:00:00Z")
    assert code == 0 and "nightly" in out and "dry run" in out


def test_run_one_tick_then_a_failing_one(capsys, fleet, function_env, write_schedules):
    from dcs_emulator import Fault

    write_schedules(NIGHTLY)
    code, out, _ = main(capsys, "run", "--at", "2026-06-01T19:00:00Z", "--json")
    assert code == 0 and json.loads(out)["counts"]["success"] == 2
    assert len(status_calls(fleet, "restart")) == 1
    fleet.inject(Fault(endpoint="status", kind="failed_entries"))
    code, out, _ = main(capsys, "run", "--at", "2026-06-02T19:00:00Z")
    assert code == 1 and "failed" in out


def test_schedules_option_applies_to_the_function_too(capsys, fleet, function_env, tmp_path):
    other = tmp_path / "other-schedules"
    other.mkdir()
    (other / "nightly.yaml").write_text(NIGHTLY)  # the fixture's SCHEDULES_DIR is empty
    code, out, _ = main(capsys, "run", "--schedules", str(other), "--at", "2026-06-01T19:00:00Z", "--json")
    assert code == 0 and json.loads(out)["counts"]["success"] == 2


def test_run_many_ticks_with_until(capsys, fleet, function_env, write_schedules):
    write_schedules(NIGHTLY)
    code, out, err = main(capsys, "run", "--at", "2026-06-01T18:00:00Z", "--until", "2026-06-03T18:00:00Z",
                          "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["ticks"] == 48 * 12 + 1
    assert [s["tick"] for s in data["active"]] == ["2026-06-01T19:00:00Z", "2026-06-02T19:00:00Z"]
    assert "\r" not in err and "ticks" not in err  # no progress line when stderr is not a terminal
    assert all(json.loads(line)["event"] for line in err.splitlines())  # the function's log lines: on stderr
    assert len(status_calls(fleet, "restart")) == 2
    code, out, _ = main(capsys, "run", "--at", "2026-06-04T18:00:00Z", "--until", "2026-06-04T20:00:00Z",
                        "--every", "1h", "--dry-run")
    assert code == 0 and "3 tick(s)" in out and len(status_calls(fleet, "restart")) == 2
    code, _, err = main(capsys, "run", "--at", "2026-06-05T00:00:00Z", "--until", "2026-06-04T00:00:00Z")
    assert code == 2 and "--until" in err


def test_run_at_a_future_time_is_refused_unless_a_dry_run(capsys, fleet, function_env, write_schedules):
    """run --at judges a tick as it would have been judged then, but never writes state ahead of the real
    wall clock: a shared ledger would skip every real tick until then."""
    from dcs_maintenance.ledger import open_ledger

    write_schedules(NIGHTLY)
    code, out, _ = main(capsys, "run", "--at", "2099-06-01T19:00:00Z", "--json")
    summary = json.loads(out)
    assert code == 1 and "ahead of the wall clock" in summary["errors"][0] and status_calls(fleet) == []
    with open_ledger(function_env["LEDGER_URL"]) as ledger:
        assert ledger.watermarks() == {}
    code, out, _ = main(capsys, "run", "--at", "2099-06-01T19:00:00Z", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["counts"]["skipped"] == 2 and status_calls(fleet) == []


def test_invoke_timer_and_http(capsys, fleet, function_env, write_schedules):
    write_schedules(NIGHTLY)
    code, out, _ = main(capsys, "invoke", "timer", "--at", "2026-12-01T19:00:00Z", "--user-event",
                        '{"dry_run": true}')
    summary = json.loads(out)
    assert code == 0 and summary["dry_run"] and status_calls(fleet) == []
    code, out, _ = main(capsys, "invoke", "http", "GET", "/dcs-maintenance/health")
    assert code == 0 and json.loads(out)["statusCode"] == 200
    code, out, _ = main(capsys, "invoke", "http", "GET", "/schedules", "--header", "Authorization: Bearer wrong")
    assert code == 1 and json.loads(out)["statusCode"] == 401


def test_settings_errors_exit_2(capsys, function_env, monkeypatch):
    monkeypatch.setenv("BATCH_SIZE", "lots")
    code, _, err = main(capsys, "plan", "--at", "2026-12-01T19:00:00Z")
    assert code == 2 and "BATCH_SIZE" in err


# -- servers: emulator and serve ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_emulator_serves_until_terminated(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "dcs_maintenance", "emulator", "--port", "0", "--seed",
                             str(ROOT / "demo" / "seed.json")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        info = _get(url + "/_emulator/instances?project_id=0f1e2d3c4b5a69788796a5b4c3d2e1f0")
        assert len(info["instances"]) == 10  # demo/seed.json (dev-search: DCS refuses to stop it, issue 11)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_serve_answers_health(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dcs_maintenance", "serve", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "API_TOKEN": "cli-test-token-0123456789"})
    try:
        assert _get(f"http://127.0.0.1:{port}/health")["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


# -- package and demo ---------------------------------------------------------------------------------------------
def test_package_rejects_a_bad_python_version(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:  # issue 12: a bad argument, refused by the parser (exit 2)
        main(capsys, "package", "--python", "2.7", "--output", str(tmp_path / "x.zip"), "--json")
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "3.10 or 3.12" in err and not (tmp_path / "x.zip").exists()


def test_package_fails_offline_without_a_cache(capsys, tmp_path):
    code, _, err = main(capsys, "package", "--offline", "--wheel-cache", str(tmp_path / "empty"), "--output",
                        str(tmp_path / "x.zip"))
    assert code == 1 and "pip download failed" in err and not (tmp_path / "x.zip").exists()


def test_demo_json_and_exit_code(capsys, monkeypatch):
    for key in ("DCS_ENDPOINT", "LEDGER_URL", "SCHEDULES_DIR", "NOTIFY_SMN_TOPIC_URN"):
        monkeypatch.delenv(key, raising=False)
    code, out, err = main(capsys, "demo", "--from", "2026-12-06T18:45:00Z", "--hours", "1", "--no-redis", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["ticks"] == 12 and "\r" not in err
    # The stop DCS refuses as a whole (dev-search cannot be stopped) is split: 3 calls (issue 11).
    assert [c["action"] for c in report["status_calls"]] == ["stop", "stop", "stop", "restart"]
    assert "DCS_ENDPOINT" not in os.environ  # the demo puts the environment back


# -- progress display ---------------------------------------------------------------------------------------------
class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_progress_shows_only_on_a_terminal():
    quiet, shown = _Tty(False), _Tty(True)
    for stream in (quiet, shown):
        with progress.Progress(10, "ticks", stream=stream) as bar:
            for n in range(1, 11):
                bar.update(n, datetime(2026, 1, 1, tzinfo=timezone.utc).isoformat(), force=True)
    assert quiet.text == ""
    assert "[10/10 100%] ticks" in shown.text and shown.text.endswith("\r")  # the line is erased at the end
    steps = progress.Steps(stream=shown)
    steps.step("downloading wheels")
    steps.close()
    assert "downloading wheels" in shown.text
