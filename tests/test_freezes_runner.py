"""Freezes and each instance's own maintenance window in the runner and the routes (issue 13), end to end: TIMER
ticks and HTTP requests through handler.handler, the real SDK over HTTP to the emulator; what was sent is read
from the emulator's request log.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from conftest import PROJECT, acted_ids, t

UTC = timezone.utc


def passed(summaries: list[dict], result: str) -> list[dict]:
    return [o for s in summaries for sch in s["schedules"] for o in sch["occurrences"] if o["result"] == result]


def entries(summary: dict, name: str) -> dict[str, dict]:
    return {e["instance_id"]: e for sch in summary["schedules"] if sch["name"] == name for e in sch["instances"]}


# -- one-shot occurrences ----------------------------------------------------------------------------------------
DST_FREEZE = """
schedules:
  - name: quarter-hourly
    action: restart
    cron: "*/15 * * * *"
    timezone: Europe/Berlin
    instances: {tags: {env: staging}}
freezes:
  - name: night-change
    from: "2026-10-25T02:30"      # the repeated hour: its first pass (00:30Z)
    until: "2026-10-25T02:45"     # ... to its second pass (01:45Z)
    timezone: Europe/Berlin
    reason: database migration
"""


def test_a_freeze_across_the_dst_change_holds_every_occurrence_in_it(emulator, write_schedules, tick):
    emulator.add_instance(PROJECT, instance_id="i-1", name="staging-api", tags={"env": "staging"})
    write_schedules(DST_FREEZE)
    start = t("2026-10-24T23:50:00Z")
    summaries = [tick(start + timedelta(minutes=5 * n), lag=timedelta(seconds=5)) for n in range(29)]  # to 02:10Z
    frozen = passed(summaries, "frozen")
    # Berlin 02:30 (first pass) .. 02:45 (second pass) is 00:30Z .. 01:45Z: five quarter-hours, each held once
    assert [o["occurrence"] for o in frozen] == ["2026-10-25T00:30:00Z", "2026-10-25T00:45:00Z",
                                                 "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z",
                                                 "2026-10-25T01:30:00Z"]
    assert all("freeze 'night-change'" in o["reason"] and "database migration" in o["reason"]
               and "not sent later" in o["reason"] for o in frozen)
    # the others ran, each once, and nothing held was sent after the freeze
    sent = [(s["tick"], e["occurrence"]) for s in summaries for sch in s["schedules"] for e in sch["instances"]
            if e["result"] == "success"]
    assert [occ for _, occ in sent] == ["2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z", "2026-10-25T01:45:00Z",
                                        "2026-10-25T02:00:00Z"]
    assert len(acted_ids(emulator, "restart")) == 4
    assert all(s["ok"] for s in summaries)  # frozen is not a failure
    assert sum(s["counts"]["frozen"] for s in summaries) == 5


def test_a_freeze_for_other_actions_does_not_hold_this_one(emulator, write_schedules, tick):
    emulator.add_instance(PROJECT, instance_id="i-1", name="staging-api", tags={"env": "staging"})
    write_schedules(DST_FREEZE.replace("reason: database migration", "reason: x\n    actions: [flush]"))
    summary = tick(t("2026-10-25T01:00:00Z"))
    assert passed([summary], "frozen") == [] and acted_ids(emulator, "restart") == ["i-1"]


# -- windows -----------------------------------------------------------------------------------------------------
WINDOW_FREEZE = """
schedules:
  - name: dev-nights
    window: {{stop: "0 20 * * *", start: "0 7 * * *"}}
    timezone: Europe/Berlin
    instances: {{tags: {{env: dev}}}}
freezes:
  - name: release
    from: "{start}"
    until: "{end}"
    timezone: Europe/Berlin
    reason: release night
    actions: [stop, start]
"""


def test_a_window_stop_inside_a_freeze_is_never_applied_and_starts_go_through(emulator, write_schedules, tick):
    emulator.add_instance(PROJECT, instance_id="i-dev", name="dev-api", tags={"env": "dev"})
    write_schedules(WINDOW_FREEZE.format(start="2026-12-04T19:00", end="2026-12-04T21:00"))
    first = tick(t("2026-12-04T19:00:00Z"))  # 20:00 Berlin: the stop falls in the freeze
    entry = next(s for s in first["schedules"] if s["name"] == "dev-nights")
    assert entry["decision"] == "frozen" and "falls in freeze 'release'" in entry["reason"]
    assert [o["result"] for o in entry["occurrences"]] == ["frozen"]
    later = [tick(t("2026-12-04T19:05:00Z")), tick(t("2026-12-04T20:05:00Z")),  # during and after the freeze
             tick(t("2026-12-05T06:00:00Z"))]  # 07:00 Berlin: the start (nothing to do: still RUNNING)
    assert acted_ids(emulator) == []
    assert passed(later, "frozen") == []  # reported once
    assert emulator.get_instance(PROJECT, "i-dev")["status"] == "RUNNING"
    tick(t("2026-12-05T19:00:00Z"))  # the next night's stop, outside the freeze
    assert acted_ids(emulator, "stop") == ["i-dev"]


def test_a_stop_from_before_a_freeze_waits_for_its_end(emulator, write_schedules, tick):
    emulator.add_instance(PROJECT, instance_id="i-dev", name="dev-api", tags={"env": "dev"})
    write_schedules(WINDOW_FREEZE.format(start="2026-12-04T20:02", end="2026-12-04T21:00"))
    emulator.set_status(PROJECT, "i-dev", "UPGRADING")  # the 20:00 stop finds it busy: retried next tick
    tick(t("2026-12-04T19:00:00Z"))
    emulator.set_status(PROJECT, "i-dev", "RUNNING")
    held = tick(t("2026-12-04T19:05:00Z"))  # 20:05 Berlin, inside the freeze: held
    entry = next(s for s in held["schedules"] if s["name"] == "dev-nights")
    assert entry["decision"] == "frozen" and "stops are held during freeze 'release'" in entry["reason"]
    tick(t("2026-12-04T19:55:00Z"))
    assert acted_ids(emulator) == []
    tick(t("2026-12-04T20:00:00Z"))  # 21:00 Berlin: the freeze is over and the window still wants it stopped
    assert acted_ids(emulator, "stop") == ["i-dev"]


# -- manual runs ---------------------------------------------------------------------------------------------------
MANUAL = """
schedules:
  - name: staging-restart
    action: restart
    cron: "0 3 * * *"
    instances: {tags: {env: staging}}
freezes:
  - name: year-end
    from: "2026-12-20T00:00"
    until: "2027-01-04T00:00"
    timezone: Europe/Berlin
    reason: year-end change freeze
"""


def test_a_manual_run_inside_a_freeze_is_refused_unless_overridden(emulator, write_schedules, http, at_time,
                                                                  capsys):
    emulator.add_instance(PROJECT, instance_id="i-1", name="staging-api", tags={"env": "staging"})
    write_schedules(MANUAL)
    at_time(t("2026-12-28T10:00:00Z"))
    refused = http("POST", "/schedules/staging-restart/run")
    body = json.loads(refused["body"])
    assert refused["statusCode"] == 409 and body["error_code"] == "DCSM.4091"
    assert "freeze 'year-end'" in body["error_msg"] and '"override_freeze": true' in body["error_msg"]
    assert body["freeze"]["name"] == "year-end"
    put = http("PUT", "/instances/status", {"instances": ["i-1"], "action": "restart"})
    assert put["statusCode"] == 409 and json.loads(put["body"])["error_code"] == "DCSM.4091"
    assert acted_ids(emulator) == []
    # a dry run changes nothing: allowed
    assert http("POST", "/schedules/staging-restart/run", {"dry_run": True})["statusCode"] == 200
    assert acted_ids(emulator) == []
    capsys.readouterr()
    done = http("POST", "/schedules/staging-restart/run", {"override_freeze": True})
    assert done["statusCode"] == 200 and acted_ids(emulator) == ["i-1"]
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"freeze_overridden"' in line]
    assert len(logged) == 1 and logged[0]["level"] == "WARNING" and logged[0]["freeze"] == "year-end"
    assert logged[0]["schedule"] == "staging-restart"
    put = http("PUT", "/instances/status", {"instances": ["i-1"], "action": "restart", "override_freeze": True})
    assert put["statusCode"] == 200 and json.loads(put["body"])["results"] == [{"instance": "i-1",
                                                                                "result": "success"}]
    assert acted_ids(emulator) == ["i-1", "i-1"]
    # after the freeze, no override is needed
    at_time(t("2027-01-04T10:00:00Z"))
    assert http("POST", "/schedules/staging-restart/run")["statusCode"] == 200


def test_a_manual_start_of_a_window_is_refused_in_a_freeze_for_start(emulator, write_schedules, http, at_time):
    emulator.add_instance(PROJECT, instance_id="i-dev", name="dev-api", tags={"env": "dev"})
    write_schedules(WINDOW_FREEZE.format(start="2026-12-05T08:00", end="2026-12-05T18:00"))
    at_time(t("2026-12-05T10:00:00Z"))  # 11:00 Berlin: the window wants running; a manual run would start
    refused = http("POST", "/schedules/dev-nights/run")
    assert refused["statusCode"] == 409 and "start refused" in json.loads(refused["body"])["error_msg"]


# -- each instance's own maintenance window ----------------------------------------------------------------------
WITHIN = """
schedules:
  - name: cache-hourly
    action: restart
    cron: "0 * * * *"
    within_maintenance_window: true
    instances: {tags: {tier: cache}}
"""


def test_within_maintenance_window_across_midnight(emulator, write_schedules, tick, http):
    emulator.add_instance(PROJECT, instance_id="i-night", name="cache-night", tags={"tier": "cache"},
                          maintain_begin="22:00:00", maintain_end="02:00:00")
    emulator.add_instance(PROJECT, instance_id="i-early", name="cache-early", tags={"tier": "cache"},
                          maintain_begin="02:00:00", maintain_end="06:00:00")
    write_schedules(WITHIN)
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    summaries = [tick(start + timedelta(hours=n)) for n in range(24)]
    sent = {}
    for s in summaries:
        for iid, e in entries(s, "cache-hourly").items():
            if e["result"] == "success":
                sent.setdefault(iid, []).append(e["occurrence"][11:16])
    assert sent == {"i-night": ["22:00", "23:00", "00:00", "01:00"], "i-early": ["02:00", "03:00", "04:00", "05:00"]}
    outside = entries(summaries[0], "cache-hourly")
    assert outside["i-night"]["result"] == "skipped"
    assert outside["i-night"]["reason"] == "outside its maintenance window 22:00-02:00 UTC at 12:00 UTC"
    # plan shows which targets are in and out
    plan = json.loads(http("GET", "/plan", query={"at": "2026-12-02T23:00:00Z"})["body"])
    planned = entries(plan, "cache-hourly")
    assert planned["i-night"]["reason"].startswith("dry run: would restart")
    assert planned["i-early"]["reason"] == "outside its maintenance window 02:00-06:00 UTC at 23:00 UTC"
