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

import pytest
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


HARSH_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata",
               "America/Sao_Paulo")


def _harsh(n: int, rng: random.Random) -> list[Schedule]:
    """bench/many_schedules.py's harsh mix in small: daily, weekly, monthly and frequent crons in zones with and
    without DST (Lord Howe's is 30 minutes), some with a skip date on a change day."""
    out = []
    for i in range(n):
        m, h = rng.randrange(60), rng.choice((1, 2, 3, rng.randrange(24)))  # often in the changes' hours
        cron = (f"{m} {h} * * *", f"{m} {h} * * {rng.randrange(7)}", f"{m} {h} {rng.randrange(1, 29)} * *",
                f"*/{rng.choice((5, 10, 15, 30))} * * * *")[i % 4]
        skip = frozenset({datetime(2026, 10, 25).date()}) if i % 7 == 0 else frozenset()
        out.append(_one_shot(f"h{i}", cron, HARSH_ZONES[i % len(HARSH_ZONES)], skip_dates=skip))
    return out


def test_fast_path_answers_as_the_planner_on_the_harsh_mix_across_dst():
    """issue 15's mix (frequent crons stepping from fire to fire) over 5-minute ticks through the changes of both
    hemispheres, with late, repeated and dropped ticks and held-back watermarks: quiet exactly when the planner
    has nothing to run or report."""
    rng = random.Random(15)
    fastpath.clear()
    period = timedelta(minutes=5)
    schedules = _harsh(120, rng)
    checked = quiet = 0
    for start in (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), datetime(2026, 4, 4, 12, 0, tzinfo=UTC),
                  datetime(2026, 10, 3, 12, 0, tzinfo=UTC), datetime(2026, 10, 24, 22, 0, tzinfo=UTC),
                  datetime(2026, 10, 31, 22, 0, tzinfo=UTC)):
        marks: dict = {}
        tick = start
        for _ in range(80):
            tick += timedelta(minutes=rng.choice((5, 5, 5, 5, 5, 0, 10, 35)), seconds=rng.choice((0, 0, 7, 59)))
            for schedule in schedules:
                mark = marks.get(schedule.name)
                due = planner.one_shot_due(schedule, tick, mark, period)
                expected = due.fire is None and not due.passed
                assert fastpath.quiet_one_shot(schedule, tick, mark, period) == expected, (schedule, tick, mark)
                checked += 1
                quiet += expected
                if due.fire is not None and rng.random() < 0.2:
                    marks[schedule.name] = due.fire - timedelta(seconds=1)  # held back on pending work
                else:
                    marks[schedule.name] = max(mark, tick) if mark else tick
    assert checked > 40000 and 0 < quiet < checked


def test_frequent_schedules_step_from_fire_to_fire_without_building_chunks(monkeypatch):
    """The idle check of a */5 schedule computes its next fire once per fire, by a step (no chunk of wall times
    is built), and nothing at all for a tick at which its remembered next fire is still ahead."""
    from dcs_maintenance.cronrules import CronRule

    fastpath.clear()
    chunks = []
    real_chunk = CronRule._chunk
    monkeypatch.setattr(CronRule, "_chunk", lambda self, s, e: chunks.append(self.expr) or real_chunk(self, s, e))
    period = timedelta(minutes=5)
    schedules = [_one_shot(f"f{i}", f"*/{(5, 10, 15, 30)[i % 4]} * * * *", HARSH_ZONES[i % len(HARSH_ZONES)])
                 for i in range(200)]
    tick, marks, fires = datetime(2026, 4, 15, 10, 0, tzinfo=UTC), {}, []
    before = fastpath.calls["next_after"]
    for _ in range(24):  # two hours of ticks on an ordinary day, 10:05 to 12:00
        tick += period
        fires.append(0)
        for schedule in schedules:
            if not fastpath.quiet_one_shot(schedule, tick, marks.get(schedule.name), period):
                fires[-1] += 1
            marks[schedule.name] = tick
    assert chunks == []  # every next fire was a step
    assert sum(fires) == sum(24 // (step // 5) for step in (5, 10, 15, 30)) * 50
    # One per schedule at the first tick, then one per fire, at the tick after it (12:00's come at 12:05).
    assert fastpath.calls["next_after"] - before == len(schedules) + sum(fires[:-1])


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
    unwanted = {"huaweicloudsdk", "requests", "urllib3", "jsonschema", "concurrent.futures", "croniter", "dateutil"}
    assert not unwanted & set(result["modules"]["heavy"]), result["modules"]


def test_a_nothing_due_tick_over_twenty_yaml_schedules_imports_only_what_it_needs(tmp_path):
    """The cold start of bench/cold_start.py's first target: 20 schedules in one YAML file, none due. cronrules
    expands crons itself, so croniter and python-dateutil stay out, as do the SDK and everything a call needs."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from common import small_yaml
    finally:
        sys.path.remove(str(ROOT / "bench"))
    at = datetime(2026, 4, 15, 10, 10, tzinfo=UTC)
    (tmp_path / "s").mkdir()
    text = small_yaml(20, at - timedelta(minutes=10), at + timedelta(minutes=5))
    (tmp_path / "s" / "schedules.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "HUAWEICLOUD_SDK_", "RUNTIME_"))}
    env.update({"HOME": str(tmp_path), "DCS_ENDPOINT": "http://127.0.0.1:9", "DCS_REGION": "cn-north-4",
                "RUNTIME_PROJECT_ID": PROJECT, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK,
                "LEDGER_URL": f"sqlite:///{tmp_path / 'l.sqlite3'}", "SCHEDULES_DIR": str(tmp_path / "s")})
    result = _child(env, at.isoformat())
    summary = result["summaries"][0]
    assert summary["ok"] and summary["reported"] == 0 and summary["idle"] == 20, summary
    assert not any((summary["api_calls"] or {}).values())
    assert result["modules"]["heavy"] == ["sqlite3", "yaml"], result["modules"]  # the ledger and the file's format


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
    # Issue 11: before a restart, one ListBackupRecords per instance (a backup in progress holds it) and one
    # ListConfigurations per instance whose list entry does not say whether a restart empties it.
    assert _requests(emulator) == {"list": 1, "status": math.ceil(n / batch), "backups": n, "configs": n}
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


def test_a_page_of_schedules_describes_only_its_own_and_the_pages_make_the_listing(http, write_schedules,
                                                                                   monkeypatch):
    """bench/listing.py's target: a page computes descriptions and occurrences for its 100 entries only, and the
    pages together are the full listing."""
    from dcs_maintenance.routes import schedules as route

    items = [{"name": f"p-{i:04d}", "action": "restart", "cron": f"*/{(5, 10, 15, 30)[i % 4]} * * * *",
              "instances": {"names": [f"x-{i}"]}} for i in range(600)]
    write_schedules(json.dumps({"schedules": items}), "many.json")
    computed = []
    real = route.upcoming
    monkeypatch.setattr(route, "upcoming", lambda s, after, n: computed.append(s.name) or real(s, after, n))
    pages, cursor = [], None
    while True:
        response = http("GET", "/schedules", query={"cursor": cursor} if cursor else None)
        pages.append(json.loads(response["body"]))
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            break
    assert [len(p["schedules"]) for p in pages] == [100] * 6
    assert computed == [e["name"] for p in pages for e in p["schedules"]] == [i["name"] for i in items]
    computed.clear()
    whole = json.loads(http("GET", "/schedules", query={"limit": "1000"})["body"])
    assert whole["schedules"] == [e for p in pages for e in p["schedules"]] and len(computed) == 600


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


# issue 15's mix across Berlin's fall-back (2026-10-25, 02:00-03:00 twice): frequent crons firing on both passes,
# fixed times in the repeated hour once, a weekly and a monthly; most name nothing, one matches.
HARSH_MIX = """
schedules:
  - {name: every-5, action: restart, cron: "*/5 * * * *", timezone: Europe/Berlin, instances: {names: [nothing-5]}}
  - {name: every-10, action: restart, cron: "*/10 * * * *", timezone: Europe/Berlin, instances: {names: [nothing-10]}}
  - {name: every-15-web, action: soft_restart, cron: "*/15 * * * *", timezone: Europe/Berlin,
     instances: {names: [web-*]}}
  - {name: every-30, action: restart, cron: "*/30 * * * *", timezone: Australia/Lord_Howe,
     instances: {names: [nothing-30]}}
  - {name: daily-repeated, action: restart, cron: "30 2 * * *", timezone: Europe/Berlin, instances: {names: [web-1]}}
  - {name: weekly-sunday, action: restart, cron: "45 2 * * sun", timezone: Europe/Berlin, instances: {names: [none]}}
  - {name: monthly, action: restart, cron: "15 2 25 * *", timezone: Europe/Berlin, instances: {names: [none]}}
  - {name: daily-utc, action: restart, cron: "20 1 * * *", instances: {tags: {env: staging}}}
  - {name: skipped, action: restart, cron: "*/10 * * * *", timezone: Europe/Berlin, skip_dates: ["2026-10-25"],
     instances: {names: [none]}}
"""
SCENARIOS = [
    pytest.param(MIX, datetime(2026, 4, 15, 2, 50, tzinfo=UTC),
                 (5, 5, 5, 5, 5, 0, 5, 5, 5, 30, 5, 5, 5, -10, 15, 5, 5, 5), id="project-mix"),
    pytest.param(HARSH_MIX, datetime(2026, 10, 24, 23, 40, tzinfo=UTC),  # 01:40+02:00 to past 03:00+01:00
                 (5,) * 14 + (0, 5, 5, 20, 5, -10, 15) + (5,) * 12, id="harsh-mix-across-fall-back"),
]


@pytest.mark.parametrize(("mix", "start", "steps"), SCENARIOS)
def test_the_fast_path_leaves_the_same_summaries_and_ledger_as_the_slow_path(emulator, write_schedules, tick,
                                                                             function_env, monkeypatch, tmp_path,
                                                                             mix, start, steps):
    from dcs_maintenance import invocation, runner
    from dcs_maintenance.settings import load_settings

    write_schedules(mix)

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
        when = start
        for step in steps:  # with a repeat, a gap and a stale tick
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
