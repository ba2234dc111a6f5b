"""Benchmark 6: peak memory of a tick over 10,000 instances, all due, in a fresh process.

The peak resident set (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) of a fresh interpreter that imports the
handler and runs the tick, SDK import included, must stay under 256 MB (FunctionGraph memory sizes go down to
128 MB; 256 MB is the size this function is meant to run with). Measured for 10,000 instances across 20
projects (4 listed and acted on at once) and for 10,000 instances in one project; the emulator runs in its own
process and is not counted.

Usage: python bench/memory.py
"""

from __future__ import annotations

import sys

from common import EmulatorProcess, Results, cleanup, precompile, tempdir
from scale import BIG, fleet, run_tick, schedules

LIMIT_MB = 256


def main(argv: list[str]) -> int:
    res = Results("memory")
    work = tempdir("memory")
    precompile()
    try:
        seed, ids = fleet(work, 20, 500)
        with EmulatorProcess(seed, work) as emu:
            runs = [("20 projects x 500", run_tick(work, emu, schedules(work / "multi", ids, 500), "multi")[0]),
                    ("1 project x 10,000", run_tick(work, emu, schedules(work / "single", [BIG], 10_000),
                                                    "single")[0])]
        for label, out in runs:
            summary = out["summaries"][0]
            peak_mb = out["maxrss_kb"] / 1024
            res.check(f"{label}: every instance restarted", summary["ok"] and summary["counts"]["success"] == 10_000,
                      str(summary["counts"]))
            res.ratio(f"{label}: peak RSS / {LIMIT_MB} MB", peak_mb / LIMIT_MB, 1.0, f"{peak_mb:.1f} MB")
    finally:
        cleanup(work)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
