"""Issue 12: the command line as a new user meets it, run for real (`python -m dcs_maintenance ...` in a subprocess).

No traceback on any user error; exit codes as the README states them (0 ok, 1 a failed check, 2 a bad argument or
setting, SCHEDULES_DIR naming no folder included); validate takes files and folders; next explains unknown and
invalid names; package ships the schedules folder the other commands read, refuses invalid schedules, warns about
the unchanged examples and writes into an existing folder or one given with a trailing slash; a closed stdout ends
quietly; scripts/setup says what it does and waits for the package manager's lock.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from conftest import wheel_cache

ROOT = Path(__file__).resolve().parent.parent
VALID = """
schedules:
  - name: nightly
    action: restart
    cron: "0 3 * * *"
    instances: {tags: {env: staging}}
"""
INVALID = """
schedules:
  - name: broken
    action: reboot
    cron: "0 3 * * *"
    instances: {tags: {env: staging}}
"""


def cli(*args: str, env: dict | None = None, unset: tuple[str, ...] = (), timeout: float = 120,
        cwd: Path = ROOT) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "dcs_maintenance", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environ)


def assert_clean(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    """The exit status, no traceback, and each fragment in stdout or stderr."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text
    assert proc.returncode == code, (proc.returncode, text)
    for fragment in fragments:
        assert fragment in text, (fragment, text)


@pytest.fixture
def folder(tmp_path: Path):
    def make(name: str, **files: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        for file, text in files.items():
            (path / file).write_text(text)
        return path

    return make


def busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


# -- version and help ---------------------------------------------------------------------------------------------
def test_version():
    from dcs_maintenance import __version__

    proc = cli("--version")
    assert_clean(proc, 0)
    assert proc.stdout.strip() == f"python -m dcs_maintenance {__version__}"


def test_every_option_says_what_it_does():
    from dcs_maintenance.tools import cli as cli_module

    parser = cli_module.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    silent = []
    for name, command in [("", parser), *commands.items()]:
        for action in command._actions:
            if not action.help or action.help == "==SUPPRESS==" or len(action.help) < 8:
                silent.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert silent == []


def test_invoke_help_says_it_adds_the_bearer_token():
    proc = cli("invoke", "--help")
    assert_clean(proc, 0)
    text = " ".join(proc.stdout.split())
    assert "Authorization: Bearer" in text and "API_TOKEN" in text


def test_run_help_says_at_is_the_ticks_time_not_the_wall_clock():
    """`run --at` judges lateness as of TIME and never moves the wall clock (a future TIME is refused unless
    --dry-run): help that said "the wall clock is set to --at" explained that refusal away."""
    proc = cli("run", "--help")
    assert_clean(proc, 0)
    text = " ".join(proc.stdout.split())
    assert "wall clock is set" not in text
    assert "tick's time" in text and "lateness (starting_deadline) is judged as it would have been then" in text
    assert "wall clock stays the real one" in text and "refused unless --dry-run" in text


# -- exit codes: 2 for every bad argument, with one line and no traceback ------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (["package", "--python", "banana"], "3.10 or 3.12"),
    (["package", "--max-size-mb", "-1"], "--max-size-mb"),
    (["package", "--schedules", "/no/such/folder"], "/no/such/folder"),
    (["next", "--count", "0"], "--count"),
    (["next", "--count", "many"], "--count"),
    (["next", "--schedules", "/no/such/folder"], "no such folder"),
    (["--schedules", "/no/such/folder", "validate"], "no such folder"),
    (["plan", "--schedules", "/no/such/folder"], "no such folder"),
    (["run", "--dry-run", "--schedules", "/no/such/folder"], "no such folder"),
    (["invoke", "timer", "--schedules", "/no/such/folder"], "no such folder"),
    (["plan", "--at", "yesterday"], "--at"),
    (["run", "--every", "5m"], "--every needs --until"),
    (["run", "--every", "0s", "--until", "2026-12-05T00:00:00Z"], "--every"),
    (["run", "--at", "2026-12-05T00:00:00Z", "--until", "2026-12-04T00:00:00Z"], "--until"),
    (["validate", "no-such-file.yaml"], "no such file or folder: no-such-file.yaml"),
    (["serve", "--port", "70000"], "--port"),
    (["emulator", "--port", "-1", "--project", "p"], "--port"),
    (["emulator"], "--seed"),
    (["invoke", "http", "GET", "/health", "--header", "NoSeparator"], "expected NAME=VALUE"),
    (["invoke", "http", "GET", "/health", "--header", "=value"], "expected NAME=VALUE"),
    (["invoke", "http", "GET", "/plan", "--query", "at"], "expected NAME=VALUE"),
    (["demo", "--hours", "0"], "--hours"),
    (["demo", "--seed", "no-such-seed.json"], "--seed no-such-seed.json: no such file"),
])
def test_bad_arguments_exit_2(args, fragment):
    assert_clean(cli(*args), 2, fragment)


SETTINGS = ("DCS_REGION", "DCS_ENDPOINT", "RUNTIME_PROJECT_ID", "DCS_PROJECT_ID", "HUAWEICLOUD_SDK_AK",
            "HUAWEICLOUD_SDK_SK", "SCHEDULES_DIR")


@pytest.mark.parametrize("args", [
    ["plan", "--at", "2026-12-01T19:00:00Z"],
    ["run", "--at", "2026-12-01T10:00:00Z", "--dry-run"],
    ["run", "--at", "2026-12-01T10:00:00Z", "--until", "2026-12-01T12:00:00Z", "--dry-run"],
    ["invoke", "timer", "--at", "2026-12-01T10:00:00Z"],
])
def test_missing_settings_exit_2_naming_them(args, tmp_path):
    proc = cli(*args, unset=SETTINGS, env={"LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"})
    assert_clean(proc, 2, "missing settings", "DCS_REGION", "RUNTIME_PROJECT_ID", "credentials")


SCHEDULE_COMMANDS = [["validate"], ["next"], ["plan"], ["run", "--dry-run"], ["invoke", "timer"],
                     ["package", "--offline"]]


@pytest.mark.parametrize("args", SCHEDULE_COMMANDS, ids=lambda args: " ".join(args))
def test_a_schedules_dir_that_does_not_exist_exits_2_everywhere(args, tmp_path):
    """SCHEDULES_DIR naming no folder is a bad setting for every command that reads the schedules: exit 2 and the
    same one line, before anything runs (plan, run and invoke timer used to tick and exit 1). Every other setting
    is given, so the folder is the only thing wrong."""
    env = {"DCS_REGION": "cn-north-4", "DCS_ENDPOINT": "http://127.0.0.1:9", "RUNTIME_PROJECT_ID": "0123456789abcdef",
           "HUAWEICLOUD_SDK_AK": "TESTAK0123456789", "HUAWEICLOUD_SDK_SK": "TESTSK-secret-value-0123456789",
           "LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"}
    (tmp_path / "file.yaml").write_text(VALID)
    for value, what in (("/no/such/folder", "no such folder"), (str(tmp_path / "file.yaml"), "not a folder")):
        proc = cli(*args, env={**env, "SCHEDULES_DIR": value})
        assert_clean(proc, 2, f"SCHEDULES_DIR={value}: {what}")
        assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "ledger.sqlite3").exists()


def test_header_and_query_accept_both_forms():
    proc = cli("invoke", "http", "GET", "/health", "--header", "X-Trace=a=b", "--header", "X-Other: c:d",
               "--query", "at=2026-12-01T19:00:00+08:00")
    assert_clean(proc, 0, '"statusCode": 200')


# -- servers: busy ports and bad seeds ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["serve"], ["emulator", "--project", "p"]])
def test_a_busy_port_is_one_line(command):
    with busy_port() as sock:
        port = sock.getsockname()[1]
        proc = cli(*command, "--port", str(port), env={"API_TOKEN": "cli-edges-token-0123456789"})
    assert_clean(proc, 2, f"port {port} is in use; choose another with --port")
    assert len(proc.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("command", [["emulator", "--port", "0"], ["demo", "--no-redis"]])
def test_a_seed_that_is_missing_or_not_json_names_the_file(command, tmp_path):
    bad = tmp_path / "seed.json"
    bad.write_text("{not json")
    assert_clean(cli(*command, "--seed", str(bad)), 2, f"--seed {bad}: not JSON")
    shape = tmp_path / "shape.json"
    shape.write_text('{"instances": []}')
    assert_clean(cli(*command, "--seed", str(shape)), 2, f"--seed {shape}", "'projects'")
    assert_clean(cli(*command, "--seed", str(tmp_path / "gone.json")), 2, "gone.json: no such file")


def test_serve_warns_at_start_when_api_token_is_unset():
    proc = subprocess.Popen([sys.executable, "-m", "dcs_maintenance", "serve", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "API_TOKEN"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend([proc.stderr.readline(), proc.stderr.readline()]),
                              daemon=True)
    reader.start()
    reader.join(30)
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    assert len(lines) == 2, f"serve printed only {lines!r}"
    assert lines[0].startswith("serving the dcs-maintenance routes on http://127.0.0.1:")
    assert lines[1].startswith("warning: API_TOKEN is not set") and "503" in lines[1]


# -- a closed stdout ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, code", [(["next", "--count", "1000"], 0), (["--json", "next", "--count", "1000"], 0)])
def test_output_piped_into_head_ends_quietly(args, code):
    proc = subprocess.Popen([sys.executable, "-m", "dcs_maintenance", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does after its line
    stderr = proc.stderr.read().decode()
    assert proc.wait(60) == code and first
    assert stderr == "", stderr


# -- validate PATH ... ----------------------------------------------------------------------------------------------
def test_validate_files_and_folders(folder, tmp_path):
    mine = folder("mine", **{"a.yaml": VALID})  # no schema.json: the package's schema is used
    single = tmp_path / "single.yml"
    single.write_text(VALID.replace("nightly", "single"))
    proc = cli("validate", str(mine), str(single))
    assert_clean(proc, 0, "2 file(s), 2 valid schedule(s)", "ok       nightly", "ok       single")
    proc = cli("validate", str(single))
    assert_clean(proc, 0, "1 file(s), 1 valid schedule(s)")
    proc = cli("validate", "schedules/nightly-restart.yaml")
    assert_clean(proc, 0, "staging-nightly-restart")


def test_validate_names_what_is_wrong_and_where(folder, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(INVALID)
    mine = folder("mine", **{"a.yaml": VALID})
    copy = tmp_path / "copy.yaml"
    copy.write_text(VALID)
    proc = cli("validate", str(mine), str(bad), str(copy), "--json")
    assert_clean(proc, 1)
    import json

    data = json.loads(proc.stdout)
    messages = [(p["file"], p["schedule"], p["message"]) for p in data["problems"]]
    assert [(p["schedule"], p["path"]) for p in data["problems"] if p["file"].endswith("bad.yaml")] == [
        ("broken", "$.schedules[0].action")]
    assert sum("duplicate schedule name 'nightly'" in m for _, _, m in messages) == 2  # a.yaml and copy.yaml


# -- next ---------------------------------------------------------------------------------------------------------
def test_next_explains_unknown_names_with_close_matches():
    proc = cli("next", "staging-nightly-restart", "stagign-nightly-restart", "--count", "1")
    assert_clean(proc, 1, "staging-nightly-restart: ", "no schedule named 'stagign-nightly-restart'",
                 "did you mean 'staging-nightly-restart'")
    proc = cli("next", "zzz")
    assert_clean(proc, 1, "no schedule named 'zzz'")
    assert "did you mean" not in proc.stdout


def test_next_lists_invalid_schedules_as_problems(folder):
    mixed = folder("mixed", **{"good.yaml": VALID, "bad.yaml": INVALID})
    proc = cli("next", "--schedules", str(mixed), "--count", "1")
    assert_clean(proc, 1, "nightly: ", "INVALID", "broken")
    proc = cli("next", "broken", "--schedules", str(mixed))
    assert_clean(proc, 1, "INVALID", "broken")
    assert "no schedule named" not in proc.stdout
    proc = cli("next", "nightly", "--schedules", str(mixed), "--count", "1")
    assert_clean(proc, 0, "nightly: ")


def test_next_in_a_folder_where_nothing_is_valid(folder):
    only_bad = folder("bad", **{"bad.yaml": INVALID})
    proc = cli("next", "--schedules", str(only_bad))
    assert_clean(proc, 1, "no valid schedule in", "INVALID", "broken")
    empty = folder("empty")
    assert_clean(cli("next", "--schedules", str(empty)), 1, "no valid schedule in")


# -- package --------------------------------------------------------------------------------------------------------
def test_package_refuses_invalid_schedules_and_names_them(folder, tmp_path):
    bad = folder("bad", **{"good.yaml": VALID, "bad.yaml": INVALID})
    out = tmp_path / "out.zip"
    proc = cli("package", "--schedules", str(bad), "--offline", "--wheel-cache", str(tmp_path / "empty"),
               "--output", str(out))
    assert_clean(proc, 1, "refusing to build", "bad.yaml", "[broken]", "--allow-invalid")
    assert "pip download" not in proc.stderr and not out.exists()
    proc = cli("package", "--schedules", str(bad), "--allow-invalid", "--offline", "--wheel-cache",
               str(tmp_path / "empty"), "--output", str(out))
    assert_clean(proc, 1, "warning: shipping schedules with 1 problem(s)", "pip download failed")
    assert not list(tmp_path.glob("*.tmp"))


def test_package_warns_about_the_unchanged_examples(folder, tmp_path):
    empty_cache = str(tmp_path / "empty")
    proc = cli("package", "--offline", "--wheel-cache", empty_cache, "--output", str(tmp_path / "x.zip"))
    assert_clean(proc, 1, "example schedules are shipped unchanged", "nightly-restart.yaml")
    copied = folder("copied")
    shutil.copy(ROOT / "schedules" / "cache-flush.yaml", copied)
    (copied / "own.yaml").write_text(VALID)
    proc = cli("package", "--schedules", str(copied), "--offline", "--wheel-cache", empty_cache)
    assert_clean(proc, 1, "shipped unchanged (cache-flush.yaml)")
    own = folder("own", **{"own.yaml": VALID})  # and no schema.json: not needed
    proc = cli("package", "--schedules", str(own), "--offline", "--wheel-cache", empty_cache)
    assert_clean(proc, 1, "pip download failed")
    assert "unchanged" not in proc.stderr and "schema.json" not in proc.stderr


def test_package_ships_schedules_dir_as_the_other_commands_read_it(folder, tmp_path):
    """SCHEDULES_DIR is the schedules folder for package too (its --schedules help says so): the zip ships what the
    deployed function will run, and the folder validate and next check is the one that gets validated and shipped.
    --schedules still wins over it."""
    empty_cache = str(tmp_path / "empty")
    bad = folder("bad", **{"good.yaml": VALID, "bad.yaml": INVALID})
    proc = cli("package", "--offline", "--wheel-cache", empty_cache, env={"SCHEDULES_DIR": str(bad)})
    assert_clean(proc, 1, "refusing to build", "bad.yaml", "[broken]")
    assert "unchanged" not in proc.stderr
    own = folder("own", **{"own.yaml": VALID})
    proc = cli("package", "--offline", "--wheel-cache", empty_cache, env={"SCHEDULES_DIR": str(own)})
    assert_clean(proc, 1, "pip download failed")
    assert "unchanged" not in proc.stderr and "refusing" not in proc.stderr
    proc = cli("package", "--schedules", str(own), "--offline", "--wheel-cache", empty_cache,
               env={"SCHEDULES_DIR": str(bad)})
    assert_clean(proc, 1, "pip download failed")
    assert "refusing" not in proc.stderr


def test_the_example_table_matches_the_examples():
    from dcs_maintenance.tools import package

    examples = {p.name: package.content_hash(p) for p in (ROOT / "schedules").glob("*.yaml")}
    assert {name: digest for digest, name in package.EXAMPLE_SCHEDULES.items()} == examples


def build_into(request: pytest.FixtureRequest, tmp_path: Path, output: str,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """A real build with own.yaml as the only schedule (wheels from wheel_cache, else the index), skipped when
    no wheels can be had."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "own.yaml").write_text(VALID)
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    where = ["--schedules", str(own)] if env is None else []
    proc = cli("package", "--python", python, *where, "--wheel-cache", str(wheel_cache(request)), "--no-verify",
               "--output", output, env=env, timeout=600)
    if "pip download failed" in proc.stderr:
        pytest.skip("no wheels: no package index and no cached wheels")
    return proc


def assert_zip_alone_in(dist: Path, proc: subprocess.CompletedProcess) -> None:
    """DIR/dcs-maintenance.zip built from own/, with nothing else beside it (no DIR.tmp, no example schedules)."""
    assert_clean(proc, 0, f"built {dist / 'dcs-maintenance.zip'}")
    assert sorted(p.name for p in dist.parent.iterdir()) == ["dist", "own"]
    assert [p.name for p in dist.iterdir()] == ["dcs-maintenance.zip"]
    names = zipfile.ZipFile(dist / "dcs-maintenance.zip").namelist()
    assert "schedules/own.yaml" in names and "schedules/schema.json" in names
    assert not [n for n in names if n.startswith("schedules/") and "nightly-restart" in n]


def test_package_into_an_existing_folder(request, tmp_path):
    """`--output DIR`, DIR an existing folder: DIR/dcs-maintenance.zip, and no DIR.tmp."""
    dist = tmp_path / "dist"
    dist.mkdir()
    assert_zip_alone_in(dist, build_into(request, tmp_path, str(dist)))


def test_package_into_a_new_folder_given_with_a_slash(request, tmp_path):
    """`-o NEWDIR/` (not there yet) means the folder, as the help says: NEWDIR/dcs-maintenance.zip, not a zip file
    named NEWDIR. The schedules come from SCHEDULES_DIR, the folder every other command reads."""
    dist = tmp_path / "dist"
    proc = build_into(request, tmp_path, f"{dist}/", {"SCHEDULES_DIR": str(tmp_path / "own")})
    assert dist.is_dir(), f"{dist} was written as a file"
    assert_zip_alone_in(dist, proc)


def test_a_failed_zip_write_leaves_no_tmp(tmp_path):
    from dcs_maintenance.tools import package

    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    target = tmp_path / "out" / "dcs-maintenance.zip"
    target.mkdir(parents=True)  # the final rename cannot replace a folder
    with pytest.raises(OSError):
        package.write_zip(staging, target)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dcs-maintenance.zip"]


# -- scripts/setup ------------------------------------------------------------------------------------------------
STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
"""


def test_setup_says_what_it_does_and_waits_for_the_package_lock(tmp_path):
    """scripts/setup in a copy of the repository, with stubs for the virtual environment's python, apt-get and sudo
    (no redis-server on PATH): one line per step, and apt-get told to wait for the dpkg lock."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup", repo / "scripts" / "setup")
    shutil.copy(ROOT / "requirements-dev.txt", repo / "requirements-dev.txt")
    stubs = tmp_path / "bin"
    (repo / ".venv" / "bin").mkdir(parents=True)
    stubs.mkdir()
    for path in (repo / ".venv" / "bin" / "python", stubs / "apt-get", stubs / "sudo"):
        path.write_text(STUB)
        path.chmod(0o755)
    for tool in ("dirname", "id", "basename", "cat", "sleep"):
        found = shutil.which(tool)
        if found:
            (stubs / tool).symlink_to(found)
    log = tmp_path / "calls.log"
    bash = shutil.which("bash")
    proc = subprocess.run([bash, str(repo / "scripts" / "setup")], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(stubs), "STUB_LOG": str(log), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    steps = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(steps) >= 3 and all(re.match(r"^(setup|==>|\[\d)", line) for line in steps), steps
    calls = log.read_text().splitlines()
    apt = [c for c in calls if c.startswith("apt-get") or c.startswith("sudo apt-get")]
    assert apt and all("DPkg::Lock::Timeout=" in c for c in apt), calls
    assert any("install" in c and "redis-server" in c for c in apt)
    assert any(c.startswith("python -m pip install") for c in calls)
