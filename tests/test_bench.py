"""Behavioural checks behind the benchmarks (issue 7): what a tick imports, how many API calls it makes, what
it re-reads, and that the in-process fast path answers exactly as the planner. No timings here: the ratios are
measured by `bench/run_all.py`.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from conftest import AK, PROJECT, ROOT, SK

from dcs_maintenance import fastpath, loader, planner
from dcs_maintenance.ledger.sqlite import SqliteLedger
from dcs_maintenance.model import Schedule, Selector, Window

UTC = timezone.utc
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo")
CRONS = ("0 2 * * *", "30 2 * * *", "*/15 * * * *", "0 */2 * * *", "30 1 * * sun", "59 23 L * *", "0 0 29 2 *",
         "15 3 * * mon-fri", "0 7 1,15 * *", "5 1-3 * * *", "0 12 * 3 mon#2", "45 * * * *")


def _one_shot(name: str, cron: str, zone: str, **extra) -> Schedule:
    return Schedule(name=name, source="t.yaml", instances=Selector(names=("*",)), action="restart", cron=cron,
                    timezone=zone, **extra)


def test_fast_path_answers_exactly_as_the_planner():
    """quiet_one_shot is True exactly when one_shot_due has nothing to fire or report, across DST changes,
    irregular ticks, held-back and missing watermarks."""
    rng = random.Random(11)
    fastpath.clear()
    period = timedelta(minutes=5)
    checked = quiet = 0
    for i, (cron, zone) in enumerate((c, z) for c in CRONS for z in ZONES):
        schedule = _one_shot(f"s{i}", cron, zone, skip_dates=frozenset({datetime(2026, 3, 29).date()}))
        # Ticks through the spring and autumn changes of both hemispheres, with gaps and repeats.
        for start in (datetime(2026, 3, 7, 22, 0, tzinfo=UTC), datetime(2026, 3, 28, 22, 0, tzinfo=UTC),
                      datetime(2026, 10, 24, 22, 0, tzinfo=UTC), datetime(2026, 4, 4, 12, 0, tzinfo=UTC)):
            tick, mark = start, None
            for _ in range(60):
                step = rng.choice((5, 5, 5, 5, 0, 10, 65, 24 * 60 + 5))
                tick += timedelta(minutes=step)
                if rng.random() < 0.1:
                    mark = None
                due = planner.one_shot_due(schedule, tick, mark, period)
                expected = due.fire is None and not due.passed
                assert fastpath.quiet_one_shot(schedule, tick, mark, period) == expected, (cron, zone, tick, mark)
                checked += 1
                quiet += expected
                if due.fire is not None and rng.random() < 0.3:
                    mark = due.fire - timedelta(seconds=1)  # the runner holds the watermark back on pending work
                else:
                    mark = max(mark, tick) if mark else tick
    assert checked > 15000 and 0 < quiet < checked


def test_window_cache_answers_exactly_as_the_planner():
    rng = random.Random(5)
    fastpath.clear()
    windows = [("0 20 * * mon-fri", "0 7 * * mon-fri"), ("0 20 * * fri", "0 7 * * mon"), ("30 2 * * *", "0 3 * * *"),
               ("*/30 * * * *", "15,45 * * * *")]
    for i, (stop, start) in enumerate(windows):
        for zone in ZONES:
            schedule = Schedule(name=f"w{i}", source="t.yaml", instances=Selector(names=("*",)),
                                window=Window(stop, start), timezone=zone,
                                skip_dates=frozenset({datetime(2026, 3, 27).date()}),
                                active_from=datetime(2026, 3, 20).date() if i % 2 else None)
            tick = datetime(2026, 3, 18, 0, 0, tzinfo=UTC)
            for _ in range(400):
                tick += timedelta(minutes=rng.choice((5, 5, 5, 35, 240)))
                expected = planner.window_desired(schedule, tick)
                assert fastpath.window_desired(schedule, tick) == expected, (i, zone, tick)


def _child(env: dict, at: str) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "child.py"), "tick", "--at", at], env=env,
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("BENCH_RESULT ")][-1]
    return json.loads(line[len("BENCH_RESULT "):])


def test_a_nothing_due_tick_imports_no_sdk_module(tmp_path):
    """A fresh process: handler, the example schedules (window settled), a tick at which nothing is due."""
    at = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(str(ledger_path))
    for schedule in loader.load_catalog(ROOT / "schedules").schedules:  # steady state: windows already settled
        if schedule.is_window and schedule.enabled:
            desired = planner.window_desired(schedule, at)
            ledger.set_meta(f"settled:{schedule.name}", planner.iso(desired.occurrence))
    ledger.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "HUAWEICLOUD_SDK_", "RUNTIME_"))}
    env.update({"HOME": str(tmp_path), "DCS_ENDPOINT": "http://127.0.0.1:9", "DCS_REGION": "cn-north-4",
                "RUNTIME_PROJECT_ID": PROJECT, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK,
                "LEDGER_URL": f"sqlite:///{ledger_path}", "SCHEDULES_DIR": str(ROOT / "schedules")})
    result = _child(env, at.isoformat())
    summary = result["summaries"][0]
    assert summary["ok"] and summary["reported"] == 0 and summary["idle"] >= 4, summary
    assert not any((summary["api_calls"] or {}).values())
    assert not result["modules"]["sdk"], result["modules"]
    assert not {"huaweicloudsdk", "requests", "urllib3", "jsonschema", "concurrent.futures"} & set(
        result["modules"]["heavy"]), result["modules"]


def _requests(emulator) -> dict:
    counts: dict = {}
    for entry in emulator.requests:
        counts[entry["endpoint"]] = counts.get(entry["endpoint"], 0) + 1
    return counts


def test_api_economy_one_list_and_batched_status_calls(emulator, write_schedules, tick, monkeypatch):
    """N instances due: 1 list call, ceil(N / BATCH_SIZE) status calls; 2 schedules on the project: still 1 list."""
    n, batch = 130, 50
    monkeypatch.setenv("BATCH_SIZE", str(batch))
    for i in range(n):
        emulator.add_instance(PROJECT, instance_id=f"i-{i:04d}", name=f"api-{i:04d}",
                              tags={"half": "a" if i % 2 else "b"})
    write_schedules("""
schedules:
  - {name: half-a, action: restart, cron: "0 3 * * *", max_instances: 1000, instances: {tags: {half: a}}}
  - {name: half-b, action: restart, cron: "0 3 * * *", max_instances: 1000, instances: {tags: {half: b}}}
""")
    idle = tick(datetime(2026, 4, 15, 2, 55, tzinfo=UTC))
    assert idle["ok"] and _requests(emulator) == {}  # nothing due: no call at all
    due = tick(datetime(2026, 4, 15, 3, 0, tzinfo=UTC))
    assert due["ok"] and due["counts"]["success"] == n, due["counts"]
    assert _requests(emulator) == {"list": 1, "status": math.ceil(n / batch)}
    assert due["api_calls"]["list_calls"] == 1 and due["api_calls"]["status_calls"] == math.ceil(n / batch)


def test_a_second_tick_over_many_schedules_reparses_nothing(function_env, schedules_dir, monkeypatch):
    import handler
    from dcs_maintenance.cronrules import CronRule

    # Minutes 20-25 on whole-hour zones and on Asia/Kolkata (+05:30): never within the ticks' windows below.
    items = [{"name": f"many-{i:04d}", "action": "restart", "cron": f"{20 + i % 6} {i % 24} * * *",
              "timezone": ZONES[i % len(ZONES)], "instances": {"names": [f"x-{i}"]}} for i in range(500)]
    (schedules_dir / "many.json").write_text(json.dumps({"schedules": items}))
    fastpath.clear()
    parsed, evaluated = [], []
    real_load, real_next = loader._load_document, CronRule.next_after
    monkeypatch.setattr(loader, "_load_document", lambda *a, **k: parsed.append(a[1]) or real_load(*a, **k))
    monkeypatch.setattr(CronRule, "next_after", lambda self, t: evaluated.append(self.expr) or real_next(self, t))
    at = datetime(2026, 4, 15, 10, 1, tzinfo=UTC)
    summaries = []
    for i in range(3):
        event = {"time": (at + timedelta(minutes=5 * i)).isoformat(), "trigger_type": "TIMER", "trigger_name": "t",
                 "user_event": ""}
        summaries.append(handler.handler(event, None))
        if i == 0:
            assert len(evaluated) == 500  # each schedule's next fire computed once
            evaluated.clear()
    assert all(s["ok"] and s["idle"] == 500 and s["schedules"] == [] for s in summaries), summaries[-1]
    assert parsed.count("schedules/many.json") == 1  # validated once: the following ticks only stat() the file
    assert evaluated == []  # idle schedules are not evaluated again: their next fire time is remembered


MIX = """
schedules:
  - {name: nightly, action: restart, cron: "0 3 * * *", instances: {tags: {env: staging}}}
  - {name: every-15, action: soft_restart, cron: "*/15 * * * *", timezone: Europe/Berlin, instances: {names: [web-*]}}
  - {name: skipped-today, action: restart, cron: "10 3 * * *", skip_dates: ["2026-04-15"], instances: {names: [web-*]}}
  - {name: off, enabled: false, action: restart, cron: "* * * * *", instances: {names: ["*"]}}
  - name: overnight
    timezone: UTC
    window: {stop: "20 3 * * *", start: "40 3 * * *"}
    instances: {tags: {env: dev}}
  - name: enforced
    timezone: UTC
    enforce: true
    window: {stop: "25 3 * * *", start: "45 3 * * *"}
    instances: {tags: {env: prod}}
"""


def test_the_fast_path_leaves_the_same_summaries_and_ledger_as_the_slow_path(emulator, write_schedules, tick,
                                                                             function_env, monkeypatch, tmp_path):
    from dcs_maintenance import invocation, runner
    from dcs_maintenance.settings import load_settings

    write_schedules(MIX)

    def run(fast: bool, label: str) -> tuple[list, dict]:
        emulator.reset()
        for i, (name, env) in enumerate((("stg-1", "staging"), ("web-1", "web"), ("web-2", "web"), ("dev-1", "dev"),
                                         ("prod-1", "prod"))):
            emulator.add_instance(PROJECT, instance_id=f"i-{i}", name=name, tags={"env": env})
        invocation.close_ledgers()
        monkeypatch.setenv("LEDGER_URL", f"sqlite:///{tmp_path / (label + '.sqlite3')}")
        fastpath.clear()
        if not fast:
            monkeypatch.setattr(runner, "_idle", lambda *a, **k: False)
        out = []
        when = datetime(2026, 4, 15, 2, 50, tzinfo=UTC)
        for step in (5, 5, 5, 5, 5, 0, 5, 5, 5, 30, 5, 5, 5, -10, 15, 5, 5, 5):  # a repeat, a gap, a stale tick
            when += timedelta(minutes=step)
            s = tick(when)
            out.append((s["tick"], s["ok"], s["counts"], s["idle"], [
                (r["name"], r["decision"], r["reason"], r.get("occurrence"), r["occurrences"],
                 sorted((i["instance_id"], i["action"], i["result"]) for i in r["instances"]))
                for r in s["schedules"]]))
        ledger = invocation.ledger_for(load_settings())
        state = {"marks": ledger.watermarks(), "meta": ledger.get_metas([f"settled:{n}" for n in ("overnight",
                                                                                                  "enforced")]),
                 "windows": {n: ledger.window_states(n) for n in ("overnight", "enforced")}}
        return out, state, list(emulator.calls())

    fast = run(True, "fast")
    slow = run(False, "slow")  # last: _idle stays patched out until the test ends
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    assert fast[2] == slow[2] and fast[2]  # the same calls, and some were made
    assert sum(t[3] for t in fast[0]) > 0  # and some schedules were idle


def test_a_cold_start_pauses_the_collector_and_freezes_what_it_built(tmp_path):
    """gc_policy: the process's first invocation runs without the cyclic collector rescanning what the cold start
    builds (modules, catalog, caches), then freezes it; later invocations collect as usual."""
    code = """
import gc, json, sys
from dcs_maintenance import app
seen = []
real = app._dispatch
app._dispatch = lambda event, context: seen.append(gc.isenabled()) or real(event, context)
event = {"version": "v1.0", "time": "2026-04-15T10:10:00+00:00", "trigger_type": "TIMER", "trigger_name": "t",
         "user_event": ""}
frozen_before = gc.get_freeze_count()
first = app.handle(event, None)
after_first = (gc.isenabled(), gc.get_freeze_count())
second = app.handle(dict(event, time="2026-04-15T10:15:00+00:00"), None)
print(json.dumps({"seen": seen, "before": frozen_before, "after_first": after_first, "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count(), "ok": [first["ok"], second["ok"]]}))
"""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "s.yaml").write_text(
        'schedules:\n  - {name: a, action: restart, cron: "0 3 * * *", instances: {names: [x]}}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "HUAWEICLOUD_SDK_", "RUNTIME_"))}
    env.update({"HOME": str(tmp_path), "DCS_ENDPOINT": "http://127.0.0.1:9", "DCS_REGION": "cn-north-4",
                "RUNTIME_PROJECT_ID": PROJECT, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK,
                "LEDGER_URL": f"sqlite:///{tmp_path / 'l.sqlite3'}", "SCHEDULES_DIR": str(tmp_path / "s"),
                "LOG_LEVEL": "WARNING"})
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(ROOT), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"] == [True, True]
    assert out["seen"] == [False, True]  # paused during the first invocation only
    assert out["before"] == 0 and out["after_first"][0] is True and out["after_first"][1] > 0
    # Frozen once: the second invocation's objects (thousands) are not added to the permanent generation.
    assert out["enabled"] is True and abs(out["frozen"] - out["after_first"][1]) < 100
