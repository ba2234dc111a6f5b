"""Run every performance benchmark (issues 7 and 15), one after the other, each in its own process.

    .venv/bin/python bench/run_all.py [--quick]

Each benchmark prints `RESULT <bench> | <figure> | <value> | <target and verdict> | <detail>` lines measured side
by side in this run, and exits 1 when a target is missed; this script repeats every RESULT line in one table at
the end and exits 1 if any benchmark failed. `--quick` runs fewer repetitions (for a smoke test, not for figures).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = (
    ("cold_start", ["--reps", "9"], ["--reps", "3"]),
    ("many_schedules", ["--reps", "3"], ["--reps", "1"]),
    ("listing", ["--reps", "5"], ["--reps", "1"]),
    ("api_economy", [], []),
    ("scale", [], []),
    ("memory", [], []),
)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    results: list[str] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name, args, quick_args in BENCHES:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py"), *(quick_args if quick else args)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(HERE.parent))
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("RESULT "):
                results.append(line.rstrip("\n")[len("RESULT "):])
        code = proc.wait()
        if code:
            failed.append(name)
        print(f"== {name}: {'FAILED' if code else 'passed'} in {time.perf_counter() - t0:.1f} s\n", flush=True)
    print(f"== summary (python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M:%S')})")
    for line in results:
        print("  " + line)
    verdict = f"FAILED: {', '.join(failed)}" if failed else "all targets met"
    print(f"== {verdict} ({time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
