"""Benchmarks 1 and 2: cold starts, measured as whole fresh processes, side by side, median of several runs.

1. nothing due: `import handler`, load and validate 20 schedules in one YAML file (daily, weekday, monthly and
   frequent crons in four zones), decide, at a tick at which none is due  <= 0.5x  a process that only does
   `import huaweicloudsdkdcs.v2`. The tick must import neither the SDK nor croniter (cronrules expands the
   fields itself) and make no API call. The same with the example schedules (schedules/, their window
   settled in the ledger) is reported too.
2. a tick that acts (one restart of one instance with the example schedules, against the emulator in its own
   process)  <= 1.15x  (the SDK-import process + the nothing-due process with the same schedules).

Usage: python bench/cold_start.py [--reps N]
"""

from __future__ import annotations

import sys
from datetime import datetime

from common import (
    PROJECT,
    ROOT,
    TICK,
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
    small_yaml,
    tempdir,
)

# Wednesday 2026-04-15: at 10:00 UTC no example schedule is due; the window (Berlin office hours) wants RUNNING
# since 07:00 Berlin. At 19:00 UTC staging-nightly-restart (03:00 Asia/Shanghai) is due; the window wants
# STOPPED since 20:00 Berlin.
IDLE_AT = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)
ACT_AT = datetime(2026, 4, 15, 19, 0, tzinfo=UTC)
SETTLE = 300  # the ledgers are prepared by a tick 5 minutes earlier (the window settles then)
# The 20 schedules: none due in (10:05, 10:10] UTC, nor at the preparing tick 5 minutes earlier.
SMALL_AT = datetime(2026, 4, 15, 10, 10, tzinfo=UTC)
SMALL = 20


def main(argv: list[str]) -> int:
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 9
    res = Results("cold_start")
    work = tempdir("cold")
    precompile()
    try:
        small_dir = work / "small"
        small_dir.mkdir()
        (small_dir / "schedules.yaml").write_text(small_yaml(SMALL, SMALL_AT - 2 * TICK, SMALL_AT + TICK))
        seed = seed_file(work / "seed.json", {PROJECT: 1}, tags={"env": "staging"}, name_prefix="staging-cache")
        with EmulatorProcess(seed, work) as emu:
            env = base_env(work, DCS_ENDPOINT=emu.url, SCHEDULES_DIR=str(ROOT / "schedules"))
            small_env = {**env, "SCHEDULES_DIR": str(small_dir)}

            def ledger_env(path: str, base: dict[str, str] = env) -> dict[str, str]:
                return {**base, "LEDGER_URL": f"sqlite:///{work / path}"}

            # Steady state: each ledger was written by a tick 5 minutes earlier (the example window settled then:
            # a first sight would list).
            for name, at, base in (("idle", IDLE_AT, env), ("act", ACT_AT, env), ("small", SMALL_AT, small_env)):
                _, prep = run_child(["tick", "--at", _iso(at, -SETTLE)], ledger_env(f"{name}-template.sqlite3", base))
                assert prep["summaries"][0]["ok"], prep
            emu.clear()

            runs: dict[str, list[float]] = {"sdk": [], "small": [], "idle": [], "act": []}
            results: dict[str, dict] = {}
            code = "import huaweicloudsdkdcs.v2"
            for rep in range(reps + 1):  # the first round warms the page cache and is not counted
                for name in ("idle", "act", "small"):
                    _copy_ledger(work / f"{name}-template.sqlite3", work / f"{name}.sqlite3")
                order = ["sdk", "small", "idle", "act"]
                for which in (order if rep % 2 else order[::-1]):
                    before = len(emu.requests())
                    if which == "sdk":
                        t = run_python(code, env)
                    elif which == "small":
                        t, results[which] = run_child(["tick", "--at", _iso(SMALL_AT)],
                                                      ledger_env("small.sqlite3", small_env))
                    elif which == "idle":
                        t, results[which] = run_child(["tick", "--at", _iso(IDLE_AT)], ledger_env("idle.sqlite3"))
                    else:
                        t, results[which] = run_child(["tick", "--at", _iso(ACT_AT), "--clock", _iso(ACT_AT, 5)],
                                                      ledger_env("act.sqlite3"))
                    if which in ("small", "idle") and len(emu.requests()) != before:
                        res.check(f"{which}: nothing-due tick sends no request", False, "the emulator got requests")
                    if rep:
                        runs[which].append(t)
            requests = count_requests(emu.requests())
    finally:
        cleanup(work)

    s, small, i, a = (median(runs[k]) for k in ("sdk", "small", "idle", "act"))
    res.info("runs", f"{reps} fresh processes each (medians), after one warm-up round; function modules byte-compiled")
    res.info("import huaweicloudsdkdcs.v2 process", ms(s))
    for key, label in (("small", f"nothing-due tick process, {SMALL} schedules in one YAML file"),
                       ("idle", "nothing-due tick process, the example schedules"), ("act", "acting tick process")):
        out, t = results[key], median(runs[key])
        res.info(label, f"{ms(t)} (in-process: import {ms(out['import'])}, tick {ms(out['ticks'][0])})")
    for key in ("small", "idle"):
        out, summary = results[key], results[key]["summaries"][0]
        res.check(f"{key}: nothing-due tick imports neither the SDK nor croniter",
                  not out["modules"]["sdk"] and not {"croniter", "dateutil"} & set(out["modules"]["heavy"]),
                  f"heavy modules loaded: {', '.join(out['modules']['heavy']) or 'none'}")
        res.check(f"{key}: nothing-due tick makes no API call and is ok", summary["ok"] and not any(
            (summary["api_calls"] or {}).values()) and summary["reported"] == 0, str(summary))
    acted = results["act"]["summaries"][0]
    res.check("acting tick restarts exactly one instance", acted["ok"] and acted["counts"]["success"] == 1
              and acted["api_calls"].get("status_calls") == 1, str(acted))
    res.info("emulator requests (all acting runs)", str(requests))
    res.ratio(f"nothing-due ({SMALL} schedules, YAML) / SDK import", small / s, 0.5, f"{ms(small)} vs {ms(s)}")
    res.ratio("nothing-due (example schedules) / SDK import", i / s, None, f"{ms(i)} vs {ms(s)}")
    res.ratio("acting / (SDK import + nothing-due)", a / (s + i), 1.15, f"{ms(a)} vs {ms(s + i)}")
    return res.finish()


def _copy_ledger(source, target) -> None:
    """A consistent copy of an SQLite ledger, what its write-ahead log holds included (a process that ends
    without closing its connection leaves its last transactions there: committed, not yet in the main file)."""
    import sqlite3

    target.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _iso(t: datetime, offset_s: float = 0) -> str:
    from datetime import timedelta

    return (t + timedelta(seconds=offset_s)).isoformat()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
