"""Benchmarks 1 and 2: cold starts, measured as whole fresh processes, side by side, median of several runs.

1. nothing due: `import handler`, load and validate the example schedules (schedules/), decide, at a tick at
   which nothing is due (the example window already settled in the ledger)  <= 0.6x  a process that only does
   `import huaweicloudsdkdcs.v2`. The tick must not import the SDK at all.
2. a tick that acts (one restart of one instance, against the emulator in its own process)
   <= 1.15x  (the SDK-import process + the nothing-due process).

Usage: python bench/cold_start.py [--reps N]
"""

from __future__ import annotations

import shutil
import sys
from datetime import datetime

from common import (
    PROJECT,
    ROOT,
    UTC,
    EmulatorProcess,
    Results,
    base_env,
    cleanup,
    count_requests,
    median,
    ms,
    precompile,
    run_child,
    run_python,
    seed_file,
    tempdir,
)

# Wednesday 2026-04-15: at 10:00 UTC no example schedule is due; the window (Berlin office hours) wants RUNNING
# since 07:00 Berlin. At 19:00 UTC staging-nightly-restart (03:00 Asia/Shanghai) is due; the window wants
# STOPPED since 20:00 Berlin.
IDLE_AT = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)
ACT_AT = datetime(2026, 4, 15, 19, 0, tzinfo=UTC)
SETTLE = 300  # the ledgers are prepared by a tick 5 minutes earlier (the window settles then)


def main(argv: list[str]) -> int:
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 9
    res = Results("cold_start")
    work = tempdir("cold")
    precompile()
    try:
        seed = seed_file(work / "seed.json", {PROJECT: 1}, tags={"env": "staging"}, name_prefix="staging-cache")
        with EmulatorProcess(seed, work) as emu:
            env = base_env(work, DCS_ENDPOINT=emu.url, SCHEDULES_DIR=str(ROOT / "schedules"))

            def ledger_env(path: str) -> dict[str, str]:
                return {**env, "LEDGER_URL": f"sqlite:///{work / path}"}

            # Steady state: the window schedule was settled by an earlier tick (a first sight would list).
            for name, at in (("idle", IDLE_AT), ("act", ACT_AT)):
                _, prep = run_child(["tick", "--at", _iso(at, -SETTLE)], ledger_env(f"{name}-template.sqlite3"))
                assert prep["summaries"][0]["ok"], prep
            emu.clear()

            sdk, idle, act = [], [], []
            idle_result = act_result = None
            code = "import huaweicloudsdkdcs.v2"
            for rep in range(reps + 1):  # the first round warms the page cache and is not counted
                for name in ("idle", "act"):
                    shutil.copy(work / f"{name}-template.sqlite3", work / f"{name}.sqlite3")
                order = [0, 1, 2] if rep % 2 else [2, 1, 0]
                for which in order:
                    if which == 0:
                        t = run_python(code, env)
                        if rep:
                            sdk.append(t)
                    elif which == 1:
                        before = len(emu.requests())
                        t, idle_result = run_child(["tick", "--at", _iso(IDLE_AT)], ledger_env("idle.sqlite3"))
                        if len(emu.requests()) != before:
                            res.check("nothing-due tick sends no request", False, "the emulator got requests")
                        if rep:
                            idle.append(t)
                    else:
                        t, act_result = run_child(["tick", "--at", _iso(ACT_AT), "--clock", _iso(ACT_AT, 5)],
                                                  ledger_env("act.sqlite3"))
                        if rep:
                            act.append(t)
            requests = count_requests(emu.requests())
    finally:
        cleanup(work)

    s, i, a = median(sdk), median(idle), median(act)
    res.info("runs", f"{reps} fresh processes each (medians), after one warm-up round; function modules byte-compiled")
    res.info("import huaweicloudsdkdcs.v2 process", ms(s))
    res.info("nothing-due tick process", f"{ms(i)} (in-process: import {ms(idle_result['import'])}, "
                                         f"tick {ms(idle_result['ticks'][0])})")
    res.info("acting tick process", f"{ms(a)} (in-process: import {ms(act_result['import'])}, "
                                    f"tick {ms(act_result['ticks'][0])})")
    summary = idle_result["summaries"][0]
    res.check("nothing-due tick imports no SDK module", not idle_result["modules"]["sdk"],
              f"heavy modules loaded: {', '.join(idle_result['modules']['heavy']) or 'none'}")
    res.check("nothing-due tick makes no API call and is ok", summary["ok"] and not any(
        (summary["api_calls"] or {}).values()) and summary["reported"] == 0, str(summary))
    acted = act_result["summaries"][0]
    res.check("acting tick restarts exactly one instance", acted["ok"] and acted["counts"]["success"] == 1
              and acted["api_calls"].get("status_calls") == 1, str(acted))
    res.info("emulator requests (all acting runs)", str(requests))
    res.ratio("nothing-due / SDK import", i / s, 0.6, f"{ms(i)} vs {ms(s)}")
    res.ratio("acting / (SDK import + nothing-due)", a / (s + i), 1.15, f"{ms(a)} vs {ms(s + i)}")
    return res.finish()


def _iso(t: datetime, offset_s: float = 0) -> str:
    from datetime import timedelta

    return (t + timedelta(seconds=offset_s)).isoformat()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
