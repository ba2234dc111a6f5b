"""Issue 16, runner gaps: how a tick lists its projects' instances (runner._list_projects, _targets).

One listing per (project, region), in a stable order, concurrently up to MAX_PARALLEL_PROJECTS, under the
invocation's request id; a project whose gateway cannot be made is logged and reported on its own schedules, the
others go on. run_tick is driven directly with a gateway factory that wraps the real one (the real SDK over HTTP to
the emulator) to watch the calls; each test names the mutants it kills.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from typing import Any, Optional

import pytest
from conftest import NIGHTS_AND_HOURLY, OTHER_PROJECT, PROJECT, json_lines, status_calls, t

from dcs_maintenance import clock, invocation, logs
from dcs_maintenance.loader import load_catalog
from dcs_maintenance.runner import Runtime, TickRequest, run_tick
from dcs_maintenance.settings import load_settings

AT = t("2026-06-01T10:00:00Z")


def hourly(name: str, project: str, region: Optional[str] = None) -> str:
    where = f"\n    region: {region}" if region else ""
    return f"""
  - name: {name}
    action: restart
    cron: "0 * * * *"
    project_id: "{project}"{where}
    instances: {{names: [app-{name}]}}"""


class Watched:
    """A gateway factory over the real one that records what the tick asks of it."""

    def __init__(self, settings: Any, fail: frozenset = frozenset(), barrier: Optional[threading.Barrier] = None):
        self.real = invocation.runtime(settings).gateway_factory
        self.fail, self.barrier = fail, barrier
        self.made: list[tuple[str, Optional[str]]] = []
        self.listed: list[tuple[str, Optional[str], str]] = []  # (project, region, request id seen by the worker)
        self.running = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, project: str, region: Optional[str]) -> Any:
        self.made.append((project, region))
        if (project, region) in self.fail:
            raise RuntimeError(f"no credentials for {project}")
        gateway = self.real(project, region)
        inner = gateway.list_instances

        def list_instances(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
                self.listed.append((project, region, logs.request_id()))
            try:
                if self.barrier is not None:
                    self.barrier.wait()  # every listing must be under way at once, or this times out
                time.sleep(0.05)
                return inner(*args, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

        gateway.list_instances = list_instances
        return gateway


def tick_with(watched_for: Any, monkeypatch: pytest.MonkeyPatch, parallel: int, **changes: Any) -> tuple[dict, Any]:
    monkeypatch.setenv("MAX_PARALLEL_PROJECTS", str(parallel))
    clock.set_clock(clock.offset_clock(AT))  # (the harness puts the clock back after the test)
    settings = replace(load_settings(), **changes)
    watched = watched_for(settings)
    catalog = load_catalog(settings.schedules_dir, settings.validation_context())
    logs.bind("req-listing")
    summary = run_tick(catalog, TickRequest(AT), Runtime(settings, invocation.ledger_for(settings), watched))
    return summary, watched


def by_name(summary: dict) -> dict[str, dict]:
    return {s["name"]: s for s in summary["schedules"]}


REGIONS = ["cn-south-1", "ap-southeast-1", "cn-north-4", "af-south-1"]


def test_each_project_and_region_is_listed_once_in_a_stable_order_one_at_a_time(emulator, function_env,
                                                                                 write_schedules, monkeypatch):
    """Five schedules on one project, one with no region (neither its own nor the function's), and one on
    another project: each (project, region) is listed once, gateways are made in the order (project, region, no
    region first), and with MAX_PARALLEL_PROJECTS=1 no two listings overlap; the worker threads carry the
    invocation's request id.

    kills: runner.py _list_projects `sorted(..., key=None)` and `key=lambda k: (k[1], ...)` (None and a region
    compared: TypeError), `k[1] and ""` (the regions of one project tie: set order, 23 times in 24 not the
    sorted one), `ThreadPoolExecutor(max_workers=None)` (the listings overlap), and `pool.submit(list_one, key)`
    without contextvars.copy_context (the worker sees request id '-')."""
    emulator.add_instance(PROJECT, instance_id="i-1", name="app-a")
    write_schedules("schedules:" + hourly("a", PROJECT) + "".join(hourly(f"r{n}", PROJECT, r)
                                                                   for n, r in enumerate(REGIONS))
                    + hourly("o", OTHER_PROJECT))
    summary, watched = tick_with(Watched, monkeypatch, parallel=1, region=None)  # DCS_ENDPOINT is enough
    expected = [(PROJECT, None), *((PROJECT, r) for r in sorted(REGIONS)), (OTHER_PROJECT, None)]
    assert watched.made == expected
    assert watched.listed == [(p, r, "req-listing") for p, r in expected]
    assert watched.peak == 1
    assert by_name(summary)["a"]["instances"][0]["result"] == "success"


def test_listings_run_concurrently_up_to_the_limit(emulator, function_env, write_schedules, monkeypatch):
    """Three projects' listings with MAX_PARALLEL_PROJECTS=3 are under way at the same time (a barrier of three
    releases only then).

    kills: runner.py _list_projects `max_workers=min(...)` -> `max_workers=1` or `min(..., len(keys) - 1)`-like
    narrowings (the barrier times out: every listing fails)."""
    write_schedules("schedules:" + hourly("a", PROJECT) + hourly("b", PROJECT, "cn-south-1")
                    + hourly("o", OTHER_PROJECT))
    barrier = threading.Barrier(3, timeout=10)
    summary, watched = tick_with(lambda s: Watched(s, barrier=barrier), monkeypatch, parallel=3)
    assert watched.peak == 3
    assert [s["decision"] for s in summary["schedules"]] == ["due", "due", "due"], summary["errors"]


def test_a_project_whose_gateway_cannot_be_made_is_logged_and_reported_the_others_go_on(
        emulator, function_env, write_schedules, monkeypatch, capsys):
    """The gateway of (OTHER_PROJECT, cn-south-1) cannot be made (credentials, say): one `gateway` error line
    naming the project, the region and the error; its schedule fails with the same error; the other project's
    schedule restarts its instance.

    kills: runner.py _list_projects every mutant of `logs.error("gateway", project=key[0], region=key[1],
    error=str(exc))` (event name, each field dropped, emptied or taken from the wrong place)."""
    emulator.add_instance(PROJECT, instance_id="i-1", name="app-a")
    write_schedules("schedules:" + hourly("a", PROJECT) + hourly("o", OTHER_PROJECT, "cn-south-1"))
    capsys.readouterr()
    summary, _ = tick_with(lambda s: Watched(s, fail=frozenset({(OTHER_PROJECT, "cn-south-1")})), monkeypatch,
                           parallel=2)
    lines = json_lines(capsys.readouterr().out)
    gateway_lines = [{k: v for k, v in line.items() if k not in ("ts", "time")} for line in lines
                     if line.get("event") == "gateway"]
    assert [{k: line[k] for k in ("event", "level", "project", "region", "error", "request_id")}
            for line in gateway_lines] == [
        {"event": "gateway", "level": "ERROR", "project": OTHER_PROJECT, "region": "cn-south-1",
         "error": f"no credentials for {OTHER_PROJECT}", "request_id": "req-listing"}]
    schedules = by_name(summary)
    assert (schedules["o"]["decision"], schedules["o"]["reason"]) == (
        "error", f"could not list instances of project {OTHER_PROJECT}: no credentials for {OTHER_PROJECT}")
    assert schedules["a"]["instances"][0]["result"] == "success" and summary["ok"] is False


def test_a_tick_without_any_project_id_names_none_as_the_project(emulator, function_env, write_schedules,
                                                                  monkeypatch):
    """No project id anywhere (a settings error the handler reports before a tick; run_tick alone still says
    which project it could not list): "(none)", and the gateway's own reason.

    kills: runner.py _targets `work.project or '(none)'` -> `and`, and the placeholder text changed."""
    write_schedules("schedules:" + """
  - name: plain
    action: restart
    cron: "0 * * * *"
    instances: {names: [app-a]}""")
    summary, _ = tick_with(Watched, monkeypatch, parallel=1, project_id="")
    [plain] = summary["schedules"]
    assert plain["decision"] == "error"
    assert plain["reason"].startswith("could not list instances of project (none): no valid project id ('')")


def test_a_rehearsal_lays_the_previewed_window_states_over_the_listing_and_only_there(
        emulator, function_env, write_schedules, capsys):
    """`run --until --dry-run` in this process: the night's stop is previewed at 20:00 and the morning's start at
    07:00 on the CLOSED status the stop would leave (DCS still says RUNNING); the hourly restart of another
    instance keeps its listed status all night; a project DCS will not list stays an error at every tick, the
    overlay never touches it.

    kills: runner.py _assumed every mutant: the overlay skipped (`if assumed:`, `... or True`: no start
    previewed), laid over a failed listing (`... and False`: TypeError), status None or keyed wrongly (the start or
    the restarts not previewed)."""
    from dcs_maintenance.tools import cli

    emulator.add_instance(PROJECT, instance_id="i-dev", name="dev-api")
    emulator.add_instance(PROJECT, instance_id="i-a", name="app-a", tags={"env": "staging"})
    write_schedules(NIGHTS_AND_HOURLY + """  - name: elsewhere
    action: restart
    cron: "0 * * * *"
    project_id: "00000000000000000000000000000000"
    instances: {names: [app-z]}
""")
    code = cli.main(["run", "--at", "2026-06-01T19:00:00Z", "--until", "2026-06-02T08:00:00Z", "--every", "1h",
                     "--dry-run", "--json"])
    data = json.loads(capsys.readouterr().out)
    seen = {(s["tick"][11:16], sched["name"]): [(e["instance_id"], e["reason"]) for e in sched["instances"]]
            or [("-", sched["reason"][:40])] for s in data["active"] for sched in s["schedules"]}
    assert code == 1 and data["ticks"] == 14
    assert seen[("20:00", "nights")] == [("i-dev", "dry run: would stop (RUNNING)")]
    assert seen[("07:00", "nights")] == [("i-dev", "dry run: would start (CLOSED)")]
    assert [k for k in seen if k[1] == "nights"] == [("19:00", "nights"), ("20:00", "nights"), ("07:00", "nights")]
    assert seen[("19:00", "nights")] == [("i-dev", "already RUNNING")]  # first sight: as the start left it
    assert all(seen[(f"{h:02d}:00", "hourly")] == [("i-a", "dry run: would restart (RUNNING)")]
               for h in (*range(19, 24), *range(0, 9)))
    assert all(seen[(f"{h:02d}:00", "elsewhere")] == [("-", "could not list instances of project 0000")]
               for h in (*range(19, 24), *range(0, 9)))
    assert status_calls(emulator) == [] and emulator.get_instance(PROJECT, "i-dev")["status"] == "RUNNING"


def test_a_manual_run_lists_the_schedules_own_region(emulator, function_env, write_schedules, monkeypatch):
    """A manual run (POST /schedules/{name}/run) of a schedule in another region than the function's, plain or
    with a rollout, lists that region's instances.

    kills: runner.py _manual_work `Work(..., region, ...)` and `due_rollout(..., region, ...)` given None (the
    function's own region is listed instead)."""
    write_schedules("schedules:" + hourly("plain", PROJECT, "cn-south-1") + hourly("waves", PROJECT, "ap-southeast-1")
                    + "\n    rollout: {batch: 1}")
    for name, region in (("plain", "cn-south-1"), ("waves", "ap-southeast-1")):
        monkeypatch.setenv("MAX_PARALLEL_PROJECTS", "1")
        settings = load_settings()
        watched = Watched(settings)
        catalog = load_catalog(settings.schedules_dir, settings.validation_context())
        clock.set_clock(clock.offset_clock(AT))
        request = TickRequest(AT, "http", manual=True, only=frozenset({name}))
        summary = run_tick(catalog, request, Runtime(settings, invocation.ledger_for(settings), watched))
        assert watched.made == [(PROJECT, region)], summary["schedules"]
