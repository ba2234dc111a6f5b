"""The measured side of the benchmarks: one fresh interpreter per run, started by the bench scripts.

    python bench/child.py tick --at ISO [--clock ISO] [--ticks N] [--period SECONDS] [--track]
        imports `handler` and runs N TIMER ticks (settings from the environment, as on FunctionGraph);
        --track counts the gateway calls and projects in flight at once;
    python bench/child.py loop --file schedules.json --at ISO [--period SECONDS] [--preparsed]
        the plain croniter loop the schedule benchmark compares against.

It prints one line `BENCH_RESULT {json}` last. Nothing is imported before the measured work but `sys`, `os`
and `time`, so the process costs what the function costs.
"""

import os
import sys
import time

T0 = time.perf_counter()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

HEAVY = ("huaweicloudsdk", "requests", "urllib3", "jsonschema", "concurrent.futures", "uuid", "redis", "yaml",
         "croniter", "sqlite3", "dateutil", "simplejson", "http.client", "ssl")


class Context:
    """The two FunctionGraph context methods a tick reads (the platform's context object is already in memory)."""

    def __init__(self, request_id: str, timeout_s: float = 900.0) -> None:
        self._request_id = request_id
        self._deadline = time.monotonic() + timeout_s

    def getRequestID(self) -> str:  # noqa: N802
        return self._request_id

    def getRemainingTimeInMilliSeconds(self) -> int:  # noqa: N802
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _args(argv: list) -> dict:
    out, i = {}, 0
    while i < len(argv):
        key = argv[i].lstrip("-")
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[key] = argv[i + 1]
            i += 2
        else:
            out[key] = True
            i += 1
    return out


def _modules() -> dict:
    loaded = sorted({m for m in sys.modules if m.startswith(HEAVY)})
    return {
        "sdk": any(m.startswith("huaweicloudsdk") for m in loaded),
        "heavy": sorted({next(h for h in HEAVY if m.startswith(h)) for m in loaded}),
        "count": len(sys.modules),
    }


def _trim(summary: dict) -> dict:
    return {
        "ok": summary.get("ok"),
        "idle": summary.get("idle"),
        "counts": summary.get("counts"),
        "api_calls": summary.get("api_calls"),
        "errors": summary.get("errors"),
        "problems": len(summary.get("problems") or []),
        "decisions": sorted({(s["decision"]) for s in summary.get("schedules", [])}),
        "reported": len(summary.get("schedules", [])),
        "instances": sum(len(s["instances"]) for s in summary.get("schedules", [])),
        "results": sorted({i["result"] for s in summary.get("schedules", []) for i in s["instances"]}),
    }


def tick(opts: dict) -> dict:
    import handler
    from dcs_maintenance import clock
    from dcs_maintenance.events import parse_time

    t_import = time.perf_counter()
    in_flight = _track_in_flight() if opts.get("track") else None
    at = parse_time(opts["at"])
    # The wall clock of the simulated world: the tick's own time unless --clock says otherwise (a tick judged at
    # the real date would see windows in their current state, and refuse ticks dated after it).
    wall = parse_time(opts["clock"]) if "clock" in opts else at
    period = float(opts.get("period", 300))
    ticks, timings, summaries = int(opts.get("ticks", 1)), [], []
    from datetime import timedelta

    for i in range(ticks):
        when = at + timedelta(seconds=period * i)
        clock.set_clock(clock.offset_clock(wall + timedelta(seconds=period * i)))
        event = {"version": "v1.0", "time": when.isoformat(), "trigger_type": "TIMER",
                 "trigger_name": "bench", "user_event": ""}
        start = time.perf_counter()
        summary = handler.handler(event, Context(f"bench-{os.getpid()}-{i}"))
        timings.append(time.perf_counter() - start)
        summaries.append(_trim(summary))
        if i == 0:
            first_modules = _modules()
    import resource

    return {"import": t_import - T0, "ticks": timings, "in_flight": in_flight,
            "first_total": t_import - T0 + timings[0],
            "summaries": summaries, "modules": first_modules, "modules_end": _modules(),
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def _track_in_flight() -> dict:
    """Count the gateway calls (list, status) running at once, and the projects they belong to."""
    import threading

    from dcs_maintenance import gateway

    lock, active, peak = threading.Lock(), {}, {"calls": 0, "projects": 0}

    def wrap(name: str) -> None:
        real = getattr(gateway.DcsGateway, name)

        def call(self, *args, **kwargs):
            with lock:
                active[self.project_id] = active.get(self.project_id, 0) + 1
                peak["calls"] = max(peak["calls"], sum(active.values()))
                peak["projects"] = max(peak["projects"], len(active))
            try:
                return real(self, *args, **kwargs)
            finally:
                with lock:
                    active[self.project_id] -= 1
                    if not active[self.project_id]:
                        del active[self.project_id]

        setattr(gateway.DcsGateway, name, call)

    wrap("list_instances")
    wrap("change_status")
    return peak


def loop(opts: dict) -> dict:
    """The plain loop: a croniter per schedule (ZoneInfo-aware start), its occurrences in (T - period, T]."""
    import json
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from croniter import croniter

    with open(opts["file"], encoding="utf-8") as fh:
        items = [(s["cron"], s.get("timezone", "UTC")) for s in json.load(fh)["schedules"]]
    at = datetime.fromisoformat(opts["at"])
    low = at - timedelta(seconds=float(opts.get("period", 300)))
    found = 0
    if opts.get("preparsed"):
        parsed = [(croniter(cron, low.astimezone(ZoneInfo(tz))), ZoneInfo(tz)) for cron, tz in items]
        start = time.perf_counter()
        for it, zone in parsed:
            it.set_current(low.astimezone(zone), force=True)
            while True:
                nxt = it.get_next(datetime)
                if nxt > at:
                    break
                found += 1
    else:
        start = time.perf_counter()
        for cron, tz in items:
            it = croniter(cron, low.astimezone(ZoneInfo(tz)))
            while True:
                nxt = it.get_next(datetime)
                if nxt > at:
                    break
                found += 1
    return {"loop": time.perf_counter() - start, "schedules": len(items), "occurrences": found}


def main() -> None:
    mode, opts = sys.argv[1], _args(sys.argv[2:])
    result = tick(opts) if mode == "tick" else loop(opts)
    import json

    sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
