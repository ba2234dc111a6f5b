"""History (issue 14): every decision recorded in the ledger (SQLite and a real redis-server), queryable with
filters and a cursor, trimmed by HISTORY_RETENTION, written without ever failing a tick or touching its claims."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import NIGHTLY, PROJECT, WEB_HOURLY, add_staging_pair, add_web, status_calls
from redis_server import redis_server, redis_server_factory  # noqa: F401  (fixtures)
from simulation import ledger_url_for

from dcs_emulator import Fault
from dcs_maintenance import history
from dcs_maintenance.ledger import open_ledger
from dcs_maintenance.ledger.base import claim_key
from dcs_maintenance.ledger.history_records import HistoryEntry, HistoryQuery, decode_cursor, encode_cursor

ROOT = Path(__file__).resolve().parent.parent
T = datetime(2026, 12, 1, 19, 0, tzinfo=timezone.utc)  # 03:00 in Shanghai: NIGHTLY's occurrence
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
BACKENDS = ["sqlite", "redis"]


# -- pure conversions ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("reason", "code"), [
    ("HTTP 400 DCS.4026: Operation not allowed (request abc) (rejected, not executed)", "DCS.4026"),
    ("HTTP 429 APIGW.0308: The throttling threshold has been reached. (throttled, not executed)", "APIGW.0308"),
    ("could not list instances of project p: list instances: HTTP 500 DCS.5000: busy", "DCS.5000"),
    ("restart accepted", None),
    ("restart refused by DCS (result: failed)", None),
    ("version 3.0.1 is older than 4.0", None),
    ("", None),
])
def test_the_error_code_is_read_from_the_reason(reason, code):
    assert history.error_code(reason) == code


def test_a_summary_becomes_one_entry_per_decision():
    summary = {
        "tick": "2026-12-01T19:00:00Z", "trigger": "timer", "request_id": "req-1", "dry_run": False, "preview": False,
        "schedules": [
            {"name": "nightly", "action": "restart", "dry_run": False, "decision": "due",
             "occurrences": [{"occurrence": "2026-12-01T18:00:00Z", "result": "missed", "reason": "superseded"}],
             "instances": [
                 {"instance_id": "i-1", "name": "api", "action": "restart", "result": "success",
                  "reason": "restart accepted", "occurrence": "2026-12-01T19:00:00Z"},
                 {"instance_id": "i-2", "name": "jobs", "action": "restart", "result": "failed",
                  "reason": "HTTP 400 DCS.4026: no (rejected, not executed)", "occurrence": "2026-12-01T19:00:00Z"}]},
            {"name": "observer", "action": "flush", "dry_run": True, "decision": "due", "occurrences": [],
             "instances": [{"instance_id": "i-1", "name": "api", "action": "flush", "result": "skipped",
                            "reason": "dry run: would flush (RUNNING)"}]},
            {"name": "broken", "action": "restart", "dry_run": False, "decision": "error",
             "reason": "could not list instances of project p: HTTP 500 DCS.5000: busy", "occurrences": [],
             "instances": []},
        ]}
    entries = history.entries_from_summary(summary, NOW)
    assert [(e.schedule, e.instance_id, e.result, e.error_code) for e in entries] == [
        ("nightly", None, "missed", None),
        ("nightly", "i-1", "success", None),
        ("nightly", "i-2", "failed", "DCS.4026"),
        ("broken", None, "failed", "DCS.5000"),
    ]  # the schedule in dry-run mode is left out
    assert {(e.trigger, e.request_id, e.tick, e.at) for e in entries} == {("timer", "req-1", "2026-12-01T19:00:00Z",
                                                                            NOW)}
    assert entries[0].occurrence == "2026-12-01T18:00:00Z" and entries[1].instance_name == "api"
    assert history.entries_from_summary(summary, NOW, "manual")[0].trigger == "manual"
    assert history.entries_from_summary({**summary, "dry_run": True}, NOW) == []
    assert history.entries_from_summary({**summary, "preview": True}, NOW) == []


def test_a_write_that_cannot_happen_is_reported_never_raised():
    entry = HistoryEntry(NOW, "timer", "r", "success")
    assert history.write(object(), [entry], timedelta(days=30)) == {
        "recorded": 0, "error": "history not recorded: RuntimeError: object keeps no history"}
    short = history.write(object(), [entry], timedelta(days=30), remaining=lambda: 1.0)
    assert short["recorded"] == 0 and "error" in short
    assert history.write(object(), [], timedelta(days=30)) == {"recorded": 0}


@pytest.mark.parametrize(("params", "message"), [
    ({"limit": "0"}, "limit must be within 1..1000"),
    ({"limit": "1001"}, "limit must be within 1..1000"),
    ({"limit": "ten"}, "limit: expected a whole number"),
    ({"result": "success,ok"}, "result: unknown value(s) ok"),
    ({"since": "yesterday"}, "since"),
    ({"since": "2026-12-01T00:00:00"}, "no UTC offset"),
    ({"since": "2h", "until": "3h"}, "since must be before until"),
    ({"sort": "asc"}, "unknown parameter(s) sort"),
])
def test_bad_query_parameters_are_named(params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        history.parse_query(params, NOW)


def test_query_parameters_take_times_durations_and_lists():
    query = history.parse_query({"since": "24h", "until": "2026-12-02T11:00:00 01:00", "result": "failed, unknown",
                                 "limit": "7", "schedule": "nightly", "instance": "api"}, NOW)
    assert query.since == NOW - timedelta(hours=24)
    assert query.until == datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)  # "+" arrives as a space
    assert (query.results, query.limit, query.schedule, query.instance) == (("failed", "unknown"), 7, "nightly", "api")


@pytest.mark.parametrize("when", [
    NOW, datetime(2026, 3, 29, 3, 0, 0, 1234, tzinfo=timezone(timedelta(hours=8))), datetime(2026, 1, 1),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)])
def test_history_times_are_written_as_the_ledger_writes_its_own(when):
    from dcs_maintenance.ledger import base, history_records

    assert history_records.format_utc(when) == base.format_utc(when)  # cursors compare as the stored text


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", encode_cursor(NOW, 1)[:-3], "W10", "WyJ4IiwxXQ"])
def test_a_cursor_that_is_not_ours_is_refused(cursor):
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor(cursor)


# -- both ledgers ------------------------------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    with open_ledger(ledger_url_for(request.param, tmp_path, server)) as opened:
        yield opened


def make(n: int, at: datetime, **fields) -> HistoryEntry:
    defaults = {"trigger": "timer", "request_id": f"req-{n // 10}", "result": "success", "reason": f"entry {n}",
                "schedule": f"s{n % 3}", "instance_id": f"i-{n % 5}", "instance_name": f"web-{n % 5}",
                "action": "restart", "occurrence": "2026-12-01T19:00:00Z"}
    return HistoryEntry(at=at, **{**defaults, **fields})


def fill(ledger, count: int, start: datetime = NOW - timedelta(days=1), batch: int = 100) -> list[HistoryEntry]:
    """`count` entries, three per second (ties included), results cycling, appended in batches."""
    results = ("success", "failed", "unknown", "missed", "skipped")
    entries = [make(n, start + timedelta(seconds=n // 3), result=results[n % 5]) for n in range(count)]
    for i in range(0, count, batch):
        assert ledger.append_history(entries[i:i + batch], timedelta(days=30), NOW) == len(entries[i:i + batch])
    return entries


def walk(ledger, query: HistoryQuery, max_pages: int = 10_000) -> tuple[list[HistoryEntry], int]:
    """Every page of a query, following the cursor: (entries, pages)."""
    found, cursor, pages = [], None, 0
    while pages < max_pages:
        page = ledger.history(HistoryQuery(**{**vars(query), "cursor": cursor}))
        found += page.entries
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return found, pages
    raise AssertionError("the cursor never ended")


def key(entry: HistoryEntry) -> str:
    return entry.reason  # unique per made entry


def newest_first(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(entries, key=lambda e: e.at, reverse=True)


def test_cursor_paging_returns_every_entry_once_newest_first(ledger):
    entries = fill(ledger, 1050)
    found, pages = walk(ledger, HistoryQuery(limit=37))
    assert pages == 29  # ceil(1050 / 37)
    assert sorted(map(key, found)) == sorted(map(key, entries))  # each exactly once
    assert [e.at for e in found] == [e.at for e in newest_first(entries)]
    assert len({e.id for e in found}) == 1050
    assert found[0].to_dict() == {**entries[-1].to_dict(), "id": found[0].id}  # every field round-trips


def test_paging_is_stable_while_other_invocations_append(ledger):
    entries = fill(ledger, 300)
    first = ledger.history(HistoryQuery(limit=50))
    seen = list(first.entries)
    late = [make(10_000 + n, NOW + timedelta(minutes=n)) for n in range(5)]  # newer: they belong before page 1
    ledger.append_history(late, timedelta(days=30), NOW)
    cursor = first.next_cursor
    while cursor:
        page = ledger.history(HistoryQuery(limit=50, cursor=cursor))
        seen += page.entries
        cursor = page.next_cursor
        if len(seen) == 150:  # a slow writer's older entry, mid-way: it shows up once, nothing is skipped
            ledger.append_history([make(20_000, NOW - timedelta(days=2))], timedelta(days=30), NOW)
    assert sorted(map(key, seen)) == sorted([*map(key, entries), "entry 20000"])
    assert len(seen) == len({key(e) for e in seen})
    assert ledger.history(HistoryQuery(limit=5)).entries[0].reason == "entry 10004"


@pytest.mark.parametrize("query", [
    HistoryQuery(schedule="s1"),
    HistoryQuery(instance="i-3"),
    HistoryQuery(instance="web-2"),
    HistoryQuery(results=("failed",)),
    HistoryQuery(results=("failed", "unknown"), schedule="s0"),
    HistoryQuery(since=NOW - timedelta(days=1) + timedelta(seconds=100),
                 until=NOW - timedelta(days=1) + timedelta(seconds=200)),
    HistoryQuery(schedule="nope"),
], ids=["schedule", "instance-id", "instance-name", "result", "results+schedule", "since-until", "no-match"])
def test_filters_select_the_same_entries_on_every_page(ledger, query):
    entries = fill(ledger, 600)
    expected = [e for e in entries if query.matches(e)
                and (query.since is None or e.at >= query.since) and (query.until is None or e.at < query.until)]
    found, _ = walk(ledger, HistoryQuery(**{**vars(query), "limit": 13}))
    assert sorted(map(key, found)) == sorted(map(key, expected))
    assert [e.at for e in found] == [e.at for e in newest_first(expected)]


def test_retention_trims_old_entries_at_each_append(ledger):
    old = [make(n, NOW - timedelta(days=40, minutes=n)) for n in range(20)]
    ledger.append_history(old, timedelta(days=400), NOW)
    assert len(ledger.history(HistoryQuery(limit=100)).entries) == 20
    ledger.append_history([make(99, NOW)], timedelta(days=30), NOW)
    assert [e.reason for e in ledger.history(HistoryQuery(limit=100)).entries] == ["entry 99"]
    if hasattr(ledger, "_client"):  # Redis: the one key expires a day after the retention, never unbounded
        pttl = ledger._client.pttl(ledger._key("history"))
        assert 0 < pttl <= (timedelta(days=31) / timedelta(milliseconds=1))
        assert ledger._client.keys(ledger.prefix + "*") == [ledger._key("history")]


def test_a_cursor_from_the_other_backend_or_elsewhere_is_refused(ledger):
    fill(ledger, 3)
    other = encode_cursor(NOW, "abc") if ledger.__class__.__name__ == "SqliteLedger" else encode_cursor(NOW, 7)
    with pytest.raises(ValueError, match="cursor"):
        ledger.history(HistoryQuery(cursor=other))


def test_redis_reads_a_bounded_number_of_entries_per_page(redis_server, tmp_path, monkeypatch):  # noqa: F811
    from dcs_maintenance.ledger import redis as redis_ledger

    monkeypatch.setattr(redis_ledger, "HISTORY_SCAN", 600)
    with open_ledger(ledger_url_for("redis", tmp_path, redis_server)) as led:
        rare = [make(n, NOW - timedelta(days=2, seconds=n), schedule="rare") for n in range(3)]
        led.append_history(rare, timedelta(days=30), NOW)
        fill(led, 2000, batch=500)
        found, pages = walk(led, HistoryQuery(schedule="rare", limit=10))
        assert sorted(map(key, found)) == sorted(map(key, rare))
        assert 2 <= pages <= 4  # the scan stops at the budget and hands back its position


# -- a tick records what it did; a failed history write leaves exactly-once intact --------------------------
@pytest.fixture
def fleet(emulator):
    return add_staging_pair(emulator)


def read_history(**filters) -> list[dict]:
    with open_ledger(os.environ["LEDGER_URL"]) as led:
        return [e.to_dict() for e in led.history(history.parse_query({"limit": "1000", **filters})).entries]


@pytest.mark.parametrize("ledger_url", BACKENDS, indirect=True)
def test_a_tick_records_each_instance_with_its_dcs_error_code(fleet, ledger_url, write_schedules, tick):
    write_schedules(NIGHTLY)
    # DCS refuses every request, for good (issue 11: a whole-request 4xx is split until each instance stands
    # alone; a permanent code then fails it with DCS's code and message).
    fleet.inject(Fault(endpoint="status", kind="dcs_error", times=None, error_code="DCS.4007"))
    summary = tick(T)
    assert summary["counts"]["failed"] == 2 and summary["history"] == {"recorded": 2}
    entries = read_history()
    assert {(e["instance_id"], e["instance_name"], e["result"], e["error_code"]) for e in entries} == {
        ("i-stg-1", "staging-api", "failed", "DCS.4007"), ("i-stg-2", "staging-jobs", "failed", "DCS.4007")}
    for e in entries:
        assert (e["trigger"], e["schedule"], e["action"], e["occurrence"], e["tick"]) == (
            "timer", "nightly", "restart", "2026-12-01T19:00:00Z", "2026-12-01T19:00:00Z")
        assert e["request_id"] == summary["request_id"] and e["at"].startswith("2026-12-01T19:00:0")
        assert "DCS.4007" in e["reason"] and "HTTP 400" in e["reason"]
    assert read_history(result="success") == []


def test_missed_and_skipped_occurrences_are_recorded(emulator, function_env, write_schedules, tick):
    add_web(emulator, 2)
    write_schedules(WEB_HOURLY)
    tick(datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc))
    late = tick(datetime(2026, 12, 1, 13, 0, tzinfo=timezone.utc), lag=timedelta(minutes=11))
    assert late["counts"]["missed"] >= 2
    missed = read_history(result="missed")
    assert len(missed) == late["counts"]["missed"]
    assert {e["schedule"] for e in missed} == {"web"} and all(e["reason"] for e in missed)
    assert sorted(e["occurrence"] for e in missed if e["instance_id"] is None) == [  # the hours nobody ticked
        "2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z"]
    assert sorted(e["instance_id"] for e in missed if e["instance_id"]) == ["i-1", "i-2"]  # 13:00, 11 min late
    assert [e["instance_id"] for e in read_history(instance="web-1")] == ["i-1", "i-1"]  # newest first


def test_dry_runs_and_previews_record_nothing(fleet, function_env, write_schedules, tick, http):
    write_schedules(NIGHTLY)
    dry = tick(T, '{"dry_run": true}')
    assert dry["counts"]["skipped"] == 2 and "history" not in dry
    assert http("GET", "/plan", query={"at": "2026-12-01T19:00:00Z"})["statusCode"] == 200
    assert http("POST", "/schedules/nightly/run", {"dry_run": True})["statusCode"] == 200
    answer = http("PUT", "/instances/status", {"instances": ["i-stg-1"], "action": "restart", "dry_run": True})
    assert "history" not in json.loads(answer["body"])
    assert read_history() == []


def _break_history(url: str, server) -> None:
    """Make every history write fail for real: an SQLite trigger that aborts inserts, or a Redis key of the
    wrong type where the sorted set should be."""
    if url.startswith("sqlite"):
        with open_ledger(url) as led:
            led.append_history([], timedelta(days=1))  # creates the table
        conn = sqlite3.connect(url[len("sqlite:///"):])
        conn.execute("CREATE TRIGGER full BEFORE INSERT ON history BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        conn.commit()
        conn.close()
    else:
        import redis

        prefix = url.split("prefix=", 1)[1]
        redis.Redis.from_url(server.url).set(f"{prefix}history", "not a sorted set")


@pytest.mark.parametrize("ledger_url", BACKENDS, indirect=True)
def test_a_failing_history_write_leaves_the_tick_and_its_claims_intact(fleet, ledger_url, write_schedules, tick,
                                                                       request):
    server = request.getfixturevalue("redis_server") if ledger_url.startswith("redis") else None
    _break_history(ledger_url, server)
    write_schedules(NIGHTLY)
    summary = tick(T)
    assert summary["ok"] is True and summary["counts"]["success"] == 2
    assert summary["history"]["recorded"] == 0
    assert "history not recorded" in summary["history"]["error"]
    assert ("disk full" if server is None else "WRONGTYPE") in summary["history"]["error"]
    with open_ledger(ledger_url) as led:
        claims = led.get_claims([claim_key("nightly", T, iid, "restart") for iid in ("i-stg-1", "i-stg-2")])
        assert {c.outcome for c in claims.values()} == {"success"} and len(claims) == 2
        assert led.watermarks()["nightly"] == T
    again = tick(T)  # the same event delivered again: nothing is sent twice
    assert again["counts"]["success"] == 0 and len(status_calls(fleet)) == 1


# -- the routes and the command line -------------------------------------------------------------------------
def test_get_history_pages_with_a_cursor_and_filters(fleet, function_env, write_schedules, tick, http):
    write_schedules(NIGHTLY)
    fleet.inject(Fault(endpoint="status", kind="failed_entries", instance_ids=["i-stg-2"]))
    tick(T)
    run = json.loads(http("POST", "/schedules/nightly/run")["body"])
    assert run["history"] == {"recorded": 2}
    put = json.loads(http("PUT", "/instances/status", {"instances": ["i-stg-1", "i-gone"], "action": "restart"})
                     ["body"])
    assert put["history"] == {"recorded": 2}
    answer = http("GET", "/history", query={"limit": "2"})
    assert answer["statusCode"] == 200
    first = json.loads(answer["body"])
    assert first["count"] == 2 and first["next_cursor"] and first["retention_days"] == 30
    assert [e["trigger"] for e in first["entries"]] == ["http", "http"]
    assert {(e["instance_id"], e["result"]) for e in first["entries"]} == {("i-stg-1", "success"),
                                                                           ("i-gone", "failed")}
    rest, cursor = [], first["next_cursor"]
    while cursor:
        page = json.loads(http("GET", "/history", query={"limit": "2", "cursor": cursor})["body"])
        rest += page["entries"]
        cursor = page["next_cursor"]
    assert [e["trigger"] for e in rest] == ["manual", "manual", "timer", "timer"]
    failed = json.loads(http("GET", "/history", query={"result": "failed", "schedule": "nightly"})["body"])
    assert [(e["trigger"], e["instance_name"]) for e in failed["entries"]] == [("timer", "staging-jobs")]
    by_name = json.loads(http("GET", "/history", query={"instance": "staging-api", "since": "2026-12-01T00:00:00Z"})
                         ["body"])
    assert [e["trigger"] for e in by_name["entries"]] == ["http", "manual", "timer"]


@pytest.mark.parametrize(("query", "status"), [({"limit": "5000"}, 400), ({"cursor": "x"}, 400),
                                               ({"result": "boom"}, 400), ({"foo": "1"}, 400)])
def test_get_history_refuses_bad_parameters(function_env, http, query, status):
    answer = http("GET", "/history", query=query)
    assert answer["statusCode"] == status
    assert json.loads(answer["body"])["error_code"] == "DCSM.4004"


def test_get_history_needs_the_bearer_token(function_env, http):
    assert http("GET", "/history", headers={})["statusCode"] == 401
    assert http("GET", "/history", headers={}, query={"token": "x" * 20})["statusCode"] == 401


def test_the_history_command_prints_a_table_and_json(fleet, function_env, write_schedules, tick):
    write_schedules(NIGHTLY)
    # DCS refuses every call for good: both fail with its code (a whole-request 4xx is split first: issue 11).
    fleet.inject(Fault(endpoint="status", kind="dcs_error", times=None, error_code="DCS.4007"))
    tick(T)
    env = {**os.environ, "HOME": os.environ["HOME"]}

    def sh(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dcs_maintenance", "history", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    table = sh("--schedule", "nightly")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "TRIGGER", "SCHEDULE", "OCCURRENCE", "INSTANCE", "ACTION",
                                "RESULT", "CODE", "REASON"]
    assert len(lines) == 3 and all("nightly" in line and "timer" in line for line in lines[1:])
    assert all("failed" in line and "DCS.4007" in line for line in lines[1:])
    first = json.loads(sh("--json", "--result", "failed", "--limit", "1").stdout)
    assert len(first["entries"]) == 1 and first["entries"][0]["error_code"] == "DCS.4007" and first["next_cursor"]
    second = json.loads(sh("--json", "--result", "failed", "--limit", "1", "--cursor", first["next_cursor"]).stdout)
    assert len(second["entries"]) == 1 and second["next_cursor"] is None
    assert {first["entries"][0]["instance_id"], second["entries"][0]["instance_id"]} == {"i-stg-1", "i-stg-2"}
    cursor = json.loads(sh("--json", "--limit", "1").stdout)["next_cursor"]
    assert sh("--limit", "1").stdout.strip().splitlines()[-1] == f"more: --cursor {cursor}"
    assert json.loads(sh("--json", "--result", "success").stdout)["entries"] == []
    bad = sh("--result", "nope")
    assert bad.returncode == 2 and "result: unknown value(s) nope" in bad.stderr
    assert PROJECT not in table.stdout  # nothing but the table
