"""Mutation testing of the core modules with mutmut: one command, figures per module.

    .venv/bin/python scripts/mutation.py                 # every core module (hours on 2 cores: one at a time)
    .venv/bin/python scripts/mutation.py planner gateway # some of them
    .venv/bin/python scripts/mutation.py --list          # the modules and the tests that judge each
    .venv/bin/python scripts/mutation.py --resume runner # after adding tests: only what they can change
    .venv/bin/python scripts/mutation.py --resume runner --against tests/test_gaps_runner.py  # survivors: these only

Each module runs in its own copy of the project under `.mutation/<module>/` (mutmut rewrites the code it mutates
and keeps its state there, so the working tree is never touched), scoped to the test files that exercise that
module: mutmut then runs, for each mutant, only the tests of that scope that reach the mutated function. Results
are judged against `scripts/mutation_equivalents/<module>.txt`, the mutants that cannot change behaviour (each
with why), and the script prints, per module, the mutants killed out of those that are not equivalent; it exits 1 when a
module is below the target (90%), listing the survivors with their diffs in `.mutation/<module>/survivors.txt`.
Not part of CI's run (too slow); `requirements-mutation.txt` pins the tool and is installed on first use.

`--resume` keeps a module's earlier run: the project's current files are copied over it, mutmut re-tests the
mutants of every function whose code changed and those never checked, and then every earlier survivor, against
the tests as they are now (a killed verdict stands: tests are only ever added to a scope). A change to a
module's test scope (MODULES) makes mutmut start that module over. `--against TEST...` judges those earlier
survivors by the given test files only (the ones written for them): a true survivor costs the whole scope's run
otherwise, minutes each for the runner; what they do not kill stays a survivor.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents"
TARGET = 0.90
CAUGHT = ("killed", "timeout", "segfault")  # mutmut's statuses of a mutant the tests noticed
CAUGHT_CODES = (1, 36)  # the exit codes recheck records: a test failed (killed), or the tests hung (timeout)
RECHECK_TIMEOUT = 120  # seconds for one survivor against the --against tests (a hang is a timeout, as in mutmut)

# The function's core and the tests that judge each module. Simulations (the week of windows, the month, the race
# harness, fuzzing) are left out, but for the runner's windows: a surviving mutant runs every test that reaches its
# function, and a 35-second week per survivor costs more than the table tests it duplicates.
_TICK_TESTS = ["test_tick.py", "test_exactly_once.py", "test_bad_days.py"]
MODULES: dict[str, tuple[str, list[str]]] = {
    "planner": ("dcs_maintenance/planner.py", [
        "test_planner.py", *_TICK_TESTS, "test_security.py", "test_dcs_rules.py", "test_maintenance_windows.py",
        "test_freezes_runner.py", "test_previews.py", "test_gaps_planner.py", "test_gaps_runner.py",
        "test_planner_reasons.py"]),
    "runner": ("dcs_maintenance/runner.py", [
        *_TICK_TESTS, "test_windows_week.py", "test_faults.py", "test_time_budget.py", "test_security.py",
        "test_race_findings.py", "test_rollout_runner.py",
        "test_freezes_runner.py", "test_previews.py", "test_http.py", "test_real_dcs.py", "test_gaps_runner.py",
        "test_gaps_runner_listing.py", "test_gaps_runner_reports.py"]),
    "cronrules": ("dcs_maintenance/cronrules.py", [
        "test_cronrules.py", "test_cron_edges.py", "test_cron_expansion.py", "test_cron_suites.py",
        "test_dst_ticks.py", "test_planner.py", "test_next_step.py", "test_gaps_cronrules.py"]),
    "fastpath": ("dcs_maintenance/fastpath.py", [
        *_TICK_TESTS, "test_ledger_cache.py", "test_bench.py", "test_dst_ticks.py", "test_gaps_runner.py",
        "test_gaps_fastpath.py"]),
    "gateway": ("dcs_maintenance/gateway.py", [
        "test_faults.py", "test_time_budget.py", "test_emulator_faults.py", "test_schedules_paging.py",
        "test_tick.py", "test_bad_days.py", "test_real_dcs.py", "test_emulator_dcs.py", "test_gaps_gateway.py"]),
    "http_api": ("dcs_maintenance/http_api.py", [
        "test_http.py", "test_http_edges.py", "test_security.py", "test_serve.py", "test_gaps_http.py"]),
    "ledger_sqlite": ("dcs_maintenance/ledger/sqlite.py", [
        "test_ledger.py", "test_ledger_cache.py", "test_exactly_once.py", "test_history.py", "test_gaps_ledger.py",
        "test_rollout_ledger.py"]),
    "ledger_redis": ("dcs_maintenance/ledger/redis.py", [
        "test_ledger.py", "test_ledger_cache.py", "test_exactly_once.py", "test_history.py", "test_gaps_ledger.py",
        "test_rollout_ledger.py"]),
}

_RESULT = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>.+?)\s*$")


@dataclass
class Figures:
    module: str
    statuses: dict[str, str] = field(default_factory=dict)
    equivalent: set[str] = field(default_factory=set)

    def count(self, *wanted: str) -> int:
        return sum(1 for name, s in self.statuses.items() if s in wanted and name not in self.equivalent)

    @property
    def judged(self) -> int:
        return len(self.statuses) - len(self.equivalent & self.statuses.keys())

    @property
    def killed(self) -> int:
        # A mutant that hangs a test until mutmut's timeout, or crashes it, is caught by the suite too.
        return self.count(*CAUGHT)

    @property
    def score(self) -> float:
        return self.killed / self.judged if self.judged else 1.0


def ensure_tool() -> Path:
    """mutmut from requirements-mutation.txt, in the project's venv."""
    mutmut = Path(sys.executable).parent / "mutmut"
    if not mutmut.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(ROOT / "requirements-mutation.txt")], check=True)
    return mutmut


def prepare(module: str, resume: bool = False) -> Path:
    """A copy of the tracked files (plus any untracked new tests) with the module's mutmut settings: fresh, or
    over the earlier run's (`resume`: only files whose content changed are copied, so mutmut sees which did)."""
    path, tests = MODULES[module]
    work = WORK / module
    if not resume:
        shutil.rmtree(work, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        source, target = ROOT / name, work / name
        if source.is_file() and not (target.is_file() and target.read_bytes() == source.read_bytes()):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    present = [f"tests/{t}" for t in tests if (work / "tests" / t).exists()]
    extra = ["handler.py", "dcs_emulator", "schedules", "demo", "bench", "deploy", "serverless.yml",
             "requirements.txt", "scripts"]
    with open(work / "pyproject.toml", "a") as config:
        config.write(f"""
[tool.mutmut]
source_paths = ["dcs_maintenance"]
only_mutate = ["{path}"]
also_copy = {extra!r}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x", "-m", "not slow"]
pytest_add_cli_args_test_selection = {present!r}
""".replace("'", '"'))
    return work


def equivalents(module: str) -> dict[str, str]:
    """`mutant name  # why` lines of scripts/mutation_equivalents/<module>.txt."""
    found: dict[str, str] = {}
    listing = EQUIVALENTS / f"{module}.txt"
    if listing.exists():
        for line in listing.read_text().splitlines():
            name, _, why = line.partition("#")
            if name.strip():
                found[name.strip()] = why.strip()
    return found


def results(module: str, mutmut: Path, work: Path, env: dict[str, str]) -> Figures:
    listing = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                             text=True, check=False).stdout
    figures = Figures(module)
    for line in listing.splitlines():
        match = _RESULT.match(line)
        if match:
            figures.statuses[match["name"]] = match["status"]
    figures.equivalent = set(equivalents(module)) & figures.statuses.keys()
    return figures


def survivors(figures: Figures) -> list[str]:
    return [n for n, s in figures.statuses.items() if s not in (*CAUGHT, "not checked")
            and n not in figures.equivalent]


def run(module: str, mutmut: Path, children: int, resume: bool = False, against: Sequence[str] = ()) -> Figures:
    resume = resume and (WORK / module / "mutants").is_dir()
    work = prepare(module, resume)
    print(f"{module}: mutating {MODULES[module][0]} (work in {work.relative_to(ROOT)}"
          f"{', resumed' if resume else ''})", flush=True)
    env = {**os.environ, "TERM": "dumb"}
    earlier = survivors(results(module, mutmut, work, env)) if resume else []
    with open(work / "mutmut.log", "a" if resume else "w") as log:
        subprocess.run([str(mutmut), "run", "--max-children", str(children)], cwd=work, env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=False)
        if earlier and against:
            recheck(module, work, earlier, against, children)
        elif earlier:  # judged again by the tests added since
            subprocess.run([str(mutmut), "run", "--max-children", str(children), *earlier], cwd=work, env=env,
                           stdout=log, stderr=subprocess.STDOUT, check=False)
    figures = results(module, mutmut, work, env)
    with open(work / "survivors.txt", "w") as out:
        for name in survivors(figures):
            shown = subprocess.run([str(mutmut), "show", name], cwd=work, env=env, capture_output=True, text=True,
                                   check=False).stdout
            out.write(f"{shown}\n")
    return figures


def recheck(module: str, work: Path, names: list[str], tests: Sequence[str], children: int) -> None:
    """Earlier survivors against `tests` only (the files written for them), with mutmut's own switch
    (MUTANT_UNDER_TEST) in its mutated copy: a mutant such a test kills is recorded killed in mutmut's results;
    the others stay survivors (not judged again by the whole scope, which costs minutes per true survivor)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> tuple[str, int]:
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p",
                                   "no:randomly", "-m", "not slow", *tests], cwd=work / "mutants",
                                  env={**os.environ, "MUTANT_UNDER_TEST": name}, capture_output=True, check=False,
                                  timeout=RECHECK_TIMEOUT)
        except subprocess.TimeoutExpired:  # a mutant that hangs the tests (a retry loop that never ends)
            return name, 36  # mutmut's own code for a timeout, which counts as caught
        return name, done.returncode

    with ThreadPoolExecutor(max_workers=children) as pool:
        codes = dict(pool.map(one, names))
    meta_path = work / "mutants" / f"{MODULES[module][0]}.meta"
    meta = json.loads(meta_path.read_text())
    for name, code in codes.items():
        if code in CAUGHT_CODES:  # 2-5 are pytest's own errors: left as they were
            meta["exit_code_by_key"][name] = code
    meta_path.write_text(json.dumps(meta))
    print(f"{module}: {sum(c in CAUGHT_CODES for c in codes.values())} of {len(codes)} earlier survivors killed by "
          f"{' '.join(tests)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"modules to mutate (default: all of {', '.join(MODULES)})")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests, and stop")
    parser.add_argument("--resume", action="store_true",
                        help="keep each module's earlier run; re-test what changed and the earlier survivors")
    parser.add_argument("--against", nargs="+", default=(), metavar="TEST",
                        help="with --resume: judge the earlier survivors by these test files only (those written "
                             "for them; paths from the project root), not the module's whole scope")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2,
                        help="mutants tested in parallel (default: the number of CPUs)")
    args = parser.parse_args(argv)
    if args.list:
        for name, (path, tests) in MODULES.items():
            print(f"{name:14} {path}: {' '.join(tests)}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}: choose from {', '.join(MODULES)}")
    if args.against and not args.resume:
        parser.error("--against needs --resume (it judges the survivors of an earlier run)")
    mutmut = ensure_tool()
    done = [run(m, mutmut, args.max_children, args.resume, args.against) for m in (args.modules or list(MODULES))]
    print(f"\n{'module':14} {'mutants':>7} {'equiv.':>6} {'killed':>6} {'survived':>8} {'no test':>7} "
          f"{'unchecked':>9} {'score':>6}")
    for f in done:
        print(f"{f.module:14} {len(f.statuses):7} {len(f.equivalent):6} {f.killed:6} {f.count('survived'):8} "
              f"{f.count('no tests'):7} {f.count('not checked'):9} {f.score:6.1%}")
    unfinished = [f.module for f in done if f.count("not checked")]
    if unfinished:  # mutmut stopped early (killed, out of memory): the score counts those as not killed
        print(f"mutmut did not check every mutant of {', '.join(unfinished)}: run again with --resume")
    low = [f.module for f in done if f.score < TARGET]
    if low:
        print(f"below {TARGET:.0%}: {', '.join(low)} (survivors in .mutation/<module>/survivors.txt)")
    return 1 if low or unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
