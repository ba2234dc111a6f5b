"""Benchmark 4: API economy, counted in the emulator's request log (the function runs in this process).

- a tick with nothing due makes no API call at all;
- a tick that restarts 1,000 instances of one project makes 1 list call and ceil(1000 / BATCH_SIZE) status
  calls (printed against one call per instance);
- 50 schedules on the same project, all due in one tick: the project is still listed once, and their 1,000
  instances still go out in ceil(1000 / BATCH_SIZE) status calls.

Usage: python bench/api_economy.py [--instances N]
"""

from __future__ import annotations

import math
import os
import sys
from datetime import datetime, timedelta

from common import AK, PROJECT, REGION, SK, UTC, Results, cleanup, count_requests, tempdir

AT = datetime(2026, 4, 15, 3, 0, tzinfo=UTC)


def main(argv: list[str]) -> int:
    n = int(argv[argv.index("--instances") + 1]) if "--instances" in argv else 1000
    res = Results("api_economy")
    work = tempdir("api")
    os.environ["HOME"] = str(work)  # the SDK writes $HOME/.huaweicloud
    import handler
    from dcs_emulator import Emulator
    from dcs_maintenance import clock, invocation, loader

    emu = Emulator(ak=AK, sk=SK, projects=[PROJECT], transition_delay=0.0).start()
    try:
        for i in range(n):
            emu.add_instance(PROJECT, instance_id=f"i-{i:05d}", name=f"cache-{i:05d}",
                             tags={"tier": "cache", "shard": f"s{i % 50:02d}"})
        settings = {"DCS_ENDPOINT": emu.url, "DCS_REGION": REGION, "RUNTIME_PROJECT_ID": PROJECT,
                    "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK, "TICK_PERIOD": "5m", "LOG_LEVEL": "WARNING"}
        os.environ.update(settings)
        batch = int(os.environ.get("BATCH_SIZE", "50"))

        def run(label: str, schedules_yaml: str, at: datetime) -> tuple[dict, dict[str, int]]:
            directory = work / label
            directory.mkdir(exist_ok=True)
            (directory / "s.yaml").write_text(schedules_yaml)
            os.environ["SCHEDULES_DIR"] = str(directory)
            os.environ["LEDGER_URL"] = f"sqlite:///{work / (label + '.sqlite3')}"
            emu.clear_log()
            clock.set_clock(clock.offset_clock(at + timedelta(seconds=5)))
            event = {"version": "v1.0", "time": at.isoformat(), "trigger_type": "TIMER", "trigger_name": "bench",
                     "user_event": ""}
            summary = handler.handler(event, None)
            return summary, count_requests(emu.requests)

        one = ('schedules:\n  - {name: all-caches, action: restart, cron: "0 3 * * *", max_instances: 10000,'
               ' instances: {tags: {tier: cache}}}\n')
        idle, idle_requests = run("idle", one, AT - timedelta(minutes=5))
        res.check("nothing due: no API call", idle["ok"] and idle_requests == {}, f"requests {idle_requests}")

        summary, requests = run("one", one, AT)
        want = math.ceil(n / batch)
        res.check(f"{n} instances due: all restarted", summary["ok"] and summary["counts"]["success"] == n,
                  str(summary["counts"]))
        res.check("1 list call", requests.get("list", 0) == 1, f"list calls {requests.get('list', 0)}")
        res.check(f"ceil({n}/BATCH_SIZE={batch}) = {want} status calls", requests.get("status", 0) == want,
                  f"status calls {requests.get('status', 0)}")
        total = sum(requests.values())
        res.ratio("requests / one call per instance", total / n, None, f"{total} requests ({requests}) vs {n}")

        many = "schedules:\n" + "".join(
            f'  - {{name: shard-{s:02d}, action: restart, cron: "0 3 * * *", max_instances: 1000,'
            f' instances: {{tags: {{shard: s{s:02d}}}}}}}\n' for s in range(50))
        summary, requests = run("fifty", many, AT)
        res.check("50 schedules on one project: 1 list call", requests.get("list", 0) == 1,
                  f"list calls {requests.get('list', 0)}")
        res.check(f"50 schedules: {want} status calls for {n} instances", requests.get("status", 0) == want
                  and summary["counts"]["success"] == n, f"{requests}, {summary['counts']}")
        res.ratio("50 schedules: requests / one call per instance", sum(requests.values()) / n, None,
                  f"{sum(requests.values())} requests vs {n}")
    finally:
        emu.stop()
        invocation.close_ledgers()
        loader.clear_cache()
        cleanup(work)
    return res.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
