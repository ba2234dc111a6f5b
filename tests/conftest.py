"""The pytest event harness: a running emulator, the function's settings, events and context.

Tests call `handler.handler(event, context)` exactly as FunctionGraph would, and assert on
the returned summary and on the emulator's request log (real SDK, real HTTP, loopback).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import pytest

# Importing huaweicloudsdkcore writes $HOME/.huaweicloud: keep it out of the real home.
os.environ["HOME"] = tempfile.mkdtemp(prefix="dcsm-home-")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulation import ledger_url_for  # noqa: E402

import handler as function_handler  # noqa: E402
from dcs_maintenance import clock, fastpath, gateway, invocation, loader, logs, rollout_runner, runner  # noqa: E402
from dcs_maintenance.tools.local import LocalContext, apig_event, timer_event  # noqa: E402

AK, SK = "TESTAK0123456789", "TESTSK-secret-value-0123456789"
PROJECT, OTHER_PROJECT = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
REGION = "cn-north-4"
API_TOKEN = "test-api-token-0123456789"

# Schedules more than one test module runs.
NIGHTLY = """
schedules:
  - name: nightly
    action: restart
    cron: "0 3 * * *"
    timezone: Asia/Shanghai
    instances: {tags: {env: staging}}
"""

HOURLY = """
schedules:
  - name: hourly
    action: restart
    cron: "0 * * * *"
    instances: {tags: {env: staging}}
"""

DEV_NIGHTS = """
schedules:
  - name: nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {tags: {env: dev}}
"""

NIGHTS_AND_HOURLY = """
schedules:
  - name: nights
    window: {stop: "0 20 * * *", start: "0 7 * * *"}
    instances: {ids: [i-dev]}
  - name: hourly
    action: restart
    cron: "0 * * * *"
    instances: {tags: {env: staging}}
"""

WEB_HOURLY = """
schedules:
  - name: web
    action: restart
    cron: "0 * * * *"
    instances: {tags: {role: web}}
"""


def t(text: str) -> datetime:
    """`2026-12-01T19:00:00Z` (or any ISO form) as an aware datetime, keeping the text's offset."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def reset_process_state() -> None:
    """Put back every piece of process-wide state the package keeps between invocations, as a cold function
    instance has it (issue 16: no test passes because of what an earlier one left behind):

    - caches that warm invocations reuse: fastpath's next fires, window states and last tick; the loader's files
      and catalogs; the per-catalog memos of runner (`_windows_of`), rollout_runner (`_keys_of`) and
      routes/schedules (`_order`, only once the routes are loaded); the ledger connections (invocation);
    - the test levers: clock, as-of and sleep;
    - logs: the bound request id and secrets (context variables, which a test's thread keeps), the level and
      stream (a LOG_LEVEL=DEBUG test would leave DEBUG on for tests that log without an invocation).

    Left alone on purpose: `functools` caches of pure functions (cron texts, zone names, the schema file,
    instants: the same input always gives the same answer), cronrules' zone transitions (pure too),
    `fastpath.calls` (a counter tests read as a difference) and gc_policy's cold-start flag (resetting it would
    freeze every test's garbage for the rest of the session)."""
    fastpath.clear()
    loader.clear_cache()
    runner.clear_memo()
    rollout_runner.clear_memo()
    schedules_route = sys.modules.get("dcs_maintenance.routes.schedules")
    if schedules_route is not None:
        schedules_route.clear_memo()
    invocation.close_ledgers()
    clock.set_clock(None)
    clock.set_as_of(None)
    clock.set_sleep(None)
    logs.bind("")
    logs.configure("INFO")


@pytest.fixture(autouse=True)
def fresh_process_state():
    """Every test starts as a cold function instance would (see reset_process_state), and leaves nothing behind."""
    reset_process_state()
    yield
    reset_process_state()


@pytest.fixture
def fresh_cronrules_caches():
    """Each test computes its expansions, day masks and zone transitions itself: cronrules keeps them in
    process-wide caches (the harness leaves pure caches alone), so a test reading them warm would judge the code
    that filled them, not the code under test (what mutation testing runs: mutants fork from a warm process).
    The cron test modules use it for all their tests (`pytestmark`)."""
    from dcs_maintenance import cronrules

    cronrules._parse_cached.cache_clear()
    cronrules._flags.cache_clear()
    cronrules._TRANSITIONS.clear()


@pytest.fixture
def emulator():
    from dcs_emulator import Emulator

    emu = Emulator(ak=AK, sk=SK, projects=[PROJECT, OTHER_PROJECT], transition_delay=0.0)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def schedules_dir(tmp_path: Path) -> Path:
    path = tmp_path / "schedules"
    path.mkdir()
    return path


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch, emulator: Any, schedules_dir: Path, tmp_path: Path) -> dict:
    """The function's settings pointing at the emulator, a fresh ledger and the test's schedules."""
    env = {
        "DCS_ENDPOINT": emulator.url,
        "DCS_REGION": REGION,
        "RUNTIME_PROJECT_ID": PROJECT,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "SCHEDULES_DIR": str(schedules_dir),
        "TICK_PERIOD": "5m",
        "API_TOKEN": API_TOKEN,
    }
    for key in ("DCS_PROJECT_ID", "DRY_RUN", "BATCH_SIZE", "PROTECT_TAG", "HUAWEICLOUD_SDK_SECURITY_TOKEN",
                "NOTIFY_SMN_TOPIC_URN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    invocation.close_ledgers()


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               function_env: dict) -> str:
    """LEDGER_URL for this test: a fresh SQLite file, or with the indirect parameter "redis" a fresh key prefix on
    the session's redis-server (the module must import tests/redis_server.py's fixtures)."""
    return use_ledger(getattr(request, "param", "sqlite"), request, tmp_path, monkeypatch)


def backend_ledger_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger URL for a backend test: `ledger.sqlite3` under tmp_path (the same file on every call of one test),
    or a fresh key namespace on the session's redis-server (the module must import tests/redis_server.py's
    fixtures)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.sqlite3"
    server = request.getfixturevalue("redis_server")
    return f"{server.url}?prefix=t-{uuid.uuid4().hex[:12]}:"


def use_ledger(kind: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point LEDGER_URL at a fresh ledger of `kind` ("sqlite" or "redis") and return the URL."""
    server = request.getfixturevalue("redis_server") if kind == "redis" else None
    url = ledger_url_for(kind, tmp_path, server)
    monkeypatch.setenv("LEDGER_URL", url)
    return url


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry backoff sleeps of a millisecond (the number of attempts is unchanged)."""
    monkeypatch.setattr(gateway, "BACKOFF_BASE", 0.001)


@pytest.fixture
def write_schedules(schedules_dir: Path) -> Callable[[str, str], Path]:
    def write(text: str, name: str = "test.yaml") -> Path:
        path = schedules_dir / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def at_time():
    """Set the wall clock to a given instant (advancing in real time from there)."""

    def set_at(when: datetime) -> None:
        clock.set_clock(clock.offset_clock(when))

    yield set_at
    clock.set_clock(None)


@pytest.fixture
def tick(function_env: dict, at_time: Callable[[datetime], None]) -> Callable[..., dict]:
    """Run a TIMER tick at `when` through handler.handler, with the wall clock at `when` (+ lag)."""

    def run(when: datetime, user_event: Any = "", context: Optional[LocalContext] = None, lag: Any = None) -> dict:
        at_time(when + lag if lag else when)
        return function_handler.handler(timer_event(when, user_event), context or LocalContext())

    return run


@pytest.fixture
def http(function_env: dict) -> Callable[..., dict]:
    """Send an APIG event through handler.handler; a valid bearer token unless headers are given."""

    def send(method: str, path: str, body: Any = None, headers: Optional[dict] = None, query: Optional[dict] = None,
             base64_body: bool = True, context: Optional[LocalContext] = None) -> dict:
        if headers is None:
            headers = {"Authorization": f"Bearer {function_env['API_TOKEN']}"}
        event = apig_event(method, path, body, headers, query, base64_body)
        return function_handler.handler(event, context or LocalContext())

    return send


def add_staging_pair(emu: Any) -> Any:
    """i-stg-1 (staging-api) and i-stg-2 (staging-jobs), tagged env=staging: what NIGHTLY restarts."""
    emu.add_instance(PROJECT, instance_id="i-stg-1", name="staging-api", tags={"env": "staging"})
    emu.add_instance(PROJECT, instance_id="i-stg-2", name="staging-jobs", tags={"env": "staging"})
    return emu


def add_staging_and_prod(emu: Any) -> Any:
    """The staging pair, i-stg-3 (staging-keep: env=staging but protected) and i-prod-1 (prod-api, env=prod)."""
    add_staging_pair(emu)
    emu.add_instance(PROJECT, instance_id="i-stg-3", name="staging-keep",
                     tags={"env": "staging", "maintenance-protect": "true"})
    emu.add_instance(PROJECT, instance_id="i-prod-1", name="prod-api", tags={"env": "prod"})
    return emu


def add_web(emu: Any, count: int) -> Any:
    """i-1 .. i-<count>, named web-<n>, tagged role=web: what WEB_HOURLY restarts."""
    for n in range(1, count + 1):
        emu.add_instance(PROJECT, instance_id=f"i-{n}", name=f"web-{n}", tags={"role": "web"})
    return emu


def status_calls(emu: Any, action: Optional[str] = None) -> list[dict]:
    """The bodies of the status PUTs the emulator received (optionally of one action)."""
    return emu.calls(action)


def acted_ids(emu: Any, action: Optional[str] = None) -> list[str]:
    return [iid for body in status_calls(emu, action) for iid in body["instances"]]


def wheel_cache(request: pytest.FixtureRequest) -> Path:
    """The wheels the package builds share: pytest's cache folder; without the cache provider (`-p
    no:cacheprovider`, as scripts/mutation.py runs), the folder `package` itself uses by default."""
    from dcs_maintenance.tools import package

    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir("dcsm-wheels")) if cache is not None else package.default_wheel_cache()


def json_lines(text: str) -> list[dict]:
    """The function's JSON log lines in captured output (other lines, e.g. pytest's, left out)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def results_by_instance(summary: dict, schedule: Optional[str] = None) -> dict[str, dict]:
    out = {}
    for sched in summary["schedules"]:
        if schedule is None or sched["name"] == schedule:
            for entry in sched["instances"]:
                out[entry["instance_id"]] = entry
    return out
