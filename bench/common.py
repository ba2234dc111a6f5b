"""Shared helpers for the benchmarks in bench/: fresh-process timing, the emulator in a subprocess, generated
schedules and seeds, and one way to print a measured ratio against its target.

Every benchmark compares figures measured side by side in the same run (never absolute times), prints one
`RESULT` line per figure, and exits 1 when a target is missed. `bench/run_all.py` runs them all.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CHILD = BENCH / "child.py"
PY = sys.executable
AK, SK = "BENCHAK0123456789", "BENCHSK-secret-value-0123456789"
PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "cn-north-4"
MARK = "BENCH_RESULT "
UTC = timezone.utc

# Ten IANA zones with and without daylight saving time, on both hemispheres.
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney",
         "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "America/Sao_Paulo")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def project_id(i: int) -> str:
    return f"{i + 1:032x}"


# -- results --------------------------------------------------------------------------------------------------
class Results:
    """Collects the figures of one benchmark; `finish()` prints the verdict and returns the exit code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.missed: list[str] = []

    def info(self, label: str, value: str) -> None:
        print(f"RESULT {self.name} | {label} | {value}", flush=True)

    def ratio(self, label: str, value: float, target: Optional[float] = None, detail: str = "",
              stretch: Optional[float] = None) -> None:
        """A ratio; with a target, it must be at most the target."""
        verdict = ""
        if target is not None:
            ok = value <= target
            verdict = f"target <= {target:g}: {'ok' if ok else 'MISSED'}"
            if stretch is not None:
                verdict += f" (stretch <= {stretch:g}: {'ok' if value <= stretch else 'not reached'})"
            if not ok:
                self.missed.append(f"{label}: {value:.3f} > {target:g}")
        print(f"RESULT {self.name} | {label} | {value:.3f}x | {verdict} | {detail}".rstrip(" |"), flush=True)

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        """A yes/no requirement (a count, a module not imported...)."""
        if not ok:
            self.missed.append(f"{label}: {detail}")
        print(f"RESULT {self.name} | {label} | {'ok' if ok else 'MISSED'} | {detail}".rstrip(" |"), flush=True)

    def finish(self) -> int:
        if self.missed:
            print(f"FAILED {self.name}: " + "; ".join(self.missed), flush=True)
            return 1
        print(f"PASSED {self.name}", flush=True)
        return 0


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- processes -----------------------------------------------------------------------------------------------
def precompile() -> None:
    """Byte-compile the function's modules (as the site packages are) so both sides of a comparison load .pyc.

    The environment may set PYTHONDONTWRITEBYTECODE: then nothing else would ever write them, and every fresh
    process would compile the function's sources again while the SDK loads precompiled bytecode.
    """
    import compileall

    compileall.compile_file(str(ROOT / "handler.py"), quiet=2)
    compileall.compile_dir(str(ROOT / "dcs_maintenance"), quiet=2)


def base_env(workdir: Path, **settings: str) -> dict[str, str]:
    """The environment of a function process: the caller's, minus any function setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DCS_", "HUAWEICLOUD_SDK_", "RUNTIME_")) and k not in (
               "LEDGER_URL", "SCHEDULES_DIR", "TICK_PERIOD", "BATCH_SIZE", "PROTECT_TAG", "DRY_RUN", "API_TOKEN",
               "LOG_LEVEL", "MAX_PARALLEL_PROJECTS", "NOTIFY_SMN_TOPIC_URN")}
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update({"HOME": str(home), "DCS_REGION": REGION, "RUNTIME_PROJECT_ID": PROJECT,
                "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "TICK_PERIOD": "5m"})
    env.update(settings)
    return env


def run_child(args: list[str], env: dict[str, str], timeout: float = 600) -> tuple[float, dict[str, Any]]:
    """Run `bench/child.py ARGS` in a fresh interpreter: (wall seconds of the whole process, its result)."""
    start = time.perf_counter()
    proc = subprocess.run([PY, str(CHILD), *args], env=env, cwd=str(ROOT), capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
    return wall, result


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> float:
    """Wall seconds of a fresh `python -c CODE`."""
    start = time.perf_counter()
    proc = subprocess.run([PY, "-c", code], env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed:\n{proc.stderr[-2000:]}")
    return wall


def tempdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"dcsm-bench-{prefix}-"))


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- the emulator in its own process ------------------------------------------------------------------------------
class EmulatorProcess:
    """`python -m dcs_emulator` on a free port, so that its request handling does not share our interpreter."""

    def __init__(self, seed: Path, workdir: Path, transition_delay: float = 0.0) -> None:
        env = base_env(workdir)
        self.proc = subprocess.Popen(
            [PY, "-m", "dcs_emulator", "--port", "0", "--seed", str(seed), "--ak", AK, "--sk", SK,
             "--transition-delay", str(transition_delay),
             # No status sampler: a snapshot of 10,000 instances on every request would measure the emulator.
             "--status-sample-limit", "0"],
            cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError("the emulator did not start")

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/_emulator{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())

    def inject(self, **fault: Any) -> None:
        """A fault (see dcs_emulator/README.md), e.g. inject(endpoint="any", kind="slow", times=None, delay=0.03)."""
        self._admin("POST", "/faults", fault)

    def clear_faults(self) -> None:
        self._admin("DELETE", "/faults")

    def requests(self) -> list[dict[str, Any]]:
        return self._admin("GET", "/requests")["requests"]

    def clear(self) -> None:
        self._admin("DELETE", "/requests")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def count_requests(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Requests by endpoint (list, show, status, ...) in an emulator request log."""
    counts: dict[str, int] = {}
    for entry in entries:
        key = str(entry.get("endpoint"))
        counts[key] = counts.get(key, 0) + 1
    return counts


def max_concurrent_projects(entries: list[dict[str, Any]]) -> int:
    """The most projects whose requests overlapped in time (each project's first to last request)."""
    spans: dict[str, list[float]] = {}
    for entry in entries:
        project, at = entry.get("project_id"), entry.get("time")
        if project and at is not None:
            span = spans.setdefault(project, [at, at])
            span[0], span[1] = min(span[0], at), max(span[1], at)
    events = sorted([(a, 1) for a, _ in spans.values()] + [(b, -1) for _, b in spans.values()],
                    key=lambda e: (e[0], e[1]))
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


# -- generated inputs ------------------------------------------------------------------------------------------
def seed_file(path: Path, projects: dict[str, int], tags: Optional[dict[str, str]] = None,
              name_prefix: str = "inst") -> Path:
    """An emulator seed: `projects` maps project id -> number of RUNNING Redis instances."""
    seed: dict[str, Any] = {"projects": {}}
    for p_index, (project, count) in enumerate(projects.items()):
        seed["projects"][project] = [
            {"instance_id": f"{p_index:04x}{i:08x}-0000-4000-8000-000000000000", "name": f"{name_prefix}-{p_index}-{i}",
             "engine": "Redis", "engine_version": "6.0", "status": "RUNNING", "tags": dict(tags or {})}
            for i in range(count)]
    path.write_text(json.dumps(seed))
    return path


def random_cron(rng: random.Random) -> str:
    """A random 5-field cron of the kinds operators write (daily, weekdays, monthly, lists, hour steps)."""
    m, h = rng.randrange(60), rng.randrange(24)
    kind = rng.random()
    if kind < 0.35:
        return f"{m} {h} * * *"
    if kind < 0.55:
        return f"{m} {h} * * {rng.choice(['mon-fri', 'sat,sun', 'mon,wed,fri', str(rng.randrange(7)), 'tue-thu'])}"
    if kind < 0.70:
        return f"{m} {h} {rng.randrange(1, 29)} * *"
    if kind < 0.82:
        h2 = (h + rng.randrange(1, 12)) % 24
        return f"{m} {min(h, h2)},{max(h, h2)} * * *"
    if kind < 0.92:
        return f"{m},{(m + 30) % 60} {h} * {rng.randrange(1, 13)} *"
    return f"{m} */{rng.choice([2, 3, 4, 6, 8, 12])} * * *"


def many_schedules(n: int, quiet_from: datetime, quiet_until: datetime, seed: int = 7,
                   project: Optional[str] = None) -> list[dict[str, Any]]:
    """`n` one-shot schedules with random crons in ten zones, none with an occurrence in (quiet_from, quiet_until]."""
    from dcs_maintenance.cronrules import CronRule

    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        cron, zone = random_cron(rng), ZONES[len(out) % len(ZONES)]
        if CronRule(cron, zone).between(quiet_from, quiet_until):
            continue
        item: dict[str, Any] = {"name": f"bench-{len(out):05d}", "action": "restart", "cron": cron, "timezone": zone,
                                "instances": {"tags": {"app": f"app-{len(out) % 97}"}}}
        if project:
            item["project_id"] = project
        out.append(item)
    return out


FREQUENT_STEPS = (5, 10, 15, 30)


def harsh_schedules(n: int, seed: int = 15, project: Optional[str] = None) -> list[dict[str, Any]]:
    """Issue 15's mix: a quarter each daily at a fixed time, weekly on one day, monthly on one day, and frequent
    (`*/5`, `*/10`, `*/15`, `*/30` minutes), in ten zones, each targeting an instance name that matches nothing.

    At a tick on the hour every frequent schedule is due (in every zone: all offsets are whole or half hours),
    plus the few fixed-time ones that fall on it.
    """
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        m, h = rng.randrange(60), rng.randrange(24)
        kind = i % 4
        if kind == 0:
            cron = f"{m} {h} * * *"
        elif kind == 1:
            cron = f"{m} {h} * * {rng.randrange(7)}"
        elif kind == 2:
            cron = f"{m} {h} {rng.randrange(1, 29)} * *"
        else:
            cron = f"*/{rng.choice(FREQUENT_STEPS)} * * * *"
        item: dict[str, Any] = {"name": f"harsh-{i:05d}", "action": "restart", "cron": cron,
                                "timezone": ZONES[(i // 4) % len(ZONES)],
                                "instances": {"names": [f"no-such-instance-{i}"]}}
        if project:
            item["project_id"] = project
        out.append(item)
    return out


def small_yaml(n: int, quiet_from: datetime, quiet_until: datetime, seed: int = 20) -> str:
    """`n` one-shot schedules as one YAML document, as an operator writes them: daily, weekday, monthly and
    frequent crons in four zones, none with an occurrence in (quiet_from, quiet_until]."""
    from dcs_maintenance.cronrules import CronRule

    rng = random.Random(seed)
    zones = ("UTC", "Europe/Berlin", "Asia/Shanghai", "America/New_York")
    lines = ["schedules:"]
    while len(lines) - 1 < n:
        i = len(lines) - 1
        m, h = rng.randrange(60), rng.randrange(24)
        cron = (f"{m} {h} * * *", f"{m} {h} * * mon-fri", f"{m} {h} {rng.randrange(1, 29)} * *",
                f"*/{rng.choice((15, 20, 30))} * * * *")[i % 4]
        zone = zones[(i + i // 4) % len(zones)]
        if CronRule(cron, zone).between(quiet_from, quiet_until):
            continue
        lines.append(f'  - {{name: small-{i:02d}, action: restart, cron: "{cron}", timezone: {zone}, '
                     f"instances: {{tags: {{app: app-{i}}}}}}}")
    return "\n".join(lines) + "\n"


def write_schedules(directory: Path, items: list[dict[str, Any]], name: str = "many.json",
                    defaults: Optional[dict[str, Any]] = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"schedules": items}
    if defaults:
        doc["defaults"] = defaults
    path = directory / name
    path.write_text(json.dumps(doc, indent=1))
    return path


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


TICK = timedelta(minutes=5)
