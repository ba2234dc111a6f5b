"""Benchmark 5: 10,000 instances across 20 projects, all due in one tick, against the emulator.

The emulator runs in its own process (`python -m dcs_emulator --seed ...`): in this process it would compete
with the function for the interpreter. Both sides still share the machine's cores, so the emulator's own cost
(signature checks, JSON of 1,000-instance pages) is part of every figure. Printed: requests, wall time of the
tick, wall time per request, and the same for a single project of the same size (10,000 instances in one
project, one schedule). Checked: every instance restarted, one list call per 1,000 instances of a project,
ceil(N / BATCH_SIZE) status calls per project, and no more than MAX_PARALLEL_PROJECTS projects in flight at once
(with more than one).

Usage: python bench/scale.py [--projects 20] [--per-project 500]
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path

from common import (
    UTC,
    EmulatorProcess,
    Results,
    base_env,
    cleanup,
    count_requests,
    ms,
    precompile,
    project_id,
    run_child,
    seed_file,
    tempdir,
)

AT = datetime(2026, 4, 15, 3, 0, tzinfo=UTC)
BIG = "b" * 32  # the single project of the comparison run
PARALLEL = 4  # MAX_PARALLEL_PROJECTS (the default)
BATCH = 50  # BATCH_SIZE (the default)
LATENCY = 0.03  # seconds added to every request in the second pair of runs
LOG_LEVEL = "INFO"  # the default: one JSON log line per instance result, written to stdout as on FunctionGraph


def fleet(work: Path, projects: int, per_project: int) -> tuple[Path, list[str]]:
    """The seed: `projects` projects of `per_project` instances, and BIG with all of them in one project."""
    ids = [project_id(i) for i in range(projects)]
    counts = {p: per_project for p in ids}
    counts[BIG] = projects * per_project
    return seed_file(work / "seed.json", counts), ids


def schedules(directory: Path, projects: list[str], per_project: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    items = [{"name": f"fleet-{i:02d}", "action": "restart", "cron": "0 3 * * *", "project_id": p,
              "max_instances": per_project, "instances": {"names": ["inst-*"]}} for i, p in enumerate(projects)]
    (directory / "fleet.json").write_text(json.dumps({"schedules": items}))
    return directory


def tick_env(work: Path, emu: EmulatorProcess, directory: Path, label: str) -> dict[str, str]:
    return base_env(work, DCS_ENDPOINT=emu.url, SCHEDULES_DIR=str(directory), LOG_LEVEL=LOG_LEVEL,
                    LEDGER_URL=f"sqlite:///{work / (label + '.sqlite3')}", MAX_PARALLEL_PROJECTS=str(PARALLEL),
                    BATCH_SIZE=str(BATCH))


def run_tick(work: Path, emu: EmulatorProcess, directory: Path, label: str) -> tuple[dict, list[dict]]:
    emu.clear()
    _, out = run_child(["tick", "--at", AT.isoformat(), "--clock", (AT + timedelta(seconds=5)).isoformat(), "--track"],
                       tick_env(work, emu, directory, label))
    return out, emu.requests()


def main(argv: list[str]) -> int:
    projects = int(argv[argv.index("--projects") + 1]) if "--projects" in argv else 20
    per_project = int(argv[argv.index("--per-project") + 1]) if "--per-project" in argv else 500
    total = projects * per_project
    res = Results("scale")
    work = tempdir("scale")
    precompile()
    try:
        seed, ids = fleet(work, projects, per_project)
        with EmulatorProcess(seed, work) as emu:
            multi, multi_log = run_tick(work, emu, schedules(work / "multi", ids, per_project), "multi")
            single, single_log = run_tick(work, emu, schedules(work / "single", [BIG], total), "single")
            # The same with some network latency on every request, as a real endpoint has.
            emu.inject(endpoint="any", kind="slow", times=None, delay=LATENCY)
            slow_multi, _ = run_tick(work, emu, work / "multi", "multi-slow")
            slow_single, _ = run_tick(work, emu, work / "single", "single-slow")
            emu.clear_faults()
    finally:
        cleanup(work)

    for label, out, log, n_projects, per in (("20 projects", multi, multi_log, projects, per_project),
                                             ("1 project", single, single_log, 1, total)):
        summary, requests = out["summaries"][0], count_requests(log)
        want = {"list": n_projects * math.ceil(per / 1000), "status": n_projects * math.ceil(per / BATCH),
                # issue 11: one ListBackupRecords before, and one ListConfigurations after, each restart
                "backups": n_projects * per, "configs": n_projects * per}
        wall = out["ticks"][0]
        res.check(f"{label}: all {total:,} instances restarted", summary["ok"] and summary["counts"]["success"]
                  == total, str(summary["counts"]))
        res.check(f"{label}: requests {want}", requests == want, f"got {requests}")
        res.info(f"{label}: tick wall time", f"{ms(wall)} for {sum(requests.values())} requests, "
                                             f"{ms(wall / max(1, sum(requests.values())))} per request")
    peak = multi["in_flight"]
    res.check(f"projects in flight at once: 1 < n <= MAX_PARALLEL_PROJECTS={PARALLEL}",
              1 < peak["projects"] <= PARALLEL and peak["calls"] <= PARALLEL,
              f"at most {peak['projects']} projects and {peak['calls']} calls at once")
    per_multi = multi["ticks"][0] / max(1, len(multi_log))
    per_single = single["ticks"][0] / max(1, len(single_log))
    res.ratio("wall time per request, 20 projects / 1 project", per_multi / per_single, None,
              f"{ms(per_multi)} vs {ms(per_single)}")
    res.ratio("tick wall time, 20 projects / 1 project", multi["ticks"][0] / single["ticks"][0], None,
              f"{ms(multi['ticks'][0])} vs {ms(single['ticks'][0])}")
    slow = slow_multi["ticks"][0] / slow_single["ticks"][0]
    res.check(f"with {LATENCY * 1000:.0f} ms latency per request: all restarted", all(
        o["summaries"][0]["counts"]["success"] == total for o in (slow_multi, slow_single)), "")
    res.ratio(f"with {LATENCY * 1000:.0f} ms latency per request: tick wall time, 20 projects / 1 project", slow,
              None, f"{ms(slow_multi['ticks'][0])} vs {ms(slow_single['ticks'][0])}")
    res.info("note", "the emulator runs in its own process on the same 2 cores: its request handling (signatures, "
                     "JSON of 1,000-instance pages) is included, and without latency both sides are CPU-bound")
    return res.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
